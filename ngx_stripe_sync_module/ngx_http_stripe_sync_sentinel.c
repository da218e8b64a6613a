
/*
 * Copyright (C) stripe-sync contributors
 *
 * Redis Sentinel (stripe_sync_redis_sentinel): the primary's address is
 * asked of the sentinels in turn (SENTINEL get-master-addr-by-name), and
 * the connection to it is used only once ROLE answers "master". A lost
 * connection, a READONLY reply, or a +switch-master message on the
 * subscription each worker keeps to one sentinel, sends the worker looking
 * again. Everything is hiredis async on nginx's event loop, through the
 * adapter in ngx_http_stripe_sync_redis.c, and every step goes through a
 * timer: no connection is opened from inside a hiredis callback of its own.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_stripe_sync_module.h"


#define NGX_HTTP_STRIPE_SYNC_LOOKUP_TIMEOUT  1000
#define NGX_HTTP_STRIPE_SYNC_WATCH_CONNECT   3000
#define NGX_HTTP_STRIPE_SYNC_WATCH_RETRY     1000   /* doubling to: */
#define NGX_HTTP_STRIPE_SYNC_WATCH_RETRY_MAX 30000
#define NGX_HTTP_STRIPE_SYNC_DEMOTE_TIMEOUT  3000


static ngx_int_t ngx_http_stripe_sync_sentinel_open(
    ngx_http_stripe_sync_sentinel_link_t *link,
    redisConnectCallback *connected, redisDisconnectCallback *disconnected);
static ngx_http_stripe_sync_sentinel_t *ngx_http_stripe_sync_sentinel_at(
    ngx_http_stripe_sync_redis_t *redis, ngx_uint_t i);
static void ngx_http_stripe_sync_sentinel_auth_reply(redisAsyncContext *ac,
    void *r, void *privdata);

static void ngx_http_stripe_sync_lookup_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_stripe_sync_lookup_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_stripe_sync_lookup_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_stripe_sync_lookup_timer(ngx_event_t *ev);
static ngx_int_t ngx_http_stripe_sync_lookup_address(
    ngx_http_stripe_sync_sentinel_link_t *link, redisReply *reply);
static void ngx_http_stripe_sync_lookup_done(
    ngx_http_stripe_sync_sentinel_link_t *link, ngx_int_t found);

static void ngx_http_stripe_sync_watch_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_stripe_sync_watch_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_stripe_sync_watch_message(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_stripe_sync_watch_timer(ngx_event_t *ev);
static void ngx_http_stripe_sync_watch_retry(
    ngx_http_stripe_sync_sentinel_link_t *link);
static void ngx_http_stripe_sync_sentinel_switched(
    ngx_http_stripe_sync_redis_t *redis, ngx_str_t *host, ngx_str_t *port);
static void ngx_http_stripe_sync_sentinel_drop(
    ngx_http_stripe_sync_redis_t *redis);

static void ngx_http_stripe_sync_link_arm(
    ngx_http_stripe_sync_sentinel_link_t *link, ngx_event_handler_pt handler,
    ngx_msec_t delay);


/*
 * Asks the next sentinel where the primary is. The outcome arms the Redis
 * timer: at once to connect (found) or to ask the next sentinel, or after
 * the backoff once every sentinel failed in a row.
 */

void
ngx_http_stripe_sync_sentinel_lookup(ngx_http_stripe_sync_redis_t *redis)
{
    ngx_http_stripe_sync_sentinel_link_t  *link;

    link = redis->lookup;

    if (link->busy || link->ac || redis->exiting) {
        return;
    }

    link->index = redis->next_sentinel % redis->sentinels->nelts;
    link->busy = 1;

    if (ngx_http_stripe_sync_sentinel_open(link,
                ngx_http_stripe_sync_lookup_connected,
                ngx_http_stripe_sync_lookup_disconnected)
        != NGX_OK)
    {
        ngx_http_stripe_sync_lookup_done(link, 0);
        return;
    }

    redisAsyncCommand(link->ac, ngx_http_stripe_sync_lookup_reply, link,
                      "SENTINEL get-master-addr-by-name %b",
                      redis->master.data, redis->master.len);

    ngx_http_stripe_sync_link_arm(link, ngx_http_stripe_sync_lookup_timer,
                                  NGX_HTTP_STRIPE_SYNC_LOOKUP_TIMEOUT);
}


static ngx_int_t
ngx_http_stripe_sync_sentinel_open(ngx_http_stripe_sync_sentinel_link_t *link,
    redisConnectCallback *connected, redisDisconnectCallback *disconnected)
{
    redisAsyncContext                *ac;
    ngx_http_stripe_sync_redis_t     *redis;
    ngx_http_stripe_sync_sentinel_t  *s;

    redis = link->redis;
    s = ngx_http_stripe_sync_sentinel_at(redis, link->index);

    /* an address: resolved at configuration, hiredis does not block */
    ac = redisAsyncConnect((char *) s->host.data, (int) s->port);

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: cannot allocate a Redis context for "
                      "sentinel \"%V\"", &s->name);
        return NGX_ERROR;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: cannot connect to sentinel \"%V\": %s",
                      &s->name, ac->errstr);
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    if (ngx_http_stripe_sync_redis_attach(ac, &s->name, redis->log)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    link->ac = ac;
    link->connected = 0;

    ac->data = link;

    redisAsyncSetConnectCallback(ac, connected);
    redisAsyncSetDisconnectCallback(ac, disconnected);

    if (redis->sentinel_auth.len) {
        /* formatted at configuration time, in the secret memory */
        redisAsyncFormattedCommand(ac,
                                   ngx_http_stripe_sync_sentinel_auth_reply,
                                   link, (char *) redis->sentinel_auth.data,
                                   redis->sentinel_auth.len);
    }

    return NGX_OK;
}


