/*
 * backfill.c - unit tests for the pure parts of backfill and reconcile:
 * the synthetic event envelope (through the real normalizer), checkpoint
 * encoding, --since and window parsing (src/backfill.c, src/ingest.c,
 * src/reconcile.c), and Stripe list pages (src/stripe_api.c).
 */

#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "backfill.h"
#include "ingest.h"
#include "reconcile.h"
#include "stripe_api.h"
#include "tap.h"


/* a string literal and its length */
#define LIT(s)  s, sizeof(s) - 1

#define NOW  1745437580LL     /* 2025-04-23T19:46:20Z */


static void
test_collections(void)
{
    const backfill_collection  *bc;
    int                         n;

    bc = backfill_collection_find("checkout");
    ok(bc != NULL, "checkout is a collection");
    is_str(bc->path, "checkout/sessions", "listed at /v1/checkout/sessions");
    is_str(bc->status, "complete", "completed sessions only");
    is_str(bc->type, "checkout.session.completed", "as completed sessions");

    bc = backfill_collection_find("invoices");
    is_str(bc->status, "paid", "paid invoices");
    is_str(bc->type, "invoice.paid", "as invoice.paid");

    bc = backfill_collection_find("subscriptions");
    is_str(bc->status, "active", "active subscriptions");
    is_str(bc->type, "customer.subscription.created",
           "as customer.subscription.created");

    bc = backfill_collection_find("customers");
    ok(bc->status == NULL && !bc->by_default,
       "customers: no status filter, only with --only");
    is_str(bc->type, "customer.created", "as customer.created");

    ok(backfill_collection_find("charges") == NULL, "charges: not one");

    n = 0;
    for (bc = backfill_collections; bc->name != NULL; bc++) {
        n += bc->by_default;
    }
    is_int(n, 3, "three by default");
}


static void
test_envelope(void)
{
    static const char  inv[] =
        "{\"id\":\"in_1\",\"object\":\"invoice\",\"customer\":\"cus_A\","
        "\"customer_email\":\"ada@example.org\",\"amount_paid\":2900,"
        "\"currency\":\"usd\",\"attempt_count\":1,"
        "\"billing_reason\":\"subscription_create\",\"status\":\"paid\","
        "\"created\":1700000000,\"livemode\":false}";
    static const char  cs[] =
        "{\"id\":\"cs_1\",\"object\":\"checkout.session\","
        "\"mode\":\"payment\","
        "\"payment_status\":\"paid\",\"status\":\"complete\","
        "\"customer\":\"cus_B\",\"customer_details\":{\"email\":"
        "\"bo@example.org\"},\"amount_total\":9900,\"currency\":\"usd\"}";
    action   a;
    char    *env;
    size_t   len;

    env = backfill_envelope("invoice.paid", "in_1", 1700000000, 0, LIT(inv),
                            &len);
    ok(env != NULL, "an invoice's envelope");
    is_int(len, strlen(env), "its length");
    is_str(env, "{\"id\":\"evt_backfill_in_1\",\"object\":\"event\","
           "\"type\":\"invoice.paid\",\"created\":1700000000,"
           "\"livemode\":false,\"api_version\":null,\"data\":{\"object\":"
           "{\"id\":\"in_1\",\"object\":\"invoice\",\"customer\":\"cus_A\","
           "\"customer_email\":\"ada@example.org\",\"amount_paid\":2900,"
           "\"currency\":\"usd\",\"attempt_count\":1,"
           "\"billing_reason\":\"subscription_create\",\"status\":\"paid\","
           "\"created\":1700000000,\"livemode\":false}}}",
           "the object inside, byte for byte");

    is_int(action_from_event(env, len, &a), ACTION_OK, "normalizes");
    is_str(a.id, "evt_backfill_in_1", "event id from the object id");
    is_str(a.name, "purchase", "a first invoice is a purchase");
    is_str(a.once_key, "purchase:in_1",
           "the fact key a webhook's invoice.paid would have");
    is_str(a.customer_id, "cus_A", "customer");
    is_int(a.livemode, 0, "livemode from the object");
    ok(strstr(a.record, "\"created\":1700000000") != NULL,
       "created from the object");
    ok(strstr(a.record, "\"api_version\"") == NULL,
       "api_version null: left out of the record");
    action_free(&a);
    free(env);

    env = backfill_envelope("checkout.session.completed", "cs_1", -1, -1,
                            LIT(cs), &len);
    ok(strstr(env, "\"created\"") == NULL, "no created: left out");
    ok(strstr(env, "\"livemode\"") == NULL, "no livemode: left out");
    is_int(action_from_event(env, len, &a), ACTION_OK, "a session");
    is_str(a.name, "purchase", "a paid session is a purchase");
    is_str(a.once_key, "purchase:cs_1", "once per session");
    ok(strstr(a.record, "\"line_items\"") != NULL,
       "the consumer is asked to fetch its line items");
    ok(a.customer_json != NULL
       && strstr(a.customer_json, "bo@example.org") != NULL,
       "the email is remembered for the customer map");
    action_free(&a);
    free(env);

    env = backfill_envelope("a\"b", "x\\y\n", 5, 1, LIT("{}"), &len);
    is_str(env, "{\"id\":\"evt_backfill_x\\\\y\\u000a\",\"object\":\"event\","
           "\"type\":\"a\\\"b\",\"created\":5,\"livemode\":true,"
           "\"api_version\":null,\"data\":{\"object\":{}}}",
           "strings escaped");
    free(env);
}


