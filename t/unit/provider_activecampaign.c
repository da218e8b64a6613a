/*
 * provider_activecampaign.c - the ActiveCampaign v3 provider, request by
 * request, against scripted responses shaped like AC's (api-specs/).
 */

#include <stdio.h>
#include <string.h>

#include "provider_test.h"

#define KEY   "ac_token_SECRET_0123456789"
#define BASE  "https://acct.api-us1.com/api/3"

static const char  *record =
    "{\"v\":1,\"id\":\"evt_1\",\"type\":\"invoice.paid\","
    "\"action\":\"purchase\",\"created\":1745433906,\"livemode\":true,"
    "\"object\":{\"type\":\"invoice\",\"id\":\"in_1\"},"
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"Ada@Example.org\","
    "\"name\":\"Ada King Lovelace\"},\"amount\":24900,\"currency\":\"usd\","
    "\"items\":[{\"price\":\"price_1\",\"product\":\"prod_1\","
    "\"quantity\":2,\"amount\":24900,\"description\":\"Course\"}]}";

static const char  *record2 =
    "{\"v\":1,\"id\":\"evt_2\",\"action\":\"payment_failed\","
    "\"object\":{\"type\":\"invoice\",\"id\":\"in_2\"},"
    "\"customer\":{\"email\":\"new@example.org\",\"name\":\"Grace\"}}";

static ss_config  conf;


static provider *
make(void)
{
    provider  *p;
    char       err[256];

    p = provider_find("activecampaign")->create(&conf, err, sizeof(err));
    if (p == NULL) {
        printf("Bail out! activecampaign create: %s\n", err);
        exit(255);
    }

    return p;
}


static void
headers_ok(const http_request *r, const char *what)
{
    is_str(req_header(r, "Api-Token"), KEY, "%s: Api-Token", what);
    if (r->body != NULL) {
        is_str(req_header(r, "Content-Type"), "application/json",
               "%s: Content-Type", what);
    }
}


static void
test_create(void)
{
    const provider_ops  *ops;
    ss_config            c;
    provider            *p;
    char                 err[256];

    ops = provider_find("activecampaign");
    ok(ops != NULL, "provider_find(\"activecampaign\")");
    ok(ops->default_rate == 5.0, "default rate 5/s");
    is_int(ops->default_burst, 5, "default burst 5");

    c = conf;
    c.provider_api_base = NULL;
    err[0] = '\0';
    ok(ops->create(&c, err, sizeof(err)) == NULL, "no api_base: refused");
    ok(strstr(err, "api_base") != NULL, "err names api_base: %s", err);

    c = conf;
    c.provider_api_key = NULL;
    ok(ops->create(&c, err, sizeof(err)) == NULL, "no key: refused");
    ok(strstr(err, "api_key_file") != NULL, "err names api_key_file: %s",
       err);

    c = conf;
    c.provider_api_base = "ftp://acct";
    ok(ops->create(&c, err, sizeof(err)) == NULL, "not http: refused");

    c = conf;
    c.provider_api_base = "https://acct.api-us1.com/api/3/";
    p = ops->create(&c, err, sizeof(err));
    ok(p != NULL, "api_base with /api/3 accepted");
    ops->destroy(p);

    p = make();
    ok(p->ops->supports(p, OP_UPSERT) && p->ops->supports(p, OP_TAG)
       && p->ops->supports(p, OP_UNTAG) && p->ops->supports(p, OP_SEQUENCE)
       && p->ops->supports(p, OP_LIST) && p->ops->supports(p, OP_FIELDS)
       && p->ops->supports(p, OP_PURCHASE), "supports the contact ops");
    ok(!p->ops->supports(p, OP_FORM), "no forms");
    ok(!p->ops->supports(p, OP_TRACK), "no track");
    ok(p->ops->supports(p, OP_FIND_EMAIL), "finds emails by Stripe id");
    ops->destroy(p);
}


static void
test_upsert(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b, fv;
    plan_field      f[2] = { { "Plan", "price_1" }, { "%TIER%", "gold" } };
    plan_field      bad[1] = { { "Nope", "x" } };
    fake_response   plain[] = {
        { 201, "{\"fieldValues\":[],\"contact\":{\"email\":"
               "\"ada@example.org\",\"id\":\"17\"}}", 0, 0 } };
    fake_response   fields[] = {
        { 200, "{\"fieldOptions\":[],\"fields\":[{\"title\":\"Plan\","
               "\"perstag\":\"PLAN\",\"id\":\"3\"},{\"title\":\"Tier Name\","
               "\"perstag\":\"TIER\",\"id\":\"4\"}],\"meta\":{\"total\":"
               "\"2\"}}", 0, 0 },
        { 200, "{\"contact\":{\"id\":\"17\"}}", 0, 0 } };
    fake_response   nofield[] = {
        { 200, "{\"fields\":[],\"meta\":{\"total\":\"0\"}}", 0, 0 } };

    job_from(&j, record);

    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, plain, 1);
    is_int(r->status, STEP_DONE, "upsert: DONE on 201");
    is_int(r->nreq, 1, "upsert: one request");
    is_str(r->req[0].method, "POST", "upsert: POST");
    is_str(r->req[0].url, BASE "/contact/sync", "upsert: /contact/sync");
    headers_ok(&r->req[0], "upsert");
    b = req_json(&r->req[0]);
    is_str(jstr(jget(b, "contact", "email", NULL)), "Ada@Example.org",
           "upsert: contact.email");
    is_str(jstr(jget(b, "contact", "firstName", NULL)), "Ada",
           "upsert: firstName");
    is_str(jstr(jget(b, "contact", "lastName", NULL)), "King Lovelace",
           "upsert: lastName");
    ok(jget(b, "contact", "fieldValues", NULL) == NULL,
       "upsert: no fieldValues without fields");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_UPSERT, NULL, f, 2);
    r = run_op(p, &pl, 0, &j, 0, fields, 2);
    is_int(r->status, STEP_DONE, "upsert+fields: DONE");
    is_int(r->nreq, 2, "upsert+fields: fields listed, then sync");
    is_str(r->req[0].method, "GET", "fields: GET");
    is_str(r->req[0].url, BASE "/fields?limit=100&offset=0", "fields: URL");
    headers_ok(&r->req[0], "fields");
    b = req_json(&r->req[1]);
    fv = jget(b, "contact", "fieldValues", NULL);
    is_int(jlen(fv), 2, "fieldValues: two");
    is_str(jstr(jget(jat(fv, 0), "field", NULL)), "3", "by title: id 3");
    is_str(jstr(jget(jat(fv, 0), "value", NULL)), "price_1", "value");
    is_str(jstr(jget(jat(fv, 1), "field", NULL)), "4", "by %%PERSTAG%%: 4");
    is_str(jstr(jget(jat(fv, 1), "value", NULL)), "gold", "value 2");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, plain, 1);
    is_int(r->nreq, 1, "fields cached: sync only");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_FIELDS, NULL, bad, 1);
    r = run_op(p, &pl, 0, &j, 0, nofield, 1);
    is_int(r->status, STEP_FAIL, "unknown field: FAIL");
    is_str(r->x.err, "ActiveCampaign custom field \"Nope\" not found (no "
           "field has that title or personalization tag)",
           "unknown field: err names it");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
}


