/*
 * provider_json.h - the JSON the providers send and read: a writer that
 * builds a request body with yajl_gen and remembers the first failure,
 * bounded parsing of responses with yajl_tree, the platforms' error shapes
 * turned into one line, and the value formats the platforms want (ISO 8601
 * times, amounts in major units).
 */

#ifndef PROVIDER_JSON_H
#define PROVIDER_JSON_H

#include <stddef.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "provider.h"

#define PROVIDER_JSON_DEPTH_MAX  64                  /* deeper is refused */
#define PROVIDER_JSON_SIZE_MAX   (16 * 1024 * 1024)  /* bigger is refused */

/*
 * A request body under construction. Every call is a no-op once one has
 * failed (invalid UTF-8, out of memory); json_writer_finish() reports it.
 */
typedef struct {
    yajl_gen  g;
    int       failed;
} json_writer;

int json_writer_init(json_writer *w);
void json_writer_map_open(json_writer *w);
void json_writer_map_close(json_writer *w);
void json_writer_array_open(json_writer *w);
void json_writer_array_close(json_writer *w);
void json_writer_key(json_writer *w, const char *key);
void json_writer_string(json_writer *w, const char *s);
void json_writer_integer(json_writer *w, long long n);
void json_writer_number(json_writer *w, const char *decimal);  /* "24.90" */
void json_writer_bool(json_writer *w, int b);
void json_writer_null(json_writer *w);
void json_writer_value(json_writer *w, yajl_val v);   /* a parsed tree */

/* key then value, in one call */
void json_writer_pair(json_writer *w, const char *key, const char *s);
void json_writer_pair_integer(json_writer *w, const char *key, long long n);

/*
 * Moves the text into req->body (malloc'd, the consumer frees it) and frees
 * the writer. Returns 0, or -1 when anything failed (req->body is NULL).
 */
int json_writer_finish(json_writer *w, http_request *req);

/* Frees the writer without producing anything. */
void json_writer_discard(json_writer *w);


/*
 * Parses a response body. Returns the tree (free with yajl_tree_free), or
 * NULL with x->err saying "<what>: HTTP <status>: response is not JSON ..."
 * (also for bodies deeper than PROVIDER_JSON_DEPTH_MAX or larger than
 * PROVIDER_JSON_SIZE_MAX).
 */
yajl_val provider_json_parse(op_exec *x, const http_response *res,
    const char *what);

/* obj[key] when obj is an object, else NULL */
yajl_val json_member(yajl_val obj, const char *key);

/* obj[key] as a string, or NULL when absent or not a string */
const char *json_member_string(yajl_val obj, const char *key);

/*
 * obj[key], a string or an integer, as text into buf: an id. 0, or -1 when
 * absent, too long, or not a token of letters, digits, '_' and '-': ids go
 * into the next request's URL, where a server's "1/../account" or "4 2"
 * would change or break it.
 */
int json_member_id(yajl_val obj, const char *key, char *buf, size_t len);

/* 1 when obj[key] is true */
int json_member_true(yajl_val obj, const char *key);

/*
 * provider_classify(), then, when the response is not a success and its
 * body is one of the platforms' error shapes ({"errors": [strings or
 * {title, detail, code}]}, {"message": ...}, {"error": ...}, {}), err
 * holds those messages instead of the raw excerpt.
 */
step_status provider_json_classify(op_exec *x, const http_response *res,
    const char *what);


/* "2025-04-23T18:45:06Z"; 0, or -1 when t < 0 or it does not fit */
int iso8601_utc(long long t, char *buf, size_t len);

/* "2022-03-01T08:51:57-06:00" (or Z, +HHMM, fractional seconds, a space
   for the T) as Unix seconds; -1 when it is not such a time */
long long iso8601_parse(const char *s);

/* digits after the decimal point of a currency as Stripe counts it: 0 for
   JPY and the other zero-decimal currencies, 3 for BHD, JOD, KWD, OMR and
   TND, else 2 */
int currency_exponent(const char *currency);

/* minor units as a decimal text in major units: 24900 usd -> "249.00",
   500 jpy -> "500"; 0, or -1 when it does not fit */
int money_major_units(long long minor, const char *currency, char *buf,
    size_t len);

/* "usd" -> "USD"; 0, or -1 when cur is NULL, empty or does not fit */
int currency_upper(const char *cur, char *buf, size_t len);

/*
 * A 2xx answer's JSON, or NULL with *s the step's status: the classified
 * status for a non-2xx, STEP_RETRY for a 2xx that cannot be read.
 */
yajl_val provider_json_answer(op_exec *x, const http_response *res,
    const char *what, step_status *s);

/* obj[key] as an array, or NULL with x->err saying the answer lacks it */
yajl_val provider_json_array(op_exec *x, yajl_val obj, const char *key,
    const char *what, long status);

#endif /* PROVIDER_JSON_H */
