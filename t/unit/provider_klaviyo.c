/*
 * provider_klaviyo.c - the Klaviyo provider (revision 2026-07-15), request
 * by request, against scripted JSON:API responses.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "provider_test.h"

#define KEY   "pk_SECRET_klaviyo_0123456789"
#define BASE  "https://a.klaviyo.com/api"

static const char  *record =
    "{\"v\":1,\"id\":\"evt_1\",\"type\":\"invoice.payment_failed\","
    "\"action\":\"payment_failed\",\"created\":1745433906,"
    "\"livemode\":true,\"object\":{\"type\":\"invoice\",\"id\":\"in_1\"},"
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"ada@example.org\","
    "\"name\":\"Ada Lovelace\"},\"amount\":24900,\"currency\":\"usd\","
    "\"attempt_count\":2,\"card\":{\"exp_month\":12,\"exp_year\":2030},"
    "\"items\":[{\"price\":\"price_1\",\"product\":\"prod_1\","
    "\"quantity\":3,\"amount\":24900,\"description\":\"Seats\"}]}";

static ss_config  conf;


static provider *
make(void)
{
    provider  *p;
    char       err[256];

    p = provider_find("klaviyo")->create(&conf, err, sizeof(err));
    if (p == NULL) {
        printf("Bail out! klaviyo create: %s\n", err);
        exit(255);
    }

    return p;
}


static void
headers_ok(const http_request *r, const char *what)
{
    is_str(req_header(r, "Authorization"), "Klaviyo-API-Key " KEY,
           "%s: Authorization", what);
    is_str(req_header(r, "revision"), "2026-07-15", "%s: revision", what);
    is_str(req_header(r, "accept"), "application/vnd.api+json",
           "%s: accept", what);
    if (r->body != NULL) {
        is_str(req_header(r, "Content-Type"), "application/vnd.api+json",
               "%s: Content-Type", what);
    }
}


static void
test_create(void)
{
    const provider_ops  *ops;
    provider            *p;
    ss_config            c;
    char                 err[256];

    ops = provider_find("klaviyo");
    ok(ops != NULL, "provider_find(\"klaviyo\")");
    ok(ops->default_rate == 50.0, "default rate 50/s");
    is_int(ops->default_burst, 50, "default burst 50");
    is_str(ops->default_api_base, BASE, "default base");

    memset(&c, 0, sizeof(c));
    ok(ops->create(&c, err, sizeof(err)) == NULL, "no key: refused");
    ok(strstr(err, "api_key_file") != NULL, "err: %s", err);

    p = make();
    ok(p->ops->supports(p, OP_UPSERT) && p->ops->supports(p, OP_LIST)
       && p->ops->supports(p, OP_FIELDS) && p->ops->supports(p, OP_TRACK)
       && p->ops->supports(p, OP_PURCHASE), "supports profile, list, events");
    ok(!p->ops->supports(p, OP_TAG) && !p->ops->supports(p, OP_UNTAG)
       && !p->ops->supports(p, OP_SEQUENCE) && !p->ops->supports(p, OP_FORM),
       "no tag, untag, sequence, form");
    ok(p->ops->supports(p, OP_FIND_EMAIL), "finds emails by Stripe id");
    is_str(op_kind_name(OP_FIND_EMAIL), "find_email", "op find_email");
    p->ops->destroy(p);
}


static void
test_upsert(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b, attr;
    plan_field      f[1] = { { "plan", "price_1" } };
    fake_response   created[] = {
        { 201, "{\"data\":{\"type\":\"profile\",\"id\":"
               "\"01GDDKASAP8TKDDA2GRZDSVP4H\",\"attributes\":{}}}", 0, 0 } };

    job_from(&j, record);
    plan_one(&pl, OP_UPSERT, NULL, f, 1);

    r = run_op(p, &pl, 0, &j, 0, created, 1);
    is_int(r->status, STEP_DONE, "upsert: DONE on 201");
    is_str(r->req[0].method, "POST", "upsert: POST");
    is_str(r->req[0].url, BASE "/profile-import", "upsert: /profile-import");
    headers_ok(&r->req[0], "upsert");
    b = req_json(&r->req[0]);
    is_str(jstr(jget(b, "data", "type", NULL)), "profile", "data.type");
    attr = jget(b, "data", "attributes", NULL);
    is_str(jstr(jget(attr, "email", NULL)), "ada@example.org", "email");
    is_str(jstr(jget(attr, "first_name", NULL)), "Ada", "first_name");
    is_str(jstr(jget(attr, "last_name", NULL)), "Lovelace", "last_name");
    is_str(jstr(jget(attr, "properties", "plan", NULL)), "price_1",
           "properties: the fields");
    is_str(jnum(jget(attr, "properties", "card_exp_month", NULL)), "12",
           "properties: card expiry month");
    is_str(jnum(jget(attr, "properties", "card_exp_year", NULL)), "2030",
           "properties: card expiry year");
    is_str(jstr(jget(attr, "properties", "stripe_customer_id", NULL)),
           "cus_1", "properties: Stripe customer id");
    is_str(jstr(jget(attr, "external_id", NULL)), "cus_1",
           "external_id: the Stripe customer id");
    ok(jget(b, "data", "id", NULL) == NULL, "no data.id sent");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    /* fields only: the profile is found by email, its ids left alone */
    plan_one(&pl, OP_FIELDS, NULL, f, 1);
    r = run_op(p, &pl, 0, &j, 0, created, 1);
    is_int(r->status, STEP_DONE, "fields: DONE");
    b = req_json(&r->req[0]);
    ok(jget(b, "data", "attributes", "external_id", NULL) == NULL,
       "fields: no external_id");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);
    job_free(&j);

    job_from(&j, "{\"v\":1,\"id\":\"evt_4\",\"action\":\"purchase\","
                 "\"customer\":{\"email\":\"guest@example.org\"}}");
    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, created, 1);
    is_int(r->status, STEP_DONE, "upsert, no customer id: DONE");
    b = req_json(&r->req[0]);
    ok(jget(b, "data", "attributes", "external_id", NULL) == NULL,
       "no customer id: no external_id");
    yajl_tree_free(b);
    run_free(r);

    plan_free(&pl);
    job_free(&j);
}


