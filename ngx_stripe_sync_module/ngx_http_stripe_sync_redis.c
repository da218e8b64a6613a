
/*
 * Copyright (C) stripe-sync contributors
 *
 * hiredis's async API on nginx's event loop: one connection per worker per
 * Redis, every request pipelined on it, reconnects from a timer with
 * backoff, a timer per request so no request waits longer than the
 * configured timeout.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_stripe_sync_module.h"


#define NGX_HTTP_STRIPE_SYNC_BACKOFF_MIN  100
#define NGX_HTTP_STRIPE_SYNC_BACKOFF_MAX  5000
#define NGX_HTTP_STRIPE_SYNC_CONNECT_TIMEOUT  3000


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
static void ngx_http_stripe_sync_redis_schedule(
    ngx_http_stripe_sync_redis_t *redis);
static void ngx_http_stripe_sync_redis_arm(
    ngx_http_stripe_sync_redis_t *redis, ngx_msec_t delay);
static void ngx_http_stripe_sync_redis_timer(ngx_event_t *ev);

static void ngx_http_stripe_sync_redis_op_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_stripe_sync_redis_op_timeout(ngx_event_t *ev);
static ngx_http_stripe_sync_op_t *ngx_http_stripe_sync_op_get(void);
static void ngx_http_stripe_sync_op_free(ngx_http_stripe_sync_op_t *op);


/* ops are recycled within a worker: no allocation per request */
static ngx_http_stripe_sync_op_t  *ngx_http_stripe_sync_free_ops;


ngx_int_t
ngx_http_stripe_sync_redis_connect(ngx_http_stripe_sync_redis_t *redis)
{
    u_char              db[NGX_INT_T_LEN + 1];
    redisAsyncContext  *ac;
    ngx_connection_t   *c;

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

    c = ngx_get_connection(ac->c.fd, redis->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_stripe_sync_redis_schedule(redis);
        return NGX_ERROR;
    }

    c->data = redis;
    c->log = redis->log;
    c->read->handler = ngx_http_stripe_sync_redis_read_handler;
    c->write->handler = ngx_http_stripe_sync_redis_write_handler;
    c->read->log = redis->log;
    c->write->log = redis->log;

    redis->ac = ac;
    redis->conn = c;
    redis->connected = 0;

    ac->data = redis;
    ac->ev.data = redis;
    ac->ev.addRead = ngx_http_stripe_sync_redis_add_read;
    ac->ev.delRead = ngx_http_stripe_sync_redis_del_read;
    ac->ev.addWrite = ngx_http_stripe_sync_redis_add_write;
    ac->ev.delWrite = ngx_http_stripe_sync_redis_del_write;
    ac->ev.cleanup = ngx_http_stripe_sync_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_stripe_sync_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_stripe_sync_redis_disconnected);

    /* queued now, sent first once connected: requests pipeline behind */

    if (redis->password.len) {
        redisAsyncCommand(ac, ngx_http_stripe_sync_redis_setup_reply,
                          "AUTH", "AUTH %b", redis->password.data,
                          redis->password.len);
    }

    if (redis->db) {
        ngx_sprintf(db, "%i%Z", redis->db);
        redisAsyncCommand(ac, ngx_http_stripe_sync_redis_setup_reply,
                          "SELECT", "SELECT %s", db);
    }

    /* a silent peer must not keep the connect, and requests, pending */
    ngx_http_stripe_sync_redis_arm(redis, NGX_HTTP_STRIPE_SYNC_CONNECT_TIMEOUT);

    return NGX_OK;
}


void
ngx_http_stripe_sync_redis_close(ngx_http_stripe_sync_redis_t *redis)
{
    redis->exiting = 1;

    if (redis->timer.timer_set) {
        ngx_del_timer(&redis->timer);
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
        ngx_http_stripe_sync_redis_schedule(redis);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, redis->log, 0,
                  "stripe_sync: connected to Redis \"%V\"", &redis->name);

    if (redis->timer.timer_set) {
        ngx_del_timer(&redis->timer);
    }

    redis->connected = 1;
    redis->backoff = 0;
    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_CONNECTION, 1);
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


