/*
 * check.c - the "check" subcommand (check.h).
 *
 * Synchronous on purpose: one request at a time through http.h, paced by
 * the provider's rate limit, so a check never trips a 429.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "config.h"
#include "http.h"
#include "job.h"
#include "logging.h"
#include "plan.h"
#include "provider.h"
#include "rules.h"
#include "store.h"
#include "stripe_api.h"
#include "token_bucket.h"


#define CHECK_TIMEOUT_MS  30000

/* a record for the provider to look at: check mode sends none of it */
static const char  check_record[] =
    "{\"v\":1,\"id\":\"evt_stripe_sync_check\",\"type\":\"check\","
    "\"action\":\"check\",\"created\":0,\"livemode\":false,"
    "\"object\":{\"type\":\"check\",\"id\":\"check\"},"
    "\"customer\":{\"id\":\"cus_stripe_sync_check\","
    "\"email\":\"stripe-sync-check@example.invalid\","
    "\"name\":\"Stripe Sync Check\"}}";

typedef struct {
    http_client     *http;
    token_bucket     bucket;
    int              done;
    http_result      copy;      /* the response, kept past the callback */
    char            *body;
    char            *retry_after;
    char            *error;
} check_ctx;


static long long
check_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
check_reset(check_ctx *cx)
{
    free(cx->body);
    free(cx->retry_after);
    free(cx->error);
    cx->body = NULL;
    cx->retry_after = NULL;
    cx->error = NULL;
    memset(&cx->copy, 0, sizeof(cx->copy));
    cx->done = 0;
}


static void
check_on_response(void *data, const http_result *r)
{
    check_ctx  *cx;

    cx = data;
    cx->copy = *r;

    cx->body = malloc(r->response.body_len + 1);
    if (cx->body != NULL) {
        memcpy(cx->body, r->response.body, r->response.body_len);
        cx->body[r->response.body_len] = '\0';
    }

    cx->retry_after = r->response.retry_after
                      ? strdup(r->response.retry_after) : NULL;
    cx->error = r->response.error ? strdup(r->response.error) : NULL;

    cx->copy.response.body = cx->body ? cx->body : "";
    cx->copy.response.body_len = cx->body ? r->response.body_len : 0;
    cx->copy.response.retry_after = cx->retry_after;
    cx->copy.response.error = cx->error ? cx->error
                                        : (r->response.error ? "error"
                                                             : NULL);
    cx->done = 1;
}


/* sends req and waits for its response (in cx->copy); 0 or -1 */
static int
check_fetch(check_ctx *cx, http_request *req, int paced)
{
    long long  wait;

    check_reset(cx);

    while (paced && (wait = token_bucket_take(&cx->bucket, check_now_ms()))
                    > 0)
    {
        http_poll(cx->http, (int) wait);
    }

    if (http_submit(cx->http, req, CHECK_TIMEOUT_MS, check_on_response, cx)
        != 0)
    {
        free(req->body);
        req->body = NULL;
        return -1;
    }

    free(req->body);
    req->body = NULL;

    while (!cx->done) {
        if (http_poll(cx->http, 1000) < 0) {
            return -1;
        }
    }

    return 0;
}


typedef struct {
    op_kind      kind;
    const char  *name;
} check_op;

typedef struct {
    check_op    *v;
    size_t       n;
    size_t       cap;
} check_ops;


