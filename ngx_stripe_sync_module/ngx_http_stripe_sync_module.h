
/*
 * ngx_http_stripe_sync_module: verify Stripe webhooks, normalize each event
 * into an action record and queue it in Redis with one atomic script.
 *
 * ngx_http_stripe_sync_module.c   directives, configuration, variables
 * ngx_http_stripe_sync_handler.c  the webhook request: body, verify, respond
 * ngx_http_stripe_sync_redis.c    hiredis async on nginx's event loop
 * ngx_http_stripe_sync_sentinel.c the primary looked up from Redis Sentinel
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
#include "enqueue_script.h"


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
    ngx_atomic_t                  sentinel_lookups;
    ngx_atomic_t                  sentinel_errors;
    ngx_atomic_t                  sentinel_failovers;
    ngx_atomic_t                  redis_unreplicated;
    ngx_atomic_t                  script_calls;
    ngx_atomic_t                  script_events;
} ngx_http_stripe_sync_counters_t;


/* a sentinel of stripe_sync_redis_sentinel, resolved at configuration */
typedef struct {
    ngx_str_t                     name;       /* as written, for logs */
    ngx_str_t                     host;       /* an address, NUL-terminated */
    ngx_int_t                     port;
} ngx_http_stripe_sync_sentinel_t;


typedef struct ngx_http_stripe_sync_redis_s  ngx_http_stripe_sync_redis_t;
typedef struct ngx_http_stripe_sync_op_s  ngx_http_stripe_sync_op_t;
typedef struct ngx_http_stripe_sync_call_s  ngx_http_stripe_sync_call_t;


/* a connection to a sentinel: a lookup, or the +switch-master watch */
typedef struct {
    ngx_http_stripe_sync_redis_t *redis;
    redisAsyncContext            *ac;
    ngx_event_t                   timer;
    ngx_uint_t                    index;      /* the sentinel it talks to */
    ngx_msec_t                    backoff;    /* watch: before the next try */
    unsigned                      busy:1;     /* lookup: no outcome yet */
    unsigned                      connected:1;
} ngx_http_stripe_sync_sentinel_link_t;


/*
 * One Redis server as configured; the per-worker connection state lives
 * here too, since each worker has its own copy of the configuration.
 */
struct ngx_http_stripe_sync_redis_s {
    ngx_str_t                     name;       /* as written, for logs */
    ngx_str_t                     host;       /* resolved, NUL-terminated */
    ngx_int_t                     port;
    ngx_str_t                     unix_path;  /* NUL-terminated */
    ngx_str_t                     password;   /* in the secret memory */
    ngx_str_t                     auth;       /* "AUTH <password>" in RESP,
                                                 in the secret memory */
    ngx_int_t                     db;

    redisAsyncContext            *ac;
    ngx_event_t                   timer;      /* connect timeout, backoff */
    ngx_msec_t                    backoff;
    ngx_log_t                    *log;
    unsigned                      connected:1;
    unsigned                      exiting:1;
    unsigned                      auth_queued:1;  /* AUTH in hiredis's
                                                     output buffer */

    /* stripe_sync_redis_sentinel: host and port are looked up, not set */
    ngx_array_t                  *sentinels;  /* NULL, or of
                                                 ..._sentinel_t */
    ngx_str_t                     master;     /* the name sentinels know */
    ngx_str_t                     sentinel_auth;  /* AUTH in RESP, in the
                                                     secret memory */
    ngx_http_stripe_sync_sentinel_link_t  *lookup;
    ngx_http_stripe_sync_sentinel_link_t  *watch;
    ngx_uint_t                    next_sentinel;
    ngx_uint_t                    tries;      /* sentinels asked in a row */
    u_char                        addr[NGX_SOCKADDR_STRLEN + 1];
    u_char                        last[NGX_SOCKADDR_STRLEN + 1];
    /* stripe_sync_redis_wait_replicas: one WAIT in flight per connection
       covers every script answered before it was sent */
    ngx_http_stripe_sync_op_t    *wait_batch;  /* ops the WAIT covers */
    ngx_http_stripe_sync_op_t    *wait_next;   /* ops for the next WAIT */
    ngx_http_stripe_sync_op_t    *wait_last;   /* the tail of wait_next */
    unsigned                      wait_sent:1;

    /* the requests of one pass of the event loop, sent as one script call
       when the pass ends (the flush event, posted); while a call is in
       flight, those that come meanwhile wait for its reply and go
       together (a group commit) */
    ngx_http_stripe_sync_op_t    *pending;
    ngx_http_stripe_sync_op_t    *pending_last;
    size_t                        pending_len;  /* their arguments' bytes */
    ngx_event_t                   flush;
    ngx_uint_t                    calls;      /* script calls in flight */

    unsigned                      found:1;    /* host, port just looked up */
    unsigned                      primary:1;  /* ROLE answered "master" */
    unsigned                      lookup_failed:1;  /* logged once */
};


/*
 * Memory for secrets (webhook secrets, the Redis password): mmap()ed,
 * excluded from core dumps (MADV_DONTDUMP) and locked in RAM when allowed;
 * unmapped with the cycle's pool.
 */
typedef struct {
    u_char                       *pos;
    u_char                       *end;
} ngx_http_stripe_sync_secret_mem_t;


