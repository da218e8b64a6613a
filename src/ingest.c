/*
 * ingest.c - Stripe lists into the queue, for backfill and reconcile
 * (ingest.h).
 *
 * Synchronous on purpose: one request at a time (a page must be read
 * before the next one can be asked for), one Redis command at a time.
 */

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#include "action.h"
#include "backoff.h"
#include "cli_redis.h"
#include "enqueue_script.h"
#include "http.h"
#include "ingest.h"
#include "stripe_api.h"
#include "token_bucket.h"


struct ingest {
    const ss_config  *config;
    cli_redis        *redis;
    int               dry_run;
    char              sha[41];      /* the enqueue script's, once loaded */

    http_client      *http;
    token_bucket      bucket;
    long              timeout_ms;

    /* the response of the request in flight, copied by the callback */
    int               done;
    http_result       res;
    char             *body;
    char             *retry_after;
    char             *error;
    long              status;

    char              err[CONFIG_ERR_MAX];
};

static volatile sig_atomic_t  ingest_stop;


static long long
ingest_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
ingest_interrupt(void)
{
    ingest_stop = 1;
}


int
ingest_interrupted(void)
{
    return ingest_stop != 0;
}


/* sleeps ms, or less when interrupted */
static void
ingest_sleep(long long ms)
{
    struct timespec  ts;
    long long        until, left;

    until = ingest_now_ms() + ms;

    while (!ingest_stop && (left = until - ingest_now_ms()) > 0) {
        ts.tv_sec = (time_t) (left / 1000);
        ts.tv_nsec = (long) (left % 1000) * 1000000;
        nanosleep(&ts, NULL);
    }
}


ingest *
ingest_create(const ss_config *c, cli_redis *r, int dry_run, char *err,
    size_t errlen)
{
    ingest       *g;
    double        rate;
    redisReply   *rep;
    const char   *argv[3];

    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    g->config = c;
    g->redis = r;
    g->dry_run = dry_run;
    g->timeout_ms = (c->stripe_timeout > 0 ? c->stripe_timeout : 30) * 1000L;

    g->http = http_client_create(1, err, errlen);
    if (g->http == NULL) {
        free(g);
        return NULL;
    }

    /* one request at a time: a burst of 1 spaces them evenly */
    rate = c->stripe_rate > 0 && c->stripe_rate < INGEST_RATE_MAX
           ? c->stripe_rate : INGEST_RATE_MAX;
    token_bucket_init(&g->bucket, rate, 1, ingest_now_ms());

    if (!dry_run) {
        argv[0] = "SCRIPT";
        argv[1] = "LOAD";
        argv[2] = ENQUEUE_SCRIPT;

        rep = cli_redis_command(r, 3, argv, NULL);
        if (rep == NULL || rep->type != REDIS_REPLY_STRING || rep->len != 40) {
            if (rep == NULL) {
                snprintf(err, errlen, "SCRIPT LOAD: %s", r->err);
            } else {
                snprintf(err, errlen, "redis %s: SCRIPT LOAD: unexpected "
                         "reply", r->addr);
            }
            if (rep != NULL) {
                freeReplyObject(rep);
            }
            ingest_free(g);
            return NULL;
        }

        memcpy(g->sha, rep->str, 40);
        g->sha[40] = '\0';
        freeReplyObject(rep);
    }

    return g;
}


static void
ingest_reset(ingest *g)
{
    free(g->body);
    free(g->retry_after);
    free(g->error);
    g->body = NULL;
    g->retry_after = NULL;
    g->error = NULL;
    memset(&g->res, 0, sizeof(g->res));
    g->done = 0;
}


void
ingest_free(ingest *g)
{
    if (g == NULL) {
        return;
    }

    http_client_free(g->http);
    ingest_reset(g);
    free(g);
}


const char *
ingest_error(const ingest *g)
{
    return g->err;
}


long
ingest_status(const ingest *g)
{
    return g->status;
}


