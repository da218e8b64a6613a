/*
 * customer_order.h - one job at a time per customer, in the order taken.
 *
 * Every job the consumer holds is added in take order with its ordering
 * key (the customer id, else the email, else none). A job may start only
 * when no job added before it with the same key is still held; a job
 * without a key never waits.
 */

#ifndef CUSTOMER_ORDER_H
#define CUSTOMER_ORDER_H

#include <stddef.h>

typedef struct {
    char                *key;       /* owned; NULL: no key */
    unsigned long long   seq;       /* take order */
} customer_order_entry;

typedef struct {
    customer_order_entry  *v;
    size_t                 n;
    size_t                 cap;
    unsigned long long     next_seq;
} customer_order;

void customer_order_init(customer_order *o);
void customer_order_free(customer_order *o);

/* holds a job (key copied; NULL or "" for none); its seq, or 0 on ENOMEM */
unsigned long long customer_order_add(customer_order *o, const char *key);

/* 1 if no earlier held job has the same key */
int customer_order_may_start(const customer_order *o, unsigned long long seq);

/* the job is no longer held */
void customer_order_remove(customer_order *o, unsigned long long seq);

#endif /* CUSTOMER_ORDER_H */