typedef struct {
    ngx_array_t                   servers;    /* ngx_http_stripe_sync_redis_t * */
    ngx_shm_zone_t               *shm_zone;
    ngx_http_stripe_sync_counters_t  *counters;
    ngx_str_t                     script;
    u_char                        script_sha[41];
    ngx_http_stripe_sync_secret_mem_t  secret_mem;
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

    /* stripe_sync_redis_sentinel, the other way to name a Redis */
    ngx_array_t                  *redis_sentinels;  /* ..._sentinel_t */
    ngx_str_t                     redis_master;
    ngx_str_t                     redis_sentinel_password;

    /* stripe_sync_redis_wait_replicas: WAIT after the script */
    ngx_int_t                     wait_replicas;
    ngx_msec_t                    wait_timeout;

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
    ngx_str_t                     key_order;
    ngx_str_t                     ttl;
} ngx_http_stripe_sync_loc_conf_t;


/* an event's part of the script call: its keys, then its arguments */
#define NGX_HTTP_STRIPE_SYNC_EVENT_ARGS                                      \
    (ENQUEUE_EVENT_KEYS + ENQUEUE_EVENT_ARGS)


/* a request's event in Redis's hands; outlives the request if need be */
struct ngx_http_stripe_sync_op_s {
    ngx_http_request_t           *request;    /* NULL once answered or gone */
    ngx_http_stripe_sync_redis_t *redis;
    ngx_http_stripe_sync_loc_conf_t  *conf;   /* the keys' prefix, the ttl */
    size_t                        len;        /* its event's part of the
                                                 call in RESP, at most */
    ngx_event_t                   timer;
    long long                     script_reply;  /* kept for WAIT's */
    ngx_int_t                     wait_replicas;
    ngx_msec_t                    wait_timeout;
    ngx_http_stripe_sync_op_t    *next;       /* pending, in a call, WAIT
                                                 batch, free list */
};


/* one script call in flight: the ops of its events, in their order */
struct ngx_http_stripe_sync_call_s {
    ngx_http_stripe_sync_op_t    *first;
    ngx_uint_t                    n;
    unsigned                      eval:1;     /* resent as EVAL (NOSCRIPT) */
    unsigned                      sent:1;     /* counted in redis->calls */
    ngx_http_stripe_sync_call_t  *next;       /* free list */
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
    ngx_uint_t                    nkeys;      /* seen, [once], [order] */
    ngx_str_t                     args[NGX_HTTP_STRIPE_SYNC_EVENT_ARGS];
} ngx_http_stripe_sync_ctx_t;


extern ngx_module_t  ngx_http_stripe_sync_module;


/* handler */
ngx_int_t ngx_http_stripe_sync_handler(ngx_http_request_t *r);
void ngx_http_stripe_sync_redis_reply(ngx_http_request_t *r,
    redisReply *reply);
void ngx_http_stripe_sync_redis_timeout(ngx_http_request_t *r);
void ngx_http_stripe_sync_redis_unreplicated(ngx_http_request_t *r,
    long long acked);

/* redis */
ngx_int_t ngx_http_stripe_sync_redis_connect(
    ngx_http_stripe_sync_redis_t *redis);
void ngx_http_stripe_sync_redis_close(ngx_http_stripe_sync_redis_t *redis);
ngx_int_t ngx_http_stripe_sync_redis_send(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_loc_conf_t *sscf,
    ngx_http_stripe_sync_redis_t *redis);
void ngx_http_stripe_sync_redis_detach(ngx_http_stripe_sync_ctx_t *ctx);
void ngx_http_stripe_sync_redis_free_ops(void);
void ngx_http_stripe_sync_redis_arm(ngx_http_stripe_sync_redis_t *redis,
    ngx_msec_t delay);
void ngx_http_stripe_sync_redis_schedule(ngx_http_stripe_sync_redis_t *redis);
ngx_int_t ngx_http_stripe_sync_redis_attach(redisAsyncContext *ac,
    ngx_str_t *name, ngx_log_t *log);

/* sentinel */
void ngx_http_stripe_sync_sentinel_lookup(ngx_http_stripe_sync_redis_t *redis);
void ngx_http_stripe_sync_sentinel_watch(ngx_http_stripe_sync_redis_t *redis);
void ngx_http_stripe_sync_sentinel_close(ngx_http_stripe_sync_redis_t *redis);
void ngx_http_stripe_sync_sentinel_role(redisAsyncContext *ac, void *r,
    void *privdata);
void ngx_http_stripe_sync_sentinel_demoted(
    ngx_http_stripe_sync_redis_t *redis, const char *why);

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
#define NGX_HTTP_STRIPE_SYNC_SENTINEL_LOOKUP   3
#define NGX_HTTP_STRIPE_SYNC_SENTINEL_ERROR    4
#define NGX_HTTP_STRIPE_SYNC_SENTINEL_FAILOVER 5
#define NGX_HTTP_STRIPE_SYNC_REDIS_UNREPLICATED  6
#define NGX_HTTP_STRIPE_SYNC_SCRIPT_CALLS      7
#define NGX_HTTP_STRIPE_SYNC_SCRIPT_EVENTS     8


#endif /* _NGX_HTTP_STRIPE_SYNC_MODULE_H_INCLUDED_ */
