/*
 * consumer.c - the queue consumer (consumer.h).
 *
 * The loop, once per turn: timers (heartbeat, recovery of dead consumers,
 * due retries), take jobs, move every held job as far as it can go, then
 * wait in http_poll() for the network or the next timer. A job is a state
 * machine:
 *
 *   WAITING    behind an earlier job of the same customer held here, or
 *              for a free slot; then its turn in the customer's order in
 *              Redis: started, or parked there until the jobs before it
 *              (held by other consumers, or waiting for a retry) end
 *   BEGIN      count the attempt, read the steps done and the watermark
 *   ITEMS      Checkout line items from Stripe (paged)
 *   TENURE     the subscription's start, when a rule needs it
 *   PLAN       rules -> operations (an empty plan ends the job)
 *   EMAIL_*    customer map, then Stripe, then the provider's contact
 *              carrying the Stripe customer id; saved back to the map
 *   REPLAN     rules again, now that templates can use the email
 *   OPS        each operation through the provider, one request at a time;
 *              a request the platform does not dedupe (a purchase) is
 *              marked "sent" in {P}:job:<id> before it goes out
 *   STEP_SAVE  record the finished operation in {P}:job:<id>
 *   FINISH     done / stale / retry / dead: one Redis script
 *
 * Any phase that needs Redis waits (the job stays held, its entry stays in
 * the processing list) until Redis answers again.
 */

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "backoff.h"
#include "consumer.h"
#include "customer_order.h"
#include "dead_letter.h"
#include "http.h"
#include "job.h"
#include "json_tree.h"
#include "logging.h"
#include "order_sweep.h"
#include "plan.h"
#include "provider.h"
#include "rules.h"
#include "store.h"
#include "stripe_api.h"
#include "token_bucket.h"
#include "watermark.h"


#define CONSUMER_BLOCK_MS       500    /* BLMOVE wait when nothing is held */
#define CONSUMER_DUE_EVERY_MS   500    /* due retries back to the queue */
#define CONSUMER_DUE_BATCH      100
#define CONSUMER_TAKE_IDLE_MS   100    /* queue was empty: look again then */
#define CONSUMER_REDIS_WAIT_MS  100
#define CONSUMER_POLL_MAX_MS    500
#define CONSUMER_TIMEOUT_S      30     /* HTTP, when the config says 0 */

typedef struct runtime  runtime;

/* a loaded config and its provider; jobs keep the one they started with */
struct runtime {
    ss_config   *config;
    provider    *provider;
    int          refs;         /* held jobs, +1 while current */
    runtime     *next;         /* retired list */
};

typedef enum {
    PH_WAITING = 0,
    PH_BEGIN,
    PH_ITEMS,
    PH_TENURE,
    PH_PLAN,
    PH_EMAIL_MAP,
    PH_EMAIL_API,
    PH_EMAIL_PROVIDER,
    PH_EMAIL_SAVE,
    PH_REPLAN,
    PH_OPS,
    PH_STEP_SAVE,
    PH_FINISH
} job_phase;

typedef enum {
    OUT_NONE = 0,
    OUT_DONE,
    OUT_SKIPPED,        /* no rule matched: nothing to do */
    OUT_STALE,
    OUT_RETRY,
    OUT_DEAD,
    OUT_ALREADY         /* another instance of the job was done */
} job_outcome;

static const char  *outcome_names[] = {
    "none", "done", "skipped", "stale", "retry", "dead", "already_done"
};

typedef enum {
    REQ_NONE = 0,
    REQ_LINE_ITEMS,
    REQ_SUBSCRIPTION,
    REQ_CUSTOMER,
    REQ_PROVIDER
} req_kind;

/* the one-operation plan the email lookup at the provider runs */
static plan_op  find_email_op = { OP_FIND_EMAIL, NULL, NULL, 0, -1 };
static plan     find_email_plan = { &find_email_op, 1 };

typedef struct cjob  cjob;

struct cjob {
    consumer            *cs;
    cjob                *prev;
    cjob                *next;
    unsigned long long   seq;          /* customer_order's */
    runtime             *rt;

    char                *raw;          /* the entry as taken */
    size_t               raw_len;
    job                  j;
    int                  parsed;
    char                *order_key;    /* customer id, else email; NULL */
    const char          *wm_object;    /* watermark key's id, or NULL */

    job_phase            phase;
    int                  running;      /* counted in cs->running */
    long long            taken_ms;
    long long            started_ms;
    long long            wake_ms;      /* rate limited until */

    long long            attempts;
    unsigned char       *steps;        /* STORE_STEP_DONE or _SENT by an
                                          earlier attempt */
    size_t               nsteps;

    stripe_api_items     items;
    char                 email_tried[CONFIG_ERR_MAX]; /* why no email yet */
    plan                 plan;
    size_t               op;
    int                  op_started;
    int                  op_marked;    /* its "once" request marked sent */
    int                  op_skipped;
    size_t               ops_skipped;
    op_exec              x;

    req_kind             req_kind;
    int                  req_ready;    /* req filled, waits for a token */
    int                  in_flight;
    http_request         req;

    job_outcome          outcome;
    long long            retry_after_ms;
    char                 error[CONFIG_ERR_MAX];
    char                 response[DEAD_LETTER_RESPONSE_MAX];
};

struct consumer {
    char                    *path;
    runtime                 *rt;
    runtime                 *retired;
    store                   *store;
    http_client             *http;

    token_bucket             provider_bucket;
    token_bucket             stripe_bucket;
    customer_order           order;
    order_sweep              sweep;

    cjob                    *head;
    cjob                    *tail;
    size_t                   held;
    size_t                   running;

    unsigned                 generation;   /* store's, when last handled */
    long long                next_heartbeat;
    long long                next_recovery;
    long long                next_sweep;
    long long                next_due;
    long long                next_take;
    int                      redis_wait;   /* a job waits for Redis */
    int                      ended;        /* jobs ended in this pass */

    volatile sig_atomic_t    stop_requested;
    volatile sig_atomic_t    reload_requested;
    int                      stopping;
    long long                stop_deadline;

    char                     err[CONFIG_ERR_MAX];
};

typedef enum {
    RUN_AGAIN = 0,      /* the job moved: run it again */
    RUN_WAIT,           /* waits for the network, a token or Redis */
    RUN_GONE            /* finished and freed */
} run_status;


static long long
mono_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static long long
unix_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
consumer_warn(const char *msg)
{
    logging_printf("config: %s", msg);
}


/* ---- runtimes: a config and its provider ---- */

static runtime *
runtime_create(ss_config *c, char *err, size_t errlen)
{
    runtime             *rt;
    const provider_ops  *ops;

    ops = provider_find(c->provider_type);
    if (ops == NULL) {
        snprintf(err, errlen, "%s: unknown provider type \"%s\"",
                 c->file ? c->file : "config",
                 c->provider_type ? c->provider_type : "");
        return NULL;
    }

    rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    rt->provider = ops->create(c, err, errlen);
    if (rt->provider == NULL) {
        free(rt);
        return NULL;
    }

    rt->config = c;
    rt->refs = 1;

    return rt;
}


static void
runtime_free(runtime *rt)
{
    rt->provider->ops->destroy(rt->provider);
    config_free(rt->config);
    free(rt->config);
    free(rt);
}