static int
check_ops_add(check_ops *ops, op_kind kind, const char *name)
{
    size_t     i, cap;
    check_op  *v;

    for (i = 0; i < ops->n; i++) {
        if (ops->v[i].kind == kind
            && ((ops->v[i].name == NULL && name == NULL)
                || (ops->v[i].name && name
                    && strcmp(ops->v[i].name, name) == 0)))
        {
            return 0;
        }
    }

    if (ops->n == ops->cap) {
        cap = ops->cap ? ops->cap * 2 : 16;
        v = realloc(ops->v, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        ops->v = v;
        ops->cap = cap;
    }

    ops->v[ops->n].kind = kind;
    ops->v[ops->n].name = name;
    ops->n++;

    return 0;
}


static int
check_ops_strings(check_ops *ops, op_kind kind, const cfg_strings *s)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        if (check_ops_add(ops, kind, s->v[i]) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
check_ops_rules(check_ops *ops, const cfg_rule *rules, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (check_ops_strings(ops, OP_TAG, &rules[i].tag) != 0
            || check_ops_strings(ops, OP_UNTAG, &rules[i].untag) != 0
            || check_ops_strings(ops, OP_SEQUENCE, &rules[i].sequence) != 0
            || check_ops_strings(ops, OP_FORM, &rules[i].form) != 0
            || check_ops_strings(ops, OP_LIST, &rules[i].list) != 0
            || (rules[i].nfields > 0
                && check_ops_add(ops, OP_FIELDS, NULL) != 0)
            || (rules[i].purchase
                && check_ops_add(ops, OP_PURCHASE, NULL) != 0)
            || (rules[i].track != NULL
                && check_ops_add(ops, OP_TRACK, rules[i].track) != 0))
        {
            return -1;
        }
    }

    return 0;
}


/* runs one op in check mode; 1 if it failed */
static int
check_provider_op(check_ctx *cx, provider *p, job *j, const check_op *cop,
    FILE *out)
{
    plan          pl;
    op_exec       x;
    http_request  req;
    step_status   s;
    char          label[400];
    int           guard;

    logging_op_label(cop->kind, cop->name, label, sizeof(label));

    if (!p->ops->supports(p, cop->kind)) {
        fprintf(out, "warn %s: not supported by %s, will be skipped\n",
                label, p->ops->name);
        return 0;
    }

    memset(&pl, 0, sizeof(pl));
    if (plan_add(&pl, cop->kind, cop->name, NULL, 0, -1) != 0) {
        fprintf(out, "FAIL %s: out of memory\n", label);
        return 1;
    }

    memset(&x, 0, sizeof(x));
    x.plan = &pl;
    x.index = 0;
    x.op = &pl.ops[0];
    x.job = j;
    x.check = 1;

    s = STEP_FAIL;

    for (guard = 0; guard < 100; guard++) {
        memset(&req, 0, sizeof(req));
        s = p->ops->next(p, &x, &req);

        if (s != STEP_REQUEST) {
            free(req.body);
            break;
        }

        if (check_fetch(cx, &req, 1) != 0) {
            snprintf(x.err, sizeof(x.err), "%s",
                     http_client_error(cx->http));
            s = STEP_FAIL;
            break;
        }

        s = p->ops->response(p, &x, &cx->copy.response);
        if (s != STEP_REQUEST) {
            break;
        }
    }

    plan_free(&pl);

    switch (s) {
    case STEP_DONE:
        fprintf(out, "ok   %s: %s\n", label,
                x.err[0] ? x.err
                         : cop->kind == OP_UPSERT ? "credentials accepted"
                                                  : "ok");
        return 0;

    case STEP_SKIP:
        fprintf(out, "warn %s: will be skipped: %s\n", label, x.err);
        return 0;

    case STEP_RETRY:
        fprintf(out, "FAIL %s: %s (a temporary error: try again)\n", label,
                x.err[0] ? x.err : "no answer");
        return 1;

    default:
        fprintf(out, "FAIL %s: %s\n", label, x.err[0] ? x.err : "failed");
        return 1;
    }
}


static int
check_redis(const ss_config *c, FILE *out)
{
    store  *s;
    char    err[CONFIG_ERR_MAX];
    int     failed;

    s = store_create(c, err, sizeof(err));
    if (s == NULL) {
        fprintf(out, "FAIL redis: %s\n", err);
        return 1;
    }

    store_set_quiet(s, 1);
    failed = !store_ready(s, 0) || store_ping(s) != 0;

    /* behind Sentinel: the primary's name and where it was found */
    if (failed) {
        fprintf(out, "FAIL redis %s: %s\n", store_address(s), store_error(s));
    } else {
        fprintf(out, "ok   redis %s\n", store_address(s));
    }

    store_free(s);
    return failed;
}


static int
check_stripe(check_ctx *cx, const ss_config *c, FILE *out)
{
    http_request       req;
    char               err[CONFIG_ERR_MAX];
    long long          ra;

    if (c->stripe_api_key == NULL) {
        fprintf(out, "warn stripe: no stripe.api_key_file: emails come from "
                "events and the customer map only, no line items\n");
        return 0;
    }

    if (stripe_api_probe_request(c, &req) != 0) {
        fprintf(out, "FAIL stripe: stripe.api_base is too long\n");
        return 1;
    }

    if (check_fetch(cx, &req, 0) != 0) {
        fprintf(out, "FAIL stripe: %s\n", http_client_error(cx->http));
        return 1;
    }

    if (stripe_api_classify(&cx->copy.response, "GET /v1/customers", err,
                            sizeof(err), &ra) != STRIPE_API_OK)
    {
        /* the answer may quote the key back ("Invalid API Key provided") */
        provider_redact(err, sizeof(err), c->stripe_api_key);
        fprintf(out, "FAIL stripe: %s\n", err);
        return 1;
    }

    fprintf(out, "ok   stripe: API key accepted\n");
    return 0;
}


static void
check_warn(const char *msg)
{
    fprintf(stderr, "warning: %s\n", msg);
}


int
check_run(const char *path, FILE *out, FILE *errf)
{
    ss_config            c;
    check_ctx            cx;
    check_ops            ops;
    const provider_ops  *pops;
    provider            *p;
    const cfg_rule      *preset;
    job                  j;
    size_t               npreset, i;
    char                 err[CONFIG_ERR_MAX];
    int                  failed, op_failed;
    double               rate;

    memset(&c, 0, sizeof(c));

    if (config_load(&c, path, err, sizeof(err), check_warn) != 0) {
        fprintf(errf, "%s\n", err);
        return 1;
    }

    fprintf(out, "ok   config %s: provider %s, %zu rule(s)%s%s\n", path,
            c.provider_type ? c.provider_type : "(none)", c.nrules,
            c.preset ? ", preset " : "", c.preset ? c.preset : "");
    fflush(out);

    memset(&cx, 0, sizeof(cx));
    memset(&ops, 0, sizeof(ops));
    p = NULL;
    failed = 0;

    failed |= check_redis(&c, out);
    fflush(out);

    cx.http = http_client_create(1, err, sizeof(err));
    if (cx.http == NULL) {
        fprintf(out, "FAIL http: %s\n", err);
        failed = 1;
        goto done;
    }

    failed |= check_stripe(&cx, &c, out);
    fflush(out);

    pops = provider_find(c.provider_type);
    p = pops ? pops->create(&c, err, sizeof(err)) : NULL;

    if (p == NULL) {
        fprintf(out, "FAIL provider %s: %s\n",
                c.provider_type ? c.provider_type : "(none)",
                pops ? err : "unknown provider type");
        failed = 1;
        goto done;
    }

    rate = c.provider_rate > 0 ? c.provider_rate : pops->default_rate;
    token_bucket_init(&cx.bucket, rate,
                      c.provider_burst > 0 ? c.provider_burst
                                           : pops->default_burst,
                      check_now_ms());

    preset = preset_rules(c.preset, &npreset);

    if (check_ops_add(&ops, OP_UPSERT, NULL) != 0
        || (preset != NULL && check_ops_rules(&ops, preset, npreset) != 0)
        || check_ops_rules(&ops, c.rules, c.nrules) != 0)
    {
        fprintf(out, "FAIL check: out of memory\n");
        failed = 1;
        goto done;
    }

    if (job_parse(&j, check_record, sizeof(check_record) - 1, err,
                  sizeof(err)) != 0)
    {
        fprintf(out, "FAIL check: %s\n", err);
        failed = 1;
        goto done;
    }

    for (i = 0; i < ops.n; i++) {
        op_failed = check_provider_op(&cx, p, &j, &ops.v[i], out);
        fflush(out);
        failed |= op_failed;

        /* without credentials, every lookup would fail the same way */
        if (i == 0 && op_failed) {
            break;
        }
    }

    job_free(&j);

done:

    if (p != NULL) {
        p->ops->destroy(p);
    }

    check_reset(&cx);
    http_client_free(cx.http);
    free(ops.v);
    config_free(&c);

    return failed ? 1 : 0;
}