static void
test_upsert_conflict(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b;
    fake_response   conflict[] = {
        { 409, "{\"errors\":[{\"id\":\"e\",\"status\":409,\"code\":"
               "\"duplicate_profile\",\"title\":\"Conflict.\",\"detail\":"
               "\"A profile already exists with one of these "
               "identifiers.\",\"meta\":{\"duplicate_profile_id\":"
               "\"01OLD\"}}]}", 0, 0 },
        { 200, "{\"data\":{\"type\":\"profile\",\"id\":\"01NEW\"}}", 0,
          0 } };
    fake_response   twice[] = {
        { 409, "{\"errors\":[{\"code\":\"duplicate_profile\",\"title\":"
               "\"Conflict.\"}]}", 0, 0 },
        { 409, "{\"errors\":[{\"code\":\"duplicate_profile\",\"title\":"
               "\"Conflict.\"}]}", 0, 0 } };

    /* the Stripe customer changed email: its id is on the old profile */
    job_from(&j, "{\"v\":1,\"id\":\"evt_5\",\"action\":\"purchase\","
                 "\"customer\":{\"id\":\"cus_5\",\"email\":"
                 "\"moved@example.org\"}}");
    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, conflict, 2);
    is_int(r->status, STEP_DONE, "409 on external_id: DONE");
    is_int(r->nreq, 2, "409: imported once more");
    b = req_json(&r->req[0]);
    is_str(jstr(jget(b, "data", "attributes", "external_id", NULL)), "cus_5",
           "first import: external_id");
    yajl_tree_free(b);
    is_str(r->req[1].url, BASE "/profile-import", "again: /profile-import");
    headers_ok(&r->req[1], "import again");
    b = req_json(&r->req[1]);
    ok(jget(b, "data", "attributes", "external_id", NULL) == NULL,
       "again: without external_id");
    is_str(jstr(jget(b, "data", "attributes", "email", NULL)),
           "moved@example.org", "again: the email");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, twice, 2);
    is_int(r->status, STEP_FAIL, "409 without external_id too: FAIL");
    is_int(r->nreq, 2, "only one more import");
    ok(strstr(r->x.err, "HTTP 409") != NULL, "err: %s", r->x.err);
    run_free(r);

    plan_free(&pl);
    job_free(&j);
}


