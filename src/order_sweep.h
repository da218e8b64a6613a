/*
 * order_sweep.h - a customer's order must not wait forever on a job that
 * exists nowhere: a queue entry deleted by hand, a job a consumer without
 * ordering finished, a record lost with part of Redis' data.
 *
 * Each sweep looks at the customers whose parked jobs have waited
 * stuck_ms without the head of their order moving (store_order_stuck):
 *
 *   - no head (the order list expired or was deleted), or a parked head:
 *     the parked jobs go back to the queue;
 *   - a head whose job is done (the done marker): skipped at once;
 *   - a head whose job is in no queue, retry set or processing list
 *     (store_jobs_find) at two looks in a row: skipped at the second.
 *
 * A skip takes the head out of the order, moves the next parked job back
 * to the queue and is logged. The consumer sweeps every 3 heartbeats.
 */

#ifndef ORDER_SWEEP_H
#define ORDER_SWEEP_H

#include <stddef.h>

#include "store.h"

#define ORDER_SWEEP_CUSTOMERS  100    /* looked at per sweep, at most */

typedef enum {
    ORDER_ALIVE = 0,    /* found: nothing to do */
    ORDER_SUSPECT,      /* missing for the first time: remembered */
    ORDER_SKIP          /* missing at the previous look too */
} order_verdict;

typedef struct {
    char       *customer;
    char       *head;
    unsigned    look;           /* when it was last missing */
} order_suspect;

typedef struct {
    order_suspect  *v;
    size_t          n;
    size_t          cap;
    unsigned        look;       /* looks begun */
} order_sweep;

void order_sweep_init(order_sweep *w);
void order_sweep_free(order_sweep *w);

/*
 * The judging, without Redis: begin a look, judge each customer's head
 * (found: its job is somewhere), end the look (customers not judged in it
 * are forgotten). A head is skipped only when it was missing at the look
 * just before with the same head. Out of memory: ORDER_SUSPECT, never a
 * skip.
 */
void order_sweep_begin(order_sweep *w);
order_verdict order_sweep_judge(order_sweep *w, const char *customer,
    const char *head, int found);
void order_sweep_end(order_sweep *w);

/* one sweep through s (logs what it releases and skips): 0 or -1 */
int order_sweep_run(order_sweep *w, store *s, long long stuck_ms);

#endif /* ORDER_SWEEP_H */
