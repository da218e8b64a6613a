/*
 * provider_kit.c - the Kit v4 provider, request by request, against
 * scripted responses shaped like Kit's (api-specs/kit-v4).
 */

#include <stdio.h>
#include <string.h>

#include "provider_test.h"

#define KEY    "kit_key_SECRET_123456"
#define TOKEN  "kit_oauth_SECRET_abcdef"
#define BASE   "https://api.kit.com/v4"

static const char  *record =
    "{\"v\":1,\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
    "\"action\":\"purchase\",\"created\":1745433906,\"livemode\":true,"
    "\"object\":{\"type\":\"checkout_session\",\"id\":\"cs_test_1\"},"
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"ada@example.org\","
    "\"name\":\"Ada King Lovelace\"},\"amount\":24900,\"currency\":\"usd\","
    "\"items\":[{\"price\":\"price_1\",\"product\":\"prod_1\","
    "\"quantity\":1,\"amount\":24900,\"description\":\"Course\"}]}";

static ss_config  conf_key, conf_oauth;


static provider *
make(const ss_config *c)
{
    const provider_ops  *ops;
    provider            *p;
    char                 err[256];

    ops = provider_find("kit");
    p = ops->create(c, err, sizeof(err));
    if (p == NULL) {
        printf("Bail out! kit create: %s\n", err);
        exit(255);
    }

    return p;
}


static void
test_registry(void)
{
    const provider_ops  *ops;
    ss_config            c;
    char                 err[256];

    ops = provider_find("kit");
    ok(ops != NULL, "provider_find(\"kit\")");
    is_str(ops->name, "kit", "name");
    ok(ops->default_rate == 2.0, "default rate 2/s (120 per 60 s)");
    is_int(ops->default_burst, 10, "default burst 10");
    is_str(ops->default_api_base, BASE, "default api base");

    ok(provider_find("convertkit") == NULL, "unknown type: NULL");
    ok(provider_find(NULL) == NULL, "NULL type: NULL");

    memset(&c, 0, sizeof(c));
    err[0] = '\0';
    ok(ops->create(&c, err, sizeof(err)) == NULL, "no key: no provider");
    ok(strstr(err, "api_key_file") != NULL, "err names api_key_file: %s",
       err);
}


static void
test_supports(void)
{
    provider  *p = make(&conf_key);

    ok(p->ops->supports(p, OP_UPSERT), "supports upsert");
    ok(p->ops->supports(p, OP_TAG), "supports tag");
    ok(p->ops->supports(p, OP_UNTAG), "supports untag");
    ok(p->ops->supports(p, OP_SEQUENCE), "supports sequence");
    ok(p->ops->supports(p, OP_FORM), "supports form");
    ok(p->ops->supports(p, OP_FIELDS), "supports fields");
    ok(p->ops->supports(p, OP_PURCHASE), "supports purchase");
    ok(!p->ops->supports(p, OP_LIST), "no lists in Kit");
    ok(!p->ops->supports(p, OP_TRACK), "no custom events in Kit");
    ok(!p->ops->supports(p, OP_FIND_EMAIL),
       "no find_email: Kit cannot search by a custom field");

    p->ops->destroy(p);
}