static void
runtime_release(consumer *cs, runtime *rt)
{
    runtime  **pp;

    if (--rt->refs > 0) {
        return;
    }

    for (pp = &cs->retired; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == rt) {
            *pp = rt->next;
            break;
        }
    }

    runtime_free(rt);
}


/* init: start the buckets full; else keep their tokens and pauses */
static void
consumer_limits(consumer *cs, long long now, int init)
{
    const ss_config     *c;
    const provider_ops  *ops;
    double               rate;
    int                  burst;

    c = cs->rt->config;
    ops = cs->rt->provider->ops;

    rate = c->provider_rate > 0 ? c->provider_rate : ops->default_rate;
    burst = c->provider_burst > 0 ? c->provider_burst : ops->default_burst;

    if (init) {
        token_bucket_init(&cs->provider_bucket, rate, burst, now);
    } else {
        token_bucket_set(&cs->provider_bucket, rate, burst, now);
    }

    rate = c->stripe_rate > 0 ? c->stripe_rate : 25;
    burst = rate >= 1 ? (int) rate : 1;

    if (init) {
        token_bucket_init(&cs->stripe_bucket, rate, burst, now);
    } else {
        token_bucket_set(&cs->stripe_bucket, rate, burst, now);
    }

    if (cs->http != NULL) {
        http_client_set_max_connections(cs->http, c->concurrency);
    }
}


/* ---- create, free, signals ---- */

consumer *
consumer_create(ss_config *c, const char *path, char *err, size_t errlen)
{
    consumer   *cs;
    long long   now;

    cs = calloc(1, sizeof(*cs));
    if (cs == NULL) {
        snprintf(err, errlen, "out of memory");
        config_free(c);
        free(c);
        return NULL;
    }

    customer_order_init(&cs->order);
    order_sweep_init(&cs->sweep);

    cs->path = strdup(path);
    if (cs->path == NULL) {
        snprintf(err, errlen, "out of memory");
        config_free(c);
        free(c);
        goto failed;
    }

    cs->rt = runtime_create(c, err, errlen);
    if (cs->rt == NULL) {
        config_free(c);
        free(c);
        goto failed;
    }

    cs->store = store_create(c, err, errlen);
    if (cs->store == NULL) {
        goto failed;
    }

    cs->http = http_client_create(c->concurrency, err, errlen);
    if (cs->http == NULL) {
        goto failed;
    }

    now = mono_ms();
    consumer_limits(cs, now, 1);

    return cs;

failed:

    consumer_free(cs);
    return NULL;
}


static void cjob_free(consumer *cs, cjob *cj);


void
consumer_free(consumer *cs)
{
    runtime  *rt;

    if (cs == NULL) {
        return;
    }

    /* first: transfers go without their callbacks, which name jobs */
    http_client_free(cs->http);
    cs->http = NULL;

    while (cs->head != NULL) {
        cjob_free(cs, cs->head);
    }

    while (cs->retired != NULL) {
        rt = cs->retired;
        cs->retired = rt->next;
        runtime_free(rt);
    }

    if (cs->rt != NULL) {
        runtime_free(cs->rt);
    }

    store_free(cs->store);
    customer_order_free(&cs->order);
    order_sweep_free(&cs->sweep);
    free(cs->path);
    free(cs);
}


void
consumer_stop(consumer *cs)
{
    cs->stop_requested = 1;
}


void
consumer_reload(consumer *cs)
{
    cs->reload_requested = 1;
}


const char *
consumer_error(const consumer *cs)
{
    return cs->err;
}


/* ---- jobs: hold, log, free ---- */