static ngx_http_stripe_sync_sentinel_t *
ngx_http_stripe_sync_sentinel_at(ngx_http_stripe_sync_redis_t *redis,
    ngx_uint_t i)
{
    ngx_http_stripe_sync_sentinel_t  *s;

    s = redis->sentinels->elts;

    return &s[i % redis->sentinels->nelts];
}


static void
ngx_http_stripe_sync_sentinel_auth_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                            *reply = r;
    ngx_http_stripe_sync_sentinel_link_t  *link = privdata;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, link->redis->log, 0,
                      "stripe_sync: sentinel \"%V\" refused AUTH: %s",
                      &ngx_http_stripe_sync_sentinel_at(link->redis,
                                                        link->index)->name,
                      reply->str);
    }
}


static void
ngx_http_stripe_sync_lookup_connected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_stripe_sync_sentinel_link_t  *link = ac->data;

    if (status == REDIS_OK) {
        link->connected = 1;
        return;
    }

    ngx_log_error(NGX_LOG_ERR, link->redis->log, 0,
                  "stripe_sync: cannot connect to sentinel \"%V\": %s",
                  &ngx_http_stripe_sync_sentinel_at(link->redis,
                                                    link->index)->name,
                  ac->errstr);

    /* hiredis frees the context after this, the lookup's callback first */
    link->ac = NULL;
    ngx_http_stripe_sync_lookup_done(link, 0);
}


static void
ngx_http_stripe_sync_lookup_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_stripe_sync_sentinel_link_t  *link = ac->data;

    link->ac = NULL;
    link->connected = 0;

    /* the lookup's callback ran first, with no reply, if it was pending */
}


static void
ngx_http_stripe_sync_lookup_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                            *reply = r;
    ngx_http_stripe_sync_redis_t          *redis;
    ngx_http_stripe_sync_sentinel_t       *s;
    ngx_http_stripe_sync_sentinel_link_t  *link = privdata;

    if (!link->busy) {
        /* decided already: timed out, or the worker is exiting */
        return;
    }

    redis = link->redis;
    s = ngx_http_stripe_sync_sentinel_at(redis, link->index);

    if (reply == NULL) {
        /* the connection is going away: hiredis frees the context */
        link->ac = NULL;

        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: sentinel \"%V\" closed the connection%s%s",
                      &s->name, ac->errstr[0] ? ": " : "", ac->errstr);
        ngx_http_stripe_sync_lookup_done(link, 0);
        return;
    }

    /* one question per connection: closed once this callback returns */
    link->ac = NULL;
    redisAsyncFree(ac);

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: sentinel \"%V\" refused "
                      "SENTINEL get-master-addr-by-name: %s",
                      &s->name, reply->str);
        ngx_http_stripe_sync_lookup_done(link, 0);
        return;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: sentinel \"%V\" knows no primary named "
                      "\"%V\"", &s->name, &redis->master);
        ngx_http_stripe_sync_lookup_done(link, 0);
        return;
    }

    ngx_http_stripe_sync_lookup_done(link,
        ngx_http_stripe_sync_lookup_address(link, reply) == NGX_OK);
}


