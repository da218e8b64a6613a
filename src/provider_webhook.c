/*
 * provider_webhook.c - the generic webhook: one signed POST per job, at the
 * plan's first step, carrying the event, the raw record and the whole plan;
 * the plan's other steps are done by that same request.
 *
 *   POST <provider.url>
 *   Content-Type: application/json
 *   X-Stripe-Sync-Event: evt_...
 *   X-Stripe-Sync-Signature: t=<unix time>,v1=<hex>
 *
 *   {"event":{"id":..,"type":..,"action":..,"created":..,"livemode":..,
 *             "customer":{"id":..,"email":..,"name":..}},
 *    "record":{ the action record as queued },
 *    "plan":[{"op":"upsert",...},{"op":"tag","name":"Buyer"}]}
 *
 * The signature is Stripe's scheme with our own header: v1 is the lowercase
 * hex HMAC-SHA256 of "<t>.<body>" keyed with the bytes of the secret file's
 * content. A receiver recomputes it over the raw body, compares in constant
 * time and refuses a t too far from its clock. Any 2xx is success.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "provider_json.h"
#include "stripe_sig.h"

extern const provider_ops  provider_webhook_ops;


static provider *
webhook_create(const ss_config *c, char *err, size_t errlen)
{
    provider  *p;

    if (c->provider_url == NULL || c->provider_url[0] == '\0') {
        snprintf(err, errlen, "webhook provider needs provider.url");
        return NULL;
    }

    if (strncmp(c->provider_url, "http://", 7) != 0
        && strncmp(c->provider_url, "https://", 8) != 0)
    {
        snprintf(err, errlen,
                 "webhook provider.url \"%.200s\" is not an http(s) URL",
                 c->provider_url);
        return NULL;
    }

    if (strlen(c->provider_url) >= HTTP_URL_MAX) {
        snprintf(err, errlen, "webhook provider.url is longer than %d bytes",
                 HTTP_URL_MAX - 1);
        return NULL;
    }

    if (c->provider_secret == NULL || c->provider_secret[0] == '\0') {
        snprintf(err, errlen,
                 "webhook provider needs provider.secret_file (the key "
                 "receivers verify X-Stripe-Sync-Signature with)");
        return NULL;
    }

    p = calloc(1, sizeof(provider));
    if (p == NULL) {
        snprintf(err, errlen, "webhook provider: out of memory");
        return NULL;
    }

    p->ops = &provider_webhook_ops;
    p->config = c;
    return p;
}


static void
webhook_destroy(provider *p)
{
    free(p);
}


static int
webhook_supports(const provider *p, op_kind kind)
{
    (void) p;

    /* the receiver decides what each operation means; it has no records
       the consumer could search for an email */
    return (int) kind >= 0 && kind < OP_KINDS && kind != OP_FIND_EMAIL;
}


static void
webhook_event(json_writer *w, const job *j)
{
    json_writer_key(w, "event");
    json_writer_map_open(w);

    json_writer_pair(w, "id", j->id);
    json_writer_pair(w, "type", j->type);
    json_writer_pair(w, "action", j->action);
    if (j->created >= 0) {
        json_writer_pair_integer(w, "created", j->created);
    }
    if (j->livemode >= 0) {
        json_writer_key(w, "livemode");
        json_writer_bool(w, j->livemode);
    }

    json_writer_key(w, "customer");
    json_writer_map_open(w);
    if (j->customer_id != NULL) {
        json_writer_pair(w, "id", j->customer_id);
    }
    if (j->email != NULL) {
        json_writer_pair(w, "email", j->email);
    }
    if (j->name != NULL) {
        json_writer_pair(w, "name", j->name);
    }
    json_writer_map_close(w);

    json_writer_map_close(w);
}


static int
webhook_body(const op_exec *x, http_request *req)
{
    json_writer  w;
    yajl_val     plan_tree;
    char        *plan_text;

    plan_text = plan_to_json(x->plan);
    if (plan_text == NULL) {
        return -1;
    }

    plan_tree = yajl_tree_parse(plan_text, NULL, 0);
    free(plan_text);
    if (plan_tree == NULL) {
        return -1;
    }

    json_writer_init(&w);
    json_writer_map_open(&w);

    webhook_event(&w, x->job);

    json_writer_key(&w, "record");
    if (x->job->record != NULL) {
        json_writer_value(&w, x->job->record);
    } else {
        json_writer_null(&w);
    }

    json_writer_key(&w, "plan");
    json_writer_value(&w, plan_tree);

    json_writer_map_close(&w);
    yajl_tree_free(plan_tree);

    return json_writer_finish(&w, req);
}


static step_status
webhook_fail(op_exec *x, http_request *req, const char *why)
{
    free(req->body);
    req->body = NULL;
    req->body_len = 0;

    snprintf(x->err, sizeof(x->err), "webhook event %s: %s",
             x->job->id ? x->job->id : "(no id)", why);
    return STEP_FAIL;
}


static step_status
webhook_next(provider *p, op_exec *x, http_request *req)
{
    const ss_config    *c;
    stripe_sig_secret   secret;
    char                hex[STRIPE_SIG_HEX_LEN + 1];
    long long           t;

    c = p->config;
    http_request_init(req, "POST");

    /* nothing to probe without sending an event; the rest rode on step 0 */
    if (x->check || x->index != 0) {
        x->err[0] = '\0';
        return STEP_DONE;
    }

    if (webhook_body(x, req) != 0) {
        return webhook_fail(x, req,
                            "cannot encode the body (invalid UTF-8?)");
    }

    t = (long long) time(NULL);
    memset(&secret, 0, sizeof(secret));     /* not prepared */
    secret.data = (const unsigned char *) c->provider_secret;
    secret.len = strlen(c->provider_secret);

    if (stripe_sig_sign(&secret, t, (const unsigned char *) req->body,
                        req->body_len, hex) != 0)
    {
        return webhook_fail(x, req, "cannot sign the body");
    }

    if (http_request_url(req, "%s", c->provider_url) != 0
        || http_request_header(req, "Content-Type: application/json") != 0
        || http_request_header(req, "X-Stripe-Sync-Signature: t=%lld,v1=%s",
                               t, hex) != 0
        || http_request_header(req, "X-Stripe-Sync-Event: %s",
                               x->job->id ? x->job->id : "") != 0)
    {
        return webhook_fail(x, req, "request does not fit");
    }

    return STEP_REQUEST;
}


static step_status
webhook_response(provider *p, op_exec *x, const http_response *res)
{
    char         what[128];
    step_status  s;

    snprintf(what, sizeof(what), "webhook event %.80s",
             x->job->id ? x->job->id : "(no id)");

    s = provider_classify(x, res, what);
    provider_redact(x->err, sizeof(x->err), p->config->provider_secret);
    return s;
}


const provider_ops  provider_webhook_ops = {
    "webhook",
    10.0,
    20,
    NULL,
    webhook_create,
    webhook_destroy,
    webhook_supports,
    webhook_next,
    webhook_response
};