static void
test_upsert(void)
{
    provider       *p = make(&conf_key);
    provider       *po = make(&conf_oauth);
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b;
    plan_field      f[2] = { { "Plan", "price_1" }, { "Source", "stripe" } };
    plan_field      latin1[1] = { { "City", "M\xfcnchen" } };
    fake_response   ok201[] = {
        { 201, "{\"subscriber\":{\"id\":263,\"first_name\":\"Ada\"}}", 0, 0 }
    };

    job_from(&j, record);

    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, ok201, 1);
    is_int(r->status, STEP_DONE, "upsert: DONE on 201");
    is_int(r->nreq, 1, "upsert: one request");
    is_str(r->req[0].method, "POST", "upsert: POST");
    is_str(r->req[0].url, BASE "/subscribers", "upsert: URL");
    is_str(req_header(&r->req[0], "X-Kit-Api-Key"), KEY,
           "upsert: X-Kit-Api-Key header");
    ok(req_header(&r->req[0], "Authorization") == NULL,
       "upsert: no Authorization without OAuth");
    is_str(req_header(&r->req[0], "Content-Type"), "application/json",
           "upsert: Content-Type");
    b = req_json(&r->req[0]);
    ok(b != NULL, "upsert: body is JSON");
    is_str(jstr(jget(b, "email_address", NULL)), "ada@example.org",
           "upsert: email_address");
    is_str(jstr(jget(b, "first_name", NULL)), "Ada", "upsert: first_name");
    ok(jget(b, "fields", NULL) == NULL, "upsert: no fields object when none");
    is_int(r->req[0].body_len, strlen(r->req[0].body), "upsert: body_len");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_UPSERT, NULL, f, 2);
    r = run_op(p, &pl, 0, &j, 0, ok201, 1);
    b = req_json(&r->req[0]);
    ok(YAJL_IS_OBJECT(jget(b, "fields", NULL)), "upsert+fields: object");
    is_str(jstr(jget(b, "fields", "Plan", NULL)), "price_1",
           "upsert+fields: Plan");
    is_str(jstr(jget(b, "fields", "Source", NULL)), "stripe",
           "upsert+fields: Source");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_FIELDS, NULL, f, 1);
    r = run_op(p, &pl, 0, &j, 0, ok201, 1);
    is_int(r->status, STEP_DONE, "fields: DONE");
    is_str(r->req[0].url, BASE "/subscribers", "fields: POST /subscribers");
    b = req_json(&r->req[0]);
    is_str(jstr(jget(b, "fields", "Plan", NULL)), "price_1", "fields: Plan");
    ok(jget(b, "first_name", NULL) == NULL, "fields: names left alone");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_FIELDS, NULL, latin1, 1);
    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_FAIL, "a field that is not UTF-8: FAIL");
    is_int(r->nreq, 0, "not UTF-8: nothing sent");
    ok(strstr(r->x.err, "UTF-8") != NULL, "not UTF-8 err: %s", r->x.err);
    ok(!r->body_on_end, "not UTF-8: no body left behind");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    r = run_op(po, &pl, 0, &j, 0, ok201, 1);
    is_str(req_header(&r->req[0], "Authorization"), "Bearer " TOKEN,
           "OAuth: Authorization Bearer preferred");
    ok(req_header(&r->req[0], "X-Kit-Api-Key") == NULL,
       "OAuth: no API key header");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    p->ops->destroy(p);
    po->ops->destroy(po);
}


static void
test_tag(void)
{
    provider       *p = make(&conf_key);
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b;
    fake_response   paged[] = {
        { 200, "{\"tags\":[{\"id\":5,\"name\":\"Buyer B\",\"created_at\":"
               "\"2023-02-17T11:43:55Z\"},{\"id\":6,\"name\":\"buyer\"}],"
               "\"pagination\":{\"has_previous_page\":false,"
               "\"has_next_page\":true,\"start_cursor\":\"WzVd\","
               "\"end_cursor\":\"WzRd+/=\",\"per_page\":1000}}", 0, 0 },
        { 200, "{\"tags\":[{\"id\":42,\"name\":\"Buyer\"}],\"pagination\":"
               "{\"has_previous_page\":true,\"has_next_page\":false,"
               "\"start_cursor\":\"x\",\"end_cursor\":\"y\",\"per_page\":"
               "1000}}", 0, 0 },
        { 201, "{\"subscriber\":{\"id\":946}}", 0, 0 }
    };
    fake_response   tagged[] = { { 200, "{\"subscriber\":{\"id\":946}}", 0,
                                   0 } };
    fake_response   create[] = {
        { 200, "{\"tags\":[],\"pagination\":{\"has_next_page\":false,"
               "\"end_cursor\":null}}", 0, 0 },
        { 201, "{\"tag\":{\"id\":77,\"name\":\"New tag\",\"created_at\":"
               "\"2023-02-17T11:43:55Z\"}}", 0, 0 },
        { 201, "{\"subscriber\":{\"id\":946}}", 0, 0 }
    };
    fake_response   stale[] = {
        { 404, "{\"errors\":[\"Not Found\"]}", 0, 0 },
        { 200, "{\"tags\":[{\"id\":43,\"name\":\"Buyer\"}],\"pagination\":"
               "{\"has_next_page\":false}}", 0, 0 },
        { 201, "{\"subscriber\":{\"id\":946}}", 0, 0 }
    };
    fake_response   stuck[] = {
        { 200, "{\"tags\":[],\"pagination\":{\"has_next_page\":true,"
               "\"end_cursor\":\"same\"}}", 0, 0 },
        { 200, "{\"tags\":[],\"pagination\":{\"has_next_page\":true,"
               "\"end_cursor\":\"same\"}}", 0, 0 }
    };

    job_from(&j, record);

    plan_one(&pl, OP_TAG, "Buyer", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, paged, 3);
    is_int(r->status, STEP_DONE, "tag: DONE");
    is_int(r->nreq, 3, "tag: two listing pages and the tagging");
    is_str(r->req[0].method, "GET", "tag: GET /tags");
    is_str(r->req[0].url, BASE "/tags?per_page=1000", "tag: first page");
    is_str(req_header(&r->req[0], "X-Kit-Api-Key"), KEY, "tag: listing "
           "authenticated");
    ok(r->req[0].body == NULL, "tag: GET has no body");
    is_str(r->req[1].url, BASE "/tags?per_page=1000&after=WzRd%2B%2F%3D",
           "tag: second page after the escaped end_cursor");
    is_str(r->req[2].method, "POST", "tag: POST");
    is_str(r->req[2].url, BASE "/tags/42/subscribers",
           "tag: exact, case-sensitive name match (42, not 6)");
    b = req_json(&r->req[2]);
    is_str(jstr(jget(b, "email_address", NULL)), "ada@example.org",
           "tag: body email_address");
    is_int(jlen(b), 1, "tag: email_address only");
    yajl_tree_free(b);
    ok(!r->body_on_end, "tag: no body left behind at the end");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, tagged, 1);
    is_int(r->status, STEP_DONE, "tag again: DONE on 200 (already tagged)");
    is_int(r->nreq, 1, "tag again: cached id, no lookup");
    is_str(r->req[0].url, BASE "/tags/42/subscribers", "tag again: URL");
    run_free(r);
    plan_free(&pl);

    /* names seen on a listing page are cached too */
    plan_one(&pl, OP_TAG, "Buyer B", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, tagged, 1);
    is_int(r->nreq, 1, "tag seen on a page: no lookup");
    is_str(r->req[0].url, BASE "/tags/5/subscribers", "tag seen: its id");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "New tag", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, create, 3);
    is_int(r->status, STEP_DONE, "new tag: DONE");
    is_int(r->nreq, 3, "new tag: list, create, tag");
    is_str(r->req[1].method, "POST", "new tag: POST /tags");
    is_str(r->req[1].url, BASE "/tags", "new tag: URL");
    b = req_json(&r->req[1]);
    is_str(jstr(jget(b, "name", NULL)), "New tag", "new tag: body name");
    yajl_tree_free(b);
    is_str(r->req[2].url, BASE "/tags/77/subscribers", "new tag: its id");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, tagged, 1);
    is_int(r->nreq, 1, "created tag cached");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "Buyer", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, stale, 3);
    is_int(r->status, STEP_DONE, "stale cached id: DONE after a relookup");
    is_int(r->nreq, 3, "stale: tag, list, tag");
    is_str(r->req[2].url, BASE "/tags/43/subscribers", "stale: new id");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "Nowhere", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, stuck, 2);
    is_int(r->status, STEP_FAIL, "a cursor that does not move: FAIL");
    ok(strstr(r->x.err, "does not advance") != NULL, "err: %s", r->x.err);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_FAIL, "tag without a name: FAIL");
    is_int(r->nreq, 0, "tag without a name: no request");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    p->ops->destroy(p);
}