/* ["<ip>", "<port>"]: an address, never a host name to resolve */

static ngx_int_t
ngx_http_stripe_sync_lookup_address(ngx_http_stripe_sync_sentinel_link_t *link,
    redisReply *reply)
{
    u_char                           *p;
    u_char                            where[NGX_SOCKADDR_STRLEN + 1];
    ngx_int_t                         port;
    redisReply                       *host, *pr;
    ngx_http_stripe_sync_redis_t     *redis;
    ngx_http_stripe_sync_sentinel_t  *s;
#if (NGX_HAVE_INET6)
    u_char                            inaddr6[16];
#endif

    redis = link->redis;
    s = ngx_http_stripe_sync_sentinel_at(redis, link->index);

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: sentinel \"%V\" answered "
                      "SENTINEL get-master-addr-by-name with a reply of "
                      "type %d, not [ip, port]", &s->name, reply->type);
        return NGX_ERROR;
    }

    host = reply->element[0];
    pr = reply->element[1];

    port = ngx_atoi((u_char *) pr->str, pr->len);

    if (port < 1 || port > 65535) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: sentinel \"%V\" named an invalid port "
                      "\"%*s\" for \"%V\"", &s->name, (size_t) pr->len,
                      pr->str, &redis->master);
        return NGX_ERROR;
    }

    if (host->len == 0
        || host->len > NGX_SOCKADDR_STRLEN - NGX_INT_T_LEN - 4
        || (ngx_inet_addr((u_char *) host->str, host->len) == INADDR_NONE
#if (NGX_HAVE_INET6)
            && ngx_inet6_addr((u_char *) host->str, host->len, inaddr6)
               != NGX_OK
#endif
           ))
    {
        /* hiredis 0.14 would resolve a name with a blocking call */
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: sentinel \"%V\" named the primary of "
                      "\"%V\" \"%*s\", which is not an IP address: set "
                      "the sentinels' \"resolve-hostnames no\" and announce "
                      "addresses", &s->name, &redis->master,
                      (size_t) ngx_min(host->len, 256), host->str);
        return NGX_ERROR;
    }

    ngx_memcpy(redis->addr, host->str, host->len);
    redis->addr[host->len] = '\0';

    redis->host.data = redis->addr;
    redis->host.len = host->len;
    redis->port = port;

    p = ngx_snprintf(where, NGX_SOCKADDR_STRLEN, "%s:%i%Z", redis->addr, port);

    if (redis->last[0] == '\0') {
        ngx_log_error(NGX_LOG_INFO, redis->log, 0,
                      "stripe_sync: sentinel \"%V\" names %s as the "
                      "primary of \"%V\"", &s->name, where, &redis->master);

    } else if (ngx_strcmp(redis->last, where) != 0) {
        ngx_log_error(NGX_LOG_NOTICE, redis->log, 0,
                      "stripe_sync: the primary of \"%V\" moved from %s to "
                      "%s (sentinel \"%V\")", &redis->master, redis->last,
                      where, &s->name);
        ngx_http_stripe_sync_count_redis(
                              NGX_HTTP_STRIPE_SYNC_SENTINEL_FAILOVER, 1);
    }

    ngx_memcpy(redis->last, where, p - where);

    /* logs name the primary and where it is: "mymaster@10.0.0.2:6379" */
    redis->name.len = ngx_sprintf(redis->name.data, "%V@%s", &redis->master,
                                  where)
                      - redis->name.data;

    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_SENTINEL_LOOKUP, 1);

    return NGX_OK;
}


