/*
 * order_sweep.c - unit tests for the customer's order across consumers:
 * the lost-head judging (order_sweep.c) and the order key, which the
 * module's enqueue (action.c) and the consumer (job.c, consumer.c) must
 * derive alike: the record's customer id, else its email.
 */

#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "job.h"
#include "order_sweep.h"
#include "tap.h"


static void
test_judge(void)
{
    order_sweep  w;

    order_sweep_init(&w);

    /* look 1: A's head missing, B's found */
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_1", 0), ORDER_SUSPECT,
           "a head missing once is only suspected");
    is_int(order_sweep_judge(&w, "cus_B", "evt_9", 1), ORDER_ALIVE,
           "a head found is alive");
    order_sweep_end(&w);
    is_int(w.n, 1, "one suspect remembered");

    /* look 2: A's same head missing again: skipped */
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_1", 0), ORDER_SKIP,
           "missing at two looks in a row: skipped");
    order_sweep_end(&w);
    is_int(w.n, 0, "and forgotten");

    /* a head that moves is a new suspect */
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_2", 0), ORDER_SUSPECT,
           "the next head missing: suspected");
    order_sweep_end(&w);
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_3", 0), ORDER_SUSPECT,
           "another head at the next look: suspected again, not skipped");
    order_sweep_end(&w);

    /* found in between: starts over */
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_3", 1), ORDER_ALIVE,
           "found at the next look: alive");
    order_sweep_end(&w);
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_3", 0), ORDER_SUSPECT,
           "missing again after being found: only suspected");
    order_sweep_end(&w);

    /* a look that skips the customer (no longer stuck) forgets it */
    order_sweep_begin(&w);
    order_sweep_end(&w);
    is_int(w.n, 0, "a customer not looked at is forgotten");
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_3", 0), ORDER_SUSPECT,
           "so it is only suspected when it comes back");
    order_sweep_end(&w);

    /* two looks in a row, not two looks: a failed sweep in between */
    order_sweep_begin(&w);      /* a sweep that failed: no judge, no end */
    order_sweep_begin(&w);
    is_int(order_sweep_judge(&w, "cus_A", "evt_3", 0), ORDER_SUSPECT,
           "a look missed in between: suspected, not skipped");
    order_sweep_end(&w);

    /* many customers at once */
    order_sweep_free(&w);
    order_sweep_init(&w);
    {
        char    c[32];
        int     i, skips;

        order_sweep_begin(&w);
        for (i = 0; i < 50; i++) {
            snprintf(c, sizeof(c), "cus_%d", i);
            order_sweep_judge(&w, c, "evt_x", i % 2);
        }
        order_sweep_end(&w);
        is_int(w.n, 25, "25 of 50 suspected");

        order_sweep_begin(&w);
        skips = 0;
        for (i = 0; i < 50; i++) {
            snprintf(c, sizeof(c), "cus_%d", i);
            skips += order_sweep_judge(&w, c, "evt_x", 0) == ORDER_SKIP;
        }
        order_sweep_end(&w);
        is_int(skips, 25, "the 25 suspected are skipped at the next look");
        is_int(w.n, 25, "the other 25 are suspected now");
    }

    order_sweep_free(&w);
    is_int(w.n, 0, "freed");
}


/* the order key of an event, as the module sends it and as the consumer
   reads it back from the record */
static void
check_key(const char *event, const char *want, const char *what)
{
    action   a;
    job      j;
    char     err[256];
    const char  *got;

    if (action_from_event(event, strlen(event), &a) != ACTION_OK) {
        ok(0, "%s: normalized (%s)", what, a.reason);
        action_free(&a);
        return;
    }

    if (want == NULL) {
        ok(a.order_key == NULL, "%s: no order key", what);
    } else {
        is_str(a.order_key ? a.order_key : "(null)", want, "%s: order key",
               what);
    }

    if (job_parse(&j, a.record, a.record_len, err, sizeof(err)) != 0) {
        ok(0, "%s: the record parses: %s", what, err);
        action_free(&a);
        return;
    }

    got = j.customer_id ? j.customer_id : j.email;
    if (want == NULL) {
        ok(got == NULL, "%s: the consumer finds no key either", what);
    } else {
        is_str(got ? got : "(null)", want,
               "%s: the consumer's key is the same", what);
    }

    job_free(&j);
    action_free(&a);
}


static void
test_order_key(void)
{
    check_key("{\"id\":\"evt_k1\",\"type\":\"invoice.paid\",\"created\":1,"
              "\"data\":{\"object\":{\"id\":\"in_1\",\"object\":\"invoice\","
              "\"customer\":\"cus_K\",\"customer_email\":\"k@example.org\","
              "\"billing_reason\":\"subscription_cycle\",\"status\":"
              "\"paid\",\"amount_paid\":100,\"currency\":\"usd\"}}}",
              "cus_K", "customer id and email");

    check_key("{\"id\":\"evt_k2\",\"type\":\"checkout.session.completed\","
              "\"created\":1,\"data\":{\"object\":{\"id\":\"cs_1\","
              "\"object\":\"checkout.session\",\"mode\":\"payment\","
              "\"payment_status\":\"paid\",\"status\":\"complete\","
              "\"customer\":null,\"customer_details\":{\"email\":"
              "\"guest@example.org\"},\"amount_total\":900,"
              "\"currency\":\"usd\"}}}",
              "guest@example.org", "a guest checkout: the email");

    check_key("{\"id\":\"evt_k3\",\"type\":\"checkout.session.completed\","
              "\"created\":1,\"data\":{\"object\":{\"id\":\"cs_2\","
              "\"object\":\"checkout.session\",\"mode\":\"payment\","
              "\"payment_status\":\"paid\",\"status\":\"complete\","
              "\"customer\":null,\"amount_total\":900,"
              "\"currency\":\"usd\"}}}",
              NULL, "neither");
}


int
main(void)
{
    test_judge();
    test_order_key();

    return tap_done();
}