static void
test_untag(void)
{
    provider       *p = make(&conf_key);
    plan            pl;
    job             j;
    op_run         *r;
    fake_response   full[] = {
        { 200, "{\"tags\":[{\"id\":42,\"name\":\"dunning\"}],"
               "\"pagination\":{\"has_next_page\":false}}", 0, 0 },
        { 200, "{\"subscribers\":[{\"id\":9,\"email_address\":"
               "\"ada@example.org\"}],\"pagination\":{}}", 0, 0 },
        { 204, "", 0, 0 }
    };
    fake_response   gone[] = {
        { 200, "{\"subscribers\":[{\"id\":9}]}", 0, 0 },
        { 404, "{\"errors\":[\"Not Found\"]}", 0, 0 }
    };
    fake_response   nosub[] = {
        { 200, "{\"subscribers\":[],\"pagination\":{}}", 0, 0 }
    };
    fake_response   notag[] = {
        { 200, "{\"tags\":[],\"pagination\":{\"has_next_page\":false}}", 0,
          0 }
    };

    job_from(&j, record);

    plan_one(&pl, OP_UNTAG, "dunning", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, full, 3);
    is_int(r->status, STEP_DONE, "untag: DONE on 204");
    is_int(r->nreq, 3, "untag: tag, subscriber, delete");
    is_str(r->req[1].method, "GET", "untag: GET /subscribers");
    is_str(r->req[1].url,
           BASE "/subscribers?email_address=ada%40example.org&status=all",
           "untag: subscriber by exact, escaped email");
    is_str(r->req[2].method, "DELETE", "untag: DELETE");
    is_str(r->req[2].url, BASE "/tags/42/subscribers/9", "untag: URL");
    ok(r->req[2].body == NULL, "untag: no body");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, gone, 2);
    is_int(r->status, STEP_DONE, "untag: 404 counts as done");
    is_int(r->nreq, 2, "untag cached tag: subscriber, delete");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, nosub, 1);
    is_int(r->status, STEP_DONE, "untag, no such subscriber: DONE");
    is_int(r->nreq, 1, "untag, no subscriber: no DELETE");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_UNTAG, "never-made", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, notag, 1);
    is_int(r->status, STEP_DONE, "untag, tag absent: DONE");
    is_int(r->nreq, 1, "untag, tag absent: nothing else sent");
    ok(strstr(r->x.err, "nothing to remove") != NULL, "untag note: %s",
       r->x.err);
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    p->ops->destroy(p);
}


