/*
 * normalize_driver.c - the loop bench/normalize measures under callgrind.
 *
 *   normalize_driver <body bytes> <events> [verify|normalize|both]
 *
 * Builds one signed invoice.paid event (basil shape) of about <body bytes>
 * (at least one invoice line, more until it is that big), then runs the ingest
 * path's pure part <events> times: stripe_sig_verify() of its header and/or
 * action_from_event() + action_free(). Prints the body and record sizes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "stripe_sig.h"

#define SECRET      "whsec_bench_normalize"
#define TIMESTAMP   1745437580


typedef struct {
    char    *s;
    size_t   len;
    size_t   size;
} buf;


static void
add(buf *b, const char *s)
{
    size_t  n = strlen(s);

    if (b->len + n + 1 > b->size) {
        b->size = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->size);
        if (b->s == NULL) {
            exit(1);
        }
    }

    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}


static void
add_line(buf *b, unsigned i)
{
    char  line[1024];

    snprintf(line, sizeof(line),
        "%s{\"id\":\"il_1RH8Zq%08u\",\"object\":\"line_item\",\"amount\":2490,"
        "\"currency\":\"usd\",\"description\":\"1 \\u00d7 Course module %u "
        "(at $24.90 / month)\",\"discount_amounts\":[],\"discountable\":true,"
        "\"discounts\":[],\"invoice\":\"in_1RH8ZqKXBGcbgpbZ\","
        "\"livemode\":true,\"metadata\":{},\"parent\":{"
        "\"invoice_item_details\":null,\"subscription_item_details\":{"
        "\"invoice_item\":null,\"proration\":false,\"proration_details\":{"
        "\"credited_items\":null},\"subscription\":\"sub_1RH8ZqKXBGcbgpbZ\","
        "\"subscription_item\":\"si_S7%08u\"},\"type\":"
        "\"subscription_item_details\"},\"period\":{\"end\":1776969906,"
        "\"start\":1745433906},\"pretax_credit_amounts\":[],\"pricing\":{"
        "\"price_details\":{\"price\":\"price_1RH8Zq%08u\",\"product\":"
        "\"prod_S7%08u\"},\"type\":\"price_details\",\"unit_amount_decimal\":"
        "\"2490\"},\"quantity\":1,\"taxes\":[{\"amount\":0,\"tax_behavior\":"
        "\"exclusive\",\"tax_rate_details\":{\"tax_rate\":\"txr_0\"},"
        "\"taxability_reason\":\"not_collecting\",\"taxable_amount\":0,"
        "\"type\":\"tax_rate_details\"}]}",
        i ? "," : "", i, i, i, i, i);
    add(b, line);
}


/* An invoice.paid event of about size bytes (one line at least). */
static char *
make_event(size_t size, size_t *len)
{
    buf       b = { NULL, 0, 0 };
    unsigned  i;

    add(&b,
        "{\"id\":\"evt_1RH8ZqKXBGcbgpbZ5d1wXJ8y\",\"object\":\"event\","
        "\"api_version\":\"2025-03-31.basil\",\"created\":1745437580,"
        "\"data\":{\"object\":{\"id\":\"in_1RH8ZqKXBGcbgpbZ\","
        "\"object\":\"invoice\",\"account_country\":\"US\","
        "\"account_name\":\"Example, LLC\",\"amount_due\":2490,"
        "\"amount_paid\":2490,\"amount_remaining\":0,\"attempt_count\":1,"
        "\"attempted\":true,\"billing_reason\":\"subscription_cycle\","
        "\"collection_method\":\"charge_automatically\","
        "\"created\":1745433962,\"currency\":\"usd\","
        "\"customer\":\"cus_S7ZqKXBGcbgpbZ\",\"customer_address\":{"
        "\"city\":null,\"country\":\"US\",\"line1\":null,\"line2\":null,"
        "\"postal_code\":\"94587\",\"state\":null},"
        "\"customer_email\":\"ada@example.org\","
        "\"customer_name\":\"Ada Lovelace\",\"customer_phone\":null,"
        "\"hosted_invoice_url\":\"https://invoice.stripe.com/i/acct_1/"
        "test_YWNjdF8x\",\"lines\":{\"object\":\"list\",\"data\":[");

    /* the tail below is about 900 bytes */
    for (i = 0; i == 0 || b.len + 900 < size; i++) {
        add_line(&b, i);
    }

    add(&b,
        "],\"has_more\":false,\"total_count\":1,\"url\":"
        "\"/v1/invoices/in_1RH8ZqKXBGcbgpbZ/lines\"},\"livemode\":true,"
        "\"metadata\":{\"course\":\"ml-101\",\"cohort\":\"2025-spring\"},"
        "\"number\":\"F612594F-0002\",\"parent\":{\"quote_details\":null,"
        "\"subscription_details\":{\"metadata\":{},"
        "\"subscription\":\"sub_1RH8ZqKXBGcbgpbZ\"},"
        "\"type\":\"subscription_details\"},\"period_end\":1745433906,"
        "\"period_start\":1713897906,\"status\":\"paid\","
        "\"status_transitions\":{\"finalized_at\":1745437578,"
        "\"marked_uncollectible_at\":null,\"paid_at\":1745437580,"
        "\"voided_at\":null},\"subtotal\":2490,\"total\":2490,"
        "\"webhooks_delivered_at\":1745433964}},\"livemode\":true,"
        "\"pending_webhooks\":1,\"request\":{\"id\":null,"
        "\"idempotency_key\":null},\"type\":\"invoice.paid\"}");

    *len = b.len;

    return b.s;
}


