/*
 * json_yajl_ref.c - the yajl-based json_parse() that src/json_tree.c had
 * before its own parser, kept as the oracle of t/fuzz/json.c (test code
 * only). Unchanged but for the names: json_yajl_ref_parse() builds the
 * same kind of tree in the same kind of arena, with yajl's callback parser
 * doing the lexing, the callbacks appending nodes to the open containers.
 */

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "json_tree.h"
#include "json_yajl_ref.h"


typedef struct {
    json_arena     *ar;
    json_node      *root;
    json_node      *open[JSON_DEPTH_MAX];   /* containers being filled */
    int             depth;
    const char     *key;        /* name of the member to come */
    size_t          key_len;
    const char     *error;      /* why a callback stopped the parse */
    yajl_handle     handle;
    size_t          end;        /* offset past the top-level container */
} ref_parser;


static json_node *
ref_add(ref_parser *p, json_type type)
{
    json_node  *n, *parent;

    n = json_arena_alloc(p->ar, sizeof(json_node));
    if (n == NULL) {
        p->error = "out of memory";
        return NULL;
    }

    memset(n, 0, sizeof(json_node));
    n->type = type;

    if (p->depth == 0) {
        p->root = n;
        return n;
    }

    parent = p->open[p->depth - 1];

    if (parent->type == JSON_OBJECT) {
        n->key = p->key;
        n->key_len = p->key_len;
    }

    if (parent->u.kids.last == NULL) {
        parent->u.kids.first = n;

    } else {
        parent->u.kids.last->next = n;
    }

    parent->u.kids.last = n;

    return n;
}


static int
ref_on_null(void *ctx)
{
    return ref_add(ctx, JSON_NULL) != NULL;
}


static int
ref_on_boolean(void *ctx, int b)
{
    return ref_add(ctx, b ? JSON_TRUE : JSON_FALSE) != NULL;
}


/* Raw number text: yajl's own integer callback fails the parse on 1e30. */
static int
ref_on_number(void *ctx, const char *s, size_t len)
{
    json_node  *n;
    long long   v;
    size_t      i, neg;

    n = ref_add(ctx, JSON_NUMBER);
    if (n == NULL) {
        return 0;
    }

    neg = s[0] == '-';
    v = 0;

    if (len == neg) {
        return 1;
    }

    /* within +-LLONG_MAX: yajl, in the consumer, cannot read -2^63 back */
    for (i = neg; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (LLONG_MAX - (s[i] - '0')) / 10) {
            return 1;
        }

        v = v * 10 + (s[i] - '0');
    }

    n->type = JSON_INT;
    n->u.i = neg ? -v : v;

    return 1;
}


static int
ref_on_string(void *ctx, const unsigned char *s, size_t len)
{
    ref_parser  *p = ctx;
    json_node   *n;

    /* json_utf8_valid(), json_ends_in_string(): json_tree.c's, which its
       parser does not call, so the oracle stays independent of it */
    if (!json_utf8_valid(s, len)) {
        p->error = "body has a string that is not valid UTF-8";
        return 0;
    }

    n = ref_add(p, JSON_STRING);
    if (n == NULL) {
        return 0;
    }

    n->u.str.s = json_arena_strndup(p->ar, (const char *) s, len);
    n->u.str.len = len;

    if (n->u.str.s == NULL) {
        p->error = "out of memory";
        return 0;
    }

    return 1;
}


static int
ref_on_key(void *ctx, const unsigned char *key, size_t len)
{
    ref_parser  *p = ctx;

    if (!json_utf8_valid(key, len)) {
        p->error = "body has a string that is not valid UTF-8";
        return 0;
    }

    p->key = json_arena_strndup(p->ar, (const char *) key, len);
    p->key_len = len;

    if (p->key == NULL) {
        p->error = "out of memory";
        return 0;
    }

    return 1;
}


static int
ref_open(ref_parser *p, json_type type)
{
    json_node  *n;

    if (p->depth == JSON_DEPTH_MAX) {
        p->error = "JSON nesting deeper than 64 levels";
        return 0;
    }

    n = ref_add(p, type);
    if (n == NULL) {
        return 0;
    }

    p->open[p->depth++] = n;

    return 1;
}


static int
ref_on_start_map(void *ctx)
{
    return ref_open(ctx, JSON_OBJECT);
}


static int
ref_on_start_array(void *ctx)
{
    return ref_open(ctx, JSON_ARRAY);
}


static int
ref_on_end(void *ctx)
{
    ref_parser  *p = ctx;

    p->depth--;

    if (p->depth == 0) {
        p->end = yajl_get_bytes_consumed(p->handle);
    }

    return 1;
}


static const yajl_callbacks  ref_callbacks = {
    ref_on_null,
    ref_on_boolean,
    NULL,                       /* integers come through ref_on_number */
    NULL,                       /* and so do doubles */
    ref_on_number,
    ref_on_string,
    ref_on_start_map,
    ref_on_key,
    ref_on_end,
    ref_on_start_array,
    ref_on_end
};


json_node *
json_yajl_ref_parse(json_arena *ar, const char *body, size_t len,
    char *reason, size_t reason_size)
{
    ref_parser      p;
    yajl_handle     h;
    yajl_status     st;
    unsigned char  *err;
    size_t          n;

    memset(&p, 0, sizeof(ref_parser));
    p.ar = ar;

    h = yajl_alloc(&ref_callbacks, NULL, &p);
    if (h == NULL) {
        snprintf(reason, reason_size, "out of memory");
        return NULL;
    }

    p.handle = h;

    st = yajl_parse(h, (const unsigned char *) body, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    /* yajl takes `{..}"junk` (an unclosed string after the value) as
       complete: only what follows the top-level container can hide one */
    if (st == yajl_status_ok
        && json_ends_in_string(body + p.end, len - p.end))
    {
        yajl_free(h);
        snprintf(reason, reason_size, "body is not JSON: trailing garbage");
        return NULL;
    }

    if (st == yajl_status_ok) {
        yajl_free(h);
        return p.root;
    }

    if (p.error != NULL) {
        snprintf(reason, reason_size, "%s", p.error);

    } else {
        err = yajl_get_error(h, 0, NULL, 0);

        /* yajl's message ends in a newline: keep its first line. */
        n = err != NULL ? strcspn((char *) err, "\r\n") : 0;
        snprintf(reason, reason_size, "body is not JSON: %.*s", (int) n,
                 err != NULL ? (char *) err : "");

        if (err != NULL) {
            yajl_free_error(h, err);
        }
    }

    yajl_free(h);

    return NULL;
}
