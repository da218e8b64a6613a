
/*
 * Copyright (C) stripe-sync contributors
 *
 * Counters in shared memory, summed over every worker and kept across
 * reloads, and the Prometheus text page of "stripe_sync_status".
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_stripe_sync_module.h"


#define NGX_HTTP_STRIPE_SYNC_STATUS_MAX  8192


static ngx_int_t ngx_http_stripe_sync_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_stripe_sync_counters_t *ngx_http_stripe_sync_counters(void);


/* upper bounds of the duration buckets, microseconds; the last is +Inf */
static ngx_uint_t  ngx_http_stripe_sync_bounds[NGX_HTTP_STRIPE_SYNC_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 0
};

static const char  *ngx_http_stripe_sync_les[NGX_HTTP_STRIPE_SYNC_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "+Inf"
};

static const char  *ngx_http_stripe_sync_results[NGX_HTTP_STRIPE_SYNC_RESULTS] = {
    NULL, "queued", "duplicate", "ignored", "rejected", "unavailable"
};

static const char  *ngx_http_stripe_sync_reasons[NGX_HTTP_STRIPE_SYNC_REJECTS] = {
    "method", "header", "signature", "timestamp", "body"
};


ngx_int_t
ngx_http_stripe_sync_status_init_zone(ngx_conf_t *cf)
{
    ngx_str_t                          name;
    ngx_http_stripe_sync_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_stripe_sync_module);

    if (smcf->shm_zone) {
        return NGX_OK;
    }

    ngx_str_set(&name, "stripe_sync");

    smcf->shm_zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                           &ngx_http_stripe_sync_module);
    if (smcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    smcf->shm_zone->init = ngx_http_stripe_sync_init_zone;
    smcf->shm_zone->data = smcf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_stripe_sync_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_stripe_sync_main_conf_t  *oldmcf = data;

    ngx_slab_pool_t                   *shpool;
    ngx_http_stripe_sync_main_conf_t  *smcf;

    smcf = shm_zone->data;

    /* a reload: the counters go on from where they were */
    if (oldmcf) {
        smcf->counters = oldmcf->counters;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        smcf->counters = shpool->data;
        return NGX_OK;
    }

    smcf->counters = ngx_slab_calloc(shpool,
                                     sizeof(ngx_http_stripe_sync_counters_t));
    if (smcf->counters == NULL) {
        return NGX_ERROR;
    }

    shpool->data = smcf->counters;

    return NGX_OK;
}


static ngx_http_stripe_sync_counters_t *
ngx_http_stripe_sync_counters(void)
{
    ngx_http_stripe_sync_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_stripe_sync_module);

    return smcf ? smcf->counters : NULL;
}