static int
cjob_enrich_wants(const job *j, const char *what)
{
    static const char  *path[] = { "enrich", NULL };
    yajl_val            a, v;
    size_t              i;
    const char         *s;

    a = yajl_tree_get(j->record, path, yajl_t_array);
    if (a == NULL) {
        return 0;
    }

    for (i = 0; i < YAJL_GET_ARRAY(a)->len; i++) {
        v = YAJL_GET_ARRAY(a)->values[i];
        s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
        if (s != NULL && strcmp(s, what) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
cjob_hold(consumer *cs, char *raw, size_t len, long long now)
{
    cjob         *cj;
    const char   *key;
    char          err[CONFIG_ERR_MAX];

    cj = calloc(1, sizeof(*cj));
    if (cj == NULL) {
        /* the entry stays in the processing list: recovered at restart */
        logging_printf("out of memory: a taken job waits in the processing "
                       "list for the next start");
        free(raw);
        return;
    }

    cj->cs = cs;
    cj->raw = raw;
    cj->raw_len = len;
    cj->taken_ms = now;
    cj->rt = cs->rt;
    cj->rt->refs++;

    key = NULL;

    if (job_parse(&cj->j, raw, len, err, sizeof(err)) != 0) {
        /* malformed: dead-lettered at once, never retried */
        snprintf(cj->error, sizeof(cj->error), "%s", err);
        cj->outcome = OUT_DEAD;
        cj->phase = PH_FINISH;

    } else {
        cj->parsed = 1;
        cj->phase = PH_WAITING;
        key = cj->j.customer_id ? cj->j.customer_id : cj->j.email;

        if (watermark_applies(cj->j.action)) {
            cj->wm_object = cj->j.subscription ? cj->j.subscription
                                               : cj->j.object_id;
        }
    }

    cj->seq = customer_order_add(&cs->order, key);
    if (cj->seq != 0 && key != NULL && key[0] != '\0') {
        cj->order_key = strdup(key);
        if (cj->order_key == NULL) {
            customer_order_remove(&cs->order, cj->seq);
            cj->seq = 0;
        }
    }

    if (cj->seq == 0) {
        logging_printf("out of memory: a taken job waits in the processing "
                       "list for the next start");
        if (cj->parsed) {
            job_free(&cj->j);
        }
        runtime_release(cs, cj->rt);
        free(cj->raw);
        free(cj);
        return;
    }

    cj->prev = cs->tail;
    if (cs->tail != NULL) {
        cs->tail->next = cj;
    } else {
        cs->head = cj;
    }
    cs->tail = cj;
    cs->held++;

    /* malformed entries need no slot: only a Redis write. The slot is
       the job's while it asks for its turn (PH_WAITING), so the taking
       stops when the slots are full */
    if (cj->phase == PH_WAITING
        && cs->running < (size_t) cs->rt->config->concurrency
        && customer_order_may_start(&cs->order, cj->seq))
    {
        cj->running = 1;
        cs->running++;
    }
}


static void
cjob_free(consumer *cs, cjob *cj)
{
    if (cj->prev != NULL) {
        cj->prev->next = cj->next;
    } else {
        cs->head = cj->next;
    }

    if (cj->next != NULL) {
        cj->next->prev = cj->prev;
    } else {
        cs->tail = cj->prev;
    }

    cs->held--;
    if (cj->running) {
        cs->running--;
    }

    customer_order_remove(&cs->order, cj->seq);

    if (cj->parsed) {
        job_free(&cj->j);
    }

    plan_free(&cj->plan);
    stripe_api_items_free(&cj->items);
    free(cj->req.body);
    free(cj->steps);
    free(cj->order_key);
    free(cj->raw);
    runtime_release(cs, cj->rt);
    free(cj);
}


/* a value for the log line: printable, no spaces or quotes, bounded */
static const char *
log_token(const char *s, char *buf, size_t len)
{
    size_t  i;

    if (s == NULL || s[0] == '\0') {
        return "-";
    }

    for (i = 0; s[i] != '\0' && i + 1 < len; i++) {
        buf[i] = (unsigned char) s[i] <= ' ' || s[i] == '"' || s[i] == 0x7f
                 ? '?' : s[i];
    }

    buf[i] = '\0';
    return buf;
}


/*
 * The one line per finished job:
 *   event=evt_1 action=purchase customer=cus_1 email=a@example.org ops=3
 *   outcome=done attempt=1 ms=180 [retry_in=20s] [error="..."]
 */
static void
cjob_log(cjob *cj, long long now, long long retry_in_ms)
{
    char         ev[128], ac[64], cu[128], em[300], retry[48];
    char         quoted[1100], tail[1200];
    const job   *j;
    long long    since;

    j = cj->parsed ? &cj->j : NULL;
    since = cj->started_ms ? cj->started_ms : cj->taken_ms;

    retry[0] = '\0';
    if (retry_in_ms >= 0) {
        snprintf(retry, sizeof(retry), " retry_in=%llds",
                 (retry_in_ms + 999) / 1000);
    }

    tail[0] = '\0';
    if (cj->error[0] != '\0') {
        snprintf(tail, sizeof(tail), " %s=\"%s\"",
                 cj->outcome == OUT_STALE ? "reason" : "error",
                 logging_quote(cj->error, quoted, sizeof(quoted)));
    }

    logging_printf("event=%s action=%s customer=%s email=%s ops=%zu "
                   "outcome=%s attempt=%lld ms=%lld%s%s",
                   log_token(j ? j->id : NULL, ev, sizeof(ev)),
                   log_token(j ? j->action : NULL, ac, sizeof(ac)),
                   log_token(j ? j->customer_id : NULL, cu, sizeof(cu)),
                   log_token(j ? j->email : NULL, em, sizeof(em)),
                   cj->plan.nops, outcome_names[cj->outcome], cj->attempts,
                   now - since, retry, tail);
}


/*
 * Replaces every configured credential in s with "[redacted]". An error or
 * a response can quote what the server was sent (an API answering "Invalid
 * API Key provided: sk_..."): none may reach the log or a dead letter.
 */
static void
cjob_redact(const ss_config *c, char *s, size_t len)
{
    provider_redact(s, len, c->provider_api_key);
    provider_redact(s, len, c->provider_oauth_token);
    provider_redact(s, len, c->provider_secret);
    provider_redact(s, len, c->stripe_api_key);
    provider_redact(s, len, c->redis_password);
}


/* the job ends with outcome; err says why (printf) */
static void
cjob_end(cjob *cj, job_outcome outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cjob_end(cjob *cj, job_outcome outcome, const char *fmt, ...)
{
    va_list  ap;

    cj->outcome = outcome;
    cj->phase = PH_FINISH;

    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(cj->error, sizeof(cj->error), fmt, ap);
        va_end(ap);

        cjob_redact(cj->rt->config, cj->error, sizeof(cj->error));
    }
}


/* keeps the start of a failed response for the dead letter, no secret */
static void
cjob_keep_response(cjob *cj, const http_response *res)
{
    size_t  n;

    if (res->status >= 200 && res->status <= 299) {
        cj->response[0] = '\0';
        return;
    }

    n = res->body_len < sizeof(cj->response) - 1 ? res->body_len
                                                 : sizeof(cj->response) - 1;
    memcpy(cj->response, res->body, n);
    cj->response[n] = '\0';

    cjob_redact(cj->rt->config, cj->response, sizeof(cj->response));
}


/* ---- HTTP: submit when a token is free; callbacks move the job on ---- */

static void cjob_on_stripe(void *data, const http_result *r);
static void cjob_on_provider(void *data, const http_result *r);
static run_status cjob_wait_redis(consumer *cs);
static void cjob_email_at_provider(cjob *cj, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


static void
cjob_request(cjob *cj, req_kind kind)
{
    cj->req_kind = kind;
    cj->req_ready = 1;
}


static run_status
cjob_submit(consumer *cs, cjob *cj, long long now)
{
    const ss_config  *c;
    token_bucket     *b;
    long long         wait;
    long              timeout;
    int               rc;

    c = cj->rt->config;
    b = cj->req_kind == REQ_PROVIDER ? &cs->provider_bucket
                                     : &cs->stripe_bucket;

    /* a request the platform does not dedupe: Redis first learns it may
       have been applied, so a crash or a lost answer leads the next
       attempt to look before sending it twice */
    if (cj->req_kind == REQ_PROVIDER && cj->req.once && !cj->op_marked) {
        if (!store_ready(cs->store, now)
            || store_step_sent(cs->store, cj->j.id, cj->op) != 0)
        {
            return cjob_wait_redis(cs);
        }
        cj->op_marked = 1;
    }

    wait = token_bucket_take(b, now);
    if (wait > 0) {
        cj->wake_ms = now + wait;
        return RUN_WAIT;
    }

    cj->wake_ms = 0;

    if (cj->req_kind == REQ_PROVIDER) {
        timeout = c->provider_timeout > 0 ? c->provider_timeout
                                          : CONSUMER_TIMEOUT_S;
        rc = http_submit(cs->http, &cj->req, timeout * 1000L,
                         cjob_on_provider, cj);
    } else {
        timeout = c->stripe_timeout > 0 ? c->stripe_timeout
                                        : CONSUMER_TIMEOUT_S;
        rc = http_submit(cs->http, &cj->req, timeout * 1000L,
                         cjob_on_stripe, cj);
    }

    free(cj->req.body);
    cj->req.body = NULL;
    cj->req_ready = 0;

    if (rc != 0) {
        /* not the URL: a webhook's may hold a token */
        cjob_end(cj, OUT_RETRY, "cannot send the request: %s",
                 http_client_error(cs->http));
        return RUN_AGAIN;
    }

    cj->in_flight = 1;
    return RUN_WAIT;
}


static void
cjob_on_stripe(void *data, const http_result *r)
{
    cjob               *cj;
    consumer           *cs;
    const job          *j;
    stripe_api_status   st;
    long long           ra, start;
    char                err[CONFIG_ERR_MAX], what[320];
    char               *email, *name;
    int                 rc;

    cj = data;
    cs = cj->cs;
    j = &cj->j;
    cj->in_flight = 0;

    cjob_keep_response(cj, &r->response);

    switch (cj->req_kind) {
    case REQ_LINE_ITEMS:
        snprintf(what, sizeof(what), "Stripe: line items of %s",
                 j->object_id);
        break;
    case REQ_SUBSCRIPTION:
        snprintf(what, sizeof(what), "Stripe: subscription %s",
                 j->subscription);
        break;
    default:
        snprintf(what, sizeof(what), "Stripe: customer %s", j->customer_id);
    }

    st = stripe_api_classify(&r->response, what, err, sizeof(err), &ra);

    if (st == STRIPE_API_RETRY) {
        if (ra > 0) {
            token_bucket_pause(&cs->stripe_bucket, mono_ms() + ra);
        }
        cj->retry_after_ms = ra > 0 ? ra : 0;
        cjob_end(cj, OUT_RETRY, "%s", err);
        return;
    }

    if (st == STRIPE_API_FAIL) {
        if (cj->req_kind == REQ_CUSTOMER) {
            cjob_email_at_provider(cj, "not in the event or the customer "
                                   "map; %s", err);
        } else {
            cjob_end(cj, OUT_DEAD, "%s", err);
        }
        return;
    }

    /*
     * A 2xx that is not JSON we can read (cut short, over the limit, a
     * proxy's HTML page, a nesting bomb) says nothing about the customer:
     * transient, retried like a provider's. JSON of the wrong shape below
     * is permanent.
     */
    if (r->truncated) {
        cjob_end(cj, OUT_RETRY, "%s: HTTP %ld: response over %d bytes",
                 what, r->response.status, HTTP_BODY_MAX);
        return;
    }

    if (!dead_letter_is_json(r->response.body, r->response.body_len)) {
        provider_excerpt(r->response.body, r->response.body_len, err,
                         sizeof(err) < 200 ? sizeof(err) : 200);
        cjob_end(cj, OUT_RETRY, "%s: HTTP %ld: response is not JSON we can "
                 "read: %s", what, r->response.status, err);
        return;
    }

    switch (cj->req_kind) {

    case REQ_LINE_ITEMS:
        if (stripe_api_parse_line_items(r->response.body,
                                        r->response.body_len, &cj->items,
                                        err, sizeof(err)) != 0)
        {
            cjob_end(cj, OUT_DEAD, "%s: %s", what, err);
            return;
        }

        /* PH_ITEMS asks for the next page; a bounded number of them */
        if (cj->items.has_more
            && cj->items.pages < STRIPE_API_LINE_ITEMS_MAX / 100)
        {
            return;
        }

        if (job_set_items(&cj->j, cj->items.v, cj->items.n) != 0) {
            cjob_end(cj, OUT_RETRY, "out of memory");
            return;
        }

        cj->j.items_enriched = 1;
        stripe_api_items_free(&cj->items);
        cj->phase = PH_TENURE;
        return;

    case REQ_SUBSCRIPTION:
        if (stripe_api_parse_subscription(r->response.body,
                                          r->response.body_len, &start,
                                          err, sizeof(err)) != 0)
        {
            cjob_end(cj, OUT_DEAD, "%s: %s", what, err);
            return;
        }

        cj->j.subscription_start = start;
        cj->phase = PH_PLAN;
        return;

    default:
        if (stripe_api_parse_customer(r->response.body, r->response.body_len,
                                      &email, &name, err, sizeof(err)) != 0)
        {
            cjob_end(cj, OUT_DEAD, "%s: %s", what, err);
            return;
        }

        if (email == NULL) {
            free(name);
            cjob_email_at_provider(cj, "not in the event, the customer map "
                                   "or Stripe's customer (none, or "
                                   "deleted)");
            return;
        }

        rc = job_set_email(&cj->j, email);
        if (rc == 0 && name != NULL && cj->j.name == NULL) {
            rc = job_set_name(&cj->j, name);
        }

        free(email);
        free(name);

        if (rc != 0) {
            cjob_end(cj, OUT_RETRY, "out of memory");
            return;
        }

        cj->phase = PH_EMAIL_SAVE;
        return;
    }
}


/* what a provider step said: the op is finished, or the job ends */
static void
cjob_step_status(cjob *cj, step_status s)
{
    consumer  *cs;
    provider  *p;
    char       name[400], ev[128], q[600];

    cs = cj->cs;
    p = cj->rt->provider;

    switch (s) {

    case STEP_REQUEST:
        return;     /* PH_OPS calls next() again */

    case STEP_DONE:
        if (cj->x.resent && cj->x.err[0] != '\0') {
            /* what the look before sending again found */
            logging_op_label(cj->x.op->kind, cj->x.op->name, name,
                             sizeof(name));
            logging_printf("event=%s operation %s sent by an earlier "
                           "attempt: %s", log_token(cj->j.id, ev, sizeof(ev)),
                           name, logging_quote(cj->x.err, q, sizeof(q)));
        }
        cj->op_skipped = 0;
        cj->phase = PH_STEP_SAVE;
        return;

    case STEP_SKIP:
        logging_op_label(cj->x.op->kind, cj->x.op->name, name, sizeof(name));
        logging_printf("event=%s operation %s skipped by %s: %s",
                       log_token(cj->j.id, ev, sizeof(ev)), name,
                       p->ops->name,
                       logging_quote(cj->x.err, q, sizeof(q)));
        cj->op_skipped = 1;
        cj->phase = PH_STEP_SAVE;
        return;

    case STEP_RETRY:
        if (cj->x.retry_after_ms > 0) {
            /* the platform said "slow down": it says so for everyone */
            token_bucket_pause(&cs->provider_bucket,
                               mono_ms() + cj->x.retry_after_ms);
            logging_printf("provider %s: asked to wait %lld ms; pausing all "
                           "its requests", p->ops->name,
                           cj->x.retry_after_ms);
        }
        cj->retry_after_ms = cj->x.retry_after_ms > 0 ? cj->x.retry_after_ms
                                                      : 0;
        cjob_end(cj, OUT_RETRY, "%s", cj->x.err[0] ? cj->x.err
                                                   : "provider: retry");
        return;

    case STEP_FAIL:
    default:
        cjob_end(cj, OUT_DEAD, "%s", cj->x.err[0] ? cj->x.err
                                                  : "provider: failed");
        return;
    }
}


/* what the provider's find_email said: the email, or why there is none */
static void
cjob_email_step(cjob *cj, step_status s)
{
    provider  *p;
    char       ev[128], cu[128];

    p = cj->rt->provider;
    cj->x.scratch[sizeof(cj->x.scratch) - 1] = '\0';

    switch (s) {

    case STEP_REQUEST:
        return;     /* PH_EMAIL_PROVIDER calls next() again */

    case STEP_DONE:
        if (cj->x.scratch[0] == '\0') {
            break;              /* not found */
        }

        if (job_set_email(&cj->j, cj->x.scratch) != 0) {
            cjob_end(cj, OUT_RETRY, "out of memory");
            return;
        }

        logging_printf("event=%s customer=%s: email found at %s by the "
                       "Stripe customer id",
                       log_token(cj->j.id, ev, sizeof(ev)),
                       log_token(cj->j.customer_id, cu, sizeof(cu)),
                       p->ops->name);
        cj->phase = PH_EMAIL_SAVE;
        return;

    case STEP_SKIP:
    case STEP_FAIL:
        break;

    case STEP_RETRY:
    default:
        cjob_step_status(cj, s);
        return;
    }

    cjob_end(cj, OUT_DEAD, "no email for customer %s (%s; %s)",
             cj->j.customer_id, cj->email_tried,
             cj->x.err[0] != '\0' ? cj->x.err : "not found");
}


static void
cjob_on_provider(void *data, const http_result *r)
{
    cjob          *cj;
    provider      *p;
    step_status    s;

    cj = data;
    p = cj->rt->provider;
    cj->in_flight = 0;

    cjob_keep_response(cj, &r->response);

    s = p->ops->response(p, &cj->x, &r->response);

    if (cj->phase == PH_EMAIL_PROVIDER) {
        cjob_email_step(cj, s);
    } else {
        cjob_step_status(cj, s);
    }
}


/* ---- phases ---- */

static run_status
cjob_wait_redis(consumer *cs)
{
    cs->redis_wait = 1;
    return RUN_WAIT;
}


/*
 * PH_WAITING: a free slot, no earlier job of the customer held here, then
 * the job's turn in its customer's order in Redis: it starts, or it is
 * parked there (and leaves this consumer) until the jobs before it end.
 */
static run_status
cjob_turn(consumer *cs, cjob *cj, long long now)
{
    char  head[200], ev[128], cu[300], hd[200];
    int   rc;

    if (cs->stopping) {
        if (cj->running) {
            /* not started: it stays in the processing list */
            cj->running = 0;
            cs->running--;
        }
        return RUN_WAIT;
    }

    if (!cj->running) {
        if (cs->running >= (size_t) cj->rt->config->concurrency
            || !customer_order_may_start(&cs->order, cj->seq))
        {
            return RUN_WAIT;
        }

        cj->running = 1;
        cs->running++;
    }

    if (cj->order_key != NULL) {
        if (!store_ready(cs->store, now)) {
            return cjob_wait_redis(cs);
        }

        rc = store_order_claim(cs->store, cj->order_key, cj->j.id, cj->raw,
                               cj->raw_len, head, sizeof(head));

        if (rc < 0) {
            return cjob_wait_redis(cs);
        }

        if (rc == STORE_ORDER_PARKED) {
            logging_printf("event=%s customer=%s: waits for %s, before it in "
                           "the customer's order: parked",
                           log_token(cj->j.id, ev, sizeof(ev)),
                           log_token(cj->order_key, cu, sizeof(cu)),
                           log_token(head, hd, sizeof(hd)));
            cjob_free(cs, cj);
            return RUN_GONE;
        }

        if (rc == STORE_ORDER_GONE) {
            logging_printf("event=%s was no longer in this consumer's "
                           "processing list (recovered by another "
                           "consumer?): left to it",
                           log_token(cj->j.id, ev, sizeof(ev)));
            cjob_free(cs, cj);
            return RUN_GONE;
        }
    }

    cj->phase = PH_BEGIN;
    cj->started_ms = now;
    return RUN_AGAIN;
}


static run_status
cjob_begin(consumer *cs, cjob *cj, long long now)
{
    store_job_state   st;
    const ss_config  *c;

    if (!store_ready(cs->store, now)
        || store_job_begin(cs->store, cj->j.id, cj->wm_object, &st) != 0)
    {
        return cjob_wait_redis(cs);
    }

    c = cj->rt->config;
    cj->attempts = st.attempts;

    if (st.attempts == 0) {
        cjob_end(cj, OUT_ALREADY, "another instance of this job was done");
        store_job_state_free(&st);
        return RUN_AGAIN;
    }

    free(cj->steps);
    cj->steps = st.steps;
    cj->nsteps = st.nsteps;
    st.steps = NULL;

    if (cj->wm_object != NULL && cj->j.created >= 0
        && watermark_is_stale(st.watermark, cj->j.created))
    {
        cjob_end(cj, OUT_STALE, "created %lld, before the watermark %s of "
                 "%s", cj->j.created, st.watermark, cj->wm_object);
        store_job_state_free(&st);
        return RUN_AGAIN;
    }

    store_job_state_free(&st);

    if (cj->attempts > c->retry_max_attempts && c->retry_max_attempts > 0) {
        /* earlier attempts ended without a verdict: crashes, kills */
        cjob_end(cj, OUT_DEAD, "attempt %lld is over retry.max_attempts %d",
                 cj->attempts, c->retry_max_attempts);
        return RUN_AGAIN;
    }

    cj->phase = PH_ITEMS;
    return RUN_AGAIN;
}


static run_status
cjob_items(cjob *cj)
{
    const ss_config  *c;

    c = cj->rt->config;

    if (cj->j.items_enriched || c->stripe_api_key == NULL
        || cj->j.object_id == NULL || !cjob_enrich_wants(&cj->j, "line_items"))
    {
        cj->phase = PH_TENURE;
        return RUN_AGAIN;
    }

    if (stripe_api_line_items_request(c, cj->j.object_id,
                                      cj->items.pages ? cj->items.last_id
                                                      : NULL,
                                      &cj->req) != 0)
    {
        cjob_end(cj, OUT_DEAD, "Checkout Session id %s does not fit in a URL",
                 cj->j.object_id);
        return RUN_AGAIN;
    }

    cjob_request(cj, REQ_LINE_ITEMS);
    return RUN_AGAIN;
}


static run_status
cjob_tenure(cjob *cj)
{
    const ss_config  *c;

    c = cj->rt->config;

    if (cj->j.subscription_start >= 0 || cj->j.subscription == NULL
        || c->stripe_api_key == NULL
        || !(rules_needs(c, &cj->j) & RULES_NEED_TENURE))
    {
        cj->phase = PH_PLAN;
        return RUN_AGAIN;
    }

    if (stripe_api_subscription_request(c, cj->j.subscription, &cj->req)
        != 0)
    {
        cjob_end(cj, OUT_DEAD, "subscription id %s does not fit in a URL",
                 cj->j.subscription);
        return RUN_AGAIN;
    }

    cjob_request(cj, REQ_SUBSCRIPTION);
    return RUN_AGAIN;
}


/* first: without the email, so events no rule wants never need one */
static run_status
cjob_plan(cjob *cj, int again)
{
    char  err[CONFIG_ERR_MAX];

    plan_free(&cj->plan);
    memset(&cj->plan, 0, sizeof(cj->plan));

    if (rules_plan(cj->rt->config, &cj->j, &cj->plan, err, sizeof(err))
        != 0)
    {
        cjob_end(cj, OUT_DEAD, "rules: %s", err);
        return RUN_AGAIN;
    }

    if (cj->plan.nops == 0) {
        cjob_end(cj, OUT_SKIPPED, NULL);
        return RUN_AGAIN;
    }

    if (!again && cj->j.email == NULL) {
        cj->phase = PH_EMAIL_MAP;
        return RUN_AGAIN;
    }

    cj->phase = PH_OPS;
    return RUN_AGAIN;
}


static run_status
cjob_email_map(consumer *cs, cjob *cj, long long now)
{
    char         *json;
    yajl_val      v, e, n;
    int           rc;
    static const char  *email_path[] = { "email", NULL };
    static const char  *name_path[] = { "name", NULL };

    if (cj->j.customer_id == NULL) {
        cjob_end(cj, OUT_DEAD, "no email, and no customer id to look one up");
        return RUN_AGAIN;
    }

    if (!store_ready(cs->store, now)) {
        return cjob_wait_redis(cs);
    }

    rc = store_customer_get(cs->store, cj->j.customer_id, &json);
    if (rc < 0) {
        return cjob_wait_redis(cs);
    }

    if (rc == 1) {
        /* anyone with Redis access can write the map: no stack bomb */
        v = json_nesting_exceeds(json, strlen(json), JOB_DEPTH_MAX)
            ? NULL : yajl_tree_parse(json, NULL, 0);
        free(json);

        e = v ? yajl_tree_get(v, email_path, yajl_t_string) : NULL;
        n = v ? yajl_tree_get(v, name_path, yajl_t_string) : NULL;

        rc = 0;
        if (e != NULL && YAJL_GET_STRING(e)[0] != '\0') {
            rc = job_set_email(&cj->j, YAJL_GET_STRING(e));
            if (rc == 0 && n != NULL && cj->j.name == NULL
                && YAJL_GET_STRING(n)[0] != '\0')
            {
                rc = job_set_name(&cj->j, YAJL_GET_STRING(n));
            }
        }

        if (v != NULL) {
            yajl_tree_free(v);
        }

        if (rc != 0) {
            cjob_end(cj, OUT_RETRY, "out of memory");
            return RUN_AGAIN;
        }

        if (cj->j.email != NULL) {
            cj->phase = PH_REPLAN;
            return RUN_AGAIN;
        }
    }

    if (cj->rt->config->stripe_api_key == NULL) {
        cjob_email_at_provider(cj, "not in the event or the customer map; "
                               "no Stripe key to ask");
        return RUN_AGAIN;
    }

    cj->phase = PH_EMAIL_API;
    return RUN_AGAIN;
}


static run_status
cjob_email_api(cjob *cj)
{
    if (stripe_api_customer_request(cj->rt->config, cj->j.customer_id,
                                    &cj->req) != 0)
    {
        cjob_end(cj, OUT_DEAD, "customer id %s does not fit in a URL",
                 cj->j.customer_id);
        return RUN_AGAIN;
    }

    cjob_request(cj, REQ_CUSTOMER);
    return RUN_AGAIN;
}


/*
 * The last source (SPEC 6): the provider's contact carrying the Stripe
 * customer id, when the provider can search by it. fmt says why the
 * sources before gave none, for the dead letter.
 */
static void
cjob_email_at_provider(cjob *cj, const char *fmt, ...)
{
    provider  *p;
    va_list    ap;

    p = cj->rt->provider;

    va_start(ap, fmt);
    vsnprintf(cj->email_tried, sizeof(cj->email_tried), fmt, ap);
    va_end(ap);

    if (!p->ops->supports(p, OP_FIND_EMAIL)) {
        cjob_end(cj, OUT_DEAD, "no email for customer %s (%s; %s cannot "
                 "look one up by Stripe customer id)", cj->j.customer_id,
                 cj->email_tried, p->ops->name);
        return;
    }

    memset(&cj->x, 0, sizeof(cj->x));
    cj->x.plan = &find_email_plan;
    cj->x.index = 0;
    cj->x.op = &find_email_plan.ops[0];
    cj->x.job = &cj->j;
    cj->phase = PH_EMAIL_PROVIDER;
}


static run_status
cjob_email_provider(cjob *cj)
{
    provider     *p;
    step_status   s;

    p = cj->rt->provider;

    memset(&cj->req, 0, sizeof(cj->req));
    s = p->ops->next(p, &cj->x, &cj->req);

    if (s == STEP_REQUEST) {
        cjob_request(cj, REQ_PROVIDER);
        return RUN_AGAIN;
    }

    free(cj->req.body);
    cj->req.body = NULL;

    cjob_email_step(cj, s);
    return RUN_AGAIN;
}


/* {"email":..,"name":..}, as the module writes it */
static char *
customer_json(const job *j)
{
    yajl_gen         g;
    const unsigned char  *buf;
    size_t           len;
    char            *out;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NULL;
    }

    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *) "email", 5);
    yajl_gen_string(g, (const unsigned char *) j->email, strlen(j->email));

    if (j->name != NULL) {
        yajl_gen_string(g, (const unsigned char *) "name", 4);
        yajl_gen_string(g, (const unsigned char *) j->name, strlen(j->name));
    }

    yajl_gen_map_close(g);

    out = NULL;
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        out = strndup((const char *) buf, len);
    }

    yajl_gen_free(g);
    return out;
}