static void
test_sequence_form(void)
{
    provider       *p = make(&conf_key);
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b;
    fake_response   seq[] = {
        { 200, "{\"sequences\":[{\"id\":3,\"name\":\"Onboarding\",\"hold\":"
               "false,\"repeat\":false}],\"pagination\":{\"has_next_page\":"
               "false}}", 0, 0 },
        { 201, "{\"subscriber\":{\"id\":821}}", 0, 0 }
    };
    fake_response   noseq[] = {
        { 200, "{\"sequences\":[{\"id\":3,\"name\":\"Onboarding\"}],"
               "\"pagination\":{\"has_next_page\":false}}", 0, 0 }
    };
    fake_response   form[] = {
        { 200, "{\"forms\":[{\"id\":44,\"name\":\"Sign up\",\"type\":"
               "\"embed\"}],\"pagination\":{\"has_next_page\":false}}", 0, 0 },
        { 200, "{\"subscriber\":{\"id\":615}}", 0, 0 }
    };
    fake_response   inactive[] = {
        { 422, "{\"errors\":[\"Sequence is inactive\"]}", 0, 0 }
    };

    job_from(&j, record);

    plan_one(&pl, OP_SEQUENCE, "Onboarding", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, seq, 2);
    is_int(r->status, STEP_DONE, "sequence: DONE");
    is_str(r->req[0].url, BASE "/sequences?per_page=1000",
           "sequence: GET /sequences");
    is_str(r->req[1].method, "POST", "sequence: POST");
    is_str(r->req[1].url, BASE "/sequences/3/subscribers", "sequence: URL");
    b = req_json(&r->req[1]);
    is_str(jstr(jget(b, "email_address", NULL)), "ada@example.org",
           "sequence: email_address");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, inactive, 1);
    is_int(r->status, STEP_FAIL, "sequence 422: FAIL");
    ok(strstr(r->x.err, "HTTP 422") != NULL
       && strstr(r->x.err, "Sequence is inactive") != NULL,
       "422 err carries Kit's errors: %s", r->x.err);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_SEQUENCE, "Win-back", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, noseq, 1);
    is_int(r->status, STEP_FAIL, "missing sequence: FAIL");
    is_str(r->x.err, "Kit sequence \"Win-back\" not found",
           "missing sequence: err");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_FORM, "Sign up", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, form, 2);
    is_int(r->status, STEP_DONE, "form: DONE on 200");
    is_str(r->req[0].url, BASE "/forms?per_page=1000", "form: GET /forms");
    is_str(r->req[1].url, BASE "/forms/44/subscribers", "form: URL");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_LIST, "Anything", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_SKIP, "list: SKIP");
    is_int(r->nreq, 0, "list: no request");
    ok(r->x.err[0] != '\0', "list: err says why: %s", r->x.err);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_FIND_EMAIL, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_SKIP, "find_email: SKIP");
    is_int(r->nreq, 0, "find_email: no request");
    ok(strstr(r->x.err, "Stripe customer id") != NULL,
       "find_email: err says why: %s", r->x.err);
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    p->ops->destroy(p);
}


