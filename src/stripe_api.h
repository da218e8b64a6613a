/*
 * stripe_api.h - the few Stripe API calls the consumer makes: request
 * builders and response parsers, no I/O (the caller sends the requests
 * through http.h, rate-limited).
 *
 *   GET /v1/customers/{id}                      email and name
 *   GET /v1/checkout/sessions/{id}/line_items   paged, 100 a page
 *   GET /v1/subscriptions/{id}                  start_date (tenure)
 *   GET /v1/customers?limit=1                   "stripe-sync check"
 *
 * Requests carry "Authorization: Bearer <key>" (never logged) and go to
 * the config's stripe_api_base (plain http:// works, for tests). No
 * Stripe-Version is sent: the account's default applies, and the fields
 * read here have the same shape in every version since 2020-08-27.
 * (backfill and reconcile will add their list calls here.)
 */

#ifndef STRIPE_API_H
#define STRIPE_API_H

#include <stddef.h>

#include "config.h"
#include "job.h"
#include "provider.h"

#define STRIPE_API_LINE_ITEMS_MAX  1000   /* 10 pages; then we stop */

typedef enum {
    STRIPE_API_OK = 0,
    STRIPE_API_RETRY,       /* 408, 429, 5xx, no response: try later */
    STRIPE_API_FAIL         /* other 4xx, or a body we cannot read */
} stripe_api_status;

/* Request builders: 0, or -1 when an id does not fit in a URL. */
int stripe_api_customer_request(const ss_config *c, const char *customer_id,
    http_request *req);
int stripe_api_line_items_request(const ss_config *c, const char *session_id,
    const char *starting_after, http_request *req);
int stripe_api_subscription_request(const ss_config *c,
    const char *subscription_id, http_request *req);
int stripe_api_probe_request(const ss_config *c, http_request *req);

/*
 * Classifies a response: OK for 2xx; else err gets "<what>: HTTP <status>:
 * <Stripe's error message or an excerpt>" (or the transport error) and
 * *retry_after_ms the Retry-After wait (-1 if none).
 */
stripe_api_status stripe_api_classify(const http_response *res,
    const char *what, char *err, size_t errlen, long long *retry_after_ms);

/*
 * A customer: *email and *name (malloc'd, NULL when absent). A deleted
 * customer ({"deleted":true}) has no email. 0, or -1 with err.
 */
int stripe_api_parse_customer(const char *body, size_t len, char **email,
    char **name, char *err, size_t errlen);

/* line items gathered over the pages of one Checkout Session */
typedef struct {
    job_item   *v;
    size_t      n;
    size_t      cap;
    int         has_more;       /* the last page said so */
    char        last_id[256];   /* starting_after for the next page */
    int         pages;
} stripe_api_items;

/* appends one page: 0, or -1 with err (not a list, out of memory) */
int stripe_api_parse_line_items(const char *body, size_t len,
    stripe_api_items *items, char *err, size_t errlen);
void stripe_api_items_free(stripe_api_items *items);

/* a subscription's start_date (unix time): 0, or -1 with err */
int stripe_api_parse_subscription(const char *body, size_t len,
    long long *start_date, char *err, size_t errlen);

#endif /* STRIPE_API_H */
