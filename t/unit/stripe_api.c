/*
 * stripe_api.c - unit tests for the Stripe API requests and responses
 * (src/stripe_api.c): URLs, headers, status classes, parsers.
 */

#include <stdlib.h>
#include <string.h>

#include "stripe_api.h"
#include "tap.h"


static ss_config  C;

/* a string literal and its length */
#define LIT(s)  s, sizeof(s) - 1


static int
has_header(const http_request *req, const char *h)
{
    size_t  i;

    for (i = 0; i < req->nheaders; i++) {
        if (strcmp(req->headers[i], h) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
test_requests(void)
{
    http_request  req;
    char          long_id[900];

    C.stripe_api_key = "sk_test_abc";
    C.stripe_api_base = "https://api.stripe.com";

    ok(stripe_api_customer_request(&C, "cus_123", &req) == 0, "customer");
    is_str(req.method, "GET", "GET");
    is_str(req.url, "https://api.stripe.com/v1/customers/cus_123", "its URL");
    ok(has_header(&req, "Authorization: Bearer sk_test_abc"),
       "Authorization: Bearer <key>");
    ok(req.body == NULL, "no body");

    C.stripe_api_base = "http://127.0.0.1:12111/";
    ok(stripe_api_line_items_request(&C, "cs_test_1", NULL, &req) == 0,
       "line items, first page");
    is_str(req.url, "http://127.0.0.1:12111/v1/checkout/sessions/cs_test_1/"
           "line_items?limit=100", "base's trailing slash dropped; limit 100");

    ok(stripe_api_line_items_request(&C, "cs_test_1", "li_9", &req) == 0,
       "line items, next page");
    is_str(req.url, "http://127.0.0.1:12111/v1/checkout/sessions/cs_test_1/"
           "line_items?limit=100&starting_after=li_9", "starting_after");

    ok(stripe_api_subscription_request(&C, "sub_1", &req) == 0,
       "subscription");
    is_str(req.url, "http://127.0.0.1:12111/v1/subscriptions/sub_1",
           "its URL");

    ok(stripe_api_probe_request(&C, &req) == 0, "probe");
    is_str(req.url, "http://127.0.0.1:12111/v1/customers?limit=1",
           "GET /v1/customers?limit=1");

    ok(stripe_api_customer_request(&C, "cus/../x?y", &req) == 0,
       "an odd id");
    is_str(req.url, "http://127.0.0.1:12111/v1/customers/cus%2F..%2Fx%3Fy",
           "is escaped into one path segment");

    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    ok(stripe_api_customer_request(&C, long_id, &req) != 0,
       "an id too long for a URL is refused");

    C.stripe_api_key = "sk_bad\r\nX-Injected: 1";
    ok(stripe_api_customer_request(&C, "cus_1", &req) != 0,
       "a key with a line break cannot add a header");

    C.stripe_api_key = "sk_test_abc";
    C.stripe_api_base = NULL;
    ok(stripe_api_customer_request(&C, "cus_1", &req) == 0
       && strcmp(req.url, "https://api.stripe.com/v1/customers/cus_1") == 0,
       "no base: api.stripe.com");
}


static http_response
response(long status, const char *body, const char *retry_after)
{
    http_response  r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.body = body;
    r.body_len = strlen(body);
    r.retry_after = retry_after;

    return r;
}


static void
test_classify(void)
{
    http_response  r;
    char           err[512];
    long long      ra;

    r = response(200, "{}", NULL);
    is_int(stripe_api_classify(&r, "x", err, sizeof(err), &ra),
           STRIPE_API_OK, "200 ok");

    r = response(404, "{\"error\":{\"message\":\"No such customer: "
                 "'cus_1'\",\"type\":\"invalid_request_error\"}}", NULL);
    is_int(stripe_api_classify(&r, "Stripe: customer cus_1", err,
                               sizeof(err), &ra),
           STRIPE_API_FAIL, "404 fails");
    is_str(err, "Stripe: customer cus_1: HTTP 404: No such customer: "
           "'cus_1'", "with Stripe's message");

    r = response(429, "{\"error\":{\"message\":\"Too many\"}}", "2");
    is_int(stripe_api_classify(&r, "x", err, sizeof(err), &ra),
           STRIPE_API_RETRY, "429 retries");
    is_int(ra, 2000, "Retry-After: 2 -> 2000 ms");

    r = response(500, "<html>oops\n</html>", NULL);
    is_int(stripe_api_classify(&r, "x", err, sizeof(err), &ra),
           STRIPE_API_RETRY, "500 retries");
    is_str(err, "x: HTTP 500: <html>oops </html>",
           "a body that is not JSON: an excerpt on one line");
    is_int(ra, -1, "no Retry-After: -1");

    r = response(408, "", NULL);
    is_int(stripe_api_classify(&r, "x", err, sizeof(err), &ra),
           STRIPE_API_RETRY, "408 retries");

    r = response(401, "{\"error\":{\"message\":\"Invalid API Key "
                 "provided: sk_test_****abc\"}}", NULL);
    is_int(stripe_api_classify(&r, "x", err, sizeof(err), &ra),
           STRIPE_API_FAIL, "401 fails");

    r = response(0, "", NULL);
    r.error = "Connection refused";
    is_int(stripe_api_classify(&r, "x", err, sizeof(err), &ra),
           STRIPE_API_RETRY, "no response retries");
    is_str(err, "x: Connection refused", "with the transport error");
}


static void
test_customer(void)
{
    char  *email, *name, err[256];

    ok(stripe_api_parse_customer(LIT("{\"id\":\"cus_1\",\"email\":\"a@b.c\","
                                 "\"name\":\"Ada L\"}"), &email, &name,
                                 err, sizeof(err)) == 0, "a customer");
    is_str(email, "a@b.c", "email");
    is_str(name, "Ada L", "name");
    free(email);
    free(name);

    ok(stripe_api_parse_customer(LIT("{\"id\":\"cus_1\",\"email\":null}"),
                                 &email, &name, err, sizeof(err)) == 0,
       "null email");
    ok(email == NULL && name == NULL, "gives none");

    ok(stripe_api_parse_customer(LIT("{\"id\":\"cus_1\",\"email\":\"\"}"),
                                 &email, &name, err, sizeof(err)) == 0
       && email == NULL, "an empty email is none");

    ok(stripe_api_parse_customer(LIT("{\"id\":\"cus_1\",\"deleted\":true,"
                                 "\"email\":\"a@b.c\"}"), &email, &name,
                                 err, sizeof(err)) == 0,
       "a deleted customer");
    ok(email == NULL, "has no email");

    ok(stripe_api_parse_customer(LIT("[1]"), &email, &name, err, sizeof(err))
       != 0, "an array is refused");
    ok(stripe_api_parse_customer(LIT("{\"email"), &email, &name, err,
                                 sizeof(err)) != 0, "so is broken JSON");
    ok(strstr(err, "not JSON") != NULL, "saying so: %s", err);
}


static void
test_line_items(void)
{
    static const char  page1[] =
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"li_1\",\"object\":\"item\",\"amount_total\":1000,"
        "\"description\":\"Course\",\"price\":{\"id\":\"price_A\","
        "\"product\":\"prod_A\"},\"quantity\":1},"
        "{\"id\":\"li_2\",\"amount_total\":500,\"price\":{\"id\":\"price_B\","
        "\"product\":{\"id\":\"prod_B\",\"object\":\"product\"}},"
        "\"quantity\":2}],\"has_more\":true}";
    static const char  page2[] =
        "{\"data\":[{\"id\":\"li_3\",\"price\":null}],\"has_more\":false}";
    stripe_api_items   items;
    char               err[256];

    memset(&items, 0, sizeof(items));

    ok(stripe_api_parse_line_items(page1, sizeof(page1) - 1, &items, err,
                                   sizeof(err)) == 0, "page 1");
    is_int(items.n, 2, "two items");
    ok(items.has_more, "has_more");
    is_str(items.last_id, "li_2", "next page starts after li_2");
    is_str(items.v[0].price, "price_A", "price");
    is_str(items.v[0].product, "prod_A", "product");
    is_int(items.v[0].quantity, 1, "quantity");
    is_int(items.v[0].amount, 1000, "amount from amount_total");
    is_str(items.v[0].description, "Course", "description");
    is_str(items.v[1].product, "prod_B", "an expanded product's id");
    ok(items.v[1].description == NULL, "no description: NULL");

    ok(stripe_api_parse_line_items(page2, sizeof(page2) - 1, &items, err,
                                   sizeof(err)) == 0, "page 2");
    is_int(items.n, 3, "appended");
    ok(!items.has_more, "the last page");
    ok(items.v[2].price == NULL && items.v[2].quantity == -1
       && items.v[2].amount == -1, "absent facts stay absent");
    is_int(items.pages, 2, "two pages read");

    stripe_api_items_free(&items);
    is_int(items.n, 0, "freed");

    ok(stripe_api_parse_line_items(LIT("{\"data\":[],\"has_more\":true}"),
                                   &items, err, sizeof(err)) == 0
       && !items.has_more, "an empty page that claims more: stop");
    stripe_api_items_free(&items);

    ok(stripe_api_parse_line_items(LIT("{\"object\":\"list\"}"), &items, err,
                                   sizeof(err)) != 0, "no data: refused");
    is_str(err, "Stripe line items response has no \"data\" list",
           "saying so");
    stripe_api_items_free(&items);
}


static void
test_subscription(void)
{
    long long  start;
    char       err[256];

    ok(stripe_api_parse_subscription(LIT("{\"id\":\"sub_1\",\"start_date\":"
                                     "1600000000}"), &start, err,
                                     sizeof(err)) == 0
       && start == 1600000000, "start_date");
    ok(stripe_api_parse_subscription(LIT("{\"id\":\"sub_1\"}"), &start, err,
                                     sizeof(err)) != 0, "none: refused");
    ok(stripe_api_parse_subscription(LIT("{\"start_date\":\"1600000000\"}"),
                                     &start, err, sizeof(err)) != 0,
       "a string is not a date");
}


/* 800 KB of '[': refused before yajl builds a tree it would free by recursion */
static void
test_nesting_bomb(void)
{
    char    *body, *email, *name, err[256];
    size_t   len = 800 * 1024;

    body = malloc(len);
    if (body == NULL) {
        ok(0, "malloc");
        return;
    }

    memset(body, '[', len);
    err[0] = '\0';
    ok(stripe_api_parse_customer(body, len, &email, &name, err,
                                 sizeof(err)) != 0, "a nesting bomb refused");
    ok(strstr(err, "nested deeper") != NULL, "err says why: %s", err);
    free(body);
}


int
main(void)
{
    test_requests();
    test_nesting_bomb();
    test_classify();
    test_customer();
    test_line_items();
    test_subscription();

    return tap_done();
}