static void
ngx_http_stripe_sync_lookup_timer(ngx_event_t *ev)
{
    redisAsyncContext                     *ac;
    ngx_http_stripe_sync_sentinel_link_t  *link = ev->data;

    if (!link->busy) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, link->redis->log, 0,
                  "stripe_sync: sentinel \"%V\" did not answer in %Mms",
                  &ngx_http_stripe_sync_sentinel_at(link->redis,
                                                    link->index)->name,
                  (ngx_msec_t) NGX_HTTP_STRIPE_SYNC_LOOKUP_TIMEOUT);

    ac = link->ac;

    /* decided here: the callbacks hiredis runs on the way out see that */
    ngx_http_stripe_sync_lookup_done(link, 0);

    if (ac) {
        link->ac = NULL;
        redisAsyncFree(ac);
    }
}


static void
ngx_http_stripe_sync_lookup_done(ngx_http_stripe_sync_sentinel_link_t *link,
    ngx_int_t found)
{
    ngx_http_stripe_sync_redis_t  *redis;

    redis = link->redis;

    link->busy = 0;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    if (redis->exiting) {
        return;
    }

    if (found) {
        redis->next_sentinel = link->index;
        redis->tries = 0;
        redis->found = 1;
        redis->lookup_failed = 0;

        /* connects from the timer, not from inside this callback */
        ngx_http_stripe_sync_redis_arm(redis, 0);
        return;
    }

    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_SENTINEL_ERROR, 1);

    redis->next_sentinel = link->index + 1;

    if (++redis->tries < redis->sentinels->nelts) {
        ngx_http_stripe_sync_redis_arm(redis, 0);
        return;
    }

    redis->tries = 0;

    if (!redis->lookup_failed) {
        ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                      "stripe_sync: no sentinel named the primary of "
                      "\"%V\": requests are answered 503 until one does",
                      &redis->master);
        redis->lookup_failed = 1;
    }

    ngx_http_stripe_sync_redis_schedule(redis);
}


/*
 * ROLE on a new connection, queued behind AUTH and SELECT: requests are
 * sent only once it says "master", so nothing is ever written to a replica.
 */

void
ngx_http_stripe_sync_sentinel_role(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                    *reply = r;
    const char                    *role;
    ngx_http_stripe_sync_redis_t  *redis = ac->data;

    if (reply == NULL || redis->exiting) {
        return;
    }

    if (reply->type == REDIS_REPLY_ARRAY
        && reply->elements > 0
        && reply->element[0]->type == REDIS_REPLY_STRING
        && ngx_strcmp(reply->element[0]->str, "master") == 0)
    {
        if (redis->timer.timer_set) {
            ngx_del_timer(&redis->timer);
        }

        redis->primary = 1;
        redis->backoff = 0;

        ngx_log_error(NGX_LOG_INFO, redis->log, 0,
                      "stripe_sync: Redis \"%V\" is the primary",
                      &redis->name);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        role = reply->str;

    } else if (reply->type == REDIS_REPLY_ARRAY
               && reply->elements > 0
               && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        role = reply->element[0]->str;

    } else {
        role = "?";
    }

    ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                  "stripe_sync: Redis \"%V\" is not the primary (ROLE: "
                  "%s): asking the sentinels again", &redis->name, role);
    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);

    ngx_http_stripe_sync_sentinel_drop(redis);
}


/* a READONLY reply: the primary was demoted under us */

void
ngx_http_stripe_sync_sentinel_demoted(ngx_http_stripe_sync_redis_t *redis,
    const char *why)
{
    if (!redis->primary) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, redis->log, 0,
                  "stripe_sync: Redis \"%V\" is no longer the primary "
                  "(\"%s\"): asking the sentinels again", &redis->name, why);

    ngx_http_stripe_sync_sentinel_drop(redis);
}


/*
 * Gives up the connection to a Redis that is not (or no longer) the
 * primary; the disconnect callback schedules the next lookup. Requests
 * already sent get their replies (errors: 503), then it closes.
 */