static void
test_tag(provider *p)
{
    plan            pl;
    job             j, j2;
    op_run         *r;
    yajl_val        b;
    fake_response   search[] = {
        { 200, "{\"tags\":[{\"tagType\":\"contact\",\"tag\":\"Buyer 2\","
               "\"id\":\"5\"},{\"tagType\":\"contact\",\"tag\":\"buyer\","
               "\"id\":\"6\"},{\"tagType\":\"template\",\"tag\":\"Buyer\","
               "\"id\":\"8\"},{\"tagType\":\"contact\",\"tag\":\"Buyer\","
               "\"id\":\"7\"}],\"meta\":{\"total\":\"4\"}}", 0, 0 },
        { 201, "{\"contactTag\":{\"contact\":\"17\",\"tag\":\"7\",\"id\":"
               "\"100\"}}", 0, 0 } };
    fake_response   tagged[] = { { 201, "{\"contactTag\":{\"id\":\"1\"}}", 0,
                                   0 } };
    fake_response   fresh[] = {
        { 200, "{\"scoreValues\":[],\"contacts\":[],\"meta\":{\"total\":"
               "\"0\"}}", 0, 0 },
        { 201, "{\"contact\":{\"email\":\"new@example.org\",\"id\":\"20\"}}",
          0, 0 },
        { 201, "{\"contactTag\":{\"id\":\"2\"}}", 0, 0 } };
    fake_response   create[] = {
        { 200, "{\"tags\":[{\"tagType\":\"contact\",\"tag\":\"VIP club\","
               "\"id\":\"9\"}],\"meta\":{\"total\":\"1\"}}", 0, 0 },
        { 201, "{\"tag\":{\"tag\":\"VIP\",\"tagType\":\"contact\",\"id\":"
               "\"30\"}}", 0, 0 },
        { 201, "{\"contactTag\":{\"id\":\"3\"}}", 0, 0 } };
    fake_response   folded[] = {
        { 200, "{\"tags\":[{\"tagType\":\"contact\",\"tag\":"
               "\"stripe-integration\",\"id\":\"41\"},{\"tagType\":"
               "\"contact\",\"tag\":\"stripe-integration-refund\",\"id\":"
               "\"42\"}],\"meta\":{\"total\":\"2\"}}", 0, 0 },
        { 201, "{\"contactTag\":{\"id\":\"5\"}}", 0, 0 } };
    fake_response   raced[] = {
        { 200, "{\"tags\":[],\"meta\":{\"total\":\"0\"}}", 0, 0 },
        { 422, "{\"errors\":[{\"title\":\"Duplicate tag\"}]}", 0, 0 },
        { 200, "{\"tags\":[{\"tagType\":\"contact\",\"tag\":\"Raced\","
               "\"id\":\"31\"}],\"meta\":{\"total\":\"1\"}}", 0, 0 },
        { 201, "{\"contactTag\":{\"id\":\"4\"}}", 0, 0 } };

    job_from(&j, record);
    job_from(&j2, record2);

    /* the contact id is cached from the upsert test */
    plan_one(&pl, OP_TAG, "Buyer", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, search, 2);
    is_int(r->status, STEP_DONE, "tag: DONE");
    is_int(r->nreq, 2, "tag: search, add (contact cached)");
    is_str(r->req[0].method, "GET", "tag: GET /tags");
    is_str(r->req[0].url, BASE "/tags?search=Buyer&limit=100&offset=0",
           "tag: search URL");
    headers_ok(&r->req[0], "tag search");
    is_str(r->req[1].method, "POST", "tag: POST /contactTags");
    is_str(r->req[1].url, BASE "/contactTags", "tag: URL");
    headers_ok(&r->req[1], "contactTags");
    b = req_json(&r->req[1]);
    ok(YAJL_IS_INTEGER(jget(b, "contactTag", "contact", NULL)),
       "contactTag.contact an integer (spec: int32)");
    is_str(jnum(jget(b, "contactTag", "contact", NULL)), "17",
           "contactTag.contact");
    is_str(jnum(jget(b, "contactTag", "tag", NULL)), "7",
           "exact, case-sensitive contact tag chosen (7)");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, tagged, 1);
    is_int(r->nreq, 1, "tag again: cached, one request");
    run_free(r);

    r = run_op(p, &pl, 0, &j2, 0, fresh, 3);
    is_int(r->status, STEP_DONE, "tag, new contact: DONE");
    is_int(r->nreq, 3, "tag, new contact: find, sync, tag");
    is_str(r->req[0].url, BASE "/contacts?email=new%40example.org",
           "find contact by email");
    is_str(r->req[1].url, BASE "/contact/sync", "contact created");
    b = req_json(&r->req[1]);
    is_str(jstr(jget(b, "contact", "email", NULL)), "new@example.org",
           "sync for tag: email");
    is_str(jstr(jget(b, "contact", "firstName", NULL)), "Grace",
           "sync for tag: firstName");
    yajl_tree_free(b);
    b = req_json(&r->req[2]);
    is_str(jnum(jget(b, "contactTag", "contact", NULL)), "20",
           "the new contact's id");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "VIP", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, create, 3);
    is_int(r->status, STEP_DONE, "new tag: DONE");
    is_str(r->req[1].method, "POST", "new tag: POST /tags");
    is_str(r->req[1].url, BASE "/tags", "new tag: URL");
    b = req_json(&r->req[1]);
    is_str(jstr(jget(b, "tag", "tag", NULL)), "VIP", "tag.tag");
    is_str(jstr(jget(b, "tag", "tagType", NULL)), "contact", "tag.tagType");
    is_str(jstr(jget(b, "tag", "description", NULL)), "", "tag.description");
    yajl_tree_free(b);
    b = req_json(&r->req[2]);
    is_str(jnum(jget(b, "contactTag", "tag", NULL)), "30", "created id");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "Stripe-Integration", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, folded, 2);
    is_int(r->status, STEP_DONE, "tag differing in case only: DONE");
    is_int(r->nreq, 2, "case-folded tag: search, add (no create)");
    b = req_json(&r->req[1]);
    is_str(jnum(jget(b, "contactTag", "tag", NULL)), "41",
           "no exact name: the tag differing in case is used");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "Raced", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, raced, 4);
    is_int(r->status, STEP_DONE, "tag created meanwhile: DONE");
    is_str(r->req[2].url, BASE "/tags?search=Raced&limit=100&offset=0",
           "422 on create: searched again");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
    job_free(&j2);
}


