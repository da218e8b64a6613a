
/*
 * Copyright (C) stripe-sync contributors
 *
 * hiredis's async API on nginx's event loop: one connection per worker per
 * Redis, every request pipelined on it, reconnects from a timer with
 * backoff, a timer per request so no request waits longer than the
 * configured timeout. The events of the requests read in one pass of the
 * event loop go to Redis as one script call, sent when the pass ends (a
 * posted event): one write, one reply, and Redis's per-call cost paid once
 * for all of them. Behind Sentinel the address comes from
 * ngx_http_stripe_sync_sentinel.c before each connect, and ROLE must say
 * "master" before requests are sent. With stripe_sync_redis_wait_replicas
 * a WAIT follows the scripts, one in flight per connection.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_stripe_sync_module.h"


#define NGX_HTTP_STRIPE_SYNC_BACKOFF_MIN  100
#define NGX_HTTP_STRIPE_SYNC_BACKOFF_MAX  5000
#define NGX_HTTP_STRIPE_SYNC_CONNECT_TIMEOUT  3000
#define NGX_HTTP_STRIPE_SYNC_SENTINEL_BACKOFF_MAX  1000

/* hiredis's output buffer while it holds AUTH: never grown (see connect) */
#define NGX_HTTP_STRIPE_SYNC_AUTH_ROOM  65536


static void ngx_http_stripe_sync_redis_add_read(void *data);
static void ngx_http_stripe_sync_redis_del_read(void *data);
static void ngx_http_stripe_sync_redis_add_write(void *data);
static void ngx_http_stripe_sync_redis_del_write(void *data);
static void ngx_http_stripe_sync_redis_cleanup(void *data);
static void ngx_http_stripe_sync_redis_read_handler(ngx_event_t *ev);
static void ngx_http_stripe_sync_redis_write_handler(ngx_event_t *ev);

static void ngx_http_stripe_sync_redis_connected(
    const redisAsyncContext *ac, int status);
static void ngx_http_stripe_sync_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_stripe_sync_redis_setup_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static ngx_int_t ngx_http_stripe_sync_redis_write_auth(
    ngx_http_stripe_sync_redis_t *redis);
static void ngx_http_stripe_sync_redis_timer(ngx_event_t *ev);

static void ngx_http_stripe_sync_redis_flush(ngx_event_t *ev);
static ngx_http_stripe_sync_op_t *ngx_http_stripe_sync_redis_live(
    ngx_http_stripe_sync_op_t *op, ngx_uint_t *n);
static ngx_int_t ngx_http_stripe_sync_redis_call(redisAsyncContext *ac,
    ngx_http_stripe_sync_call_t *call);
static u_char *ngx_http_stripe_sync_resp_arg(u_char *p, u_char *data,
    size_t len);
static void ngx_http_stripe_sync_redis_call_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_stripe_sync_redis_op_reply(redisAsyncContext *ac,
    ngx_http_stripe_sync_op_t *op, redisReply *reply);
static ngx_int_t ngx_http_stripe_sync_redis_wait(redisAsyncContext *ac,
    ngx_http_stripe_sync_op_t *op, redisReply *reply);
static void ngx_http_stripe_sync_redis_wait_send(
    ngx_http_stripe_sync_redis_t *redis, redisAsyncContext *ac);
static void ngx_http_stripe_sync_redis_wait_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_stripe_sync_redis_wait_answer(
    ngx_http_stripe_sync_op_t *op, redisReply *reply);
static void ngx_http_stripe_sync_redis_op_timeout(ngx_event_t *ev);
static ngx_http_stripe_sync_op_t *ngx_http_stripe_sync_op_get(void);
static void ngx_http_stripe_sync_op_free(ngx_http_stripe_sync_op_t *op);
static ngx_http_stripe_sync_call_t *ngx_http_stripe_sync_call_get(void);
static void ngx_http_stripe_sync_call_free(ngx_http_stripe_sync_call_t *call);


/* ops are recycled within a worker: no allocation per request */
static ngx_http_stripe_sync_op_t  *ngx_http_stripe_sync_free_ops;
static ngx_http_stripe_sync_call_t  *ngx_http_stripe_sync_free_calls;

/* the RESP text of a script call, reused: hiredis copies it */
static u_char  *ngx_http_stripe_sync_cmd;
static size_t   ngx_http_stripe_sync_cmd_size;

/* the connection whose flush is queueing calls: writes them itself */
static ngx_connection_t  *ngx_http_stripe_sync_write_later;


