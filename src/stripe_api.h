/*
 * stripe_api.h - the few Stripe API calls the consumer makes: request
 * builders and response parsers, no I/O (the caller sends the requests
 * through http.h, rate-limited).
 *
 *   GET /v1/customers/{id}                      email and name
 *   GET /v1/checkout/sessions/{id}/line_items   paged, 100 a page
 *   GET /v1/subscriptions/{id}                  start_date (tenure)
 *   GET /v1/customers?limit=1                   "stripe-sync check"
 *   GET /v1/<collection>?limit=..&...           lists (backfill, reconcile)
 *
 * Requests carry "Authorization: Bearer <key>" (never logged) and go to
 * the config's stripe_api_base (plain http:// works, for tests). No
 * Stripe-Version is sent: the account's default applies, and the fields
 * read here have the same shape in every version since 2020-08-27.
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

/*
 * Lists: GET /v1/<collection> ("customers", "checkout/sessions", "events",
 * ...), newest first, paged with starting_after. Unset filters are NULL,
 * -1 or 0.
 */
typedef struct {
    int          limit;             /* 1..100; 0: 100 */
    const char  *status;            /* status=<status> */
    long long    created_gte;       /* created[gte]=<unix>; -1: none */
    int          undelivered;       /* events: delivery_success=false */
    const char  *starting_after;    /* the last id of the page before */
} stripe_api_list_query;

/* 0, or -1 when the collection is not a plain path or an id is too long */
int stripe_api_list_request(const ss_config *c, const char *collection,
    const stripe_api_list_query *q, http_request *req);

/* one item of a list page: its JSON text exactly as received */
typedef struct {
    size_t       off;           /* body + off, len bytes */
    size_t       len;
    char         id[256];       /* "" when absent or too long */
    long long    created;       /* -1 when absent */
    int          livemode;      /* 1, 0; -1 when absent */
} stripe_api_item;

typedef struct {
    stripe_api_item  *items;
    size_t            n;        /* items on this page */
    size_t            cap;
    int               has_more;
    const char       *last_id;  /* starting_after for the next page: the
                                   last item's id, or NULL */
} stripe_api_list;

/*
 * Reads one page ({"object":"list","data":[..],"has_more":..}) into l,
 * replacing the page before (l starts zeroed). A page whose last item has
 * no id says has_more 0: it cannot be followed. 0, or -1 with err.
 */
int stripe_api_parse_list(const char *body, size_t len, stripe_api_list *l,
    char *err, size_t errlen);
void stripe_api_list_free(stripe_api_list *l);

#endif /* STRIPE_API_H */