static void
test_checkpoint(void)
{
    backfill_checkpoint  cp, back;
    char                *s, err[256];

    memset(&cp, 0, sizeof(cp));
    cp.since = 1735689600;
    strcpy(cp.since_arg, "2025-01-01");
    strcpy(cp.after, "in_42");
    cp.pages = 3;
    cp.fetched = 250;
    cp.updated = NOW;

    s = backfill_checkpoint_encode(&cp);
    is_str(s, "{\"since\":1735689600,\"since_arg\":\"2025-01-01\","
           "\"after\":\"in_42\",\"done\":false,\"pages\":3,\"fetched\":250,"
           "\"updated\":1745437580}", "encoded as JSON");

    ok(backfill_checkpoint_decode(s, strlen(s), &back, err, sizeof(err)) == 0,
       "decodes");
    ok(memcmp(&cp, &back, sizeof(cp)) == 0, "the same back");
    free(s);

    memset(&cp, 0, sizeof(cp));
    cp.since = -1;
    strcpy(cp.since_arg, "say \"x\"");
    cp.done = 1;
    s = backfill_checkpoint_encode(&cp);
    is_str(s, "{\"since\":null,\"since_arg\":\"say \\\"x\\\"\",\"after\":\"\","
           "\"done\":true,\"pages\":0,\"fetched\":0,\"updated\":0}",
           "no since: null; done; quotes escaped");
    ok(backfill_checkpoint_decode(s, strlen(s), &back, err, sizeof(err)) == 0
       && back.since == -1 && back.done && strcmp(back.since_arg,
                                                  "say \"x\"") == 0,
       "and back");
    free(s);

    ok(backfill_checkpoint_decode(LIT("{}"), &back, err, sizeof(err)) == 0
       && back.since == -1 && !back.done && back.after[0] == '\0',
       "an empty object: from the start");

    ok(backfill_checkpoint_decode(LIT("in_42"), &back, err, sizeof(err))
       != 0, "not JSON: refused");
    is_str(err, "checkpoint is not a JSON object", "says so");

    ok(backfill_checkpoint_decode(LIT("{\"pages\":\"3\"}"), &back, err,
                                  sizeof(err)) != 0, "a string for a number");
    is_str(err, "checkpoint: \"pages\" is not an integer", "names it");

    ok(backfill_checkpoint_decode(LIT("{\"after\":7}"), &back, err,
                                  sizeof(err)) != 0, "a number for an id");
    is_str(err, "checkpoint: \"after\" is not a string of at most 255 bytes",
           "names it");

    ok(backfill_checkpoint_decode(LIT("{\"done\":1}"), &back, err,
                                  sizeof(err)) != 0, "done not a boolean");
}