ngx_int_t
ngx_http_stripe_sync_redis_connect(ngx_http_stripe_sync_redis_t *redis)
{
    sds                                obuf;
    u_char                             db[NGX_INT_T_LEN + 1];
    redisAsyncContext                 *ac;
    ngx_http_stripe_sync_main_conf_t  *smcf;

    if (redis->sentinels) {
        if (!redis->found) {
            /* asks the sentinels; comes back here from the timer */
            ngx_http_stripe_sync_sentinel_lookup(redis);
            return NGX_OK;
        }

        /* every later connect asks again: the primary may have moved */
        redis->found = 0;
        redis->primary = 0;
    }

    if (redis->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) redis->unix_path.data);

    } else {
        ac = redisAsyncConnect((char *) redis->host.data, (int) redis->port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: cannot allocate a Redis context for "
                      "\"%V\"", &redis->name);
        ngx_http_stripe_sync_redis_schedule(redis);
        return NGX_ERROR;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: cannot connect to Redis \"%V\": %s",
                      &redis->name, ac->errstr);
        redisAsyncFree(ac);
        ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);
        ngx_http_stripe_sync_redis_schedule(redis);
        return NGX_ERROR;
    }

    if (ngx_http_stripe_sync_redis_attach(ac, &redis->name, redis->log)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_stripe_sync_redis_schedule(redis);
        return NGX_ERROR;
    }

    redis->ac = ac;
    redis->connected = 0;
    redis->auth_queued = 0;
    redis->calls = 0;

    ac->data = redis;

    redisAsyncSetConnectCallback(ac, ngx_http_stripe_sync_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_stripe_sync_redis_disconnected);

    /* queued now, sent first once connected: requests pipeline behind */

    if (redis->auth.len) {
        /*
         * The password must not be left in freed memory, where core dumps
         * would find it: the command was formatted at configuration time
         * in the secret memory, hiredis copies it only into its output
         * buffer, which gets room enough first so that no realloc() leaves
         * a copy behind, and the connect callback writes it and wipes it.
         */
        obuf = sdsMakeRoomFor(ac->c.obuf, NGX_HTTP_STRIPE_SYNC_AUTH_ROOM);
        if (obuf == NULL) {
            ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                          "stripe_sync: out of memory for Redis \"%V\"",
                          &redis->name);
            redisAsyncFree(ac);
            return NGX_ERROR;
        }

        ac->c.obuf = obuf;

        redisAsyncFormattedCommand(ac, ngx_http_stripe_sync_redis_setup_reply,
                                   "AUTH", (char *) redis->auth.data,
                                   redis->auth.len);
        redis->auth_queued = 1;
    }

    if (redis->db) {
        ngx_sprintf(db, "%i%Z", redis->db);
        redisAsyncCommand(ac, ngx_http_stripe_sync_redis_setup_reply,
                          "SELECT", "SELECT %s", db);
    }

    /* the script is there before the first request needs it: no NOSCRIPT
       round trip after a restart or a failover */
    smcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_stripe_sync_module);

    redisAsyncCommand(ac, ngx_http_stripe_sync_redis_setup_reply,
                      "SCRIPT LOAD", "SCRIPT LOAD %b", smcf->script.data,
                      smcf->script.len);

    if (redis->sentinels) {
        /* no request is sent before this says "master" */
        redisAsyncCommand(ac, ngx_http_stripe_sync_sentinel_role, NULL,
                          "ROLE");
    }

    /* a silent peer must not keep the connect, and requests, pending */
    ngx_http_stripe_sync_redis_arm(redis, NGX_HTTP_STRIPE_SYNC_CONNECT_TIMEOUT);

    return NGX_OK;
}


void
ngx_http_stripe_sync_redis_close(ngx_http_stripe_sync_redis_t *redis)
{
    ngx_http_stripe_sync_op_t  *op, *next;

    redis->exiting = 1;

    if (redis->timer.timer_set) {
        ngx_del_timer(&redis->timer);
    }

    if (redis->flush.posted) {
        ngx_delete_posted_event(&redis->flush);
    }

    /* the worker is going away: no request is answered from here */
    for (op = redis->pending; op; op = next) {
        next = op->next;

        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }

        ngx_http_stripe_sync_op_free(op);
    }

    redis->pending = NULL;
    redis->pending_last = NULL;
    redis->pending_len = 0;

    if (redis->sentinels) {
        ngx_http_stripe_sync_sentinel_close(redis);
    }

    if (redis->ac) {
        /* runs pending callbacks, then the cleanup and disconnect hooks */
        redisAsyncFree(redis->ac);
        redis->ac = NULL;
    }
}


static void
ngx_http_stripe_sync_redis_setup_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                    *reply = r;
    ngx_http_stripe_sync_redis_t  *redis = ac->data;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        /* privdata names the command; never log its arguments */
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: Redis \"%V\" refused %s: %s",
                      &redis->name, (char *) privdata, reply->str);
        ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);
    }
}


static void
ngx_http_stripe_sync_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_stripe_sync_redis_t  *redis = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: cannot connect to Redis \"%V\": %s",
                      &redis->name, ac->errstr);
        ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);

        /* hiredis frees the context after this callback returns */
        redis->ac = NULL;
        redis->auth_queued = 0;
        ngx_http_stripe_sync_redis_schedule(redis);
        return;
    }

    if (redis->auth_queued
        && ngx_http_stripe_sync_redis_write_auth(redis) != NGX_OK)
    {
        /* hiredis sees the socket closed and disconnects */
        return;
    }

    ngx_log_error(NGX_LOG_INFO, redis->log, 0,
                  "stripe_sync: connected to Redis \"%V\"", &redis->name);

    redis->connected = 1;
    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_CONNECTION, 1);

    if (redis->sentinels) {
        /* the timer bounds the wait for ROLE, which ends it */
        return;
    }

    if (redis->timer.timer_set) {
        ngx_del_timer(&redis->timer);
    }

    redis->backoff = 0;
}


