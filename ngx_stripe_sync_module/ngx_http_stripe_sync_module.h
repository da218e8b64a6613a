
/*
 * ngx_http_stripe_sync_module: verify Stripe webhooks, normalize each event
 * into an action record and queue it in Redis with one atomic script.
 *
 * ngx_http_stripe_sync_module.c   directives, configuration, variables
 * ngx_http_stripe_sync_handler.c  the webhook request: body, verify, respond
 * ngx_http_stripe_sync_redis.c    hiredis async on nginx's event loop
 * ngx_http_stripe_sync_status.c   shared-memory counters, Prometheus page
 */


#ifndef _NGX_HTTP_STRIPE_SYNC_MODULE_H_INCLUDED_
#define _NGX_HTTP_STRIPE_SYNC_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "stripe_sig.h"
#include "action.h"


#define NGX_HTTP_STRIPE_SYNC_LIVEMODE_ANY   0
#define NGX_HTTP_STRIPE_SYNC_LIVEMODE_LIVE  1
#define NGX_HTTP_STRIPE_SYNC_LIVEMODE_TEST  2


/* what happened to a request: $stripe_sync_result and the counters */
typedef enum {
    NGX_HTTP_STRIPE_SYNC_NONE = 0,
    NGX_HTTP_STRIPE_SYNC_QUEUED,
    NGX_HTTP_STRIPE_SYNC_DUPLICATE,
    NGX_HTTP_STRIPE_SYNC_IGNORED,
    NGX_HTTP_STRIPE_SYNC_REJECTED,
    NGX_HTTP_STRIPE_SYNC_UNAVAILABLE,
    NGX_HTTP_STRIPE_SYNC_RESULTS
} ngx_http_stripe_sync_result_e;


/* why a request was rejected: a label of the rejected counter */
typedef enum {
    NGX_HTTP_STRIPE_SYNC_REJECT_METHOD = 0,
    NGX_HTTP_STRIPE_SYNC_REJECT_HEADER,
    NGX_HTTP_STRIPE_SYNC_REJECT_SIGNATURE,
    NGX_HTTP_STRIPE_SYNC_REJECT_TIMESTAMP,
    NGX_HTTP_STRIPE_SYNC_REJECT_BODY,
    NGX_HTTP_STRIPE_SYNC_REJECTS
} ngx_http_stripe_sync_reject_e;


#define NGX_HTTP_STRIPE_SYNC_BUCKETS  12


/* counters in shared memory, summed over all workers */
typedef struct {
    ngx_atomic_t                  requests[NGX_HTTP_STRIPE_SYNC_RESULTS];
    ngx_atomic_t                  rejects[NGX_HTTP_STRIPE_SYNC_REJECTS];
    ngx_atomic_t                  redis_errors;
    ngx_atomic_t                  redis_timeouts;
    ngx_atomic_t                  redis_connections;
    ngx_atomic_t                  duration[NGX_HTTP_STRIPE_SYNC_BUCKETS];
    ngx_atomic_t                  duration_usec;
    ngx_atomic_t                  duration_count;
} ngx_http_stripe_sync_counters_t;


/*
 * One Redis server as configured; the per-worker connection state lives
 * here too, since each worker has its own copy of the configuration.
 */
typedef struct {
    ngx_str_t                     name;       /* as written, for logs */
    ngx_str_t                     host;       /* resolved, NUL-terminated */
    ngx_int_t                     port;
    ngx_str_t                     unix_path;  /* NUL-terminated */
    ngx_str_t                     password;
    ngx_int_t                     db;

    redisAsyncContext            *ac;
    ngx_connection_t             *conn;
    ngx_event_t                   timer;      /* connect timeout, backoff */
    ngx_msec_t                    backoff;
    ngx_log_t                    *log;
    unsigned                      connected:1;
    unsigned                      exiting:1;
} ngx_http_stripe_sync_redis_t;


typedef struct {
    ngx_array_t                   servers;    /* ngx_http_stripe_sync_redis_t * */
    ngx_shm_zone_t               *shm_zone;
    ngx_http_stripe_sync_counters_t  *counters;
    ngx_str_t                     script;
    u_char                        script_sha[41];
} ngx_http_stripe_sync_main_conf_t;


