/*
 * backoff.h - when a failed job is tried again (docs/operations.md).
 *
 * Attempt n (1 for the first try) failed: the next try is due after
 *
 *     d = min(max_delay, base_delay * 2^(n - 1))
 *
 * with full jitter over the upper half, uniformly in [d/2, d], so consumers
 * that failed together do not retry together; and never before what the
 * server asked for (Retry-After).
 */

#ifndef BACKOFF_H
#define BACKOFF_H

/*
 * The delay in milliseconds before the try after attempt `attempt`; u is a
 * uniform random number in [0, 1) (0 gives d/2, near 1 gives d); at least
 * min_ms (the server's Retry-After, 0 if none).
 */
long long backoff_delay_ms(long long attempt, long long base_ms,
    long long max_ms, double u, long long min_ms);

/* the same without jitter: the upper bound d */
long long backoff_bound_ms(long long attempt, long long base_ms,
    long long max_ms);

/* a uniform random number in [0, 1), seeded once per process */
double backoff_random(void);

#endif /* BACKOFF_H */