static void
test_untag(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    fake_response   ok1[] = {
        { 200, "{\"contactTags\":[{\"contact\":\"17\",\"tag\":\"5\",\"id\":"
               "\"100\"},{\"contact\":\"17\",\"tag\":\"7\",\"id\":\"101\"}]}",
          0, 0 },
        { 200, "{}", 0, 0 } };
    fake_response   none[] = { { 200, "{\"contactTags\":[]}", 0, 0 } };
    fake_response   gone[] = {
        { 200, "{\"contactTags\":[{\"tag\":7,\"id\":101}]}", 0, 0 },
        { 404, "{\"message\":\"No Result found for SubscriberTag with id "
               "101\"}", 0, 0 } };
    fake_response   notag[] = { { 200, "{\"tags\":[],\"meta\":{\"total\":"
                                  "\"0\"}}", 0, 0 } };

    job_from(&j, record);

    plan_one(&pl, OP_UNTAG, "Buyer", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, ok1, 2);
    is_int(r->status, STEP_DONE, "untag: DONE");
    is_str(r->req[0].url, BASE "/contacts/17/contactTags",
           "untag: the contact's tags");
    is_str(r->req[1].method, "DELETE", "untag: DELETE");
    is_str(r->req[1].url, BASE "/contactTags/101", "untag: the contactTag");
    ok(r->req[1].body == NULL, "untag: no body");
    headers_ok(&r->req[1], "untag");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, none, 1);
    is_int(r->status, STEP_DONE, "untag, not tagged: DONE");
    is_int(r->nreq, 1, "untag, not tagged: no DELETE");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, gone, 2);
    is_int(r->status, STEP_DONE, "untag, 404: DONE");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_UNTAG, "Unknown", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, notag, 1);
    is_int(r->status, STEP_DONE, "untag, tag absent: DONE");
    is_int(r->nreq, 1, "untag, tag absent: search only");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
}