static run_status
cjob_email_save(consumer *cs, cjob *cj, long long now)
{
    char  *json;

    /* a cache: when Redis cannot take it now, the next event refetches */
    if (store_ready(cs->store, now)) {
        json = customer_json(&cj->j);
        if (json != NULL) {
            store_customer_set(cs->store, cj->j.customer_id, json);
            free(json);
        }
    }

    cj->phase = PH_REPLAN;
    return RUN_AGAIN;
}


static run_status
cjob_ops(cjob *cj)
{
    provider   *p;
    plan_op    *op;
    step_status s;
    char        name[400], ev[128];

    p = cj->rt->provider;

    if (cj->op >= cj->plan.nops) {
        cjob_end(cj, OUT_DONE, NULL);
        return RUN_AGAIN;
    }

    if (!cj->op_started && cj->op < cj->nsteps
        && cj->steps[cj->op] == STORE_STEP_DONE)
    {
        cj->op++;       /* done by an earlier attempt */
        return RUN_AGAIN;
    }

    op = &cj->plan.ops[cj->op];

    if (!cj->op_started) {
        if (!p->ops->supports(p, op->kind)) {
            logging_op_label(op->kind, op->name, name, sizeof(name));
            logging_printf("event=%s operation %s not supported by %s, "
                           "skipped", log_token(cj->j.id, ev, sizeof(ev)),
                           name, p->ops->name);
            cj->op_skipped = 1;
            cj->phase = PH_STEP_SAVE;
            return RUN_AGAIN;
        }

        memset(&cj->x, 0, sizeof(cj->x));
        cj->x.plan = &cj->plan;
        cj->x.index = cj->op;
        cj->x.op = op;
        cj->x.job = &cj->j;
        cj->x.resent = cj->op < cj->nsteps
                       && cj->steps[cj->op] == STORE_STEP_SENT;
        cj->op_started = 1;
        cj->op_marked = 0;
    }

    memset(&cj->req, 0, sizeof(cj->req));
    s = p->ops->next(p, &cj->x, &cj->req);

    if (s == STEP_REQUEST) {
        cjob_request(cj, REQ_PROVIDER);
        return RUN_AGAIN;
    }

    free(cj->req.body);
    cj->req.body = NULL;

    cjob_step_status(cj, s);
    return RUN_AGAIN;
}