/*
 * Called as soon as the socket is connected, before hiredis writes: writes
 * its output buffer, AUTH first, and wipes what was written. hiredis would
 * free() the buffer without wiping it.
 */

static ngx_int_t
ngx_http_stripe_sync_redis_write_auth(ngx_http_stripe_sync_redis_t *redis)
{
    sds            buf;
    size_t         len, left;
    ssize_t        n;
    ngx_err_t      err;
    redisContext  *c;

    redis->auth_queued = 0;

    c = &redis->ac->c;
    buf = c->obuf;
    len = sdslen(buf);

    do {
        n = write(c->fd, buf, len);
        err = ngx_errno;
    } while (n == -1 && err == NGX_EINTR);

    if (n < (ssize_t) redis->auth.len) {
        /* a fresh socket takes a few hundred bytes: this cannot happen */
        ngx_explicit_memzero(buf, len);
        sdsclear(buf);
        (void) shutdown(c->fd, SHUT_RDWR);

        ngx_log_error(NGX_LOG_ERR, redis->log, n == -1 ? err : 0,
                      "stripe_sync: cannot send AUTH to Redis \"%V\"",
                      &redis->name);
        ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);
        return NGX_ERROR;
    }

    ngx_explicit_memzero(buf, n);

    if ((size_t) n == len) {
        sdsclear(buf);
        return NGX_OK;
    }

    /* the rest (requests only) moves to the start, for hiredis to send */
    sdsrange(buf, (int) n, -1);
    left = sdslen(buf);
    ngx_explicit_memzero(buf + left, len - left);

    return NGX_OK;
}

static void
ngx_http_stripe_sync_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_stripe_sync_redis_t  *redis = ac->data;

    if (redis->connected) {
        redis->connected = 0;
        ngx_http_stripe_sync_count_redis(
                                 NGX_HTTP_STRIPE_SYNC_REDIS_CONNECTION, -1);
    }

    redis->ac = NULL;
    redis->auth_queued = 0;
    redis->primary = 0;

    if (redis->exiting) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                  "stripe_sync: lost Redis \"%V\"%s%s", &redis->name,
                  status == REDIS_OK ? "" : ": ",
                  status == REDIS_OK ? "" : ac->errstr);
    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);

    /* never reconnect from inside a hiredis callback */
    ngx_http_stripe_sync_redis_schedule(redis);
}


void
ngx_http_stripe_sync_redis_schedule(ngx_http_stripe_sync_redis_t *redis)
{
    if (redis->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (redis->backoff == 0) {
        redis->backoff = NGX_HTTP_STRIPE_SYNC_BACKOFF_MIN;

    } else {
        /* behind Sentinel a retry is one lookup: the new primary is near */
        redis->backoff = ngx_min(redis->backoff * 2,
                                 (redis->sentinels
                                  ? NGX_HTTP_STRIPE_SYNC_SENTINEL_BACKOFF_MAX
                                  : NGX_HTTP_STRIPE_SYNC_BACKOFF_MAX));
    }

    ngx_http_stripe_sync_redis_arm(redis, redis->backoff);
}


/*
 * One timer per Redis: while connecting it bounds the connect, while
 * disconnected it is the backoff before the next attempt.
 */

void
ngx_http_stripe_sync_redis_arm(ngx_http_stripe_sync_redis_t *redis,
    ngx_msec_t delay)
{
    redis->timer.handler = ngx_http_stripe_sync_redis_timer;
    redis->timer.data = redis;
    redis->timer.log = redis->log;

    /* must not keep a gracefully quitting worker alive */
    redis->timer.cancelable = 1;

    if (redis->timer.timer_set) {
        ngx_del_timer(&redis->timer);
    }

    ngx_add_timer(&redis->timer, delay);
}


static void
ngx_http_stripe_sync_redis_timer(ngx_event_t *ev)
{
    ngx_http_stripe_sync_redis_t *redis = ev->data;

    redisAsyncContext  *ac;

    if (redis->exiting) {
        return;
    }

    if (redis->ac == NULL) {
        (void) ngx_http_stripe_sync_redis_connect(redis);
        return;
    }

    if (redis->connected && (redis->sentinels == NULL || redis->primary)) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                  "stripe_sync: connecting to Redis \"%V\" timed out",
                  &redis->name);
    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);

    /* answers the requests queued on it with 503 */
    ac = redis->ac;
    redis->ac = NULL;
    redisAsyncFree(ac);

    ngx_http_stripe_sync_redis_schedule(redis);
}