static void
test_since(void)
{
    is_int(ingest_parse_since("2025-01-01", NOW), 1735689600,
           "YYYY-MM-DD: midnight UTC");
    is_int(ingest_parse_since("2024-02-29", NOW), 1709164800, "a leap day");
    is_int(ingest_parse_since("2025-02-29", NOW), -1, "no such day");
    is_int(ingest_parse_since("2025-13-01", NOW), -1, "no such month");
    is_int(ingest_parse_since("2025-1-1", NOW), -1, "digits missing");
    is_int(ingest_parse_since("1735689600", NOW), 1735689600,
           "unix seconds");
    is_int(ingest_parse_since("0", NOW), 0, "0: everything");
    is_int(ingest_parse_since("30d", NOW), NOW - 30 * 86400, "30 days back");
    is_int(ingest_parse_since("12h", NOW), NOW - 12 * 3600, "12 hours back");
    is_int(ingest_parse_since("2w", NOW), NOW - 14 * 86400, "2 weeks back");
    is_int(ingest_parse_since("", NOW), -1, "empty");
    is_int(ingest_parse_since("yesterday", NOW), -1, "words");
    is_int(ingest_parse_since("-5d", NOW), -1, "negative");
    is_int(ingest_parse_since("30x", NOW), -1, "unknown unit");
    is_int(ingest_parse_since("99999w", NOW), -1, "before 1970");

    is_int(ingest_parse_duration("72h"), 72 * 3600, "72h");
    is_int(ingest_parse_duration("3d"), 3 * 86400, "3d");
    is_int(ingest_parse_duration("30m"), 1800, "30m");
    is_int(ingest_parse_duration("45s"), 45, "45s");
    is_int(ingest_parse_duration("3600"), 3600, "plain seconds");
    is_int(ingest_parse_duration("0"), -1, "0: not a window");
    is_int(ingest_parse_duration("3dd"), -1, "two units");
    is_int(ingest_parse_duration("d"), -1, "no number");
    is_int(ingest_parse_duration("1 h"), -1, "a space");
    is_int(ingest_parse_duration("9999999999999d"), -1, "absurdly long");
}


static void
test_window(void)
{
    char  err[256];

    is_int(reconcile_window("72h", err, sizeof(err)), 259200, "72h");
    is_int(reconcile_window("30d", err, sizeof(err)), 2592000,
           "30d: Stripe's whole retention");
    is_int(reconcile_window("2592000", err, sizeof(err)), 2592000,
           "30 days in seconds");
    is_int(reconcile_window("2592001", err, sizeof(err)), -1,
           "a second more: refused");
    is_int(reconcile_window("40d", err, sizeof(err)), -1, "40d: refused");
    is_str(err, "--since \"40d\" is longer than 30 days: Stripe keeps events "
           "for 30 days only (use backfill for older purchases)",
           "and why");
    is_int(reconcile_window("2025-01-01", err, sizeof(err)), -1,
           "a date: refused");
    is_str(err, "--since \"2025-01-01\" is not a window such as 72h, 3d, 30m "
           "or a number of seconds", "and why");

    {
        char  buf[32];

        is_str(ingest_iso_time(1735689600, buf, sizeof(buf)),
               "2025-01-01T00:00:00Z", "ISO time");
    }
}


static void
test_list_request(void)
{
    ss_config              c;
    stripe_api_list_query  q;
    http_request           req;

    memset(&c, 0, sizeof(c));
    c.stripe_api_key = "sk_test_abc";
    c.stripe_api_base = "http://127.0.0.1:12111/";

    memset(&q, 0, sizeof(q));
    q.created_gte = -1;
    ok(stripe_api_list_request(&c, "customers", &q, &req) == 0, "a list");
    is_str(req.url, "http://127.0.0.1:12111/v1/customers?limit=100",
           "limit 100 by default");

    q.limit = 50;
    q.status = "complete";
    q.created_gte = 1735689600;
    q.starting_after = "cs_9";
    ok(stripe_api_list_request(&c, "checkout/sessions", &q, &req) == 0,
       "with filters");
    is_str(req.url, "http://127.0.0.1:12111/v1/checkout/sessions?limit=50"
           "&status=complete&created%5Bgte%5D=1735689600"
           "&starting_after=cs_9", "status, created[gte], starting_after");

    memset(&q, 0, sizeof(q));
    q.created_gte = 0;
    q.undelivered = 1;
    q.starting_after = "";
    ok(stripe_api_list_request(&c, "events", &q, &req) == 0, "events");
    is_str(req.url, "http://127.0.0.1:12111/v1/events?limit=100"
           "&created%5Bgte%5D=0&delivery_success=false",
           "delivery_success=false; an empty starting_after: none");

    ok(stripe_api_list_request(&c, "../x", &q, &req) != 0,
       "a collection that is not a plain path: refused");
    q.starting_after = "a&b";
    ok(stripe_api_list_request(&c, "events", &q, &req) == 0
       && strstr(req.url, "starting_after=a%26b") != NULL,
       "ids escaped");
}


