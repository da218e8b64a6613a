/*
 * token_bucket.h - a request rate limit: `rate` requests per second on
 * average, `burst` at once, and a pause (a 429's Retry-After) that stops
 * everything until a given time.
 *
 * Time is passed in (milliseconds on a monotonic clock), so the bucket is
 * pure and its tests need no clock.
 */

#ifndef TOKEN_BUCKET_H
#define TOKEN_BUCKET_H

typedef struct {
    double      rate;           /* tokens per second; <= 0: unlimited */
    double      burst;          /* capacity, >= 1 */
    double      tokens;
    long long   last_ms;        /* when tokens was computed */
    long long   paused_until;   /* ms; nothing is taken before this */
} token_bucket;

/* starts full */
void token_bucket_init(token_bucket *b, double rate, int burst,
    long long now_ms);

/* new rate and burst (a config reload): keeps the tokens and the pause */
void token_bucket_set(token_bucket *b, double rate, int burst,
    long long now_ms);

/* takes a token: returns 0, or how many ms until one can be taken */
long long token_bucket_take(token_bucket *b, long long now_ms);

/* takes nothing before until_ms (a later pause wins over an earlier) */
void token_bucket_pause(token_bucket *b, long long until_ms);

#endif /* TOKEN_BUCKET_H */