static void
ingest_on_response(void *data, const http_result *r)
{
    ingest  *g;

    g = data;
    g->res = *r;

    g->body = malloc(r->response.body_len + 1);
    if (g->body != NULL) {
        memcpy(g->body, r->response.body, r->response.body_len);
        g->body[r->response.body_len] = '\0';
    }

    g->retry_after = r->response.retry_after
                     ? strdup(r->response.retry_after) : NULL;
    g->error = r->response.error ? strdup(r->response.error) : NULL;

    g->res.response.body = g->body ? g->body : "";
    g->res.response.body_len = g->body ? r->response.body_len : 0;
    g->res.response.retry_after = g->retry_after;
    g->res.response.error = g->error ? g->error
                                     : (r->response.error ? "error" : NULL);
    g->done = 1;
}


/* "GET /v1/invoices" of a request: no base, no query (no secret either) */
static void
ingest_what(const http_request *req, char *buf, size_t len)
{
    const char  *p;
    size_t       n;

    p = strstr(req->url, "/v1/");
    if (p == NULL) {
        p = req->url;
    }

    n = strcspn(p, "?");
    snprintf(buf, len, "%s %.*s", req->method, (int) n, p);
}


int
ingest_fetch(ingest *g, http_request *req, const char **body, size_t *len,
    int *truncated)
{
    stripe_api_status  st;
    long long          wait, retry_ms, delay;
    int                attempt, most;
    char               what[128], why[CONFIG_ERR_MAX];

    *truncated = 0;
    ingest_what(req, what, sizeof(what));

    for (attempt = 1; ; attempt++) {
        ingest_reset(g);
        g->status = 0;

        while (!ingest_stop
               && (wait = token_bucket_take(&g->bucket, ingest_now_ms())) > 0)
        {
            ingest_sleep(wait);
        }

        if (ingest_stop) {
            break;
        }

        if (http_submit(g->http, req, g->timeout_ms, ingest_on_response, g)
            != 0)
        {
            snprintf(g->err, sizeof(g->err), "%s: %s", what,
                     http_client_error(g->http));
            free(req->body);
            req->body = NULL;
            return -1;
        }

        while (!g->done && !ingest_stop) {
            if (http_poll(g->http, 200) < 0) {
                snprintf(g->err, sizeof(g->err), "%s: %s", what,
                         http_client_error(g->http));
                free(req->body);
                req->body = NULL;
                return -1;
            }
        }

        if (!g->done) {
            break;      /* interrupted: http_client_free() drops it */
        }

        g->status = g->res.response.status;

        if (g->body == NULL) {
            snprintf(g->err, sizeof(g->err), "%s: out of memory", what);
            break;
        }

        st = stripe_api_classify(&g->res.response, what, g->err,
                                 sizeof(g->err), &retry_ms);

        if (st == STRIPE_API_OK) {
            free(req->body);
            req->body = NULL;

            if (g->res.truncated) {
                *truncated = 1;
                snprintf(g->err, sizeof(g->err), "%s: the response is over "
                         "%d bytes", what, HTTP_BODY_MAX);
                return -1;
            }

            *body = g->body;
            *len = g->res.response.body_len;
            return 1;
        }

        most = g->status == 429 ? INGEST_ATTEMPTS_429 : INGEST_ATTEMPTS;

        if (st == STRIPE_API_FAIL || attempt >= most) {
            if (st == STRIPE_API_RETRY) {
                memcpy(why, g->err, sizeof(why));
                snprintf(g->err, sizeof(g->err), "%.400s (gave up after %d "
                         "attempts)", why, attempt);
            }
            free(req->body);
            req->body = NULL;
            return -1;
        }

        delay = backoff_delay_ms(attempt, INGEST_BACKOFF_MS,
                                 INGEST_BACKOFF_MAX_MS, backoff_random(),
                                 retry_ms > 0 ? retry_ms : 0);

        /* a 429 is about the account: nothing goes out before its end */
        if (g->status == 429) {
            token_bucket_pause(&g->bucket, ingest_now_ms() + delay);
        }

        fprintf(stderr, "stripe: %s; retrying in %.1f s (attempt %d of "
                "%d)\n", g->err, delay / 1000.0, attempt + 1, most);
        fflush(stderr);

        ingest_sleep(delay);
    }

    free(req->body);
    req->body = NULL;

    if (ingest_stop) {
        snprintf(g->err, sizeof(g->err), "interrupted");
        return 0;
    }

    return -1;
}


/* "{P}:<what><arg>" or -1 (with g->err) when too long */
static int
ingest_key(ingest *g, char *buf, const char *what, const char *arg)
{
    if (cli_redis_key(g->redis, buf, what, arg) == NULL) {
        snprintf(g->err, sizeof(g->err), "redis key \"%s%.100s\" is too "
                 "long", what, arg);
        return -1;
    }

    return 0;
}