void
ngx_http_stripe_sync_count_request(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx)
{
    ngx_uint_t                        i, usec;
    struct timespec                   now;
    ngx_http_stripe_sync_counters_t  *cnt;

    cnt = ngx_http_stripe_sync_counters();
    if (cnt == NULL || ctx->result == NGX_HTTP_STRIPE_SYNC_NONE) {
        return;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &now);

    usec = (ngx_uint_t) ((now.tv_sec - ctx->start.tv_sec) * 1000000
                         + (now.tv_nsec - ctx->start.tv_nsec) / 1000);

    for (i = 0; i < NGX_HTTP_STRIPE_SYNC_BUCKETS - 1; i++) {
        if (usec <= ngx_http_stripe_sync_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&cnt->requests[ctx->result], 1);
    (void) ngx_atomic_fetch_add(&cnt->duration[i], 1);
    (void) ngx_atomic_fetch_add(&cnt->duration_usec, usec);
    (void) ngx_atomic_fetch_add(&cnt->duration_count, 1);
}


void
ngx_http_stripe_sync_count_reject(ngx_http_request_t *r,
    ngx_http_stripe_sync_reject_e reason)
{
    ngx_http_stripe_sync_counters_t  *cnt;

    cnt = ngx_http_stripe_sync_counters();
    if (cnt == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&cnt->rejects[reason], 1);
}


void
ngx_http_stripe_sync_count_redis(ngx_uint_t what, ngx_int_t delta)
{
    ngx_http_stripe_sync_counters_t  *cnt;

    cnt = ngx_http_stripe_sync_counters();
    if (cnt == NULL) {
        return;
    }

    switch (what) {

    case NGX_HTTP_STRIPE_SYNC_REDIS_ERROR:
        (void) ngx_atomic_fetch_add(&cnt->redis_errors, delta);
        break;

    case NGX_HTTP_STRIPE_SYNC_REDIS_TIMEOUT:
        (void) ngx_atomic_fetch_add(&cnt->redis_timeouts, delta);
        break;

    case NGX_HTTP_STRIPE_SYNC_SENTINEL_LOOKUP:
        (void) ngx_atomic_fetch_add(&cnt->sentinel_lookups, delta);
        break;

    case NGX_HTTP_STRIPE_SYNC_SENTINEL_ERROR:
        (void) ngx_atomic_fetch_add(&cnt->sentinel_errors, delta);
        break;

    case NGX_HTTP_STRIPE_SYNC_SENTINEL_FAILOVER:
        (void) ngx_atomic_fetch_add(&cnt->sentinel_failovers, delta);
        break;

    case NGX_HTTP_STRIPE_SYNC_REDIS_UNREPLICATED:
        (void) ngx_atomic_fetch_add(&cnt->redis_unreplicated, delta);
        break;

    case NGX_HTTP_STRIPE_SYNC_SCRIPT_CALLS:
        (void) ngx_atomic_fetch_add(&cnt->script_calls, delta);
        break;

    case NGX_HTTP_STRIPE_SYNC_SCRIPT_EVENTS:
        (void) ngx_atomic_fetch_add(&cnt->script_events, delta);
        break;

    default: /* NGX_HTTP_STRIPE_SYNC_REDIS_CONNECTION */
        (void) ngx_atomic_fetch_add(&cnt->redis_connections, delta);
        break;
    }
}


ngx_int_t
ngx_http_stripe_sync_status_handler(ngx_http_request_t *r)
{
    u_char                           *p, *last;
    ngx_int_t                         rc;
    ngx_uint_t                        i, cumulative, usec;
    ngx_buf_t                        *b;
    ngx_chain_t                       out;
    ngx_http_stripe_sync_counters_t  *cnt, zero;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cnt = ngx_http_stripe_sync_counters();

    if (cnt == NULL) {
        ngx_memzero(&zero, sizeof(zero));
        cnt = &zero;
    }

    b = ngx_create_temp_buf(r->pool, NGX_HTTP_STRIPE_SYNC_STATUS_MAX);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->pos;
    last = b->end;

    p = ngx_slprintf(p, last,
            "# HELP stripe_sync_requests_total Webhook requests by result.\n"
            "# TYPE stripe_sync_requests_total counter\n");

    for (i = 1; i < NGX_HTTP_STRIPE_SYNC_RESULTS; i++) {
        p = ngx_slprintf(p, last,
                         "stripe_sync_requests_total{result=\"%s\"} %uA\n",
                         ngx_http_stripe_sync_results[i], cnt->requests[i]);
    }

    p = ngx_slprintf(p, last,
            "# HELP stripe_sync_rejected_total Rejected requests by reason.\n"
            "# TYPE stripe_sync_rejected_total counter\n");

    for (i = 0; i < NGX_HTTP_STRIPE_SYNC_REJECTS; i++) {
        p = ngx_slprintf(p, last,
                         "stripe_sync_rejected_total{reason=\"%s\"} %uA\n",
                         ngx_http_stripe_sync_reasons[i], cnt->rejects[i]);
    }

    p = ngx_slprintf(p, last,
            "# HELP stripe_sync_redis_errors_total Redis connection failures "
            "and error replies.\n"
            "# TYPE stripe_sync_redis_errors_total counter\n"
            "stripe_sync_redis_errors_total %uA\n"
            "# HELP stripe_sync_redis_timeouts_total Requests answered 503 "
            "because Redis did not answer in time.\n"
            "# TYPE stripe_sync_redis_timeouts_total counter\n"
            "stripe_sync_redis_timeouts_total %uA\n"
            "# HELP stripe_sync_redis_connections Worker connections to "
            "Redis that are up.\n"
            "# TYPE stripe_sync_redis_connections gauge\n"
            "stripe_sync_redis_connections %uA\n",
            cnt->redis_errors, cnt->redis_timeouts, cnt->redis_connections);

    p = ngx_slprintf(p, last,
            "# HELP stripe_sync_redis_unreplicated_total Requests answered "
            "503 because too few replicas confirmed in time.\n"
            "# TYPE stripe_sync_redis_unreplicated_total counter\n"
            "stripe_sync_redis_unreplicated_total %uA\n"
            "# HELP stripe_sync_sentinel_lookups_total Primaries found by "
            "asking a sentinel, per worker.\n"
            "# TYPE stripe_sync_sentinel_lookups_total counter\n"
            "stripe_sync_sentinel_lookups_total %uA\n"
            "# HELP stripe_sync_sentinel_errors_total Sentinels that could "
            "not be reached or did not know the primary.\n"
            "# TYPE stripe_sync_sentinel_errors_total counter\n"
            "stripe_sync_sentinel_errors_total %uA\n"
            "# HELP stripe_sync_sentinel_failovers_total Times a worker "
            "found the primary at a new address.\n"
            "# TYPE stripe_sync_sentinel_failovers_total counter\n"
            "stripe_sync_sentinel_failovers_total %uA\n",
            cnt->redis_unreplicated, cnt->sentinel_lookups,
            cnt->sentinel_errors, cnt->sentinel_failovers);

    p = ngx_slprintf(p, last,
            "# HELP stripe_sync_redis_script_calls_total Enqueue script "
            "calls sent to Redis (each carries the events of one pass of "
            "a worker's event loop).\n"
            "# TYPE stripe_sync_redis_script_calls_total counter\n"
            "stripe_sync_redis_script_calls_total %uA\n"
            "# HELP stripe_sync_redis_script_events_total Events those "
            "calls carried.\n"
            "# TYPE stripe_sync_redis_script_events_total counter\n"
            "stripe_sync_redis_script_events_total %uA\n",
            cnt->script_calls, cnt->script_events);

    p = ngx_slprintf(p, last,
            "# HELP stripe_sync_request_duration_seconds Time from the "
            "request handler to the response.\n"
            "# TYPE stripe_sync_request_duration_seconds histogram\n");

    cumulative = 0;

    for (i = 0; i < NGX_HTTP_STRIPE_SYNC_BUCKETS; i++) {
        cumulative += cnt->duration[i];
        p = ngx_slprintf(p, last,
                         "stripe_sync_request_duration_seconds_bucket"
                         "{le=\"%s\"} %ui\n",
                         ngx_http_stripe_sync_les[i], cumulative);
    }

    usec = cnt->duration_usec;

    p = ngx_slprintf(p, last,
                     "stripe_sync_request_duration_seconds_sum %ui.%06ui\n"
                     "stripe_sync_request_duration_seconds_count %uA\n",
                     usec / 1000000, usec % 1000000, cnt->duration_count);

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