static void
test_automation_list(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    yajl_val        b;
    char            page1[8192];
    size_t          i, n;
    fake_response   autom[3];
    fake_response   missing[] = {
        { 200, "{\"automations\":[{\"name\":\"Other\",\"id\":\"1\"}],"
               "\"meta\":{\"total\":\"1\"}}", 0, 0 } };
    fake_response   list[] = {
        { 200, "{\"lists\":[{\"name\":\"Customers old\",\"id\":\"1\"},"
               "{\"name\":\"Customers\",\"id\":\"2\"}],\"meta\":{\"total\":"
               "\"2\"}}", 0, 0 },
        { 200, "{\"contacts\":[],\"contactList\":{\"id\":\"5\"}}", 0, 0 } };
    fake_response   nolist[] = {
        { 200, "{\"lists\":[],\"meta\":{\"total\":\"0\"}}", 0, 0 } };
    fake_response   denied[] = {
        { 403, "{\"message\":\"Could not create SubscriberSeries\"}", 0, 0 } };
    fake_response   in_auto[] = {
        { 200, "{\"contactAutomations\":[{\"contact\":\"17\","
               "\"automation\":\"4\",\"id\":\"30\"},{\"contact\":\"17\","
               "\"automation\":\"9\",\"id\":\"31\"}]}", 0, 0 } };
    fake_response   earlier_auto[] = {
        { 200, "{\"contactAutomations\":[{\"contact\":\"17\","
               "\"automation\":\"9\",\"id\":\"20\","
               "\"adddate\":\"2025-03-01T08:51:57-06:00\"}]}", 0, 0 },
        { 201, "{\"contactAutomation\":{\"id\":\"33\"}}", 0, 0 } };
    fake_response   since_auto[] = {
        { 200, "{\"contactAutomations\":[{\"contact\":\"17\","
               "\"automation\":\"9\",\"id\":\"20\","
               "\"adddate\":\"2025-03-01T08:51:57-06:00\"},"
               "{\"contact\":\"17\",\"automation\":\"9\",\"id\":\"34\","
               "\"adddate\":\"2025-04-23T13:42:00-05:00\"}]}", 0, 0 } };
    fake_response   not_in_auto[] = {
        { 200, "{\"contactAutomations\":[{\"contact\":\"17\","
               "\"automation\":\"4\",\"id\":\"30\"}]}", 0, 0 },
        { 201, "{\"contactAutomation\":{\"id\":\"32\"}}", 0, 0 } };

    job_from(&j, record);

    n = (size_t) sprintf(page1, "{\"automations\":[");
    for (i = 0; i < 100; i++) {
        n += (size_t) sprintf(page1 + n, "%s{\"name\":\"A%zu\",\"id\":"
                              "\"%zu\"}", i ? "," : "", i, 100 + i);
    }
    sprintf(page1 + n, "],\"meta\":{\"total\":\"101\"}}");

    autom[0].status = 200;
    autom[0].body = page1;
    autom[0].retry_after = autom[0].error = NULL;
    autom[1].status = 200;
    autom[1].body = "{\"automations\":[{\"name\":\"Dunning\",\"id\":\"9\"}],"
                    "\"meta\":{\"total\":\"101\"}}";
    autom[1].retry_after = autom[1].error = NULL;
    autom[2].status = 201;
    autom[2].body = "{\"contactAutomation\":{\"id\":\"3\"}}";
    autom[2].retry_after = autom[2].error = NULL;

    plan_one(&pl, OP_SEQUENCE, "Dunning", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, autom, 3);
    is_int(r->status, STEP_DONE, "automation: DONE");
    is_str(r->req[0].url, BASE "/automations?limit=100&offset=0",
           "automations: page 1");
    is_str(r->req[1].url, BASE "/automations?limit=100&offset=100",
           "automations: page 2");
    is_str(r->req[2].url, BASE "/contactAutomations", "contactAutomations");
    is_int(r->req[2].once, 1, "contactAutomations: a once request (a "
           "contact can enter an automation twice)");
    is_int(r->req[0].once, 0, "GET /automations: not once");
    b = req_json(&r->req[2]);
    is_str(jnum(jget(b, "contactAutomation", "contact", NULL)), "17",
           "contactAutomation.contact (integer)");
    is_str(jnum(jget(b, "contactAutomation", "automation", NULL)), "9",
           "contactAutomation.automation (integer)");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, denied, 1);
    is_int(r->status, STEP_FAIL, "automation 403: FAIL");
    ok(strstr(r->x.err, "HTTP 403: Could not create SubscriberSeries")
       != NULL, "{\"message\"} shape in err: %s", r->x.err);
    run_free(r);

    /* an earlier attempt posted it, the answer was lost (ids cached now) */
    run_resent = 1;
    r = run_op(p, &pl, 0, &j, 0, in_auto, 1);
    is_int(r->status, STEP_DONE, "resent, in the automation: DONE");
    is_int(r->nreq, 1, "resent, in the automation: no POST");
    is_str(r->req[0].url, BASE "/contacts/17/contactAutomations",
           "resent: the contact's automations first");
    is_str(r->x.err, "already in the automation by an earlier attempt "
           "(contactAutomation 31): not added again", "resent: err");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, not_in_auto, 2);
    is_int(r->status, STEP_DONE, "resent, not in it: posted, DONE");
    is_int(r->nreq, 2, "resent, not in it: GET, then POST");
    is_str(r->req[1].method, "POST", "resent, not in it: POST");
    is_str(r->req[1].url, BASE "/contactAutomations",
           "resent, not in it: contactAutomations");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, earlier_auto, 2);
    is_int(r->nreq, 2, "resent, entered before the event (an earlier "
           "event's): posted again");
    is_str(r->req[1].method, "POST", "resent, entered before: POST");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, since_auto, 1);
    is_int(r->status, STEP_DONE, "resent, entered since the event (3 min "
           "before it by AC's clock, within the skew): DONE");
    is_str(r->x.err, "already in the automation by an earlier attempt "
           "(contactAutomation 34): not added again", "resent: the entry "
           "since the event");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, denied, 1);
    is_int(r->status, STEP_FAIL, "resent, GET 403: FAIL, nothing posted");
    is_int(r->nreq, 1, "resent, GET 403: one request");
    run_free(r);
    run_resent = 0;
    plan_free(&pl);

    plan_one(&pl, OP_SEQUENCE, "Welcome", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, missing, 1);
    is_int(r->status, STEP_FAIL, "missing automation: FAIL");
    is_str(r->x.err, "ActiveCampaign automation \"Welcome\" not found",
           "missing automation: err");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_LIST, "Customers", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, list, 2);
    is_int(r->status, STEP_DONE, "list: DONE");
    is_str(r->req[0].url,
           BASE "/lists?filters[name]=Customers&limit=100&offset=0",
           "list: filters[name]");
    is_str(r->req[1].url, BASE "/contactLists", "list: contactLists");
    b = req_json(&r->req[1]);
    is_str(jstr(jget(b, "contactList", "list", NULL)), "2",
           "contactList.list (exact name)");
    is_str(jstr(jget(b, "contactList", "contact", NULL)), "17",
           "contactList.contact");
    is_str(jstr(jget(b, "contactList", "status", NULL)), "1",
           "contactList.status 1 (subscribed)");
    yajl_tree_free(b);
    run_free(r);
    plan_free(&pl);

    /* no name: provider.list */
    plan_one(&pl, OP_LIST, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, nolist, 1);
    is_int(r->status, STEP_FAIL, "missing list: FAIL");
    is_str(r->req[0].url,
           BASE "/lists?filters[name]=Main%20list&limit=100&offset=0",
           "unnamed list op uses provider.list");
    is_str(r->x.err, "ActiveCampaign list \"Main list\" not found",
           "missing list: err");
    run_free(r);
    plan_free(&pl);

    job_free(&j);
}