static void
ngx_http_stripe_sync_sentinel_drop(ngx_http_stripe_sync_redis_t *redis)
{
    redisAsyncContext  *ac;

    redis->primary = 0;

    ac = redis->ac;

    if (ac == NULL || (ac->c.flags & (REDIS_DISCONNECTING|REDIS_FREEING))) {
        return;
    }

    if (redis->connected) {
        redisAsyncDisconnect(ac);

        /* a peer that never answers must not keep it: the timer frees it */
        if (redis->ac) {
            ngx_http_stripe_sync_redis_arm(redis,
                                           NGX_HTTP_STRIPE_SYNC_DEMOTE_TIMEOUT);
        }

        return;
    }

    /* still connecting: nothing was sent on it but AUTH, SELECT, ROLE */
    redis->ac = NULL;
    redisAsyncFree(ac);

    ngx_http_stripe_sync_redis_schedule(redis);
}


/*
 * The +switch-master subscription: one connection per worker to one
 * sentinel (the next one when it goes away), so a failover is acted on
 * as soon as the sentinels agree on it, not at the next error.
 */

void
ngx_http_stripe_sync_sentinel_watch(ngx_http_stripe_sync_redis_t *redis)
{
    ngx_http_stripe_sync_sentinel_link_t  *link;

    link = redis->watch;

    if (link->ac || redis->exiting) {
        return;
    }

    if (ngx_http_stripe_sync_sentinel_open(link,
                ngx_http_stripe_sync_watch_connected,
                ngx_http_stripe_sync_watch_disconnected)
        != NGX_OK)
    {
        ngx_http_stripe_sync_watch_retry(link);
        return;
    }

    redisAsyncCommand(link->ac, ngx_http_stripe_sync_watch_message, link,
                      "SUBSCRIBE +switch-master");

    ngx_http_stripe_sync_link_arm(link, ngx_http_stripe_sync_watch_timer,
                                  NGX_HTTP_STRIPE_SYNC_WATCH_CONNECT);
}


static void
ngx_http_stripe_sync_watch_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_stripe_sync_sentinel_link_t  *link = ac->data;

    if (status == REDIS_OK) {
        link->connected = 1;

        if (link->timer.timer_set) {
            ngx_del_timer(&link->timer);
        }

        return;
    }

    ngx_log_error(NGX_LOG_WARN, link->redis->log, 0,
                  "stripe_sync: cannot subscribe to sentinel \"%V\": %s",
                  &ngx_http_stripe_sync_sentinel_at(link->redis,
                                                    link->index)->name,
                  ac->errstr);

    link->ac = NULL;
    ngx_http_stripe_sync_watch_retry(link);
}


static void
ngx_http_stripe_sync_watch_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_stripe_sync_sentinel_link_t  *link = ac->data;

    link->ac = NULL;
    link->connected = 0;

    if (link->redis->exiting) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, link->redis->log, 0,
                  "stripe_sync: lost the subscription to sentinel \"%V\"%s%s",
                  &ngx_http_stripe_sync_sentinel_at(link->redis,
                                                    link->index)->name,
                  status == REDIS_OK ? "" : ": ",
                  status == REDIS_OK ? "" : ac->errstr);

    ngx_http_stripe_sync_watch_retry(link);
}


/* the next sentinel, a second from now, doubling while none takes it */

static void
ngx_http_stripe_sync_watch_retry(ngx_http_stripe_sync_sentinel_link_t *link)
{
    if (link->redis->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    link->index++;

    link->backoff = link->backoff
                    ? ngx_min(link->backoff * 2,
                              NGX_HTTP_STRIPE_SYNC_WATCH_RETRY_MAX)
                    : NGX_HTTP_STRIPE_SYNC_WATCH_RETRY;

    ngx_http_stripe_sync_link_arm(link, ngx_http_stripe_sync_watch_timer,
                                  link->backoff);
}


static void
ngx_http_stripe_sync_watch_timer(ngx_event_t *ev)
{
    redisAsyncContext                     *ac;
    ngx_http_stripe_sync_sentinel_link_t  *link = ev->data;

    if (link->redis->exiting) {
        return;
    }

    if (link->ac == NULL) {
        ngx_http_stripe_sync_sentinel_watch(link->redis);
        return;
    }

    if (link->connected) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, link->redis->log, 0,
                  "stripe_sync: subscribing to sentinel \"%V\" timed out",
                  &ngx_http_stripe_sync_sentinel_at(link->redis,
                                                    link->index)->name);

    /* never connected: no disconnect callback, the retry is ours */
    ac = link->ac;
    link->ac = NULL;
    redisAsyncFree(ac);

    ngx_http_stripe_sync_watch_retry(link);
}