int
main(int argc, char **argv)
{
    stripe_sig_secret   secret;
    stripe_sig_status   sig;
    const char         *mode, *reason;
    char                hex[STRIPE_SIG_HEX_LEN + 1], header[128];
    char               *body;
    size_t              len, header_len, record_len;
    long                n, i;
    int                 verify, normalize;
    action              a;

    if (argc < 3) {
        fprintf(stderr, "usage: %s <body bytes> <events> "
                "[verify|normalize|both]\n", argv[0]);
        return 2;
    }

    mode = argc > 3 ? argv[3] : "both";
    verify = strcmp(mode, "normalize") != 0;
    normalize = strcmp(mode, "verify") != 0;
    n = atol(argv[2]);

    body = make_event((size_t) atol(argv[1]), &len);

    /* prepared once, as the module does when it reads its configuration */
    memset(&secret, 0, sizeof(secret));
    secret.data = (const unsigned char *) SECRET;
    secret.len = sizeof(SECRET) - 1;

    if (stripe_sig_sign(&secret, TIMESTAMP, (unsigned char *) body, len, hex)
        != 0
        || stripe_sig_secret_prepare(&secret) != 0)
    {
        fprintf(stderr, "stripe_sig_sign or _prepare failed\n");
        return 1;
    }

    header_len = snprintf(header, sizeof(header), "t=%d,v1=%s", TIMESTAMP,
                          hex);
    record_len = 0;

    for (i = 0; i < n; i++) {
        if (verify) {
            sig = stripe_sig_verify(header, header_len,
                                    (unsigned char *) body, len, &secret, 1,
                                    TIMESTAMP, 300, &reason);
            if (sig != STRIPE_SIG_OK) {
                fprintf(stderr, "signature: %s\n", reason);
                return 1;
            }
        }

        if (normalize) {
            if (action_from_event(body, len, &a) != ACTION_OK) {
                fprintf(stderr, "normalize: %s\n", a.reason);
                return 1;
            }

            record_len = a.record_len;
            action_free(&a);
        }
    }

    printf("body %zu record %zu\n", len, record_len);
    stripe_sig_secret_wipe(&secret);
    free(body);

    return 0;
}