static void
test_purchase(provider *p)
{
    plan            pl;
    job             j, jn;
    op_run         *r;
    yajl_val        b, o, prod;
    fake_response   full[] = {
        { 200, "{\"connections\":[],\"meta\":{\"total\":\"0\"}}", 0, 0 },
        { 201, "{\"connection\":{\"service\":\"stripe-sync\",\"id\":\"3\"}}",
          0, 0 },
        { 200, "{\"ecomCustomers\":[],\"meta\":{\"total\":\"0\"}}", 0, 0 },
        { 201, "{\"ecomCustomer\":{\"connectionid\":\"3\",\"id\":\"8\"}}", 0,
          0 },
        { 201, "{\"ecomOrder\":{\"id\":\"1\"}}", 0, 0 } };
    fake_response   one[] = { { 201, "{\"ecomOrder\":{\"id\":\"2\"}}", 0, 0 } };
    fake_response   dup[] = {
        { 422, "{\"errors\":[{\"title\":\"The integration order already "
               "exists\",\"detail\":\"duplicate externalid\",\"code\":"
               "\"duplicate\"}]}", 0, 0 } };
    fake_response   moved[] = {
        { 200, "{\"ecomCustomers\":[],\"meta\":{\"total\":\"0\"}}", 0,
          0 },
        { 422, "{\"errors\":[{\"title\":\"The integration customer "
               "already exists in the system.\",\"code\":\"duplicate\"}]}",
          0, 0 },
        { 200, "{\"ecomCustomers\":[{\"connectionid\":\"3\",\"externalid\":"
               "\"cus_6\",\"email\":\"old@example.org\",\"id\":\"66\"}]}",
          0, 0 },
        { 201, "{\"ecomOrder\":{\"id\":\"9\"}}", 0, 0 } };
    fake_response   found[] = {
        { 200, "{\"ecomCustomers\":[{\"connectionid\":\"4\",\"id\":\"1\"},"
               "{\"connectionid\":\"3\",\"id\":\"44\"}]}", 0, 0 },
        { 201, "{\"ecomOrder\":{\"id\":\"3\"}}", 0, 0 } };

    job_from(&j, record);
    job_from(&jn, record2);
    plan_one(&pl, OP_PURCHASE, NULL, NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, full, 5);
    is_int(r->status, STEP_DONE, "purchase: DONE");
    is_int(r->nreq, 5, "purchase: connection x2, customer x2, order");
    is_str(r->req[0].url, BASE "/connections?filters[service]=stripe-sync"
           "&filters[externalid]=stripe-sync", "connection lookup");
    b = req_json(&r->req[1]);
    is_str(r->req[1].url, BASE "/connections", "connection create");
    is_str(jstr(jget(b, "connection", "service", NULL)), "stripe-sync",
           "connection.service");
    is_str(jstr(jget(b, "connection", "externalid", NULL)), "stripe-sync",
           "connection.externalid");
    is_str(jstr(jget(b, "connection", "name", NULL)), "stripe-sync",
           "connection.name");
    ok(jstr(jget(b, "connection", "logoUrl", NULL)) != NULL
       && jstr(jget(b, "connection", "linkUrl", NULL)) != NULL,
       "connection: logoUrl and linkUrl (required)");
    yajl_tree_free(b);
    is_str(r->req[2].url, BASE "/ecomCustomers?filters[email]=Ada%40Example"
           ".org&filters[connectionid]=3", "customer lookup");
    b = req_json(&r->req[3]);
    is_str(jstr(jget(b, "ecomCustomer", "connectionid", NULL)), "3",
           "ecomCustomer.connectionid");
    is_str(jstr(jget(b, "ecomCustomer", "externalid", NULL)), "cus_1",
           "ecomCustomer.externalid = Stripe customer");
    is_str(jstr(jget(b, "ecomCustomer", "email", NULL)), "Ada@Example.org",
           "ecomCustomer.email");
    yajl_tree_free(b);

    is_str(r->req[4].method, "POST", "order: POST");
    is_str(r->req[4].url, BASE "/ecomOrders", "order: URL");
    headers_ok(&r->req[4], "order");
    b = req_json(&r->req[4]);
    o = jget(b, "ecomOrder", NULL);
    is_str(jstr(jget(o, "externalid", NULL)), "in_1", "order.externalid");
    is_str(jnum(jget(o, "source", NULL)), "1", "order.source 1 (real time)");
    is_str(jstr(jget(o, "email", NULL)), "Ada@Example.org", "order.email");
    is_str(jnum(jget(o, "totalPrice", NULL)), "24900", "totalPrice in cents");
    is_str(jstr(jget(o, "currency", NULL)), "USD", "currency upper-case");
    is_str(jnum(jget(o, "connectionid", NULL)), "3", "connectionid integer");
    is_str(jnum(jget(o, "customerid", NULL)), "8", "customerid integer");
    is_str(jstr(jget(o, "externalCreatedDate", NULL)),
           "2025-04-23T18:45:06Z", "externalCreatedDate from created");
    ok(YAJL_IS_ARRAY(jget(o, "orderProducts", NULL)),
       "orderProducts an array");
    prod = jat(jget(o, "orderProducts", NULL), 0);
    is_str(jstr(jget(prod, "externalid", NULL)), "prod_1", "product id");
    is_str(jstr(jget(prod, "name", NULL)), "Course", "product name");
    is_str(jnum(jget(prod, "price", NULL)), "12450", "unit price in cents");
    is_str(jnum(jget(prod, "quantity", NULL)), "2", "quantity");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, one, 1);
    is_int(r->nreq, 1, "second purchase: connection and customer cached");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, dup, 1);
    is_int(r->status, STEP_DONE, "422 duplicate externalid: DONE");
    ok(strstr(r->x.err, "already recorded") != NULL, "dup note: %s",
       r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &jn, 0, NULL, 0);
    is_int(r->status, STEP_FAIL, "purchase without currency: FAIL");
    ok(strstr(r->x.err, "currency") != NULL, "err: %s", r->x.err);
    ok(!r->body_on_end, "no body left behind");
    run_free(r);

    job_free(&jn);
    job_from(&jn, "{\"v\":1,\"id\":\"evt_5\",\"action\":\"purchase\","
                  "\"customer\":{\"email\":\"z@example.org\"},"
                  "\"amount\":500,\"currency\":\"eur\"}");
    r = run_op(p, &pl, 0, &jn, 0, found, 2);
    is_int(r->status, STEP_DONE, "existing ecomCustomer: DONE");
    b = req_json(&r->req[1]);
    is_str(jnum(jget(b, "ecomOrder", "customerid", NULL)), "44",
           "customer of our connection chosen");
    is_str(jstr(jget(b, "ecomOrder", "externalid", NULL)), "evt_5",
           "no object: the event id");
    is_str(jnum(jget(jat(jget(b, "ecomOrder", "orderProducts", NULL), 0),
                     "price", NULL)), "500", "no items: one line");
    yajl_tree_free(b);
    run_free(r);

    /* the Stripe customer is known to AC under an older email */
    job_free(&jn);
    job_from(&jn, "{\"v\":1,\"id\":\"evt_6\",\"action\":\"purchase\","
                  "\"object\":{\"type\":\"invoice\",\"id\":\"in_6\"},"
                  "\"customer\":{\"id\":\"cus_6\",\"email\":"
                  "\"moved@example.org\"},\"amount\":100,"
                  "\"currency\":\"usd\"}");
    r = run_op(p, &pl, 0, &jn, 0, moved, 4);
    is_int(r->status, STEP_DONE, "customer under another email: DONE");
    is_str(r->req[2].url, BASE "/ecomCustomers?filters[externalid]=cus_6"
           "&filters[connectionid]=3", "found again by the Stripe id");
    b = req_json(&r->req[3]);
    is_str(jnum(jget(b, "ecomOrder", "customerid", NULL)), "66",
           "its id used");
    yajl_tree_free(b);
    run_free(r);

    plan_free(&pl);
    job_free(&j);
    job_free(&jn);
}