static run_status
cjob_step_save(consumer *cs, cjob *cj, long long now)
{
    if (!store_ready(cs->store, now)
        || store_step_done(cs->store, cj->j.id, cj->op, cj->op_skipped) != 0)
    {
        return cjob_wait_redis(cs);
    }

    if (cj->op_skipped) {
        cj->ops_skipped++;
    }

    cj->op++;
    cj->op_started = 0;
    cj->op_skipped = 0;
    cj->phase = PH_OPS;

    return RUN_AGAIN;
}


static run_status
cjob_finish(consumer *cs, cjob *cj, long long now)
{
    const ss_config  *c;
    char             *letter;
    const char       *wm;
    long long         delay;
    int               rc;
    char              err[CONFIG_ERR_MAX + 64];
    size_t            n;

    if (!store_ready(cs->store, now)) {
        return cjob_wait_redis(cs);
    }

    c = cj->rt->config;
    delay = -1;

    if (cj->outcome == OUT_RETRY && cj->attempts >= c->retry_max_attempts) {
        n = (size_t) snprintf(err, sizeof(err), "gave up after %lld "
                              "attempts: %s", cj->attempts, cj->error);
        n = n < sizeof(cj->error) ? n : sizeof(cj->error) - 1;
        memcpy(cj->error, err, n);
        cj->error[n] = '\0';
        cj->outcome = OUT_DEAD;
    }

    switch (cj->outcome) {

    case OUT_RETRY:
        delay = backoff_delay_ms(cj->attempts, c->retry_base_delay * 1000LL,
                                 c->retry_max_delay * 1000LL,
                                 backoff_random(), cj->retry_after_ms);
        rc = store_job_retry(cs->store, cj->raw, cj->raw_len,
                             unix_ms() + delay);
        break;

    case OUT_DEAD:
        letter = dead_letter_build(cj->raw, cj->raw_len, cj->error,
                                   cj->response[0] ? cj->response : NULL,
                                   cj->attempts, unix_ms() / 1000,
                                   store_consumer_id(cs->store));
        if (letter == NULL) {
            return cjob_wait_redis(cs);
        }

        rc = store_job_dead(cs->store, cj->raw, cj->raw_len,
                            cj->parsed ? cj->j.id : NULL, letter,
                            cj->order_key);
        free(letter);
        break;

    case OUT_STALE:
        rc = store_job_done(cs->store, cj->raw, cj->raw_len, cj->j.id,
                            "consumer_stale", NULL, -1, cj->order_key);
        break;

    case OUT_ALREADY:
        rc = store_job_done(cs->store, cj->raw, cj->raw_len, cj->j.id,
                            "consumer_already_done", NULL, -1,
                            cj->order_key);
        break;

    default:
        /* done or skipped: the event is applied, so it moves the mark */
        wm = cj->j.created >= 0 ? cj->wm_object : NULL;
        rc = store_job_done(cs->store, cj->raw, cj->raw_len, cj->j.id,
                            "consumer_done", wm, cj->j.created,
                            cj->order_key);
        break;
    }

    if (rc < 0) {
        return cjob_wait_redis(cs);
    }

    cjob_log(cj, mono_ms(), delay);

    if (rc == 0) {
        logging_printf("event=%s was no longer in this consumer's processing "
                       "list (recovered by another consumer?): left to it",
                       cj->parsed ? cj->j.id : "-");
    }

    cjob_free(cs, cj);
    return RUN_GONE;
}


