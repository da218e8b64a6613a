/*
 * provider_json.c - request bodies, response parsing, error shapes and
 * value formats for the providers (see provider_json.h).
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json_tree.h"
#include "provider_json.h"

#define ERROR_TEXT_MAX  200


int
json_writer_init(json_writer *w)
{
    w->failed = 0;
    w->g = yajl_gen_alloc(NULL);
    if (w->g == NULL) {
        w->failed = 1;
        return -1;
    }

    yajl_gen_config(w->g, yajl_gen_validate_utf8, 1);
    return 0;
}


static void
json_writer_check(json_writer *w, yajl_gen_status st)
{
    if (st != yajl_gen_status_ok) {
        w->failed = 1;
    }
}


void
json_writer_map_open(json_writer *w)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_map_open(w->g));
    }
}


void
json_writer_map_close(json_writer *w)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_map_close(w->g));
    }
}


void
json_writer_array_open(json_writer *w)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_array_open(w->g));
    }
}


void
json_writer_array_close(json_writer *w)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_array_close(w->g));
    }
}


void
json_writer_string(json_writer *w, const char *s)
{
    if (s == NULL) {
        json_writer_null(w);
        return;
    }

    if (!w->failed) {
        json_writer_check(w, yajl_gen_string(w->g, (const unsigned char *) s,
                                             strlen(s)));
    }
}


void
json_writer_key(json_writer *w, const char *key)
{
    json_writer_string(w, key);
}


void
json_writer_integer(json_writer *w, long long n)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_integer(w->g, n));
    }
}


void
json_writer_number(json_writer *w, const char *decimal)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_number(w->g, decimal,
                                             strlen(decimal)));
    }
}


void
json_writer_bool(json_writer *w, int b)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_bool(w->g, b));
    }
}


void
json_writer_null(json_writer *w)
{
    if (!w->failed) {
        json_writer_check(w, yajl_gen_null(w->g));
    }
}


void
json_writer_value(json_writer *w, yajl_val v)
{
    size_t  i;

    if (w->failed) {
        return;
    }

    if (v == NULL || YAJL_IS_NULL(v)) {
        json_writer_null(w);

    } else if (YAJL_IS_STRING(v)) {
        json_writer_string(w, YAJL_GET_STRING(v));

    } else if (YAJL_IS_NUMBER(v)) {
        /* the number exactly as it was written */
        json_writer_number(w, v->u.number.r);

    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        json_writer_bool(w, YAJL_IS_TRUE(v));

    } else if (YAJL_IS_OBJECT(v)) {
        json_writer_map_open(w);
        for (i = 0; i < v->u.object.len; i++) {
            json_writer_key(w, v->u.object.keys[i]);
            json_writer_value(w, v->u.object.values[i]);
        }
        json_writer_map_close(w);

    } else if (YAJL_IS_ARRAY(v)) {
        json_writer_array_open(w);
        for (i = 0; i < v->u.array.len; i++) {
            json_writer_value(w, v->u.array.values[i]);
        }
        json_writer_array_close(w);

    } else {
        w->failed = 1;
    }
}


void
json_writer_pair(json_writer *w, const char *key, const char *s)
{
    json_writer_key(w, key);
    json_writer_string(w, s);
}


void
json_writer_pair_integer(json_writer *w, const char *key, long long n)
{
    json_writer_key(w, key);
    json_writer_integer(w, n);
}


int
json_writer_finish(json_writer *w, http_request *req)
{
    const unsigned char  *buf;
    size_t                len;
    char                 *body;

    req->body = NULL;
    req->body_len = 0;

    if (w->failed
        || yajl_gen_get_buf(w->g, &buf, &len) != yajl_gen_status_ok)
    {
        json_writer_discard(w);
        return -1;
    }

    body = malloc(len + 1);
    if (body == NULL) {
        json_writer_discard(w);
        return -1;
    }

    memcpy(body, buf, len);
    body[len] = '\0';

    req->body = body;
    req->body_len = len;

    json_writer_discard(w);
    return 0;
}


void
json_writer_discard(json_writer *w)
{
    if (w->g != NULL) {
        yajl_gen_free(w->g);
        w->g = NULL;
    }
}


