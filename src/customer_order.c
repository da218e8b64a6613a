/*
 * customer_order.c - per-customer ordering of held jobs.
 *
 * A plain array in take order: the consumer holds at most a few hundred
 * jobs, so a linear scan beats any index.
 */

#include <stdlib.h>
#include <string.h>

#include "customer_order.h"


void
customer_order_init(customer_order *o)
{
    memset(o, 0, sizeof(*o));
    o->next_seq = 1;
}


void
customer_order_free(customer_order *o)
{
    size_t  i;

    for (i = 0; i < o->n; i++) {
        free(o->v[i].key);
    }

    free(o->v);
    customer_order_init(o);
}


unsigned long long
customer_order_add(customer_order *o, const char *key)
{
    customer_order_entry  *v;
    size_t                 cap;
    char                  *k;

    if (o->n == o->cap) {
        cap = o->cap ? o->cap * 2 : 16;
        v = realloc(o->v, cap * sizeof(*v));
        if (v == NULL) {
            return 0;
        }
        o->v = v;
        o->cap = cap;
    }

    k = NULL;

    if (key != NULL && key[0] != '\0') {
        k = strdup(key);
        if (k == NULL) {
            return 0;
        }
    }

    o->v[o->n].key = k;
    o->v[o->n].seq = o->next_seq++;

    return o->v[o->n++].seq;
}


int
customer_order_may_start(const customer_order *o, unsigned long long seq)
{
    size_t       i, j;
    const char  *key;

    for (i = 0; i < o->n && o->v[i].seq != seq; i++) {
        /* find it */
    }

    if (i == o->n) {
        return 0;
    }

    key = o->v[i].key;

    if (key == NULL) {
        return 1;
    }

    for (j = 0; j < i; j++) {
        if (o->v[j].key != NULL && strcmp(o->v[j].key, key) == 0) {
            return 0;
        }
    }

    return 1;
}


void
customer_order_remove(customer_order *o, unsigned long long seq)
{
    size_t  i;

    for (i = 0; i < o->n; i++) {
        if (o->v[i].seq == seq) {
            free(o->v[i].key);
            memmove(&o->v[i], &o->v[i + 1], (o->n - i - 1) * sizeof(*o->v));
            o->n--;
            return;
        }
    }
}
