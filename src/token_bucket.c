/*
 * token_bucket.c - rate limiting for the Stripe API and the providers.
 */

#include <math.h>

#include "token_bucket.h"


static void
token_bucket_refill(token_bucket *b, long long now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += b->rate * (double) (now_ms - b->last_ms) / 1000.0;
        if (b->tokens > b->burst) {
            b->tokens = b->burst;
        }
    }

    b->last_ms = now_ms;
}


void
token_bucket_init(token_bucket *b, double rate, int burst, long long now_ms)
{
    b->rate = rate;
    b->burst = burst >= 1 ? burst : 1;
    b->tokens = b->burst;
    b->last_ms = now_ms;
    b->paused_until = 0;
}


void
token_bucket_set(token_bucket *b, double rate, int burst, long long now_ms)
{
    token_bucket_refill(b, now_ms);

    b->rate = rate;
    b->burst = burst >= 1 ? burst : 1;

    if (b->tokens > b->burst) {
        b->tokens = b->burst;
    }
}


long long
token_bucket_take(token_bucket *b, long long now_ms)
{
    double  missing;

    if (now_ms < b->paused_until) {
        return b->paused_until - now_ms;
    }

    if (b->rate <= 0) {
        return 0;
    }

    token_bucket_refill(b, now_ms);

    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }

    missing = 1.0 - b->tokens;

    /* round up, so a caller that sleeps that long finds a whole token */
    return (long long) ceil(missing * 1000.0 / b->rate);
}


void
token_bucket_pause(token_bucket *b, long long until_ms)
{
    if (until_ms > b->paused_until) {
        b->paused_until = until_ms;
    }
}