typedef struct {
    ngx_flag_t                    enable;
    ngx_str_t                     enable_file;
    ngx_uint_t                    enable_line;

    ngx_str_t                     redis_addr;
    ngx_str_t                     redis_password_file;
    ngx_int_t                     redis_db;
    ngx_msec_t                    redis_timeout;
    ngx_str_t                     prefix;

    ngx_array_t                  *secrets;    /* ngx_str_t */
    stripe_sig_secret            *sig_secrets;
    ngx_uint_t                    nsig_secrets;
    time_t                        tolerance;
    ngx_uint_t                    livemode;
    time_t                        dedup_ttl;
    ngx_array_t                  *events;     /* ngx_str_t, accepted types */

    ngx_http_stripe_sync_redis_t *redis;

    /* "{P}:seen:", "{P}:queue", ... built once at configuration */
    ngx_str_t                     key_seen;
    ngx_str_t                     key_queue;
    ngx_str_t                     key_customers;
    ngx_str_t                     key_stats;
    ngx_str_t                     key_once;
    ngx_str_t                     ttl;
} ngx_http_stripe_sync_loc_conf_t;


#define NGX_HTTP_STRIPE_SYNC_ARGS_MAX  16


/* a Redis command in flight for a request; outlives the request if need be */
typedef struct ngx_http_stripe_sync_op_s  ngx_http_stripe_sync_op_t;

struct ngx_http_stripe_sync_op_s {
    ngx_http_request_t           *request;    /* NULL once answered or gone */
    ngx_http_stripe_sync_redis_t *redis;
    ngx_event_t                   timer;
    unsigned                      eval:1;     /* resent as EVAL (NOSCRIPT) */
    ngx_http_stripe_sync_op_t    *next;       /* free list */
};


typedef struct {
    ngx_http_stripe_sync_result_e result;
    ngx_str_t                     event_id;
    ngx_str_t                     event_type;
    struct timespec               start;

    stripe_sig_header             sig;
    action                        action;
    unsigned                      action_built:1;

    ngx_http_stripe_sync_op_t    *op;
    int                           argc;
    const char                   *argv[NGX_HTTP_STRIPE_SYNC_ARGS_MAX];
    size_t                        argvlen[NGX_HTTP_STRIPE_SYNC_ARGS_MAX];
} ngx_http_stripe_sync_ctx_t;


extern ngx_module_t  ngx_http_stripe_sync_module;


/* handler */
ngx_int_t ngx_http_stripe_sync_handler(ngx_http_request_t *r);
void ngx_http_stripe_sync_redis_reply(ngx_http_request_t *r,
    redisReply *reply);
void ngx_http_stripe_sync_redis_timeout(ngx_http_request_t *r);

/* redis */
ngx_int_t ngx_http_stripe_sync_redis_connect(
    ngx_http_stripe_sync_redis_t *redis);
void ngx_http_stripe_sync_redis_close(ngx_http_stripe_sync_redis_t *redis);
ngx_int_t ngx_http_stripe_sync_redis_send(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_redis_t *redis,
    ngx_msec_t timeout);
void ngx_http_stripe_sync_redis_detach(ngx_http_stripe_sync_ctx_t *ctx);
void ngx_http_stripe_sync_redis_free_ops(void);

/* status */
ngx_int_t ngx_http_stripe_sync_status_init_zone(ngx_conf_t *cf);
ngx_int_t ngx_http_stripe_sync_status_handler(ngx_http_request_t *r);
void ngx_http_stripe_sync_count_request(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx);
void ngx_http_stripe_sync_count_reject(ngx_http_request_t *r,
    ngx_http_stripe_sync_reject_e reason);
void ngx_http_stripe_sync_count_redis(ngx_uint_t what, ngx_int_t delta);

#define NGX_HTTP_STRIPE_SYNC_REDIS_ERROR       0
#define NGX_HTTP_STRIPE_SYNC_REDIS_TIMEOUT     1
#define NGX_HTTP_STRIPE_SYNC_REDIS_CONNECTION  2


#endif /* _NGX_HTTP_STRIPE_SYNC_MODULE_H_INCLUDED_ */