/* two first purchases at once: the other job created the connection */
static void
test_connection_race(void)
{
    plan            pl;
    job             j;
    op_run         *r;
    provider       *p;
    fake_response   race[] = {
        { 200, "{\"connections\":[],\"meta\":{\"total\":\"0\"}}", 0, 0 },
        { 422, "{\"errors\":[{\"title\":\"A connection with this service "
               "and externalid already exists.\"}]}", 0, 0 },
        { 200, "{\"connections\":[{\"service\":\"stripe-sync\","
               "\"id\":\"7\"}]}", 0, 0 },
        { 200, "{\"ecomCustomers\":[],\"meta\":{\"total\":\"0\"}}", 0, 0 },
        { 201, "{\"ecomCustomer\":{\"connectionid\":\"7\",\"id\":\"8\"}}",
          0, 0 },
        { 201, "{\"ecomOrder\":{\"id\":\"1\"}}", 0, 0 } };
    fake_response   twice[] = {
        { 200, "{\"connections\":[]}", 0, 0 },
        { 422, "{\"errors\":[{\"title\":\"exists\"}]}", 0, 0 },
        { 200, "{\"connections\":[]}", 0, 0 },
        { 422, "{\"errors\":[{\"title\":\"exists\"}]}", 0, 0 } };

    p = make();
    job_from(&j, record);
    plan_one(&pl, OP_PURCHASE, NULL, NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, race, 6);
    is_int(r->status, STEP_DONE, "422 on POST /connections: looked up, DONE");
    is_int(r->nreq, 6, "lookup, create (422), lookup again, customer x2, "
           "order");
    is_str(r->req[2].method, "GET", "after the 422: a GET");
    is_str(r->req[2].url, BASE "/connections?filters[service]=stripe-sync"
           "&filters[externalid]=stripe-sync", "the connection looked up");
    is_str(r->req[3].url, BASE "/ecomCustomers?filters[email]=Ada%40Example"
           ".org&filters[connectionid]=7", "the other job's connection used");
    run_free(r);
    p->ops->destroy(p);

    /* the second 422 is not retried forever */
    p = make();
    r = run_op(p, &pl, 0, &j, 0, twice, 4);
    is_int(r->status, STEP_FAIL, "422 again after the lookup: FAIL");
    is_int(r->nreq, 4, "looked up once more, not in a loop");
    run_free(r);
    p->ops->destroy(p);

    plan_free(&pl);
    job_free(&j);
}