/* EXISTS {P}:<what><arg>: 1, 0, or -1 */
static int
ingest_exists(ingest *g, const char *what, const char *arg)
{
    redisReply  *rep;
    const char  *argv[2];
    char         key[CLI_REDIS_KEY_MAX];
    int          rc;

    if (ingest_key(g, key, what, arg) != 0) {
        return -1;
    }

    argv[0] = "EXISTS";
    argv[1] = key;

    rep = cli_redis_command(g->redis, 2, argv, NULL);
    if (rep == NULL) {
        snprintf(g->err, sizeof(g->err), "%s", g->redis->err);
        return -1;
    }

    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);

    return rc;
}


/* the enqueue script (enqueue_script.h): ENQUEUE_* or -1 */
static int
ingest_enqueue(ingest *g, const action *a)
{
    redisReply   *rep;
    const char   *argv[15];
    size_t        lens[15];
    char          seen[CLI_REDIS_KEY_MAX], queue[CLI_REDIS_KEY_MAX];
    char          customers[CLI_REDIS_KEY_MAX], stats[CLI_REDIS_KEY_MAX];
    char          once[CLI_REDIS_KEY_MAX], order[CLI_REDIS_KEY_MAX];
    char          ttl[24], numkeys[4], flags[3];
    int           argc, nkeys, i, rc, keep, record;

    if (ingest_key(g, seen, "seen:", a->id) != 0
        || ingest_key(g, queue, "queue", "") != 0
        || ingest_key(g, customers, "customers", "") != 0
        || ingest_key(g, stats, "stats", "") != 0
        || (a->once_key != NULL
            && ingest_key(g, once, "once:", a->once_key) != 0)
        || (a->order_key != NULL
            && ingest_key(g, order, "order:", a->order_key) != 0))
    {
        return -1;
    }

    /* one event: its keys after the three shared ones, its flags say
       which (enqueue_script.h) */
    nkeys = 4 + (a->once_key != NULL) + (a->order_key != NULL);
    snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
    snprintf(ttl, sizeof(ttl), "%d", INGEST_DEDUP_TTL);
    keep = a->customer_id != NULL && a->customer_json != NULL;
    flags[0] = a->once_key != NULL ? '1' : '0';
    flags[1] = a->order_key != NULL ? '1' : '0';
    flags[2] = '\0';

    argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = g->sha;
    argv[argc++] = numkeys;
    argv[argc++] = queue;
    argv[argc++] = customers;
    argv[argc++] = stats;
    argv[argc++] = seen;
    if (a->once_key != NULL) {
        argv[argc++] = once;
    }
    if (a->order_key != NULL) {
        argv[argc++] = order;
    }
    argv[argc++] = ttl;
    argv[argc++] = flags;
    record = argc;
    argv[argc++] = a->record;
    argv[argc++] = keep ? a->customer_id : "";
    argv[argc++] = keep ? a->customer_json : "";
    argv[argc++] = a->id;

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[record] = a->record_len;

    rep = cli_redis_command(g->redis, argc, argv, lens);

    /* a SCRIPT FLUSH or a failover since SCRIPT LOAD */
    if (rep == NULL && strstr(g->redis->err, "NOSCRIPT") != NULL
        && g->redis->c != NULL)
    {
        argv[0] = "EVAL";
        argv[1] = ENQUEUE_SCRIPT;
        lens[0] = 4;
        lens[1] = strlen(ENQUEUE_SCRIPT);
        rep = cli_redis_command(g->redis, argc, argv, lens);
    }

    if (rep == NULL) {
        snprintf(g->err, sizeof(g->err), "%s", g->redis->err);
        return -1;
    }

    /* an answer per event: one here */
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1
        || rep->element[0]->type != REDIS_REPLY_INTEGER)
    {
        snprintf(g->err, sizeof(g->err), "redis %s: the enqueue script "
                 "answered something other than one number",
                 g->redis->addr);
        freeReplyObject(rep);
        return -1;
    }

    rc = (int) rep->element[0]->integer;
    freeReplyObject(rep);

    return rc;
}


