/*
 * provider_webhook.c - the generic webhook: one signed POST at step 0 with
 * the event, the record and the plan; a receiver can verify it.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "provider_test.h"
#include "stripe_sig.h"

#define URL     "https://hooks.example.org/stripe-sync?token=abc"
#define SECRET  "whsec_SECRET_webhook_42"

static const char  *record =
    "{\"v\":1,\"id\":\"evt_1\",\"type\":\"invoice.paid\","
    "\"action\":\"renewal\",\"created\":1745433906,\"livemode\":false,"
    "\"object\":{\"type\":\"invoice\",\"id\":\"in_1\"},"
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"ada@example.org\","
    "\"name\":\"Ada Lovelace\"},\"amount\":24900,\"currency\":\"usd\","
    "\"metadata\":{\"plan\":\"gold\",\"n\":1.50}}";

static ss_config  conf;


static void
test_create(void)
{
    const provider_ops  *ops;
    ss_config            c;
    char                 err[256];

    ops = provider_find("webhook");
    ok(ops != NULL, "provider_find(\"webhook\")");

    memset(&c, 0, sizeof(c));
    c.provider_secret = SECRET;
    ok(ops->create(&c, err, sizeof(err)) == NULL, "no url: refused");
    ok(strstr(err, "provider.url") != NULL, "err: %s", err);

    c.provider_url = "mailto:x@y";
    ok(ops->create(&c, err, sizeof(err)) == NULL, "not http: refused");

    c.provider_url = URL;
    c.provider_secret = NULL;
    ok(ops->create(&c, err, sizeof(err)) == NULL, "no secret: refused");
    ok(strstr(err, "secret_file") != NULL, "err: %s", err);
}


static void
test_post(void)
{
    const provider_ops  *ops;
    provider            *p;
    plan                 pl;
    job                  j;
    op_run              *r;
    yajl_val             b, ev;
    stripe_sig_secret    secret;
    const char          *sig, *reason;
    plan_field           f[1] = { { "plan", "gold" } };
    char                 err[256];
    fake_response        ok204[] = { { 204, "", 0, 0 } };
    fake_response        gone[] = { { 410, "Gone", 0, 0 } };
    fake_response        down[] = { { 503, "busy", "30", 0 } };
    fake_response        dead[] = { { 0, NULL, 0, "Could not resolve host" } };
    fake_response        moved[] = { { 301, "", 0, 0 } };
    fake_response        echo[] = { { 400, "bad signature for " SECRET, 0,
                                      0 } };

    ops = provider_find("webhook");
    p = ops->create(&conf, err, sizeof(err));
    ok(p != NULL, "created");
    ok(p->ops->supports(p, OP_TAG) && p->ops->supports(p, OP_TRACK)
       && p->ops->supports(p, OP_LIST), "supports everything");
    ok(!p->ops->supports(p, OP_FIND_EMAIL), "but find_email: no records");

    job_from(&j, record);
    memset(&pl, 0, sizeof(pl));
    plan_add(&pl, OP_UPSERT, NULL, f, 1, -1);
    plan_add(&pl, OP_TAG, "Member", NULL, 0, 0);
    plan_add(&pl, OP_PURCHASE, NULL, NULL, 0, 1);

    r = run_op(p, &pl, 0, &j, 0, ok204, 1);
    is_int(r->status, STEP_DONE, "step 0: DONE on 204");
    is_int(r->nreq, 1, "step 0: one POST");
    is_str(r->req[0].method, "POST", "POST");
    is_str(r->req[0].url, URL, "to provider.url, query kept");
    is_str(req_header(&r->req[0], "Content-Type"), "application/json",
           "Content-Type");
    is_str(req_header(&r->req[0], "X-Stripe-Sync-Event"), "evt_1",
           "X-Stripe-Sync-Event");

    sig = req_header(&r->req[0], "X-Stripe-Sync-Signature");
    ok(sig != NULL && strncmp(sig, "t=", 2) == 0 && strstr(sig, ",v1=")
       != NULL, "signature header t=..,v1=..: %s", sig ? sig : "(none)");
    memset(&secret, 0, sizeof(secret));     /* not prepared */
    secret.data = (const unsigned char *) SECRET;
    secret.len = strlen(SECRET);
    is_int(stripe_sig_verify(sig, strlen(sig),
                             (const unsigned char *) r->req[0].body,
                             r->req[0].body_len, &secret, 1, time(NULL), 300,
                             &reason),
           STRIPE_SIG_OK, "a receiver verifies it with Stripe's scheme");
    secret.data = (const unsigned char *) "whsec_other";
    secret.len = 11;
    is_int(stripe_sig_verify(sig, strlen(sig),
                             (const unsigned char *) r->req[0].body,
                             r->req[0].body_len, &secret, 1, time(NULL), 300,
                             &reason),
           STRIPE_SIG_ERR_MISMATCH, "another secret does not verify");

    b = req_json(&r->req[0]);
    ok(b != NULL, "body is JSON");
    ev = jget(b, "event", NULL);
    is_str(jstr(jget(ev, "id", NULL)), "evt_1", "event.id");
    is_str(jstr(jget(ev, "type", NULL)), "invoice.paid", "event.type");
    is_str(jstr(jget(ev, "action", NULL)), "renewal", "event.action");
    is_str(jnum(jget(ev, "created", NULL)), "1745433906", "event.created");
    ok(YAJL_IS_FALSE(jget(ev, "livemode", NULL)), "event.livemode false");
    is_str(jstr(jget(ev, "customer", "id", NULL)), "cus_1", "customer.id");
    is_str(jstr(jget(ev, "customer", "email", NULL)), "ada@example.org",
           "customer.email");
    is_str(jstr(jget(ev, "customer", "name", NULL)), "Ada Lovelace",
           "customer.name");
    is_str(jstr(jget(b, "record", "id", NULL)), "evt_1", "record: the raw "
           "record");
    is_str(jnum(jget(b, "record", "metadata", "n", NULL)), "1.50",
           "record: numbers as written");
    is_str(jstr(jget(b, "record", "metadata", "plan", NULL)), "gold",
           "record: nested members");
    is_int(jlen(jget(b, "plan", NULL)), 3, "plan: three operations");
    is_str(jstr(jget(jat(jget(b, "plan", NULL), 1), "op", NULL)), "tag",
           "plan[1].op");
    is_str(jstr(jget(jat(jget(b, "plan", NULL), 1), "name", NULL)), "Member",
           "plan[1].name");
    is_str(jstr(jget(jat(jget(b, "plan", NULL), 0), "fields", "plan", NULL)),
           "gold", "plan[0].fields");
    yajl_tree_free(b);
    run_free(r);

    r = run_op(p, &pl, 1, &j, 0, NULL, 0);
    is_int(r->status, STEP_DONE, "step 1: DONE");
    is_int(r->nreq, 0, "step 1: no request (it rode on step 0)");
    ok(!r->body_on_end, "step 1: no body left");
    run_free(r);

    r = run_op(p, &pl, 2, &j, 0, NULL, 0);
    is_int(r->nreq, 0, "step 2: no request");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, gone, 1);
    is_int(r->status, STEP_FAIL, "410: FAIL");
    is_str(r->x.err, "webhook event evt_1: HTTP 410: Gone", "410 err");
    ok(strstr(r->x.err, "token=abc") == NULL, "the URL is not in err");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, down, 1);
    is_int(r->status, STEP_RETRY, "503: RETRY");
    is_int(r->x.retry_after_ms, 30000, "503 Retry-After 30");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, dead, 1);
    is_int(r->status, STEP_RETRY, "no response: RETRY");
    is_str(r->x.err, "webhook event evt_1: Could not resolve host",
           "transport err");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, moved, 1);
    is_int(r->status, STEP_FAIL, "301 (redirects not followed): FAIL");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 0, echo, 1);
    no_secret(r, SECRET, "a receiver echoing the secret");
    run_free(r);

    r = run_op(p, &pl, 0, &j, 1, NULL, 0);
    is_int(r->status, STEP_DONE, "check: DONE");
    is_int(r->nreq, 0, "check: nothing sent");
    run_free(r);

    plan_free(&pl);
    job_free(&j);
    p->ops->destroy(p);
}


int
main(void)
{
    memset(&conf, 0, sizeof(conf));
    conf.provider_type = "webhook";
    conf.provider_url = URL;
    conf.provider_secret = SECRET;

    test_create();
    test_post();

    return tap_done();
}