static void
test_purchase(void)
{
    provider       *p = make(&conf_key);
    provider       *po = make(&conf_oauth);
    plan            pl;
    job             j, jy, jn;
    op_run         *r;
    yajl_val        b, pr, prod;
    fake_response   created[] = { { 201, "{\"purchase\":{\"id\":8}}", 0, 0 } };

    job_from(&j, record);
    job_from(&jy,
        "{\"v\":1,\"id\":\"evt_2\",\"action\":\"purchase\",\"created\":0,"
        "\"object\":{\"type\":\"invoice\",\"id\":\"in_2\"},"
        "\"customer\":{\"email\":\"b@example.org\"},\"amount\":10000,"
        "\"currency\":\"jpy\",\"items\":[{\"price\":\"price_a\","
        "\"quantity\":2,\"amount\":10000},{\"price\":\"price_a\","
        "\"quantity\":1,\"amount\":0}]}");
    job_from(&jn,
        "{\"v\":1,\"id\":\"evt_3\",\"action\":\"purchase\","
        "\"object\":{\"type\":\"charge\",\"id\":\"ch_3\"},"
        "\"customer\":{\"email\":\"c@example.org\"},\"amount\":1999,"
        "\"currency\":\"eur\"}");

    plan_one(&pl, OP_PURCHASE, NULL, NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_SKIP, "purchase without OAuth: SKIP (the job's "
           "other steps still run)");
    is_str(r->x.err, "Kit purchases need an OAuth token "
           "(provider.oauth_token_file)", "purchase without OAuth: err");
    is_int(r->nreq, 0, "purchase without OAuth: no request");
    run_free(r);

    r = run_op(po, &pl, 0, &j, 0, created, 1);
    is_int(r->status, STEP_DONE, "purchase: DONE on 201");
    is_str(r->req[0].method, "POST", "purchase: POST");
    is_str(r->req[0].url, BASE "/purchases", "purchase: URL");
    is_str(req_header(&r->req[0], "Authorization"), "Bearer " TOKEN,
           "purchase: OAuth bearer");
    b = req_json(&r->req[0]);
    pr = jget(b, "purchase", NULL);
    ok(YAJL_IS_OBJECT(pr), "purchase: {purchase: {...}}");
    is_str(jstr(jget(pr, "email_address", NULL)), "ada@example.org",
           "purchase: email_address");
    is_str(jstr(jget(pr, "first_name", NULL)), "Ada", "purchase: first_name");
    is_str(jstr(jget(pr, "transaction_id", NULL)), "cs_test_1",
           "purchase: transaction_id is the Stripe object id");
    is_str(jstr(jget(pr, "status", NULL)), "paid", "purchase: status paid");
    is_str(jstr(jget(pr, "currency", NULL)), "USD", "purchase: currency "
           "upper-case");
    is_str(jnum(jget(pr, "subtotal", NULL)), "249.00",
           "purchase: subtotal a number in major units");
    is_str(jnum(jget(pr, "total", NULL)), "249.00", "purchase: total");
    is_str(jstr(jget(pr, "transaction_time", NULL)), "2025-04-23T18:45:06Z",
           "purchase: transaction_time ISO 8601 from created");
    is_int(jlen(jget(pr, "products", NULL)), 1, "purchase: one product");
    prod = jat(jget(pr, "products", NULL), 0);
    is_str(jstr(jget(prod, "name", NULL)), "Course", "product: name");
    is_str(jstr(jget(prod, "pid", NULL)), "prod_1", "product: pid = product");
    is_str(jstr(jget(prod, "lid", NULL)), "price_1", "product: lid = price");
    ok(YAJL_IS_INTEGER(jget(prod, "quantity", NULL)),
       "product: quantity an integer");
    is_str(jnum(jget(prod, "unit_price", NULL)), "249.00",
           "product: unit_price in major units");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(po, &pl, 0, &jy, 0, created, 1);
    b = req_json(&r->req[0]);
    pr = jget(b, "purchase", NULL);
    is_str(jnum(jget(pr, "total", NULL)), "10000", "JPY: zero-decimal total");
    is_str(jstr(jget(pr, "currency", NULL)), "JPY", "JPY: currency");
    prod = jat(jget(pr, "products", NULL), 0);
    is_str(jnum(jget(prod, "unit_price", NULL)), "5000",
           "JPY: unit price = amount / quantity");
    is_str(jstr(jget(prod, "lid", NULL)), "price_a-1",
           "shared price: lids made unique");
    is_str(jstr(jget(jat(jget(pr, "products", NULL), 1), "lid", NULL)),
           "price_a-2", "shared price: second lid");
    is_str(jstr(jget(prod, "pid", NULL)), "price_a", "no product: pid = price");
    is_str(jstr(jget(pr, "transaction_time", NULL)), "1970-01-01T00:00:00Z",
           "created 0 is a time");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(po, &pl, 0, &jn, 0, created, 1);
    b = req_json(&r->req[0]);
    pr = jget(b, "purchase", NULL);
    prod = jat(jget(pr, "products", NULL), 0);
    is_int(jlen(jget(pr, "products", NULL)), 1, "no items: one product");
    is_str(jstr(jget(prod, "pid", NULL)), "ch_3", "no items: pid = object");
    is_str(jnum(jget(prod, "unit_price", NULL)), "19.99",
           "no items: the whole amount");
    ok(jget(pr, "transaction_time", NULL) == NULL,
       "no created: no transaction_time");
    ok(jget(pr, "first_name", NULL) == NULL, "no name: no first_name");
    yajl_tree_free(b);
    run_free(r);

    plan_free(&pl);
    job_free(&j);
    job_free(&jy);
    job_free(&jn);
    p->ops->destroy(p);
    po->ops->destroy(po);
}