static void
ngx_http_stripe_sync_redis_schedule(ngx_http_stripe_sync_redis_t *redis)
{
    if (redis->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (redis->backoff == 0) {
        redis->backoff = NGX_HTTP_STRIPE_SYNC_BACKOFF_MIN;

    } else {
        redis->backoff = ngx_min(redis->backoff * 2,
                                 NGX_HTTP_STRIPE_SYNC_BACKOFF_MAX);
    }

    ngx_http_stripe_sync_redis_arm(redis, redis->backoff);
}


/*
 * One timer per Redis: while connecting it bounds the connect, while
 * disconnected it is the backoff before the next attempt.
 */

static void
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

    if (redis->connected) {
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


/* the event library hooks hiredis calls */

static void
ngx_http_stripe_sync_redis_add_read(void *data)
{
    ngx_http_stripe_sync_redis_t *redis = data;

    ngx_event_t  *rev;

    rev = redis->conn->read;

    /* level-triggered: hiredis reads at most 16k per call */
    if (!rev->active) {
        if (ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                          "stripe_sync: cannot watch Redis \"%V\" for "
                          "reading", &redis->name);
        }
    }
}


static void
ngx_http_stripe_sync_redis_del_read(void *data)
{
    ngx_http_stripe_sync_redis_t *redis = data;

    ngx_event_t  *rev;

    rev = redis->conn->read;

    if (rev->active) {
        (void) ngx_del_event(rev, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_stripe_sync_redis_add_write(void *data)
{
    ngx_http_stripe_sync_redis_t *redis = data;

    ngx_event_t  *wev;

    wev = redis->conn->write;

    if (!wev->active) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                          "stripe_sync: cannot watch Redis \"%V\" for "
                          "writing", &redis->name);
        }
    }
}


static void
ngx_http_stripe_sync_redis_del_write(void *data)
{
    ngx_http_stripe_sync_redis_t *redis = data;

    ngx_event_t  *wev;

    wev = redis->conn->write;

    if (wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }
}


/*
 * hiredis frees its context: give the connection back to nginx without
 * closing the socket, which redisFree() closes right after.
 */

static void
ngx_http_stripe_sync_redis_cleanup(void *data)
{
    ngx_http_stripe_sync_redis_t *redis = data;

    ngx_connection_t  *c;

    c = redis->conn;
    if (c == NULL) {
        return;
    }

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

    redis->conn = NULL;
}


static void
ngx_http_stripe_sync_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t              *c = ev->data;
    ngx_http_stripe_sync_redis_t  *redis = c->data;

    /* the context and c may be gone when this returns */
    redisAsyncHandleRead(redis->ac);
}


static void
ngx_http_stripe_sync_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t              *c = ev->data;
    ngx_http_stripe_sync_redis_t  *redis = c->data;

    redisAsyncHandleWrite(redis->ac);
}


/*
 * Sends the request's script call. NGX_DECLINED: no Redis right now, the
 * caller answers 503 at once.
 */

ngx_int_t
ngx_http_stripe_sync_redis_send(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_redis_t *redis,
    ngx_msec_t timeout)
{
    ngx_http_stripe_sync_op_t  *op;

    if (redis->ac == NULL) {
        return NGX_DECLINED;
    }

    op = ngx_http_stripe_sync_op_get();
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->request = r;
    op->redis = redis;
    op->eval = 0;

    if (redisAsyncCommandArgv(redis->ac, ngx_http_stripe_sync_redis_op_reply,
                              op, ctx->argc, ctx->argv, ctx->argvlen)
        != REDIS_OK)
    {
        ngx_http_stripe_sync_op_free(op);
        return NGX_DECLINED;
    }

    ctx->op = op;

    op->timer.handler = ngx_http_stripe_sync_redis_op_timeout;
    op->timer.data = op;
    op->timer.log = r->connection->log;
    ngx_add_timer(&op->timer, timeout);

    return NGX_OK;
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


static void
ngx_http_stripe_sync_redis_op_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                  *reply = r;
    ngx_http_request_t          *req;
    ngx_http_stripe_sync_op_t   *op = privdata;
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

    ctx = ngx_http_get_module_ctx(req, ngx_http_stripe_sync_module);

    /* the script was flushed from Redis: send it whole, once */
    if (reply != NULL
        && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && !op->eval
        && !(ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)))
    {
        ngx_http_stripe_sync_main_conf_t  *smcf;

        smcf = ngx_http_get_module_main_conf(req, ngx_http_stripe_sync_module);

        ctx->argv[0] = "EVAL";
        ctx->argvlen[0] = 4;
        ctx->argv[1] = (const char *) smcf->script.data;
        ctx->argvlen[1] = smcf->script.len;

        op->eval = 1;

        if (redisAsyncCommandArgv(ac, ngx_http_stripe_sync_redis_op_reply,
                                  op, ctx->argc, ctx->argv, ctx->argvlen)
            == REDIS_OK)
        {
            return;
        }
    }

    ngx_http_stripe_sync_redis_detach(ctx);
    ngx_http_stripe_sync_op_free(op);

    ngx_http_stripe_sync_redis_reply(req, reply);
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


/* at worker exit, after every context is freed: no op is in use any more */

void
ngx_http_stripe_sync_redis_free_ops(void)
{
    ngx_http_stripe_sync_op_t  *op;

    while (ngx_http_stripe_sync_free_ops) {
        op = ngx_http_stripe_sync_free_ops;
        ngx_http_stripe_sync_free_ops = op->next;
        ngx_free(op);
    }
}