/*
 * hiredis's event library on nginx's loop, for the Redis and the sentinels
 * alike: the socket gets an nginx connection, whose handlers find the
 * context in c->data, and the hooks get the connection. name is for logs;
 * ac->data and the callbacks stay the caller's.
 */

ngx_int_t
ngx_http_stripe_sync_redis_attach(redisAsyncContext *ac, ngx_str_t *name,
    ngx_log_t *log)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ac;
    c->addr_text = *name;
    c->log = log;
    c->read->handler = ngx_http_stripe_sync_redis_read_handler;
    c->write->handler = ngx_http_stripe_sync_redis_write_handler;
    c->read->log = log;
    c->write->log = log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_stripe_sync_redis_add_read;
    ac->ev.delRead = ngx_http_stripe_sync_redis_del_read;
    ac->ev.addWrite = ngx_http_stripe_sync_redis_add_write;
    ac->ev.delWrite = ngx_http_stripe_sync_redis_del_write;
    ac->ev.cleanup = ngx_http_stripe_sync_redis_cleanup;

    return NGX_OK;
}


static void
ngx_http_stripe_sync_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    /* level-triggered: hiredis reads at most 16k per call */
    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "stripe_sync: cannot watch \"%V\" for reading",
                          &c->addr_text);
        }
    }
}


static void
ngx_http_stripe_sync_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_stripe_sync_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c == ngx_http_stripe_sync_write_later) {
        /* the flush writes right after queueing: no EPOLLOUT round */
        return;
    }

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "stripe_sync: cannot watch \"%V\" for writing",
                          &c->addr_text);
        }
    }
}


static void
ngx_http_stripe_sync_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/*
 * hiredis frees its context: give the connection back to nginx without
 * closing the socket, which redisFree() closes right after.
 */

static void
ngx_http_stripe_sync_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_stripe_sync_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    /* the context and c may be gone when this returns */
    redisAsyncHandleRead(c->data);
}


static void
ngx_http_stripe_sync_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


/*
 * Queues the request's event for the script call that ends this pass of
 * the event loop. NGX_DECLINED: no Redis right now, the caller answers 503
 * at once.
 */

ngx_int_t
ngx_http_stripe_sync_redis_send(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_loc_conf_t *sscf,
    ngx_http_stripe_sync_redis_t *redis)
{
    size_t                      len;
    ngx_uint_t                  i;
    ngx_http_stripe_sync_op_t  *op;

    if (redis->ac == NULL) {
        return NGX_DECLINED;
    }

    if (redis->sentinels && !redis->primary) {
        /* never a write before ROLE said "master" */
        return NGX_DECLINED;
    }

    /* an upper bound of the event's part of the call in RESP */
    len = 0;
    for (i = 0; i < ctx->nkeys + ENQUEUE_EVENT_ARGS; i++) {
        len += ctx->args[i].len + NGX_INT_T_LEN + 5;
    }

    if (redis->auth_queued
        && sdsavail(redis->ac->c.obuf) < redis->pending_len + len + 1024)
    {
        /* the buffer holding AUTH must not grow (see connect) */
        return NGX_DECLINED;
    }

    op = ngx_http_stripe_sync_op_get();
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->request = r;
    op->redis = redis;
    op->conf = sscf;
    op->len = len;

    if (redis->pending) {
        redis->pending_last->next = op;

    } else {
        redis->pending = op;
    }

    redis->pending_last = op;
    redis->pending_len += len;

    if (!redis->flush.posted) {
        redis->flush.handler = ngx_http_stripe_sync_redis_flush;
        redis->flush.data = redis;
        redis->flush.log = redis->log;
        ngx_post_event(&redis->flush, &ngx_posted_events);
    }

    ctx->op = op;

    op->timer.handler = ngx_http_stripe_sync_redis_op_timeout;
    op->timer.data = op;
    op->timer.log = r->connection->log;
    ngx_add_timer(&op->timer, sscf->redis_timeout);

    return NGX_OK;
}


/*
 * The pass of the event loop is over: its events go out as script calls
 * of up to ENQUEUE_BATCH_MAX events, one per location (the keys' prefix
 * and the ttl are the location's), written at once. While a call is in
 * flight they wait for its reply instead: under load the next call then
 * carries everything that came meanwhile, and Redis is woken once for
 * all of it; when idle nothing waits.
 */