static run_status
cjob_run_once(consumer *cs, cjob *cj, long long now)
{
    if (cj->in_flight) {
        return RUN_WAIT;
    }

    if (cj->req_ready && cj->phase != PH_FINISH) {
        return cjob_submit(cs, cj, now);
    }

    switch (cj->phase) {

    case PH_WAITING:
        return cjob_turn(cs, cj, now);

    case PH_BEGIN:
        return cjob_begin(cs, cj, now);

    case PH_ITEMS:
        return cjob_items(cj);

    case PH_TENURE:
        return cjob_tenure(cj);

    case PH_PLAN:
        return cjob_plan(cj, 0);

    case PH_EMAIL_MAP:
        return cjob_email_map(cs, cj, now);

    case PH_EMAIL_API:
        return cjob_email_api(cj);

    case PH_EMAIL_PROVIDER:
        return cjob_email_provider(cj);

    case PH_EMAIL_SAVE:
        return cjob_email_save(cs, cj, now);

    case PH_REPLAN:
        return cjob_plan(cj, 1);

    case PH_OPS:
        return cjob_ops(cj);

    case PH_STEP_SAVE:
        return cjob_step_save(cs, cj, now);

    case PH_FINISH:
        free(cj->req.body);
        cj->req.body = NULL;
        cj->req_ready = 0;
        return cjob_finish(cs, cj, now);
    }

    return RUN_WAIT;
}


