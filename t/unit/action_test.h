/*
 * action_test.h - helpers shared by the normalizer's unit tests
 * (t/unit/action.c, t/unit/action_edge.c): build an event around a data
 * member, run action_from_event() on it, and read the record back with
 * yajl_tree by dotted path ("customer.email", "items.0.price").
 *
 * One event at a time: run() frees the previous action and record. The
 * helpers are static inline: each test uses some of them.
 */

#ifndef ACTION_TEST_H
#define ACTION_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "action.h"
#include "tap.h"

#define FIXTURES  "t/fixtures/stripe"

static action         A;        /* the last result */
static action_status  S;
static yajl_val       R;        /* its record, parsed */


static inline char *
read_file(const char *path, size_t *len)
{
    FILE    *f;
    char    *buf;
    long     size;

    f = fopen(path, "rb");
    if (f == NULL) {
        diag("cannot open %s (run from the repository root)", path);
        exit(1);
    }

    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(size + 1);
    if (buf == NULL || fread(buf, 1, size, f) != (size_t) size) {
        diag("cannot read %s", path);
        exit(1);
    }

    buf[size] = '\0';
    fclose(f);

    if (len != NULL) {
        *len = size;
    }

    return buf;
}


/* printf into a malloc'd string. */
static inline char *
format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline char *
format(const char *fmt, ...)
{
    va_list  ap;
    char    *s;
    int      n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);

    if (n < 0) {
        diag("out of memory");
        exit(1);
    }

    return s;
}


static inline void
reset(void)
{
    action_free(&A);

    if (R != NULL) {
        yajl_tree_free(R);
        R = NULL;
    }
}


/* Runs the normalizer on len bytes (copied so body[len] is '\0'). */
static inline action_status
run_bytes(const char *body, size_t len)
{
    char  *copy, err[256];

    reset();

    copy = malloc(len + 1);
    memcpy(copy, body, len);
    copy[len] = '\0';

    S = action_from_event(copy, len, &A);
    free(copy);

    if (S == ACTION_OK) {
        R = yajl_tree_parse(A.record, err, sizeof(err));
        if (R == NULL) {
            diag("record is not JSON: %s", err);
        }
    }

    return S;
}


static inline action_status
run(const char *body)
{
    return run_bytes(body, strlen(body));
}


/* An event of the given type around a data member ({"object": ...}). */
static inline char *
event_json(const char *type, const char *data)
{
    return format("{\"id\":\"evt_test\",\"object\":\"event\","
                  "\"api_version\":\"2025-03-31.basil\","
                  "\"created\":1745433906,\"livemode\":false,"
                  "\"type\":\"%s\",\"data\":%s}", type, data);
}


static inline action_status
run_event(const char *type, const char *data)
{
    char  *body;

    body = event_json(type, data);
    run(body);
    free(body);

    return S;
}


/* An event around an object ({"object": <object>}). */
static inline action_status
run_object(const char *type, const char *object)
{
    char  *data;

    data = format("{\"object\":%s}", object);
    run_event(type, data);
    free(data);

    return S;
}


static inline action_status
run_file(const char *type, const char *path)
{
    char  *data;

    data = read_file(path, NULL);
    run_event(type, data);
    free(data);

    return S;
}


/* The record's value at a dotted path; a numeric part indexes an array. */
static inline yajl_val
at(const char *path)
{
    yajl_val     v;
    char         part[128], *end;
    const char  *p, *dot;
    size_t       i, n;
    long         k;

    v = R;
    p = path;

    while (v != NULL && *p != '\0') {
        dot = strchr(p, '.');
        n = dot != NULL ? (size_t) (dot - p) : strlen(p);

        memcpy(part, p, n);
        part[n] = '\0';
        p += n + (dot != NULL);

        if (YAJL_IS_ARRAY(v)) {
            k = strtol(part, &end, 10);
            v = *end == '\0' && k >= 0 && (size_t) k < v->u.array.len
                ? v->u.array.values[k] : NULL;
            continue;
        }

        if (!YAJL_IS_OBJECT(v)) {
            return NULL;
        }

        for (i = 0; i < v->u.object.len; i++) {
            if (strcmp(v->u.object.keys[i], part) == 0) {
                break;
            }
        }

        v = i < v->u.object.len ? v->u.object.values[i] : NULL;
    }

    return v;
}


static inline const char *
str_at(const char *path)
{
    yajl_val  v = at(path);

    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}


/* The integer at path; -999999 flags absent or not an integer. */
static inline long long
int_at_path(const char *path)
{
    yajl_val  v = at(path);

    return YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : -999999;
}


/* 1 true, 0 false, -1 absent. */
static inline int
bool_at(const char *path)
{
    yajl_val  v = at(path);

    return YAJL_IS_TRUE(v) ? 1 : YAJL_IS_FALSE(v) ? 0 : -1;
}


static inline size_t
len_at(const char *path)
{
    yajl_val  v = at(path);

    return YAJL_IS_ARRAY(v) ? v->u.array.len
           : YAJL_IS_OBJECT(v) ? v->u.object.len : 0;
}


#define has(path)  (at(path) != NULL)

/* The members of the object at path, in order, comma-separated. */
static inline const char *
keys_at(const char *path)
{
    static char  buf[2048];
    yajl_val     v;
    size_t       i, n;

    buf[0] = '\0';
    v = *path ? at(path) : R;

    if (!YAJL_IS_OBJECT(v)) {
        return "(not an object)";
    }

    n = 0;

    for (i = 0; i < v->u.object.len; i++) {
        n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "",
                      v->u.object.keys[i]);
        if (n >= sizeof(buf)) {
            break;
        }
    }

    return buf;
}

#endif /* ACTION_TEST_H */