static void
ngx_http_stripe_sync_redis_flush(ngx_event_t *ev)
{
    ngx_http_stripe_sync_redis_t *redis = ev->data;

    ngx_uint_t                    usable, direct;
    redisAsyncContext            *ac;
    ngx_http_stripe_sync_op_t    *op, *next, *last;
    ngx_http_stripe_sync_call_t  *call;

    ac = redis->ac;

    usable = ac != NULL
             && !(ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING))
             && (redis->sentinels == NULL || redis->primary);

    if (usable && redis->calls > 0) {
        /* the reply posts this again */
        return;
    }

    op = ngx_http_stripe_sync_redis_live(redis->pending, NULL);

    redis->pending = NULL;
    redis->pending_last = NULL;
    redis->pending_len = 0;

    /* connected: write now; connecting: hiredis writes once it is */
    direct = usable && (ac->c.flags & REDIS_CONNECTED);

    ngx_http_stripe_sync_write_later = direct ? ac->ev.data : NULL;

    while (op) {
        next = op->next;

        call = usable ? ngx_http_stripe_sync_call_get() : NULL;

        if (call == NULL) {
            op->next = NULL;
            ngx_http_stripe_sync_redis_op_reply(ac, op, NULL);
            op = next;
            continue;
        }

        /* the ops that follow, of the same location */
        call->first = op;
        call->n = 1;
        last = op;

        for (op = next;
             op && op->conf == call->first->conf
                && call->n < ENQUEUE_BATCH_MAX;
             op = op->next)
        {
            last = op;
            call->n++;
        }

        last->next = NULL;

        if (ngx_http_stripe_sync_redis_call(ac, call) != NGX_OK) {
            ngx_http_stripe_sync_redis_call_reply(ac, NULL, call);
        }
    }

    ngx_http_stripe_sync_write_later = NULL;

    if (direct && redis->ac == ac
        && !(ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)))
    {
        /* adds EPOLLOUT only if the socket takes less than all of it */
        redisAsyncHandleWrite(ac);
    }
}


/*
 * The ops of a list whose requests are still there, in order (n of them,
 * if asked); the others are freed: gone before their event was sent, or
 * before it was sent again, they have nothing to answer.
 */

static ngx_http_stripe_sync_op_t *
ngx_http_stripe_sync_redis_live(ngx_http_stripe_sync_op_t *op,
    ngx_uint_t *n)
{
    ngx_uint_t                   count;
    ngx_http_stripe_sync_op_t   *first, *last, *next;

    first = NULL;
    last = NULL;
    count = 0;

    for ( /* void */ ; op; op = next) {
        next = op->next;

        if (op->request == NULL) {
            ngx_http_stripe_sync_op_free(op);
            continue;
        }

        if (last) {
            last->next = op;

        } else {
            first = op;
        }

        last = op;
        count++;
    }

    if (last) {
        last->next = NULL;
    }

    if (n) {
        *n = count;
    }

    return first;
}


/*
 * One script call in RESP: EVALSHA <sha> <numkeys> queue customers stats
 * <each event's keys> <ttl> <each event's arguments>; EVAL with the
 * script's text after NOSCRIPT. Formatted once, here, and copied once,
 * into hiredis's output buffer.
 */

static ngx_int_t
ngx_http_stripe_sync_redis_call(redisAsyncContext *ac,
    ngx_http_stripe_sync_call_t *call)
{
    u_char                            *p, *cmd, numkeys[NGX_INT_T_LEN];
    size_t                             len, nklen;
    ngx_str_t                         *script;
    ngx_uint_t                         i, nkeys, argc;
    ngx_str_t                          sha;
    ngx_http_stripe_sync_op_t         *op;
    ngx_http_stripe_sync_ctx_t        *ctx;
    ngx_http_stripe_sync_loc_conf_t   *sscf;
    ngx_http_stripe_sync_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_stripe_sync_module);
    sscf = call->first->conf;

    sha.data = smcf->script_sha;
    sha.len = 40;
    script = call->eval ? &smcf->script : &sha;

    /* the length first: the arguments' sizes decide their headers' */
    nkeys = 3;
    len = 0;

    for (op = call->first; op; op = op->next) {
        ctx = ngx_http_get_module_ctx(op->request,
                                      ngx_http_stripe_sync_module);
        nkeys += ctx->nkeys;
        len += op->len;
    }

    nklen = ngx_sprintf(numkeys, "%ui", nkeys) - numkeys;
    argc = 3 + nkeys + 1 + call->n * ENQUEUE_EVENT_ARGS;

    len += NGX_INT_T_LEN + 3
           + (sizeof("EVALSHA") - 1) + script->len + nklen
           + sscf->key_queue.len + sscf->key_customers.len
           + sscf->key_stats.len + sscf->ttl.len
           + 7 * (NGX_INT_T_LEN + 5);

    if (len > ngx_http_stripe_sync_cmd_size) {
        cmd = ngx_alloc(ngx_max(len, 2 * ngx_http_stripe_sync_cmd_size),
                        ngx_cycle->log);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_stripe_sync_cmd) {
            ngx_free(ngx_http_stripe_sync_cmd);
        }

        ngx_http_stripe_sync_cmd = cmd;
        ngx_http_stripe_sync_cmd_size = ngx_max(len,
                                         2 * ngx_http_stripe_sync_cmd_size);
    }

    p = ngx_sprintf(ngx_http_stripe_sync_cmd, "*%ui\r\n", argc);

    if (call->eval) {
        p = ngx_http_stripe_sync_resp_arg(p, (u_char *) "EVAL", 4);

    } else {
        p = ngx_http_stripe_sync_resp_arg(p, (u_char *) "EVALSHA", 7);
    }

    p = ngx_http_stripe_sync_resp_arg(p, script->data, script->len);
    p = ngx_http_stripe_sync_resp_arg(p, numkeys, nklen);
    p = ngx_http_stripe_sync_resp_arg(p, sscf->key_queue.data,
                                      sscf->key_queue.len);
    p = ngx_http_stripe_sync_resp_arg(p, sscf->key_customers.data,
                                      sscf->key_customers.len);
    p = ngx_http_stripe_sync_resp_arg(p, sscf->key_stats.data,
                                      sscf->key_stats.len);

    for (op = call->first; op; op = op->next) {
        ctx = ngx_http_get_module_ctx(op->request,
                                      ngx_http_stripe_sync_module);

        for (i = 0; i < ctx->nkeys; i++) {
            p = ngx_http_stripe_sync_resp_arg(p, ctx->args[i].data,
                                              ctx->args[i].len);
        }
    }

    p = ngx_http_stripe_sync_resp_arg(p, sscf->ttl.data, sscf->ttl.len);

    for (op = call->first; op; op = op->next) {
        ctx = ngx_http_get_module_ctx(op->request,
                                      ngx_http_stripe_sync_module);

        for (i = ctx->nkeys; i < ctx->nkeys + ENQUEUE_EVENT_ARGS; i++) {
            p = ngx_http_stripe_sync_resp_arg(p, ctx->args[i].data,
                                              ctx->args[i].len);
        }
    }

    if (redisAsyncFormattedCommand(ac, ngx_http_stripe_sync_redis_call_reply,
                                   call, (char *) ngx_http_stripe_sync_cmd,
                                   p - ngx_http_stripe_sync_cmd)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    call->sent = 1;
    call->first->redis->calls++;

    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_SCRIPT_CALLS, 1);
    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_SCRIPT_EVENTS,
                                     call->n);

    return NGX_OK;
}