static void
consumer_advance(consumer *cs, long long now)
{
    cjob        *cj, *next;
    run_status   r;
    int          n;

    cs->redis_wait = 0;
    cs->ended = 0;

    /* in take order: a job that ends lets its customer's next one start
       in the same pass */
    for (cj = cs->head; cj != NULL; cj = next) {
        next = cj->next;

        /* bounded, in case a provider never stops answering REQUEST */
        for (n = 0; n < 1000; n++) {
            r = cjob_run_once(cs, cj, now);
            if (r != RUN_AGAIN) {
                break;
            }
        }

        if (r == RUN_GONE) {
            cs->ended++;
        }
    }
}


/* ---- the loop: timers, taking, reloading ---- */

static void
consumer_connected(consumer *cs, long long now)
{
    const ss_config   *c;
    char             **held;
    size_t            *lens, n;
    cjob              *cj;
    int                moved;

    c = cs->rt->config;

    /* heartbeat first, so no other consumer takes us for dead */
    if (store_heartbeat(cs->store, c->heartbeat) != 0) {
        return;
    }

    held = calloc(cs->held + 1, sizeof(*held));
    lens = calloc(cs->held + 1, sizeof(*lens));

    if (held == NULL || lens == NULL) {
        free(held);
        free(lens);
        return;
    }

    n = 0;
    for (cj = cs->head; cj != NULL; cj = cj->next) {
        held[n] = cj->raw;
        lens[n++] = cj->raw_len;
    }

    /* at start: all of our list; later: what a lost reply left there */
    moved = store_requeue_unheld(cs->store, held, lens, n);

    free(held);
    free(lens);

    if (moved < 0) {
        return;
    }

    if (moved > 0) {
        logging_printf("requeued %d job(s) from this consumer's processing "
                       "list", moved);
    }

    cs->generation = store_generation(cs->store);
    cs->next_heartbeat = now + c->heartbeat * 1000LL;
    /* not at once: after an outage every heartbeat may have expired; give
       the other live consumers time to reconnect (their backoff is at most
       5 s) and say so before judging them dead */
    cs->next_recovery = now + 5000LL + 3 * c->heartbeat * 1000LL;
    cs->next_sweep = cs->next_recovery;
    cs->next_due = now;
}


static void
consumer_timers(consumer *cs, long long now)
{
    const ss_config  *c;
    long long         consumers, jobs;
    int               n;

    if (!store_ready(cs->store, now)) {
        return;
    }

    if (cs->generation != store_generation(cs->store)) {
        consumer_connected(cs, now);
        if (cs->generation != store_generation(cs->store)) {
            return;
        }
    }

    c = cs->rt->config;

    if (now >= cs->next_heartbeat
        && store_heartbeat(cs->store, c->heartbeat) == 0)
    {
        cs->next_heartbeat = now + c->heartbeat * 1000LL;
    }

    if (now >= cs->next_recovery && !cs->stopping
        && store_recover_dead(cs->store, &consumers, &jobs) == 0)
    {
        cs->next_recovery = now + 3 * c->heartbeat * 1000LL;
    }

    /* customers waiting on a job that exists nowhere (order_sweep.h) */
    if (now >= cs->next_sweep && !cs->stopping
        && order_sweep_run(&cs->sweep, cs->store,
                           3 * c->heartbeat * 1000LL) == 0)
    {
        cs->next_sweep = now + 3 * c->heartbeat * 1000LL;
    }

    if (now >= cs->next_due) {
        n = store_move_due(cs->store, unix_ms(), CONSUMER_DUE_BATCH);
        if (n >= 0) {
            /* a full batch: there may be more due at once */
            cs->next_due = n == CONSUMER_DUE_BATCH
                           ? now : now + CONSUMER_DUE_EVERY_MS;
        }
    }
}


