/*
 * order_sweep.c - customers waiting on a job that exists nowhere
 * (order_sweep.h).
 */

#include <stdlib.h>
#include <string.h>

#include "logging.h"
#include "order_sweep.h"


void
order_sweep_init(order_sweep *w)
{
    memset(w, 0, sizeof(*w));
}


static void
order_suspect_drop(order_sweep *w, size_t i)
{
    free(w->v[i].customer);
    free(w->v[i].head);
    w->v[i] = w->v[--w->n];
}


void
order_sweep_free(order_sweep *w)
{
    while (w->n > 0) {
        order_suspect_drop(w, w->n - 1);
    }

    free(w->v);
    order_sweep_init(w);
}


void
order_sweep_begin(order_sweep *w)
{
    w->look++;
}


order_verdict
order_sweep_judge(order_sweep *w, const char *customer, const char *head,
    int found)
{
    order_suspect  *v, *e;
    size_t          i, cap;
    char           *c, *h;

    for (i = 0; i < w->n && strcmp(w->v[i].customer, customer) != 0; i++) {
        /* find it */
    }

    e = i < w->n ? &w->v[i] : NULL;

    if (found) {
        if (e != NULL) {
            order_suspect_drop(w, i);
        }
        return ORDER_ALIVE;
    }

    if (e != NULL && strcmp(e->head, head) == 0 && e->look + 1 == w->look) {
        order_suspect_drop(w, i);
        return ORDER_SKIP;
    }

    if (e != NULL) {
        /* another head, or not seen at the last look: start again */
        h = strdup(head);
        if (h == NULL) {
            order_suspect_drop(w, i);
            return ORDER_SUSPECT;
        }
        free(e->head);
        e->head = h;
        e->look = w->look;
        return ORDER_SUSPECT;
    }

    if (w->n == w->cap) {
        cap = w->cap ? w->cap * 2 : 8;
        v = realloc(w->v, cap * sizeof(*v));
        if (v == NULL) {
            return ORDER_SUSPECT;
        }
        w->v = v;
        w->cap = cap;
    }

    c = strdup(customer);
    h = strdup(head);

    if (c == NULL || h == NULL) {
        free(c);
        free(h);
        return ORDER_SUSPECT;
    }

    w->v[w->n].customer = c;
    w->v[w->n].head = h;
    w->v[w->n].look = w->look;
    w->n++;

    return ORDER_SUSPECT;
}


void
order_sweep_end(order_sweep *w)
{
    size_t  i;

    for (i = w->n; i > 0; i--) {
        if (w->v[i - 1].look != w->look) {
            order_suspect_drop(w, i - 1);
        }
    }
}


/* the customer's parked jobs that may go back to the queue, and a skip */
static int
order_sweep_heal(store *s, const char *customer, const char *skip,
    int alive, const char *why)
{
    char  cq[600], hq[300];
    int   skipped, moved;

    if (store_order_heal(s, customer, skip, alive, &skipped, &moved) != 0) {
        return -1;
    }

    logging_quote(customer, cq, sizeof(cq));

    if (skipped) {
        logging_printf("order: customer \"%s\": event %s %s: skipped, the "
                       "customer's later jobs go on", cq,
                       logging_quote(skip, hq, sizeof(hq)), why);
    }

    if (moved > 0) {
        logging_printf("order: customer \"%s\": %d parked job(s) back to the "
                       "queue (at the head of the customer's order, or no "
                       "longer in it)", cq, moved);
    }

    return 0;
}


int
order_sweep_run(order_sweep *w, store *s, long long stuck_ms)
{
    char           **customers, **heads, **ids;
    size_t           n, i, m;
    int             *found, done, rc;
    order_verdict    v;

    if (store_order_stuck(s, stuck_ms, ORDER_SWEEP_CUSTOMERS, &customers, &n)
        != 0)
    {
        return -1;
    }

    rc = -1;
    heads = calloc(n + 1, sizeof(*heads));
    ids = calloc(n + 1, sizeof(*ids));
    found = calloc(n + 1, sizeof(*found));

    if (heads == NULL || ids == NULL || found == NULL) {
        goto failed;
    }

    order_sweep_begin(w);

    for (i = 0; i < n; i++) {
        switch (store_order_head(s, customers[i], &heads[i], &done)) {

        case 1:
            if (!done) {
                break;
            }

            if (order_sweep_heal(s, customers[i], heads[i], 0, "was "
                                 "finished but stayed in its customer's "
                                 "order (by a consumer without "
                                 "ordering?)") != 0)
            {
                goto failed;
            }

            free(heads[i]);
            heads[i] = NULL;
            break;

        case 0:
            /* no order left: the parked jobs go back to the queue */
            if (order_sweep_heal(s, customers[i], NULL, 0, NULL) != 0) {
                goto failed;
            }
            break;

        default:
            goto failed;
        }
    }

    m = 0;
    for (i = 0; i < n; i++) {
        if (heads[i] != NULL) {
            ids[m++] = heads[i];
        }
    }

    if (store_jobs_find(s, ids, m, found) != 0) {
        goto failed;
    }

    m = 0;
    for (i = 0; i < n; i++) {
        if (heads[i] == NULL) {
            continue;
        }

        v = order_sweep_judge(w, customers[i], heads[i], found[m++]);

        if (v == ORDER_SKIP) {
            if (order_sweep_heal(s, customers[i], heads[i], 0, "is in no "
                                 "queue, retry set or processing list (two "
                                 "looks in a row)") != 0)
            {
                goto failed;
            }

        } else if (order_sweep_heal(s, customers[i], NULL, v == ORDER_ALIVE,
                                    NULL) != 0)
        {
            goto failed;
        }
    }

    order_sweep_end(w);
    rc = 0;

failed:

    store_strings_free(heads, n);
    free(ids);
    free(found);
    store_strings_free(customers, n);

    return rc;
}