yajl_val
provider_json_parse(op_exec *x, const http_response *res, const char *what)
{
    yajl_val     v;
    const char  *why;
    char         excerpt[ERROR_TEXT_MAX + 1];
    char         yerr[128];
    size_t       len;

    why = NULL;
    len = res->body == NULL ? 0 : res->body_len;

    if (len == 0) {
        why = "response has no body";

    } else if (len > PROVIDER_JSON_SIZE_MAX) {
        why = "response is too large to read";

    } else if (strlen(res->body) != len) {
        why = "response is not JSON (it holds a NUL byte)";

    } else if (json_nesting_exceeds(res->body, len,
                                    PROVIDER_JSON_DEPTH_MAX))
    {
        why = "response is not JSON we can read (nested too deeply)";
    }

    if (why == NULL) {
        yerr[0] = '\0';
        v = yajl_tree_parse(res->body, yerr, sizeof(yerr));
        if (v != NULL) {
            return v;
        }

        why = "response is not JSON (truncated?)";
    }

    provider_excerpt(res->body, len, excerpt, sizeof(excerpt));
    snprintf(x->err, sizeof(x->err), "%s: HTTP %ld: %s: %s", what,
             res->status, why, excerpt);
    return NULL;
}


yajl_val
json_member(yajl_val obj, const char *key)
{
    size_t  i;

    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


const char *
json_member_string(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = json_member(obj, key);
    return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}


int
json_member_id(yajl_val obj, const char *key, char *buf, size_t len)
{
    yajl_val     v;
    const char  *s, *p;
    int          n;

    v = json_member(obj, key);
    if (YAJL_IS_STRING(v)) {
        s = YAJL_GET_STRING(v);

    } else if (YAJL_IS_INTEGER(v)) {
        s = v->u.number.r;

    } else {
        return -1;
    }

    if (s == NULL || *s == '\0') {
        return -1;
    }

    for (p = s; *p != '\0'; p++) {
        if (!isalnum((unsigned char) *p) && *p != '_' && *p != '-') {
            return -1;
        }
    }

    n = snprintf(buf, len, "%s", s);
    return (n < 0 || (size_t) n >= len) ? -1 : 0;
}


int
json_member_true(yajl_val obj, const char *key)
{
    return YAJL_IS_TRUE(json_member(obj, key));
}


/* appends s to out (with "; " between parts), bounded */
static void
error_text_add(char *out, size_t len, const char *s)
{
    size_t  used;

    if (s == NULL || *s == '\0') {
        return;
    }

    used = strlen(out);
    if (used + 1 >= len) {
        return;
    }

    snprintf(out + used, len - used, "%s%s", used ? "; " : "", s);
}


static void
error_text_item(yajl_val e, char *out, size_t len)
{
    const char  *title, *detail, *code, *message;
    char         one[ERROR_TEXT_MAX + 1];

    if (YAJL_IS_STRING(e)) {
        error_text_add(out, len, YAJL_GET_STRING(e));
        return;
    }

    title = json_member_string(e, "title");
    detail = json_member_string(e, "detail");
    code = json_member_string(e, "code");
    message = json_member_string(e, "message");

    one[0] = '\0';
    error_text_add(one, sizeof(one), title);
    error_text_add(one, sizeof(one), detail);
    error_text_add(one, sizeof(one), message);
    if (one[0] == '\0') {
        error_text_add(one, sizeof(one), code);
    }

    error_text_add(out, len, one);
}


/* the messages of a platform error body; 0, or -1 when it is no such body */
static int
error_text(const http_response *res, char *out, size_t len)
{
    op_exec      scratch;
    yajl_val     v, errors, message;
    size_t       i;

    out[0] = '\0';

    if (res->body == NULL || res->body_len == 0) {
        return -1;
    }

    scratch.err[0] = '\0';
    v = provider_json_parse(&scratch, res, "");
    if (v == NULL) {
        return -1;
    }

    if (!YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        return -1;
    }

    errors = json_member(v, "errors");
    message = json_member(v, "message");
    if (message == NULL) {
        message = json_member(v, "error");
    }

    if (YAJL_IS_ARRAY(errors)) {
        for (i = 0; i < errors->u.array.len; i++) {
            error_text_item(errors->u.array.values[i], out, len);
        }

    } else if (YAJL_IS_STRING(errors)) {
        error_text_add(out, len, YAJL_GET_STRING(errors));
    }

    if (out[0] == '\0' && YAJL_IS_STRING(message)) {
        error_text_add(out, len, YAJL_GET_STRING(message));
    }

    if (out[0] == '\0' && v->u.object.len == 0) {
        snprintf(out, len, "{} (no error details)");
    }

    yajl_tree_free(v);
    return out[0] == '\0' ? -1 : 0;
}


step_status
provider_json_classify(op_exec *x, const http_response *res,
    const char *what)
{
    step_status  s;
    char         text[ERROR_TEXT_MAX * 2];
    char         clean[ERROR_TEXT_MAX + 1];

    s = provider_classify(x, res, what);
    if (s == STEP_DONE || res->status == 0) {
        return s;
    }

    if (error_text(res, text, sizeof(text)) == 0) {
        provider_excerpt(text, strlen(text), clean, sizeof(clean));
        snprintf(x->err, sizeof(x->err), "%s: HTTP %ld: %s", what,
                 res->status, clean);
    }

    return s;
}


int
iso8601_utc(long long t, char *buf, size_t len)
{
    struct tm  tm;
    time_t     tt;

    if (t < 0 || len == 0) {
        return -1;
    }

    tt = (time_t) t;
    if (gmtime_r(&tt, &tm) == NULL) {
        return -1;
    }

    return strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 ? -1 : 0;
}


long long
iso8601_parse(const char *s)
{
    struct tm   tm;
    const char *p;
    int         n, oh, om, sign;
    long long   t;

    if (s == NULL) {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6
        || n != 19
        || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1
        || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59
        || tm.tm_sec > 60)
    {
        return -1;
    }

    p = s + n;
    if (*p == '.') {
        do {
            p++;
        } while (isdigit((unsigned char) *p));
    }

    oh = 0;
    om = 0;
    sign = 0;

    if (*p == 'Z' || *p == 'z') {
        p++;

    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (!isdigit((unsigned char) p[1]) || !isdigit((unsigned char) p[2])) {
            return -1;
        }
        oh = (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
        if (*p == ':') {
            p++;
        }
        if (isdigit((unsigned char) p[0]) && isdigit((unsigned char) p[1])) {
            om = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
        if (oh > 23 || om > 59) {
            return -1;
        }
    }

    if (*p != '\0') {
        return -1;
    }

    tm.tm_year -= 1900;
    tm.tm_mon -= 1;

    t = (long long) timegm(&tm);
    if (t < 0) {
        return -1;
    }

    /* 08:51 at -06:00 is 14:51 UTC */
    return t - sign * (oh * 3600LL + om * 60LL);
}


int
currency_exponent(const char *currency)
{
    static const char  *zero[] = {
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
        "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf", NULL
    };
    static const char  *three[] = {
        "bhd", "jod", "kwd", "omr", "tnd", NULL
    };
    size_t              i;

    if (currency == NULL) {
        return 2;
    }

    for (i = 0; zero[i] != NULL; i++) {
        if (strcasecmp(currency, zero[i]) == 0) {
            return 0;
        }
    }

    for (i = 0; three[i] != NULL; i++) {
        if (strcasecmp(currency, three[i]) == 0) {
            return 3;
        }
    }

    return 2;
}


int
money_major_units(long long minor, const char *currency, char *buf,
    size_t len)
{
    unsigned long long  a, scale;
    int                 e, i, n;

    e = currency_exponent(currency);

    /* the magnitude as unsigned: LLONG_MIN has no positive twin */
    a = minor < 0 ? 0ULL - (unsigned long long) minor
                  : (unsigned long long) minor;

    if (e == 0) {
        n = snprintf(buf, len, "%s%llu", minor < 0 ? "-" : "", a);

    } else {
        scale = 1;
        for (i = 0; i < e; i++) {
            scale *= 10;
        }

        n = snprintf(buf, len, "%s%llu.%0*llu", minor < 0 ? "-" : "",
                     a / scale, e, a % scale);
    }

    return (n < 0 || (size_t) n >= len) ? -1 : 0;
}


int
currency_upper(const char *cur, char *buf, size_t len)
{
    size_t  i, n;

    if (cur == NULL || *cur == '\0') {
        return -1;
    }

    n = strlen(cur);
    if (n >= len) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        buf[i] = (char) toupper((unsigned char) cur[i]);
    }

    buf[n] = '\0';
    return 0;
}


yajl_val
provider_json_answer(op_exec *x, const http_response *res, const char *what,
    step_status *s)
{
    yajl_val  v;

    *s = provider_json_classify(x, res, what);
    if (*s != STEP_DONE) {
        return NULL;
    }

    v = provider_json_parse(x, res, what);
    if (v == NULL) {
        *s = STEP_RETRY;
    }

    return v;
}


yajl_val
provider_json_array(op_exec *x, yajl_val obj, const char *key,
    const char *what, long status)
{
    yajl_val  a;

    a = json_member(obj, key);
    if (!YAJL_IS_ARRAY(a)) {
        snprintf(x->err, sizeof(x->err), "%s: HTTP %ld: the response has "
                 "no \"%s\" array", what, status, key);
        return NULL;
    }

    return a;
}