static u_char *
ngx_http_stripe_sync_resp_arg(u_char *p, u_char *data, size_t len)
{
    p = ngx_sprintf(p, "$%uz\r\n", len);
    p = ngx_cpymem(p, data, len);
    *p++ = CR;
    *p++ = LF;

    return p;
}


/* the request is done or gone: its op must not touch it any more */

void
ngx_http_stripe_sync_redis_detach(ngx_http_stripe_sync_ctx_t *ctx)
{
    ngx_http_stripe_sync_op_t  *op;

    op = ctx->op;
    if (op == NULL) {
        return;
    }

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    op->request = NULL;
    ctx->op = NULL;
}


/* a script call's reply: an answer per event, or one error for all */

static void
ngx_http_stripe_sync_redis_call_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                    *reply = r;
    ngx_http_stripe_sync_call_t   *call = privdata;

    ngx_uint_t                     i;
    redisReply                    *answer;
    ngx_http_stripe_sync_op_t     *op, *next;
    ngx_http_stripe_sync_redis_t  *redis;

    redis = call->first->redis;

    if (call->sent) {
        call->sent = 0;
        redis->calls--;

        /* the events that waited for this reply go now */
        if (redis->pending && !redis->flush.posted && !redis->exiting) {
            ngx_post_event(&redis->flush, &ngx_posted_events);
        }
    }

    /* the script was flushed from Redis: send it whole, once, with the
       events still waiting for it */
    if (reply != NULL
        && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && !call->eval
        && !redis->exiting
        && !(ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)))
    {
        call->first = ngx_http_stripe_sync_redis_live(call->first,
                                                       &call->n);

        if (call->first == NULL) {
            ngx_http_stripe_sync_call_free(call);
            return;
        }

        call->eval = 1;

        if (ngx_http_stripe_sync_redis_call(ac, call) == NGX_OK) {
            return;
        }
    }

    /* a replica, or a primary demoted since ROLE: find the primary again */
    if (reply != NULL
        && reply->type == REDIS_REPLY_ERROR
        && redis->sentinels
        && !redis->exiting
        && ngx_strncmp(reply->str, "READONLY", 8) == 0)
    {
        ngx_http_stripe_sync_sentinel_demoted(redis, reply->str);
    }

    for (op = call->first, i = 0; op; op = next, i++) {
        next = op->next;

        answer = reply;

        if (reply != NULL
            && reply->type == REDIS_REPLY_ARRAY
            && reply->elements == call->n)
        {
            answer = reply->element[i];
        }

        /* any other array is an unexpected reply, answered 503 */

        ngx_http_stripe_sync_redis_op_reply(ac, op, answer);
    }

    ngx_http_stripe_sync_call_free(call);
}


/* an event's answer: its request's, once replicas have it if need be */