/* "message", "+switch-master", "<name> <old ip> <old port> <ip> <port>" */

static void
ngx_http_stripe_sync_watch_message(redisAsyncContext *ac, void *r,
    void *privdata)
{
    u_char                                *p, *last, *f[5];
    size_t                                 n[5];
    ngx_uint_t                             i;
    ngx_str_t                              host, port;
    redisReply                            *reply = r, *msg;
    ngx_http_stripe_sync_redis_t          *redis;
    ngx_http_stripe_sync_sentinel_link_t  *link = privdata;

    redis = link->redis;

    if (reply == NULL || redis->exiting) {
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "subscribe") == 0) {
        link->backoff = 0;
        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "message") != 0
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    msg = reply->element[2];
    p = (u_char *) msg->str;
    last = p + msg->len;

    for (i = 0; i < 5; i++) {
        while (p < last && *p == ' ') {
            p++;
        }

        f[i] = p;

        while (p < last && *p != ' ') {
            p++;
        }

        n[i] = p - f[i];

        if (n[i] == 0) {
            return;
        }
    }

    if (n[0] != redis->master.len
        || ngx_strncmp(f[0], redis->master.data, n[0]) != 0)
    {
        /* another primary the sentinels watch */
        return;
    }

    host.data = f[3];
    host.len = n[3];
    port.data = f[4];
    port.len = n[4];

    ngx_log_error(NGX_LOG_NOTICE, redis->log, 0,
                  "stripe_sync: sentinel \"%V\" says the primary of \"%V\" "
                  "is now %V:%V",
                  &ngx_http_stripe_sync_sentinel_at(redis, link->index)->name,
                  &redis->master, &host, &port);

    ngx_http_stripe_sync_sentinel_switched(redis, &host, &port);
}


static void
ngx_http_stripe_sync_sentinel_switched(ngx_http_stripe_sync_redis_t *redis,
    ngx_str_t *host, ngx_str_t *port)
{
    if (redis->primary
        && redis->host.len == host->len
        && ngx_strncmp(redis->host.data, host->data, host->len) == 0
        && redis->port == ngx_atoi(port->data, port->len))
    {
        /* found already */
        return;
    }

    redis->backoff = 0;

    if (redis->ac) {
        ngx_http_stripe_sync_sentinel_drop(redis);
        return;
    }

    if (!redis->lookup->busy && !redis->lookup->ac) {
        /* waiting for the backoff: ask now */
        ngx_http_stripe_sync_redis_arm(redis, 0);
    }
}


void
ngx_http_stripe_sync_sentinel_close(ngx_http_stripe_sync_redis_t *redis)
{
    redisAsyncContext                     *ac;
    ngx_uint_t                             i;
    ngx_http_stripe_sync_sentinel_link_t  *links[2];

    links[0] = redis->lookup;
    links[1] = redis->watch;

    for (i = 0; i < 2; i++) {
        links[i]->busy = 0;

        if (links[i]->timer.timer_set) {
            ngx_del_timer(&links[i]->timer);
        }

        ac = links[i]->ac;

        if (ac) {
            links[i]->ac = NULL;
            redisAsyncFree(ac);
        }
    }
}


/* one timer per link: the lookup's deadline, or the watch's retry */

static void
ngx_http_stripe_sync_link_arm(ngx_http_stripe_sync_sentinel_link_t *link,
    ngx_event_handler_pt handler, ngx_msec_t delay)
{
    link->timer.handler = handler;
    link->timer.data = link;
    link->timer.log = link->redis->log;

    /* must not keep a gracefully quitting worker alive */
    link->timer.cancelable = 1;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_add_timer(&link->timer, delay);
}
