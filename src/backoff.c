/*
 * backoff.c - exponential backoff with jitter (backoff.h).
 */

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"


long long
backoff_bound_ms(long long attempt, long long base_ms, long long max_ms)
{
    long long  d;

    if (attempt < 1) {
        attempt = 1;
    }

    if (base_ms < 1) {
        base_ms = 1;
    }

    d = base_ms;

    /* doubling stops at the cap, so no overflow for any attempt */
    while (--attempt > 0 && d < max_ms) {
        d *= 2;
    }

    return d < max_ms ? d : (max_ms > 0 ? max_ms : d);
}


long long
backoff_delay_ms(long long attempt, long long base_ms, long long max_ms,
    double u, long long min_ms)
{
    long long  d, half, delay;

    d = backoff_bound_ms(attempt, base_ms, max_ms);

    if (u < 0) {
        u = 0;
    } else if (u >= 1) {
        u = 0.999999;
    }

    half = d / 2;
    delay = half + (long long) ((double) (d - half) * u);

    return delay > min_ms ? delay : min_ms;
}


double
backoff_random(void)
{
    static int              seeded;
    static unsigned short   state[3];
    struct timespec         ts;

    if (!seeded) {
        clock_gettime(CLOCK_REALTIME, &ts);
        state[0] = (unsigned short) ts.tv_nsec;
        state[1] = (unsigned short) ((ts.tv_nsec >> 16) ^ getpid());
        state[2] = (unsigned short) ts.tv_sec;
        seeded = 1;
    }

    return erand48(state);
}