/* a free slot, and room to hold one more job waiting behind its customer */
static int
consumer_can_take(const consumer *cs)
{
    size_t  conc;

    conc = (size_t) (cs->rt->config->concurrency > 0
                     ? cs->rt->config->concurrency : 1);

    return !cs->stopping && !cs->stop_requested && !cs->reload_requested
           && cs->running < conc && cs->held < 2 * conc;
}


static void
consumer_take(consumer *cs, long long now)
{
    long long  block;
    char      *raw;
    size_t     len;
    int        rc;

    while (consumer_can_take(cs)) {
        /* nothing held: wait in Redis; else never hold the others up */
        block = cs->held == 0 ? CONSUMER_BLOCK_MS : 0;

        if (block == 0 && now < cs->next_take) {
            return;
        }

        if (!store_ready(cs->store, now)
            || cs->generation != store_generation(cs->store))
        {
            return;
        }

        rc = store_take(cs->store, block, &raw, &len);

        if (rc <= 0) {
            cs->next_take = mono_ms() + CONSUMER_TAKE_IDLE_MS;
            return;
        }

        now = mono_ms();
        cjob_hold(cs, raw, len, now);
        cs->next_take = 0;
    }
}


static int
consumer_timeout(consumer *cs, long long now)
{
    long long   t;
    cjob       *cj;

    if (cs->ended > 0) {
        return 0;
    }

    t = CONSUMER_POLL_MAX_MS;

    if (cs->held == 0 && !cs->stopping && !cs->redis_wait
        && store_ready(cs->store, now))
    {
        /* the blocking take is the wait */
        return 0;
    }

    if (cs->redis_wait || !store_ready(cs->store, now)) {
        t = CONSUMER_REDIS_WAIT_MS;
    }

    for (cj = cs->head; cj != NULL; cj = cj->next) {
        if (cj->wake_ms > now && cj->wake_ms - now < t) {
            t = cj->wake_ms - now;
        }
    }

    /* when every slot is busy no take is due: waiting on it would spin */
    if (cs->held > 0 && consumer_can_take(cs) && cs->next_take - now < t) {
        t = cs->next_take - now;
    }

    if (cs->next_heartbeat - now < t) {
        t = cs->next_heartbeat - now;
    }

    if (cs->next_due - now < t) {
        t = cs->next_due - now;
    }

    if (cs->stopping && cs->stop_deadline - now < t) {
        t = cs->stop_deadline - now;
    }

    return t > 0 ? (int) t : 0;
}


static int
config_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}


static int
config_strings_same(const cfg_strings *a, const cfg_strings *b)
{
    size_t  i;

    if (a->n != b->n) {
        return 0;
    }

    for (i = 0; i < a->n; i++) {
        if (!config_same(a->v[i], b->v[i])) {
            return 0;
        }
    }

    return 1;
}


static void
consumer_reload_config(consumer *cs, long long now)
{
    ss_config        *nc;
    const ss_config  *oc;
    runtime          *rt;
    char              err[CONFIG_ERR_MAX];

    nc = calloc(1, sizeof(*nc));
    if (nc == NULL) {
        logging_printf("reload: out of memory; keeping the running "
                       "configuration");
        return;
    }

    if (config_load(nc, cs->path, err, sizeof(err), consumer_warn) != 0) {
        logging_printf("reload: %s; keeping the running configuration", err);
        free(nc);
        return;
    }

    rt = runtime_create(nc, err, sizeof(err));
    if (rt == NULL) {
        logging_printf("reload: %s; keeping the running configuration", err);
        config_free(nc);
        free(nc);
        return;
    }

    oc = cs->rt->config;

    if (!config_same(oc->redis, nc->redis)
        || !config_same(oc->redis_password, nc->redis_password)
        || oc->redis_db != nc->redis_db
        || !config_same(oc->prefix, nc->prefix)
        || !config_same(oc->consumer_id, nc->consumer_id)
        || !config_strings_same(&oc->redis_sentinels, &nc->redis_sentinels)
        || !config_same(oc->redis_sentinel_name, nc->redis_sentinel_name)
        || !config_same(oc->redis_sentinel_password,
                        nc->redis_sentinel_password))
    {
        logging_printf("reload: redis, redis_password_file, redis_db, "
                       "redis_sentinels, redis_sentinel_name, "
                       "redis_sentinel_password_file, prefix and "
                       "consumer_id take effect at the next start");
    }

    /* started jobs finish with the runtime they started with */
    cs->rt->next = cs->retired;
    cs->retired = cs->rt;
    cs->rt = rt;
    runtime_release(cs, cs->retired);

    consumer_limits(cs, now, 0);

    logging_printf("reload: %s loaded (provider %s, %zu rule(s)%s%s)",
                   cs->path, rt->provider->ops->name, nc->nrules,
                   nc->preset ? ", preset " : "",
                   nc->preset ? nc->preset : "");
}


int
consumer_run(consumer *cs)
{
    const ss_config  *c;
    long long         now;
    cjob             *cj;
    size_t            left;
    int               redis;

    c = cs->rt->config;

    logging_printf("consumer \"%s\" starting: provider %s, concurrency %d, "
                   "prefix \"%s\"", store_consumer_id(cs->store),
                   cs->rt->provider->ops->name, c->concurrency,
                   c->prefix ? c->prefix : "stripe_sync");

    for ( ;; ) {
        now = mono_ms();

        if (cs->reload_requested) {
            cs->reload_requested = 0;
            consumer_reload_config(cs, now);
        }

        if (cs->stop_requested && !cs->stopping) {
            cs->stopping = 1;
            cs->stop_deadline = now + cs->rt->config->shutdown_grace * 1000LL;
            logging_printf("stopping: no more jobs taken; %zu started job(s) "
                           "get up to %d s to finish", cs->running,
                           cs->rt->config->shutdown_grace);
        }

        if (cs->stopping
            && (cs->running == 0 || now >= cs->stop_deadline))
        {
            break;
        }

        consumer_timers(cs, now);
        consumer_take(cs, now);
        consumer_advance(cs, mono_ms());

        if (http_poll(cs->http, consumer_timeout(cs, mono_ms())) < 0) {
            logging_printf("http: %s", http_client_error(cs->http));
        }
    }

    left = cs->held;

    /* what is left stays in the processing list for the next start */
    http_client_free(cs->http);
    cs->http = NULL;

    redis = store_ready(cs->store, mono_ms());

    while ((cj = cs->head) != NULL) {
        /* counted by BEGIN, cut short by us: not the job's fault */
        if (redis && cj->attempts > 0 && cj->phase != PH_FINISH) {
            store_job_abandon(cs->store, cj->j.id);
        }

        cjob_free(cs, cj);
    }

    if (redis) {
        store_leave(cs->store);
    }

    logging_printf("stopped%s%zu job(s) left in the processing list",
                   left ? ": " : ", ", left);

    return 0;
}