/* p knows our connection (id 3) from the purchases */
static void
test_find_email(provider *p)
{
    plan            pl;
    job             j, jn;
    op_run         *r;
    provider       *fresh;
    fake_response   two[] = {
        { 200, "{\"ecomCustomers\":[{\"connectionid\":\"4\",\"externalid\":"
               "\"cus_F\",\"email\":\"theirs@example.org\",\"id\":\"1\"},"
               "{\"connectionid\":\"3\",\"externalid\":\"cus_F\",\"email\":"
               "\"ours@example.org\",\"id\":\"2\"}],\"meta\":{\"total\":"
               "\"2\"}}", 0, 0 } };
    fake_response   none[] = { { 200, "{\"ecomCustomers\":[],\"meta\":"
                                 "{\"total\":\"0\"}}", 0, 0 } };
    fake_response   others[] = {
        { 200, "{\"ecomCustomers\":[{\"connectionid\":\"3\",\"externalid\":"
               "\"cus_OTHER\",\"email\":\"a@example.org\",\"id\":\"5\"},"
               "{\"connectionid\":\"3\",\"externalid\":\"cus_F\",\"email\":"
               "\"\",\"id\":\"6\"}]}", 0, 0 } };
    fake_response   lim[] = { { 429, "{\"message\":\"slow down\"}", "2",
                                0 } };
    fake_response   down[] = { { 500, "", 0, 0 } };
    fake_response   auth[] = { { 401, "{\"message\":\"token " KEY " is "
                                 "invalid\"}", 0, 0 } };
    fake_response   junk[] = { { 200, "<html>oops</html>", 0, 0 } };
    fake_response   shape[] = { { 200, "{\"ecomCustomer\":{}}", 0, 0 } };

    job_from(&j, "{\"v\":1,\"id\":\"evt_F\",\"action\":"
                 "\"subscription_started\",\"customer\":{\"id\":"
                 "\"cus_F\"}}");
    plan_one(&pl, OP_FIND_EMAIL, NULL, NULL, 0);

    /* our connection unknown yet: the first e-commerce customer */
    fresh = make();
    r = run_op(fresh, &pl, 0, &j, 0, two, 1);
    is_int(r->status, STEP_DONE, "find_email: DONE");
    is_int(r->nreq, 1, "find_email: one request");
    is_str(r->req[0].method, "GET", "find_email: GET");
    is_str(r->req[0].url, BASE "/ecomCustomers?filters[externalid]=cus_F",
           "find_email: filters[externalid]=<Stripe id>");
    headers_ok(&r->req[0], "find_email");
    is_str(req_header(&r->req[0], "Accept"), "application/json",
           "find_email: Accept");
    ok(r->req[0].body == NULL, "find_email: no body");
    ok(req_header(&r->req[0], "Content-Type") == NULL,
       "find_email: no Content-Type");
    is_str(r->x.scratch, "theirs@example.org",
           "connection unknown: the first");
    is_str(r->x.err, "", "find_email: no err");
    run_free(r);
    fresh->ops->destroy(fresh);

    r = run_op(p, &pl, 0, &j, 0, two, 1);
    is_int(r->status, STEP_DONE, "find_email, our connection known: DONE");
    is_str(r->x.scratch, "ours@example.org", "ours preferred");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, none, 1);
    is_int(r->status, STEP_DONE, "not found: DONE");
    is_str(r->x.scratch, "", "not found: scratch empty");
    is_str(r->x.err, "no ActiveCampaign e-commerce customer has externalid "
           "\"cus_F\"", "not found: err says what was looked for");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, others, 1);
    is_int(r->status, STEP_DONE, "other ids, empty email: DONE");
    is_str(r->x.scratch, "", "only an entry repeating the id, with an "
           "email, counts");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, lim, 1);
    is_int(r->status, STEP_RETRY, "find_email 429: RETRY");
    is_int(r->x.retry_after_ms, 2000, "find_email 429: Retry-After 2 s");
    ok(strstr(r->x.err, "ActiveCampaign find_email: GET /ecomCustomers: "
              "HTTP 429") != NULL, "429 err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, down, 1);
    is_int(r->status, STEP_RETRY, "find_email 500: RETRY");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, auth, 1);
    is_int(r->status, STEP_FAIL, "find_email 401: FAIL");
    no_secret(r, KEY, "find_email 401 echoing the token");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, junk, 1);
    is_int(r->status, STEP_RETRY, "find_email, not JSON: RETRY");
    ok(strstr(r->x.err, "not JSON") != NULL, "junk err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, shape, 1);
    is_int(r->status, STEP_RETRY, "find_email, no array: RETRY");
    ok(strstr(r->x.err, "\"ecomCustomers\" array") != NULL, "err: %s",
       r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "check find_email: DONE");
    is_int(r->nreq, 0, "check find_email: nothing sent");
    is_str(r->x.scratch, "", "check find_email: no email");
    run_free(r);

    job_from(&jn, "{\"v\":1,\"id\":\"evt_G\",\"action\":\"refund\"}");
    r = run_op(p, &pl, 0, &jn, 0, NULL, 0);
    is_int(r->status, STEP_FAIL, "find_email without a customer id: FAIL");
    is_int(r->nreq, 0, "no customer id: nothing sent");
    ok(strstr(r->x.err, "customer id") != NULL, "err: %s", r->x.err);
    run_free(r);
    job_free(&jn);

    job_from(&jn, "{\"v\":1,\"id\":\"evt_H\",\"action\":\"refund\","
                  "\"customer\":{\"id\":\"cus_a&b c\"}}");
    r = run_op(p, &pl, 0, &jn, 0, none, 1);
    is_str(r->req[0].url, BASE "/ecomCustomers?filters[externalid]="
           "cus_a%26b%20c", "the id URL-encoded");
    run_free(r);
    job_free(&jn);

    plan_free(&pl);
    job_free(&j);
}