static void
ngx_http_stripe_sync_redis_op_reply(redisAsyncContext *ac,
    ngx_http_stripe_sync_op_t *op, redisReply *reply)
{
    ngx_http_request_t          *req;
    ngx_http_stripe_sync_ctx_t  *ctx;

    req = op->request;

    if (req == NULL) {
        /* answered already (timeout) or the client went away */
        ngx_http_stripe_sync_op_free(op);
        return;
    }

    if (op->redis->exiting) {
        /* the worker is going away: no request is answered from here */
        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }

        ngx_http_stripe_sync_op_free(op);
        return;
    }

    /* replicated before it is acknowledged (also a duplicate's: its
       counter is written after the first copy's effects) */
    if (reply != NULL
        && reply->type == REDIS_REPLY_INTEGER
        && ngx_http_stripe_sync_redis_wait(ac, op, reply) == NGX_OK)
    {
        return;
    }

    ctx = ngx_http_get_module_ctx(req, ngx_http_stripe_sync_module);

    ngx_http_stripe_sync_redis_detach(ctx);
    ngx_http_stripe_sync_op_free(op);

    ngx_http_stripe_sync_redis_reply(req, reply);
}


/*
 * stripe_sync_redis_wait_replicas. WAIT blocks the connection it is sent
 * on, and answers for everything written on it before: so there is one
 * WAIT in flight per connection, covering every script answered before it
 * was sent, and the scripts answered meanwhile wait for the next one (a
 * group commit). NGX_DECLINED: not configured, the caller answers; NGX_OK:
 * the op waits for a WAIT, or was answered 503.
 */

static ngx_int_t
ngx_http_stripe_sync_redis_wait(redisAsyncContext *ac,
    ngx_http_stripe_sync_op_t *op, redisReply *reply)
{
    ngx_http_request_t               *req;
    ngx_http_stripe_sync_ctx_t       *ctx;
    ngx_http_stripe_sync_redis_t     *redis;
    ngx_http_stripe_sync_loc_conf_t  *sscf;

    req = op->request;
    redis = op->redis;
    sscf = ngx_http_get_module_loc_conf(req, ngx_http_stripe_sync_module);

    if (sscf->wait_replicas <= 0) {
        return NGX_DECLINED;
    }

    if (ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)) {
        /* stored, but whether a replica has it is unknown: not confirmed */
        ctx = ngx_http_get_module_ctx(req, ngx_http_stripe_sync_module);
        ngx_http_stripe_sync_redis_detach(ctx);
        ngx_http_stripe_sync_op_free(op);

        ngx_http_stripe_sync_redis_unreplicated(req, -1);
        return NGX_OK;
    }

    op->script_reply = reply->integer;
    op->wait_replicas = sscf->wait_replicas;
    op->wait_timeout = sscf->wait_timeout;
    op->next = NULL;

    if (redis->wait_next) {
        redis->wait_last->next = op;

    } else {
        redis->wait_next = op;
    }

    redis->wait_last = op;

    if (!redis->wait_sent) {
        ngx_http_stripe_sync_redis_wait_send(redis, ac);
    }

    return NGX_OK;
}


/* WAIT for the ops of wait_next: the most replicas any of them needs, the
   shortest time any of them allows */

static void
ngx_http_stripe_sync_redis_wait_send(ngx_http_stripe_sync_redis_t *redis,
    redisAsyncContext *ac)
{
    u_char                      num[NGX_INT_T_LEN], ms[NGX_INT_T_LEN];
    size_t                      argvlen[3];
    ngx_int_t                   n;
    ngx_msec_t                  t;
    const char                 *argv[3];
    ngx_http_stripe_sync_op_t  *op;

    n = 0;
    t = NGX_MAX_INT32_VALUE;

    for (op = redis->wait_next; op; op = op->next) {
        n = ngx_max(n, op->wait_replicas);
        t = ngx_min(t, op->wait_timeout);
    }

    argv[0] = "WAIT";
    argvlen[0] = 4;
    argv[1] = (const char *) num;
    argvlen[1] = ngx_sprintf(num, "%i", n) - num;
    argv[2] = (const char *) ms;
    argvlen[2] = ngx_sprintf(ms, "%M", t) - ms;

    redis->wait_batch = redis->wait_next;
    redis->wait_next = NULL;
    redis->wait_last = NULL;
    redis->wait_sent = 1;

    if (redisAsyncCommandArgv(ac, ngx_http_stripe_sync_redis_wait_reply,
                              redis, 3, argv, argvlen)
        != REDIS_OK)
    {
        /* not sent: answered as if the connection was lost */
        ngx_http_stripe_sync_redis_wait_reply(ac, NULL, redis);
    }
}


static void
ngx_http_stripe_sync_redis_wait_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                    *reply = r;
    ngx_http_stripe_sync_op_t     *op, *next;
    ngx_http_stripe_sync_redis_t  *redis = privdata;

    op = redis->wait_batch;

    redis->wait_batch = NULL;
    redis->wait_sent = 0;

    for ( /* void */ ; op; op = next) {
        next = op->next;
        ngx_http_stripe_sync_redis_wait_answer(op, reply);
    }

    if (redis->wait_next == NULL) {
        return;
    }

    if (reply != NULL && !(ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)))
    {
        ngx_http_stripe_sync_redis_wait_send(redis, ac);
        return;
    }

    /* the connection is going: no WAIT will cover these */
    op = redis->wait_next;

    redis->wait_next = NULL;
    redis->wait_last = NULL;

    for ( /* void */ ; op; op = next) {
        next = op->next;
        ngx_http_stripe_sync_redis_wait_answer(op, NULL);
    }
}