static void
test_find_email(provider *p)
{
    plan            pl;
    job             j, jn, jl;
    op_run         *r;
    yajl_val        b;
    fake_response   found[] = {
        { 200, "{\"data\":[{\"type\":\"profile\",\"id\":\"01FOUND\","
               "\"attributes\":{\"email\":\"kept@example.org\","
               "\"external_id\":\"cus_K\",\"first_name\":\"Kim\"}}],"
               "\"links\":{}}", 0, 0 } };
    fake_response   none[] = { { 200, "{\"data\":[],\"links\":{}}", 0, 0 } };
    fake_response   others[] = {
        { 200, "{\"data\":[{\"type\":\"profile\",\"id\":\"01A\","
               "\"attributes\":{\"email\":\"a@example.org\","
               "\"external_id\":\"cus_OTHER\"}},{\"type\":\"profile\","
               "\"id\":\"01B\",\"attributes\":{\"email\":null,"
               "\"phone_number\":\"+15005550006\",\"external_id\":"
               "\"cus_K\"}},{\"type\":\"profile\",\"id\":\"01C\","
               "\"attributes\":{\"email\":\"b@example.org\"}}]}", 0, 0 } };
    fake_response   added[] = { { 204, "", 0, 0 } };
    fake_response   throttled[] = { { 429, "{\"errors\":[{\"code\":"
                                      "\"throttled\"}]}", "7", 0 } };
    fake_response   down[] = { { 500, "oops", 0, 0 } };
    fake_response   auth[] = { { 401, "{\"errors\":[{\"code\":"
                                 "\"not_authenticated\",\"title\":\"" KEY
                                 "\",\"detail\":\"bad key\"}]}", 0, 0 } };
    fake_response   junk[] = { { 200, "<html>not json</html>", 0, 0 } };
    fake_response   shape[] = { { 200, "{\"data\":{\"type\":\"profile\"}}",
                                  0, 0 } };

    job_from(&j, "{\"v\":1,\"id\":\"evt_7\",\"action\":"
                 "\"subscription_started\",\"customer\":{\"id\":"
                 "\"cus_K\"}}");
    plan_one(&pl, OP_FIND_EMAIL, NULL, NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, found, 1);
    is_int(r->status, STEP_DONE, "find_email: DONE");
    is_int(r->nreq, 1, "find_email: one request");
    is_str(r->req[0].method, "GET", "find_email: GET");
    is_str(r->req[0].url, BASE "/profiles?filter=equals%28external_id%2C%22"
           "cus_K%22%29", "find_email: filter=equals(external_id,\"cus_K\")");
    headers_ok(&r->req[0], "find_email");
    ok(r->req[0].body == NULL, "find_email: no body");
    ok(req_header(&r->req[0], "Content-Type") == NULL,
       "find_email: no Content-Type");
    is_str(r->x.scratch, "kept@example.org", "find_email: the email");
    is_str(r->x.err, "", "find_email: no err");
    run_free(r);
    plan_free(&pl);

    /* the profile found is cached by its email for later steps */
    job_from(&jl, "{\"v\":1,\"id\":\"evt_8\",\"action\":\"purchase\","
                  "\"customer\":{\"email\":\"Kept@Example.org\"}}");
    plan_one(&pl, OP_LIST, "VIP", NULL, 0);
    r = run_op(p, &pl, 0, &jl, 0, added, 1);
    is_int(r->status, STEP_DONE, "list after find_email: DONE");
    is_int(r->nreq, 1, "list after find_email: no profile import");
    b = req_json(&r->req[0]);
    is_str(jstr(jget(jat(jget(b, "data", NULL), 0), "id", NULL)), "01FOUND",
           "list add: the profile found");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);
    job_free(&jl);

    plan_one(&pl, OP_FIND_EMAIL, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, none, 1);
    is_int(r->status, STEP_DONE, "not found: DONE");
    is_str(r->x.scratch, "", "not found: scratch empty");
    is_str(r->x.err, "no Klaviyo profile has external_id \"cus_K\"",
           "not found: err says what was looked for");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, others, 1);
    is_int(r->status, STEP_DONE, "other ids, no email: DONE");
    is_str(r->x.scratch, "", "only a profile repeating the id, with an "
           "email, counts");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, throttled, 1);
    is_int(r->status, STEP_RETRY, "find_email 429: RETRY");
    is_int(r->x.retry_after_ms, 7000, "find_email 429: Retry-After 7 s");
    ok(strstr(r->x.err, "Klaviyo find_email: GET /profiles: HTTP 429")
       != NULL, "429 err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, down, 1);
    is_int(r->status, STEP_RETRY, "find_email 500: RETRY");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, auth, 1);
    is_int(r->status, STEP_FAIL, "find_email 401: FAIL");
    no_secret(r, KEY, "find_email 401 echoing the key");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, junk, 1);
    is_int(r->status, STEP_RETRY, "find_email, not JSON: RETRY");
    ok(strstr(r->x.err, "not JSON") != NULL, "junk err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, shape, 1);
    is_int(r->status, STEP_RETRY, "find_email, data not an array: RETRY");
    ok(strstr(r->x.err, "\"data\" array") != NULL, "err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "check find_email: DONE");
    is_int(r->nreq, 0, "check find_email: nothing sent");
    is_str(r->x.scratch, "", "check find_email: no email");
    run_free(r);

    job_from(&jn, "{\"v\":1,\"id\":\"evt_9\",\"action\":\"refund\"}");
    r = run_op(p, &pl, 0, &jn, 0, NULL, 0);
    is_int(r->status, STEP_FAIL, "find_email without a customer id: FAIL");
    is_int(r->nreq, 0, "no customer id: nothing sent");
    ok(strstr(r->x.err, "customer id") != NULL, "err: %s", r->x.err);
    run_free(r);
    job_free(&jn);

    /* quotes in an id are escaped inside the filter */
    job_from(&jn, "{\"v\":1,\"id\":\"evt_10\",\"action\":\"refund\","
                  "\"customer\":{\"id\":\"cus_\\\"q\"}}");
    r = run_op(p, &pl, 0, &jn, 0, none, 1);
    is_str(r->req[0].url, BASE "/profiles?filter=equals%28external_id%2C%22"
           "cus_%5C%22q%22%29", "a quote in the id escaped");
    run_free(r);
    job_free(&jn);

    plan_free(&pl);
    job_free(&j);
}


static void
test_events(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b, a, item;
    plan_field      f[2] = { { "AttemptCount", "2" },
                             { "Reason", "Your card was declined." } };
    fake_response   accepted[] = { { 202, "", 0, 0 } };

    job_from(&j, record);

    plan_one(&pl, OP_TRACK, "Failed Payment", f, 2);
    r = run_op(p, &pl, 0, &j, 0, accepted, 1);
    is_int(r->status, STEP_DONE, "track: DONE on 202");
    is_str(r->req[0].method, "POST", "track: POST");
    is_str(r->req[0].url, BASE "/events", "track: /events");
    headers_ok(&r->req[0], "track");
    b = req_json(&r->req[0]);
    is_str(jstr(jget(b, "data", "type", NULL)), "event", "data.type event");
    a = jget(b, "data", "attributes", NULL);
    is_str(jstr(jget(a, "properties", "AttemptCount", NULL)), "2",
           "properties from the op");
    is_str(jstr(jget(a, "properties", "Reason", NULL)),
           "Your card was declined.", "properties: Reason");
    is_str(jstr(jget(a, "time", NULL)), "2025-04-23T18:45:06Z",
           "time: ISO 8601 of created");
    is_str(jnum(jget(a, "value", NULL)), "249.00", "value in major units");
    is_str(jstr(jget(a, "value_currency", NULL)), "USD", "value_currency");
    is_str(jstr(jget(a, "unique_id", NULL)), "evt_1",
           "unique_id: the Stripe event id");
    is_str(jstr(jget(a, "metric", "data", "type", NULL)), "metric",
           "metric.data.type");
    is_str(jstr(jget(a, "metric", "data", "attributes", "name", NULL)),
           "Failed Payment", "metric name");
    is_str(jstr(jget(a, "profile", "data", "type", NULL)), "profile",
           "profile.data.type");
    is_str(jstr(jget(a, "profile", "data", "attributes", "email", NULL)),
           "ada@example.org", "profile email");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_PURCHASE, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, accepted, 1);
    is_int(r->status, STEP_DONE, "purchase: DONE on 202");
    b = req_json(&r->req[0]);
    a = jget(b, "data", "attributes", NULL);
    is_str(jstr(jget(a, "metric", "data", "attributes", "name", NULL)),
           "Placed Order", "purchase: metric Placed Order");
    is_str(jstr(jget(a, "unique_id", NULL)), "in_1",
           "purchase: unique_id the Stripe object");
    is_str(jstr(jget(a, "properties", "OrderId", NULL)), "in_1", "OrderId");
    item = jat(jget(a, "properties", "Items", NULL), 0);
    is_str(jstr(jget(item, "ProductID", NULL)), "prod_1", "Items ProductID");
    is_str(jstr(jget(item, "ProductName", NULL)), "Seats", "ProductName");
    is_str(jnum(jget(item, "Quantity", NULL)), "3", "Quantity");
    is_str(jnum(jget(item, "ItemPrice", NULL)), "83.00", "ItemPrice");
    is_str(jnum(jget(item, "RowTotal", NULL)), "249.00", "RowTotal");
    is_str(jstr(jat(jget(a, "properties", "ItemNames", NULL), 0)), "Seats",
           "ItemNames");
    is_str(jnum(jget(a, "value", NULL)), "249.00", "purchase value");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    job_free(&j);
}