action_status
ingest_normalize(const char *event, size_t len, action *a)
{
    action_status  st;
    char          *copy;

    copy = malloc(len + 1);
    if (copy == NULL) {
        /* an empty body: action_from_event() says what it says of one */
        return action_from_event("", 0, a);
    }

    memcpy(copy, event, len);
    copy[len] = '\0';

    st = action_from_event(copy, len, a);
    free(copy);

    return st;
}


int
ingest_offer(ingest *g, action_status st, const action *a, ingest_counts *n,
    ingest_result *res)
{
    int  rc;

    if (st == ACTION_INVALID) {
        n->invalid++;
        *res = INGEST_INVALID;
        return 0;
    }

    if (st == ACTION_IGNORED) {
        n->ignored++;
        *res = INGEST_IGNORED;
        return 0;
    }

    if (g->dry_run) {
        rc = ingest_exists(g, "seen:", a->id);

        if (rc == 1) {
            rc = ENQUEUE_DUPLICATE;
        } else if (rc == 0 && a->once_key != NULL) {
            rc = ingest_exists(g, "once:", a->once_key);
            rc = rc == 1 ? ENQUEUE_DUPLICATE_FACT
                 : rc == 0 ? ENQUEUE_QUEUED : -1;
        } else if (rc == 0) {
            rc = ENQUEUE_QUEUED;
        }

    } else {
        rc = ingest_enqueue(g, a);
    }

    switch (rc) {

    case ENQUEUE_QUEUED:
        n->queued++;
        *res = INGEST_QUEUED;
        return 0;

    case ENQUEUE_DUPLICATE:
        n->seen++;
        *res = INGEST_SEEN;
        return 0;

    case ENQUEUE_DUPLICATE_FACT:
        n->facts++;
        *res = INGEST_FACT;
        return 0;

    case -1:
        return -1;

    default:
        snprintf(g->err, sizeof(g->err), "the enqueue script answered %d",
                 rc);
        return -1;
    }
}


const char *
ingest_action_email(const action *a, char *buf, size_t len)
{
    yajl_val      v, e;
    const char   *path[2];

    buf[0] = '\0';

    if (a->customer_json == NULL) {
        return buf;
    }

    v = yajl_tree_parse(a->customer_json, NULL, 0);
    path[0] = "email";
    path[1] = NULL;
    e = v != NULL ? yajl_tree_get(v, path, yajl_t_string) : NULL;

    if (e != NULL) {
        snprintf(buf, len, "%s", YAJL_GET_STRING(e));
    }

    if (v != NULL) {
        yajl_tree_free(v);
    }

    return buf;
}


long long
ingest_parse_duration(const char *s)
{
    long long   v, unit;
    const char *p;
    int         digits;

    v = 0;
    digits = 0;

    for (p = s; *p >= '0' && *p <= '9'; p++) {
        if (++digits > 12) {
            return -1;
        }
        v = v * 10 + (*p - '0');
    }

    if (digits == 0) {
        return -1;
    }

    switch (*p) {
    case '\0':
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return -1;
    }

    if (*p != '\0' && p[1] != '\0') {
        return -1;
    }

    return v > 0 ? v * unit : -1;
}


long long
ingest_parse_since(const char *s, long long now)
{
    struct tm   tm, back;
    time_t      t;
    long long   d;
    int         y, m, day;
    char        tail;
    size_t      i, n;

    n = strlen(s);

    if (n == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &day, &tail) == 3
        && s[4] == '-' && s[7] == '-')
    {
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = m - 1;
        tm.tm_mday = day;

        t = timegm(&tm);

        /* 2025-02-30 would come back as March 2 */
        if (t == (time_t) -1 || gmtime_r(&t, &back) == NULL
            || back.tm_year != y - 1900 || back.tm_mon != m - 1
            || back.tm_mday != day)
        {
            return -1;
        }

        return (long long) t;
    }

    for (i = 0; i < n && isdigit((unsigned char) s[i]); i++) {
        /* digits only: unix seconds */
    }

    if (n > 0 && i == n) {
        return n <= 12 ? strtoll(s, NULL, 10) : -1;
    }

    d = ingest_parse_duration(s);

    return d > 0 && d <= now ? now - d : -1;
}


const char *
ingest_iso_time(long long t, char *buf, size_t len)
{
    struct tm  tm;
    time_t     tt;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, len, "%lld", t);
    }

    return buf;
}