/* one request of a WAIT's batch: its script's answer, or 503 */

static void
ngx_http_stripe_sync_redis_wait_answer(ngx_http_stripe_sync_op_t *op,
    redisReply *reply)
{
    long long                    script_reply;
    ngx_int_t                    wanted;
    redisReply                   done;
    ngx_http_request_t          *req;
    ngx_http_stripe_sync_ctx_t  *ctx;

    req = op->request;
    script_reply = op->script_reply;
    wanted = op->wait_replicas;

    if (req == NULL || op->redis->exiting) {
        /* timed out or gone already; or the worker is going away */
        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }

        ngx_http_stripe_sync_op_free(op);
        return;
    }

    ctx = ngx_http_get_module_ctx(req, ngx_http_stripe_sync_module);

    ngx_http_stripe_sync_redis_detach(ctx);
    ngx_http_stripe_sync_op_free(op);

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* lost connection, or refused: 503 as for the script */
        ngx_http_stripe_sync_redis_reply(req, reply);
        return;
    }

    if (reply->type != REDIS_REPLY_INTEGER || reply->integer < wanted) {
        ngx_http_stripe_sync_redis_unreplicated(req,
                           reply->type == REDIS_REPLY_INTEGER
                           ? reply->integer : -1);
        return;
    }

    /* the script's own answer, now that enough replicas have it */
    ngx_memzero(&done, sizeof(redisReply));
    done.type = REDIS_REPLY_INTEGER;
    done.integer = script_reply;

    ngx_http_stripe_sync_redis_reply(req, &done);
}


static void
ngx_http_stripe_sync_redis_op_timeout(ngx_event_t *ev)
{
    ngx_http_request_t          *r;
    ngx_http_stripe_sync_op_t   *op = ev->data;
    ngx_http_stripe_sync_ctx_t  *ctx;

    r = op->request;

    ctx = ngx_http_get_module_ctx(r, ngx_http_stripe_sync_module);

    /* the op stays with hiredis until its reply comes, then is freed */
    ngx_http_stripe_sync_redis_detach(ctx);

    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_TIMEOUT, 1);

    ngx_http_stripe_sync_redis_timeout(r);
}


static ngx_http_stripe_sync_op_t *
ngx_http_stripe_sync_op_get(void)
{
    ngx_http_stripe_sync_op_t  *op;

    op = ngx_http_stripe_sync_free_ops;

    if (op) {
        ngx_http_stripe_sync_free_ops = op->next;

    } else {
        op = ngx_alloc(sizeof(ngx_http_stripe_sync_op_t), ngx_cycle->log);
        if (op == NULL) {
            return NULL;
        }
    }

    ngx_memzero(op, sizeof(ngx_http_stripe_sync_op_t));

    return op;
}


static void
ngx_http_stripe_sync_op_free(ngx_http_stripe_sync_op_t *op)
{
    op->next = ngx_http_stripe_sync_free_ops;
    ngx_http_stripe_sync_free_ops = op;
}


static ngx_http_stripe_sync_call_t *
ngx_http_stripe_sync_call_get(void)
{
    ngx_http_stripe_sync_call_t  *call;

    call = ngx_http_stripe_sync_free_calls;

    if (call) {
        ngx_http_stripe_sync_free_calls = call->next;

    } else {
        call = ngx_alloc(sizeof(ngx_http_stripe_sync_call_t), ngx_cycle->log);
        if (call == NULL) {
            return NULL;
        }
    }

    ngx_memzero(call, sizeof(ngx_http_stripe_sync_call_t));

    return call;
}


static void
ngx_http_stripe_sync_call_free(ngx_http_stripe_sync_call_t *call)
{
    call->next = ngx_http_stripe_sync_free_calls;
    ngx_http_stripe_sync_free_calls = call;
}


/* at worker exit, after every context is freed: no op is in use any more */

void
ngx_http_stripe_sync_redis_free_ops(void)
{
    ngx_http_stripe_sync_op_t    *op;
    ngx_http_stripe_sync_call_t  *call;

    while (ngx_http_stripe_sync_free_ops) {
        op = ngx_http_stripe_sync_free_ops;
        ngx_http_stripe_sync_free_ops = op->next;
        ngx_free(op);
    }

    while (ngx_http_stripe_sync_free_calls) {
        call = ngx_http_stripe_sync_free_calls;
        ngx_http_stripe_sync_free_calls = call->next;
        ngx_free(call);
    }

    if (ngx_http_stripe_sync_cmd) {
        ngx_free(ngx_http_stripe_sync_cmd);
        ngx_http_stripe_sync_cmd = NULL;
        ngx_http_stripe_sync_cmd_size = 0;
    }
}