static void
test_list(provider *p)
{
    plan            pl;
    job             j, j2;
    op_run         *r;
    yajl_val        b;
    fake_response   find[] = {
        { 200, "{\"data\":[{\"type\":\"list\",\"id\":\"Y6nRLr\","
               "\"attributes\":{\"name\":\"VIP\"}}],\"links\":{}}", 0, 0 },
        { 204, "", 0, 0 } };
    fake_response   again[] = { { 204, "", 0, 0 } };
    fake_response   other[] = {
        { 200, "{\"data\":{\"type\":\"profile\",\"id\":\"01OTHER\"}}", 0, 0 },
        { 204, "", 0, 0 } };
    fake_response   none[] = { { 200, "{\"data\":[],\"links\":{}}", 0, 0 } };
    fake_response   stale[] = {
        { 404, "{\"errors\":[{\"id\":\"x\",\"code\":\"not_found\",\"title\":"
               "\"Not found.\",\"detail\":\"gone\"}]}", 0, 0 },
        { 200, "{\"data\":[{\"type\":\"list\",\"id\":\"NEW1\",\"attributes\":"
               "{\"name\":\"VIP\"}}]}", 0, 0 },
        { 200, "{\"data\":{\"type\":\"profile\",\"id\":\"01GD\"}}", 0, 0 },
        { 204, "", 0, 0 } };

    job_from(&j, record);
    job_from(&j2, "{\"v\":1,\"id\":\"evt_2\",\"action\":\"purchase\","
                  "\"customer\":{\"email\":\"other@example.org\"}}");

    /* the profile id is cached from the upsert test */
    plan_one(&pl, OP_LIST, "VIP", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, find, 2);
    is_int(r->status, STEP_DONE, "list: DONE on 204");
    is_int(r->nreq, 2, "list: find list, add (profile id cached)");
    is_str(r->req[0].method, "GET", "list: GET /lists");
    is_str(r->req[0].url,
           BASE "/lists?filter=equals%28name%2C%22VIP%22%29",
           "list: filter=equals(name,\"VIP\") escaped");
    headers_ok(&r->req[0], "list find");
    is_str(r->req[1].url, BASE "/lists/Y6nRLr/relationships/profiles",
           "list: relationships URL");
    headers_ok(&r->req[1], "list add");
    b = req_json(&r->req[1]);
    ok(YAJL_IS_ARRAY(jget(b, "data", NULL)), "list: data is an array");
    is_str(jstr(jget(jat(jget(b, "data", NULL), 0), "type", NULL)), "profile",
           "list: data[0].type");
    is_str(jstr(jget(jat(jget(b, "data", NULL), 0), "id", NULL)),
           "01GDDKASAP8TKDDA2GRZDSVP4H", "list: the upserted profile id");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, again, 1);
    is_int(r->nreq, 1, "list again: list id cached");
    run_free(r);

    r = run_op(p, &pl, 0, &j2, 0, other, 2);
    is_int(r->status, STEP_DONE, "list, profile unknown: DONE");
    is_str(r->req[0].url, BASE "/profile-import",
           "list, profile unknown: profile-import for its id");
    b = req_json(&r->req[0]);
    is_str(jstr(jget(b, "data", "attributes", "email", NULL)),
           "other@example.org", "profile-import email");
    yajl_tree_free(b);
    b = req_json(&r->req[1]);
    is_str(jstr(jget(jat(jget(b, "data", NULL), 0), "id", NULL)), "01OTHER",
           "list add: the imported profile id");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, stale, 4);
    is_int(r->status, STEP_DONE, "list 404 on cached ids: looked up again");
    is_str(r->req[3].url, BASE "/lists/NEW1/relationships/profiles",
           "stale list: new id");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_LIST, "Ghost \"list\"", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, none, 1);
    is_int(r->status, STEP_FAIL, "missing list: FAIL");
    is_str(r->x.err, "Klaviyo list \"Ghost \"list\"\" not found",
           "missing list: err");
    is_str(r->req[0].url, BASE "/lists?filter=equals%28name%2C%22Ghost%20%5C"
           "%22list%5C%22%22%29", "quotes in a name escaped");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "x", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_SKIP, "tag: SKIP");
    is_int(r->nreq, 0, "tag: no request");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    job_free(&j2);
}