static void
test_list_parse(void)
{
    static const char  page[] =
        " { \"object\" : \"list\", \"url\":\"/v1/x\\\"]}\" ,\n"
        "   \"data\" : [ {\"id\":\"in_3\",\"created\":30,\"livemode\":true,"
        "\"lines\":{\"data\":[{\"description\":\"a ] } \\\" [ {\"}]}} ,"
        "{\"id\":\"in_2\",\"created\":20,\"livemode\":false,\"x\":[1,2,{}]},"
        "{\"id\":\"in_1\",\"n\":-1.5e3} ],\n"
        "  \"has_more\": true }";
    stripe_api_list    l;
    char               err[256], buf[512];
    size_t             i;

    memset(&l, 0, sizeof(l));

    ok(stripe_api_parse_list(LIT(page), &l, err, sizeof(err)) == 0,
       "a page");
    is_int(l.n, 3, "three items");
    ok(l.has_more, "has_more");
    is_str(l.last_id, "in_1", "next page after the last");

    memcpy(buf, page + l.items[0].off, l.items[0].len);
    buf[l.items[0].len] = '\0';
    is_str(buf, "{\"id\":\"in_3\",\"created\":30,\"livemode\":true,"
           "\"lines\":{\"data\":[{\"description\":\"a ] } \\\" [ {\"}]}}",
           "an item's bytes as sent, brackets in strings and all");
    is_str(l.items[0].id, "in_3", "its id");
    is_int(l.items[0].created, 30, "created");
    is_int(l.items[0].livemode, 1, "livemode");
    is_int(l.items[1].livemode, 0, "livemode false");
    is_int(l.items[2].created, -1, "no created");
    is_int(l.items[2].livemode, -1, "no livemode");

    memcpy(buf, page + l.items[2].off, l.items[2].len);
    buf[l.items[2].len] = '\0';
    is_str(buf, "{\"id\":\"in_1\",\"n\":-1.5e3}", "the last item");

    for (i = 0; i < l.n; i++) {
        ok(page[l.items[i].off] == '{'
           && page[l.items[i].off + l.items[i].len - 1] == '}',
           "item %zu is one object", i);
    }

    ok(stripe_api_parse_list(LIT("{\"data\":[],\"has_more\":false}"), &l,
                             err, sizeof(err)) == 0 && l.n == 0
       && !l.has_more && l.last_id == NULL, "an empty list");

    ok(stripe_api_parse_list(LIT("{\"has_more\":true,\"data\":[{\"x\":1}]}"),
                             &l, err, sizeof(err)) == 0 && l.n == 1
       && !l.has_more, "no id to start after: no next page");

    ok(stripe_api_parse_list(LIT("{\"data\":{}}"), &l, err, sizeof(err)) != 0,
       "data not a list: refused");
    is_str(err, "Stripe list response has no \"data\" list", "says so");

    ok(stripe_api_parse_list(LIT("{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"}],"
                                 "\"data\":[{\"id\":\"c\"}]}"), &l, err,
                             sizeof(err)) == 0 && l.n == 2
       && strcmp(l.last_id, "b") == 0,
       "two data lists: the first, as yajl reads it");

    ok(stripe_api_parse_list(LIT("<html>"), &l, err, sizeof(err)) != 0,
       "not JSON: refused");

    stripe_api_list_free(&l);
    ok(l.items == NULL && l.n == 0, "freed");
}


int
main(void)
{
    test_collections();
    test_envelope();
    test_checkpoint();
    test_since();
    test_window();
    test_list_request();
    test_list_parse();

    return tap_done();
}