/* an earlier attempt sent the purchase and never learnt the outcome */
static void
test_purchase_resent(void)
{
    provider       *po = make(&conf_oauth);
    plan            pl;
    job             j;
    op_run         *r;
    size_t          i;
    fake_response   found[] = {
        { 200, "{\"purchases\":[{\"id\":12,\"transaction_id\":\"in_9\"},"
               "{\"id\":11,\"transaction_id\":\"cs_test_1\"}],"
               "\"pagination\":{\"has_next_page\":true,"
               "\"end_cursor\":\"WzExXQ==\"}}", 0, 0 } };
    fake_response   paged[] = {
        { 200, "{\"purchases\":[{\"id\":12,\"transaction_id\":\"in_9\"}],"
               "\"pagination\":{\"has_next_page\":true,"
               "\"end_cursor\":\"WzEyXQ==\"}}", 0, 0 },
        { 200, "{\"purchases\":[{\"id\":3,\"transaction_id\":\"cs_test_0\"}],"
               "\"pagination\":{\"has_next_page\":false,"
               "\"end_cursor\":\"WzNd\"}}", 0, 0 },
        { 201, "{\"purchase\":{\"id\":13}}", 0, 0 } };
    fake_response   endless[11];
    fake_response   down[] = { { 503, "{\"errors\":[\"down\"]}", 0, 0 } };
    fake_response   created[] = { { 201, "{\"purchase\":{\"id\":8}}", 0, 0 } };
    char            pages[10][160];

    job_from(&j, record);
    plan_one(&pl, OP_PURCHASE, NULL, NULL, 0);

    r = run_op(po, &pl, 0, &j, 0, created, 1);
    is_int(r->req[0].once, 1, "purchase POST: marked once (not deduped)");
    run_free(r);

    run_resent = 1;

    r = run_op(po, &pl, 0, &j, 0, found, 1);
    is_int(r->status, STEP_DONE, "resent, found: DONE");
    is_int(r->nreq, 1, "resent, found: one request, no POST");
    is_str(r->req[0].method, "GET", "resent: GET first");
    is_str(r->req[0].url, BASE "/purchases?per_page=1000",
           "resent: the newest purchases, Kit's largest page");
    is_int(r->req[0].once, 0, "resent: the GET is not a once request");
    is_str(req_header(&r->req[0], "Authorization"), "Bearer " TOKEN,
           "resent: OAuth bearer");
    is_str(r->x.err, "already recorded by an earlier attempt (Kit purchase "
           "11): not sent again", "resent, found: err says why");
    run_free(r);

    r = run_op(po, &pl, 0, &j, 0, paged, 3);
    is_int(r->status, STEP_DONE, "resent, not found: posted, DONE");
    is_int(r->nreq, 3, "resent, not found: two pages, then POST");
    is_str(r->req[1].url, BASE "/purchases?per_page=1000&after=WzEyXQ%3D%3D",
           "resent: page 2 after the cursor");
    is_str(r->req[2].method, "POST", "resent, not found: POST");
    is_str(r->req[2].url, BASE "/purchases", "resent, not found: URL");
    is_int(r->req[2].once, 1, "resent, not found: the POST is once");
    run_free(r);

    for (i = 0; i < 10; i++) {
        snprintf(pages[i], sizeof(pages[i]),
                 "{\"purchases\":[{\"id\":%zu,\"transaction_id\":\"x\"}],"
                 "\"pagination\":{\"has_next_page\":true,"
                 "\"end_cursor\":\"c%zu\"}}", 100 - i, i);
        endless[i].status = 200;
        endless[i].body = pages[i];
        endless[i].retry_after = NULL;
        endless[i].error = NULL;
    }
    endless[10] = created[0];

    r = run_op(po, &pl, 0, &j, 0, endless, 11);
    is_int(r->status, STEP_DONE, "resent, not in 10 pages: posted");
    is_int(r->nreq, 11, "resent: at most 10 pages searched, then POST");
    is_str(r->req[9].url, BASE "/purchases?per_page=1000&after=c8",
           "resent: the 10th page");
    is_str(r->req[10].method, "POST", "resent: POST after the 10th page");
    run_free(r);

    r = run_op(po, &pl, 0, &j, 0, down, 1);
    is_int(r->status, STEP_RETRY, "resent, GET 503: RETRY, nothing posted");
    is_int(r->nreq, 1, "resent, GET 503: one request");
    run_free(r);

    r = run_op(po, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "resent in check: DONE without a request");
    is_int(r->nreq, 0, "resent in check: no request");
    run_free(r);

    run_resent = 0;

    plan_free(&pl);
    job_free(&j);
    po->ops->destroy(po);
}