static void
test_errors(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    char            date[64];
    time_t          t;
    struct tm       tm;
    fake_response   invalid[] = {
        { 400, "{\"errors\":[{\"id\":\"e1\",\"code\":\"invalid\",\"title\":"
               "\"Invalid input.\",\"detail\":\"The email is invalid\","
               "\"source\":{\"pointer\":\"/data/attributes/email\"}}]}",
          0, 0 } };
    fake_response   throttled[1];
    fake_response   broken[] = { { 201, "{\"data\":{\"type\":\"profile\"}}",
                                   0, 0 } };
    fake_response   auth[] = { { 401, "{\"errors\":[{\"id\":\"x\",\"code\":"
                                 "\"not_authenticated\",\"title\":\"" KEY
                                 "\",\"detail\":\"bad key\"}]}", 0, 0 } };

    job_from(&j, record);
    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, invalid, 1);
    is_int(r->status, STEP_FAIL, "400: FAIL");
    is_str(r->x.err, "Klaviyo upsert: POST /profile-import: HTTP 400: "
           "Invalid input.; The email is invalid", "400 err");
    run_free(r);

    t = time(NULL) + 120;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    throttled[0].status = 429;
    throttled[0].body = "{\"errors\":[{\"code\":\"throttled\"}]}";
    throttled[0].retry_after = date;
    throttled[0].error = NULL;
    r = run_op(p, &pl, 0, &j, 0, throttled, 1);
    is_int(r->status, STEP_RETRY, "429: RETRY");
    ok(r->x.retry_after_ms > 110000 && r->x.retry_after_ms <= 120000,
       "Retry-After as an HTTP date: %lld ms", r->x.retry_after_ms);
    ok(strstr(r->x.err, "throttled") != NULL, "429 err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, broken, 1);
    is_int(r->status, STEP_RETRY, "201 without data.id: RETRY");
    ok(strstr(r->x.err, "data.id") != NULL, "err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, auth, 1);
    is_int(r->status, STEP_FAIL, "401: FAIL");
    no_secret(r, KEY, "401 echoing the key");
    run_free(r);

    plan_free(&pl);
    job_free(&j);
}


static void
test_check(void)
{
    provider       *p = make();
    plan            pl;
    job             j;
    op_run         *r;
    fake_response   acct[] = { { 200, "{\"data\":[{\"type\":\"account\","
                                 "\"id\":\"AbC\"}]}", 0, 0 } };
    fake_response   lists[] = { { 200, "{\"data\":[{\"type\":\"list\",\"id\":"
                                  "\"L1\",\"attributes\":{\"name\":"
                                  "\"Newsletter\"}}]}", 0, 0 } };

    job_from(&j, "{\"v\":1,\"id\":\"evt_check\",\"action\":\"check\"}");

    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, acct, 1);
    is_int(r->status, STEP_DONE, "check upsert: DONE");
    is_str(r->req[0].url, BASE "/accounts", "check: GET /accounts");
    headers_ok(&r->req[0], "check");
    run_free(r);
    plan_free(&pl);

    /* no name: provider.list */
    plan_one(&pl, OP_LIST, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, lists, 1);
    is_int(r->status, STEP_DONE, "check list: DONE");
    is_str(r->x.err, "exists", "check list: exists");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TRACK, "X", NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "check track: DONE, nothing sent");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    p->ops->destroy(p);
}


int
main(void)
{
    provider  *p;

    memset(&conf, 0, sizeof(conf));
    conf.provider_type = "klaviyo";
    conf.provider_api_key = KEY;
    conf.provider_list = "Newsletter";

    test_create();

    p = make();
    test_upsert(p);
    test_upsert_conflict(p);
    test_events(p);
    test_list(p);
    test_errors(p);
    test_find_email(p);
    p->ops->destroy(p);

    test_check();

    return tap_done();
}