static void
test_errors(provider *p)
{
    plan            pl;
    job             j;
    op_run         *r;
    fake_response   e1[] = { { 422, "{\"errors\":[{\"title\":\"Email address "
                               "is invalid\",\"detail\":\"bad\",\"source\":"
                               "{\"pointer\":\"/data/attributes/email\"}}]}",
                               0, 0 } };
    fake_response   e2[] = { { 404, "{\"message\":\"No Result found\"}", 0,
                               0 } };
    fake_response   e3[] = { { 400, "{}", 0, 0 } };
    fake_response   lim[] = { { 429, "{\"message\":\"slow down\"}", "3", 0 } };
    fake_response   busy[] = { { 503, "", 0, 0 } };
    fake_response   t0[] = { { 0, NULL, 0, "Operation timed out after 30000 "
                               "milliseconds" } };
    fake_response   echo[] = { { 403, "{\"message\":\"token " KEY " is not "
                                 "allowed\"}", 0, 0 } };
    fake_response   junk[] = { { 201, "not json at all", 0, 0 } };

    job_from(&j, record);
    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);

    r = run_op(p, &pl, 0, &j, 0, e1, 1);
    is_int(r->status, STEP_FAIL, "{errors:[..]}: FAIL");
    is_str(r->x.err, "ActiveCampaign upsert: POST /contact/sync: HTTP 422: "
           "Email address is invalid; bad", "{errors} err");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, e2, 1);
    is_int(r->status, STEP_FAIL, "{message}: FAIL");
    ok(strstr(r->x.err, "HTTP 404: No Result found") != NULL,
       "{message} err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, e3, 1);
    is_int(r->status, STEP_FAIL, "{}: FAIL");
    ok(strstr(r->x.err, "HTTP 400: {} (no error details)") != NULL,
       "{} err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, lim, 1);
    is_int(r->status, STEP_RETRY, "429: RETRY");
    is_int(r->x.retry_after_ms, 3000, "429 Retry-After 3 s");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, busy, 1);
    is_int(r->status, STEP_RETRY, "503: RETRY");
    ok(strstr(r->x.err, "HTTP 503: (empty body)") != NULL, "503 err: %s",
       r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, t0, 1);
    is_int(r->status, STEP_RETRY, "timeout: RETRY");
    ok(strstr(r->x.err, "timed out") != NULL, "timeout err: %s", r->x.err);
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, echo, 1);
    is_int(r->status, STEP_FAIL, "403: FAIL");
    no_secret(r, KEY, "403 echoing the token");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, junk, 1);
    is_int(r->status, STEP_RETRY, "201 that is not JSON: RETRY");
    ok(strstr(r->x.err, "not JSON") != NULL, "junk err: %s", r->x.err);
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
    plan_field      f[1] = { { "Plan", "x" } };
    fake_response   me[] = { { 200, "{\"user\":{\"username\":\"jdoe\"}}", 0,
                               0 } };
    fake_response   me_fields[] = {
        { 200, "{\"user\":{}}", 0, 0 },
        { 200, "{\"fields\":[{\"title\":\"Other\",\"id\":\"1\"}],\"meta\":"
               "{\"total\":\"1\"}}", 0, 0 } };
    fake_response   bad[] = { { 403, "{\"message\":\"You do not have "
                                "permission\"}", 0, 0 } };
    fake_response   tags[] = { { 200, "{\"tags\":[],\"meta\":{\"total\":"
                                 "\"0\"}}", 0, 0 } };

    job_from(&j, "{\"v\":1,\"id\":\"evt_check\",\"action\":\"check\"}");

    plan_one(&pl, OP_UPSERT, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, me, 1);
    is_int(r->status, STEP_DONE, "check upsert: DONE");
    is_str(r->req[0].url, BASE "/users/me", "check: GET /users/me");
    headers_ok(&r->req[0], "check");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 1, bad, 1);
    is_int(r->status, STEP_FAIL, "check refused: FAIL");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_UPSERT, NULL, f, 1);
    r = run_op(p, &pl, 0, &j, 1, me_fields, 2);
    is_int(r->status, STEP_FAIL, "check upsert, unknown field: FAIL");
    ok(strstr(r->x.err, "\"Plan\" not found") != NULL, "err: %s", r->x.err);
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_TAG, "Not yet", NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, tags, 1);
    is_int(r->status, STEP_DONE, "check tag: DONE");
    is_str(r->x.err, "will be created", "check tag: will be created");
    is_int(r->nreq, 1, "check tag: search only, nothing created");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_PURCHASE, NULL, NULL, 0);
    r = run_op(p, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "check purchase: DONE, nothing sent");
    run_free(r);
    plan_free(&pl);

    plan_one(&pl, OP_FORM, "x", NULL, 0);
    r = run_op(p, &pl, 0, &j, 0, NULL, 0);
    is_int(r->status, STEP_SKIP, "form: SKIP");
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
    conf.provider_type = "activecampaign";
    conf.provider_api_key = KEY;
    conf.provider_api_base = "https://acct.api-us1.com/";
    conf.provider_list = "Main list";

    test_create();

    /* one provider through the sequence: caches carry over, as in life */
    p = make();
    test_upsert(p);
    test_tag(p);
    test_untag(p);
    test_automation_list(p);
    test_purchase(p);
    test_find_email(p);
    test_errors(p);
    p->ops->destroy(p);

    test_check();
    test_connection_race();

    return tap_done();
}