static void
test_errors(void)
{
    provider       *p = make(&conf_key);
    plan            pl, tl;
    job             j;
    op_run         *r;
    char           *huge, *deep, *many;
    size_t          i, n;
    fake_response   invalid[] = {
        { 422, "{\"errors\":[\"Email address is invalid\"]}", 0, 0 } };
    fake_response   limited[] = { { 429, "Retry later", 0, 0 } };
    fake_response   limited7[] = { { 429, "Retry later", "7", 0 } };
    fake_response   down[] = { { 500, "<html>oops</html>", 0, 0 } };
    fake_response   refused[] = { { 0, NULL, 0, "Connection refused" } };
    fake_response   html[] = { { 200, "<html>maintenance</html>", 0, 0 } };
    fake_response   cut[] = { { 200, "{\"tags\":[{\"id\":1,\"na", 0, 0 } };
    fake_response   empty[] = { { 200, "", 0, 0 } };
    fake_response   wrong[] = { { 200, "{\"tags\":{\"id\":1}}", 0, 0 } };
    fake_response   leak[] = {
        { 401, "{\"errors\":[\"The API key " KEY " is invalid\"]}", 0, 0 } };
    fake_response   big[1], nested[1], lots[2];

    job_from(&j, record);
    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    plan_one(&tl, OP_TAG, "Err tag", NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, invalid, 1);
    is_int(r->status, STEP_FAIL, "422: FAIL");
    is_str(r->x.err, "Kit upsert: POST /subscribers: HTTP 422: "
           "Email address is invalid", "422: err names step and Kit's error");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, limited, 1);
    is_int(r->status, STEP_RETRY, "429: RETRY");
    is_int(r->x.retry_after_ms, 60000, "429 without Retry-After: a minute");
    ok(strstr(r->x.err, "Retry later") != NULL, "429 err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, limited7, 1);
    is_int(r->status, STEP_RETRY, "429 + Retry-After: RETRY");
    is_int(r->x.retry_after_ms, 7000, "Retry-After: 7 is 7000 ms");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, down, 1);
    is_int(r->status, STEP_RETRY, "500: RETRY");
    is_int(r->x.retry_after_ms, 0, "500: no wait imposed");
    ok(strstr(r->x.err, "HTTP 500: <html>oops</html>") != NULL,
       "500 err has the raw excerpt: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, refused, 1);
    is_int(r->status, STEP_RETRY, "transport error: RETRY");
    is_str(r->x.err, "Kit upsert: POST /subscribers: Connection refused",
           "transport error: err");
    run_free(r);

    r = run_op(p, &tl, 0, &j, 0, html, 1);
    is_int(r->status, STEP_RETRY, "listing not JSON: RETRY");
    ok(strstr(r->x.err, "not JSON") != NULL
       && strstr(r->x.err, "maintenance") != NULL,
       "not JSON err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &tl, 0, &j, 0, cut, 1);
    is_int(r->status, STEP_RETRY, "truncated JSON: RETRY");
    ok(strstr(r->x.err, "truncated") != NULL, "truncated err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &tl, 0, &j, 0, empty, 1);
    is_int(r->status, STEP_RETRY, "empty 200 body: RETRY");
    ok(strstr(r->x.err, "no body") != NULL, "empty err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &tl, 0, &j, 0, wrong, 1);
    is_int(r->status, STEP_RETRY, "unexpected shape: RETRY");
    ok(strstr(r->x.err, "no \"tags\" array") != NULL, "shape err: %s",
       r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, leak, 1);
    is_int(r->status, STEP_FAIL, "401: FAIL");
    ok(strstr(r->x.err, "HTTP 401") != NULL, "401 err: %s", r->x.err);
    no_secret(r, KEY, "401 echoing the key");
    ok(strstr(r->x.err, "[redacted]") != NULL, "the key is redacted");
    run_free(r);

    /* 4 MB of one string, then of nesting, then a valid huge listing */
    n = 4 * 1024 * 1024;
    huge = malloc(n + 1);
    memset(huge, 'x', n);
    huge[0] = '"';
    huge[n] = '\0';
    big[0].status = 200;
    big[0].body = huge;
    big[0].retry_after = NULL;
    big[0].error = NULL;
    r = run_op(p, &tl, 0, &j, 0, big, 1);
    is_int(r->status, STEP_RETRY, "huge non-JSON body: RETRY");
    ok(strlen(r->x.err) < sizeof(r->x.err), "huge: err bounded");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, big, 1);
    is_int(r->status, STEP_DONE, "huge body on a 2xx upsert: DONE (unread)");
    run_free(r);

    big[0].status = 502;
    r = run_op(p, &pl, 0, &j, 0, big, 1);
    is_int(r->status, STEP_RETRY, "huge 502: RETRY");
    ok(strlen(r->x.err) < 300, "huge 502: excerpt only (%zu bytes)",
       strlen(r->x.err));
    run_free(r);
    free(huge);

    deep = malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = '\0';
    nested[0].status = 200;
    nested[0].body = deep;
    nested[0].retry_after = NULL;
    nested[0].error = NULL;
    r = run_op(p, &tl, 0, &j, 0, nested, 1);
    is_int(r->status, STEP_RETRY, "deeply nested body: RETRY, no crash");
    ok(strstr(r->x.err, "nested") != NULL, "nested err: %s", r->x.err);
    nested[0].status = 422;
    run_free(r);
    r = run_op(p, &pl, 0, &j, 0, nested, 1);
    is_int(r->status, STEP_FAIL, "deeply nested 422: FAIL, no crash");
    run_free(r);
    free(deep);

    many = malloc(3 * 1024 * 1024);
    n = (size_t) sprintf(many, "{\"tags\":[");
    for (i = 0; i < 20000; i++) {
        n += (size_t) sprintf(many + n, "%s{\"id\":%zu,\"name\":\"t%zu\","
                              "\"created_at\":\"2023-02-17T11:43:55Z\"}",
                              i ? "," : "", 1000 + i, i);
    }
    n += (size_t) sprintf(many + n, ",{\"id\":1,\"name\":\"Err tag\"}],"
                          "\"pagination\":{\"has_next_page\":false}}");
    lots[0].status = 200;
    lots[0].body = many;
    lots[0].retry_after = NULL;
    lots[0].error = NULL;
    lots[1].status = 201;
    lots[1].body = "{}";
    lots[1].retry_after = NULL;
    lots[1].error = NULL;
    r = run_op(p, &tl, 0, &j, 0, lots, 2);
    is_int(r->status, STEP_DONE, "a 20001-tag page: found, DONE");
    is_str(r->req[1].url, BASE "/tags/1/subscribers", "big page: the id");
    run_free(r);
    free(many);

    plan_free(&pl);
    plan_free(&tl);
    job_free(&j);
    p->ops->destroy(p);
}


static void
test_no_email(void)
{
    provider  *p = make(&conf_key);
    plan       pl;
    job        j;
    op_run    *r;

    job_from(&j, "{\"v\":1,\"id\":\"evt_9\",\"action\":\"refund\","
                 "\"customer\":{\"id\":\"cus_9\"}}");
    plan_one(&pl, OP_TAG, "x", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_FAIL, "no email: FAIL");
    ok(strstr(r->x.err, "no email") != NULL, "no email err: %s", r->x.err);
    is_int(r->nreq, 0, "no email: no request");
    run_free(r);
    plan_free(&pl);
    job_free(&j);
    p->ops->destroy(p);
}


static void
test_check(void)
{
    provider       *p = make(&conf_key);
    provider       *po = make(&conf_oauth);
    plan            pl;
    job             j;
    op_run         *r;
    fake_response   account[] = {
        { 200, "{\"user\":{\"email\":\"x@y\"},\"account\":{\"name\":\"K\","
               "\"plan_type\":\"creator\",\"primary_email_address\":"
               "\"x@y\"}}", 0, 0 } };
    fake_response   denied[] = {
        { 401, "{\"errors\":[\"The access token is invalid\"]}", 0, 0 } };
    fake_response   tags[] = {
        { 200, "{\"tags\":[{\"id\":1,\"name\":\"Have\"}],\"pagination\":"
               "{\"has_next_page\":false}}", 0, 0 } };
    fake_response   seqs[] = {
        { 200, "{\"sequences\":[],\"pagination\":{\"has_next_page\":false}}",
          0, 0 } };

    /* check runs on a job without an email */
    job_from(&j, "{\"v\":1,\"id\":\"evt_check\",\"action\":\"check\"}");

    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, account, 1);
    is_int(r->status, STEP_DONE, "check upsert: DONE");
    is_int(r->nreq, 1, "check upsert: one probe");
    is_str(r->req[0].method, "GET", "check: GET");
    is_str(r->req[0].url, BASE "/account", "check: GET /account");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 1, denied, 1);
    is_int(r->status, STEP_FAIL, "check upsert refused: FAIL");
    ok(strstr(r->x.err, "The access token is invalid") != NULL,
       "check refused err: %s", r->x.err);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "Missing", NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, tags, 1);
    is_int(r->status, STEP_DONE, "check tag missing: DONE");
    is_str(r->x.err, "will be created", "check tag missing: note");
    is_int(r->nreq, 1, "check tag: never created");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "Have", NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "check tag known: DONE");
    is_str(r->x.err, "exists", "check tag known: exists (from the cache)");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_SEQUENCE, "Nope", NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, seqs, 1);
    is_int(r->status, STEP_FAIL, "check missing sequence: FAIL");
    is_str(r->x.err, "Kit sequence \"Nope\" not found", "check sequence err");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_PURCHASE, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_FAIL, "check purchase without OAuth: FAIL");
    r->x.err[sizeof(r->x.err) - 1] = '\0';
    ok(strstr(r->x.err, "OAuth") != NULL, "check purchase err: %s",
       r->x.err);
    run_free(r);

    r = run_op(po, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "check purchase with OAuth: DONE");
    is_int(r->nreq, 0, "check purchase: nothing sent");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    p->ops->destroy(p);
    po->ops->destroy(po);
}


int
main(void)
{
    memset(&conf_key, 0, sizeof(conf_key));
    conf_key.provider_type = "kit";
    conf_key.provider_api_key = KEY;

    conf_oauth = conf_key;
    conf_oauth.provider_oauth_token = TOKEN;

    test_registry();
    test_supports();
    test_upsert();
    test_tag();
    test_untag();
    test_sequence_form();
    test_purchase();
    test_purchase_resent();
    test_errors();
    test_no_email();
    test_check();

    return tap_done();
}
