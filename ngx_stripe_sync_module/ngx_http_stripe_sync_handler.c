
/*
 * Copyright (C) stripe-sync contributors
 *
 * The webhook request: check the method and the Stripe-Signature header,
 * read the raw body (memory or temp file), verify, normalize, enqueue, and
 * answer only once Redis has confirmed.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_stripe_sync_module.h"
#include "enqueue_script.h"


static void ngx_http_stripe_sync_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_stripe_sync_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_table_elt_t *ngx_http_stripe_sync_signature(ngx_http_request_t *r,
    ngx_uint_t *count);
static ngx_int_t ngx_http_stripe_sync_accepts(
    ngx_http_stripe_sync_loc_conf_t *sscf, action *a, const char **why);
static ngx_int_t ngx_http_stripe_sync_event_key(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *prefix, u_char *name, size_t len);
static ngx_int_t ngx_http_stripe_sync_enqueue(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_loc_conf_t *sscf);

static ngx_int_t ngx_http_stripe_sync_reject(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_reject_e reason,
    ngx_uint_t status, const char *message);
static ngx_int_t ngx_http_stripe_sync_unavailable(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, const char *message);
static ngx_int_t ngx_http_stripe_sync_message(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_result_e result,
    ngx_uint_t status, const char *key, const char *message);
static ngx_int_t ngx_http_stripe_sync_respond(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_result_e result,
    ngx_uint_t status, ngx_str_t *body);
static void ngx_http_stripe_sync_cleanup(void *data);


static ngx_str_t  ngx_http_stripe_sync_queued =
    ngx_string("{\"received\":true}");

static ngx_str_t  ngx_http_stripe_sync_duplicate =
    ngx_string("{\"received\":true,\"duplicate\":true}");

static ngx_str_t  ngx_http_stripe_sync_json = ngx_string("application/json");


ngx_int_t
ngx_http_stripe_sync_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_uint_t                   n;
    const char                  *reason;
    ngx_table_elt_t             *h;
    stripe_sig_status            status;
    ngx_pool_cleanup_t          *cln;
    ngx_http_stripe_sync_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_stripe_sync_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &ctx->start);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_stripe_sync_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_stripe_sync_module);

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "POST");

        return ngx_http_stripe_sync_reject(r, ctx,
                                           NGX_HTTP_STRIPE_SYNC_REJECT_METHOD,
                                           NGX_HTTP_NOT_ALLOWED,
                                           "method not allowed: "
                                           "Stripe webhooks are POST");
    }

    /* the header is checked first: no need to read a body to refuse it */

    h = ngx_http_stripe_sync_signature(r, &n);

    if (n > 1) {
        status = STRIPE_SIG_ERR_MALFORMED;
        reason = "more than one Stripe-Signature header";

    } else {
        status = stripe_sig_parse(h ? (const char *) h->value.data : NULL,
                                  h ? h->value.len : 0, &ctx->sig, &reason);
    }

    if (status != STRIPE_SIG_OK) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_stripe_sync_reject(r, ctx,
                                           NGX_HTTP_STRIPE_SYNC_REJECT_HEADER,
                                           NGX_HTTP_BAD_REQUEST, reason);
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_stripe_sync_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        /* 413 and the like are nginx's own answers: still counted */
        ctx->result = NGX_HTTP_STRIPE_SYNC_REJECTED;
        ngx_http_stripe_sync_count_reject(r,
                                          NGX_HTTP_STRIPE_SYNC_REJECT_BODY);
        ngx_http_stripe_sync_count_request(r, ctx);
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_stripe_sync_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_str_t                         body;
    const char                       *reason;
    action_status                     as;
    stripe_sig_status                 status;
    ngx_http_stripe_sync_ctx_t       *ctx;
    ngx_http_stripe_sync_loc_conf_t  *sscf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_stripe_sync_module);
    sscf = ngx_http_get_module_loc_conf(r, ngx_http_stripe_sync_module);

    if (ngx_http_stripe_sync_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = stripe_sig_check(&ctx->sig, body.data, body.len,
                              sscf->sig_secrets, sscf->nsig_secrets,
                              (int64_t) ngx_time(), (int64_t) sscf->tolerance,
                              &reason);

    if (status != STRIPE_SIG_OK) {
        rc = ngx_http_stripe_sync_reject(r, ctx,
                                         status == STRIPE_SIG_ERR_TOLERANCE
                                         ? NGX_HTTP_STRIPE_SYNC_REJECT_TIMESTAMP
                                         : NGX_HTTP_STRIPE_SYNC_REJECT_SIGNATURE,
                                         NGX_HTTP_BAD_REQUEST, reason);
        ngx_http_finalize_request(r, rc);
        return;
    }

    as = action_from_event((const char *) body.data, body.len, &ctx->action);
    ctx->action_built = 1;

    if (ctx->action.id) {
        ctx->event_id.data = (u_char *) ctx->action.id;
        ctx->event_id.len = ngx_strlen(ctx->action.id);
    }

    if (ctx->action.type) {
        ctx->event_type.data = (u_char *) ctx->action.type;
        ctx->event_type.len = ngx_strlen(ctx->action.type);
    }

    if (as == ACTION_INVALID) {
        rc = ngx_http_stripe_sync_reject(r, ctx,
                                         NGX_HTTP_STRIPE_SYNC_REJECT_BODY,
                                         NGX_HTTP_BAD_REQUEST,
                                         ctx->action.reason);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (as == ACTION_IGNORED) {
        reason = ctx->action.reason;

    } else if (ngx_http_stripe_sync_accepts(sscf, &ctx->action, &reason)
               != NGX_OK)
    {
        as = ACTION_IGNORED;
    }

    if (as == ACTION_IGNORED) {
        rc = ngx_http_stripe_sync_message(r, ctx, NGX_HTTP_STRIPE_SYNC_IGNORED,
                                          NGX_HTTP_OK, "ignored", reason);
        ngx_http_finalize_request(r, rc);
        return;
    }

    rc = ngx_http_stripe_sync_enqueue(r, ctx, sscf);

    if (rc == NGX_OK) {
        /* answered from the Redis reply or the timer */
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r,
        ngx_http_stripe_sync_unavailable(r, ctx, "Redis is not connected"));
}


/* the body as one NUL-terminated string, wherever nginx kept it */

static ngx_int_t
ngx_http_stripe_sync_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len, size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;
            len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                              : (size_t) (b->last - b->pos);
        }
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (b->in_file) {
                size = (size_t) (b->file_last - b->file_pos);

                n = ngx_read_file(b->file, p, size, b->file_pos);

                if (n == NGX_ERROR || (size_t) n != size) {
                    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                                  "stripe_sync: cannot read the request "
                                  "body from \"%V\"", &b->file->name);
                    return NGX_ERROR;
                }

                p += size;

            } else {
                p = ngx_cpymem(p, b->pos, b->last - b->pos);
            }
        }
    }

    *p = '\0';

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_http_stripe_sync_signature(ngx_http_request_t *r, ngx_uint_t *count)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    found = NULL;
    *count = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Stripe-Signature") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Stripe-Signature",
                               sizeof("Stripe-Signature") - 1)
               == 0)
        {
            if (found == NULL) {
                found = &h[i];
            }

            (*count)++;
        }
    }

    return found;
}


/* stripe_sync_livemode and stripe_sync_events narrow what is queued */

static ngx_int_t
ngx_http_stripe_sync_accepts(ngx_http_stripe_sync_loc_conf_t *sscf,
    action *a, const char **why)
{
    size_t      len;
    ngx_str_t  *type;
    ngx_uint_t  i;

    if (sscf->livemode == NGX_HTTP_STRIPE_SYNC_LIVEMODE_LIVE
        && a->livemode != 1)
    {
        *why = "test-mode event on a live-only endpoint";
        return NGX_DECLINED;
    }

    if (sscf->livemode == NGX_HTTP_STRIPE_SYNC_LIVEMODE_TEST
        && a->livemode != 0)
    {
        *why = "live-mode event on a test-only endpoint";
        return NGX_DECLINED;
    }

    if (sscf->events == NULL) {
        return NGX_OK;
    }

    len = ngx_strlen(a->type);
    type = sscf->events->elts;

    for (i = 0; i < sscf->events->nelts; i++) {

        /* "invoice.*" accepts every type that starts with "invoice." */
        if (type[i].len && type[i].data[type[i].len - 1] == '*') {
            if (len >= type[i].len - 1
                && ngx_strncmp(a->type, type[i].data, type[i].len - 1) == 0)
            {
                return NGX_OK;
            }

            continue;
        }

        if (len == type[i].len
            && ngx_strncmp(a->type, type[i].data, len) == 0)
        {
            return NGX_OK;
        }
    }

    *why = "event type not in stripe_sync_events";
    return NGX_DECLINED;
}


/*
 * The event's keys and arguments for the script (enqueue_script.h); the
 * Redis side sends them with the other events of this pass of the loop.
 */

static ngx_int_t
ngx_http_stripe_sync_enqueue(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_loc_conf_t *sscf)
{
    action     *a;
    ngx_str_t  *arg;

    static ngx_str_t  flags[] = {
        ngx_string("00"), ngx_string("01"), ngx_string("10"), ngx_string("11")
    };

    a = &ctx->action;
    arg = ctx->args;

    if (ngx_http_stripe_sync_event_key(r, arg++, &sscf->key_seen,
                                       ctx->event_id.data, ctx->event_id.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (a->once_key
        && ngx_http_stripe_sync_event_key(r, arg++, &sscf->key_once,
                                          (u_char *) a->once_key,
                                          ngx_strlen(a->once_key))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (a->order_key
        && ngx_http_stripe_sync_event_key(r, arg++, &sscf->key_order,
                                          (u_char *) a->order_key,
                                          ngx_strlen(a->order_key))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->nkeys = arg - ctx->args;

    *arg++ = flags[(a->once_key ? 2 : 0) + (a->order_key ? 1 : 0)];

    arg->data = (u_char *) a->record;
    arg->len = a->record_len;
    arg++;

    if (a->customer_id && a->customer_json) {
        arg->data = (u_char *) a->customer_id;
        arg->len = ngx_strlen(a->customer_id);
        arg++;

        arg->data = (u_char *) a->customer_json;
        arg->len = ngx_strlen(a->customer_json);
        arg++;

    } else {
        ngx_str_set(arg, "");       /* not NULL: it is copied into the call */
        arg++;
        ngx_str_set(arg, "");
        arg++;
    }

    *arg = ctx->event_id;

    return ngx_http_stripe_sync_redis_send(r, ctx, sscf, sscf->redis);
}


/* an event's key: the location's key prefix + name, from the request's
   pool (the prefixes themselves are built at configuration, module.c) */

static ngx_int_t
ngx_http_stripe_sync_event_key(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *prefix, u_char *name, size_t len)
{
    key->data = ngx_pnalloc(r->pool, prefix->len + len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(key->data, prefix->data, prefix->len), name, len);
    key->len = prefix->len + len;

    return NGX_OK;
}


void
ngx_http_stripe_sync_redis_reply(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_stripe_sync_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_stripe_sync_module);

    if (reply == NULL) {
        rc = ngx_http_stripe_sync_unavailable(r, ctx,
                                              "Redis connection lost");

    } else if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "stripe_sync: Redis refused event \"%V\": %s",
                      &ctx->event_id, reply->str);
        ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_ERROR, 1);
        rc = ngx_http_stripe_sync_unavailable(r, ctx,
                                              "Redis refused the event");

    } else if (reply->type == REDIS_REPLY_INTEGER
               && reply->integer == ENQUEUE_QUEUED)
    {
        rc = ngx_http_stripe_sync_respond(r, ctx, NGX_HTTP_STRIPE_SYNC_QUEUED,
                                          NGX_HTTP_OK,
                                          &ngx_http_stripe_sync_queued);

    } else if (reply->type == REDIS_REPLY_INTEGER) {
        rc = ngx_http_stripe_sync_respond(r, ctx,
                                          NGX_HTTP_STRIPE_SYNC_DUPLICATE,
                                          NGX_HTTP_OK,
                                          &ngx_http_stripe_sync_duplicate);

    } else {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "stripe_sync: unexpected Redis reply type %d for "
                      "event \"%V\"", reply->type, &ctx->event_id);
        rc = ngx_http_stripe_sync_unavailable(r, ctx,
                                              "unexpected reply from Redis");
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


void
ngx_http_stripe_sync_redis_timeout(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_stripe_sync_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_stripe_sync_module);

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "stripe_sync: Redis did not answer in time for event "
                  "\"%V\"", &ctx->event_id);

    rc = ngx_http_stripe_sync_unavailable(r, ctx,
                                          "Redis did not answer in time");

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * stripe_sync_redis_wait_replicas: the primary has the event, too few
 * replicas do. Not acknowledged: Stripe's retry is answered once they do.
 */

void
ngx_http_stripe_sync_redis_unreplicated(ngx_http_request_t *r,
    long long acked)
{
    ngx_int_t                         rc;
    ngx_connection_t                 *c;
    ngx_http_stripe_sync_ctx_t       *ctx;
    ngx_http_stripe_sync_loc_conf_t  *sscf;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_stripe_sync_module);
    sscf = ngx_http_get_module_loc_conf(r, ngx_http_stripe_sync_module);

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "stripe_sync: event \"%V\" reached %L of %i Redis "
                  "replicas within %Mms", &ctx->event_id,
                  acked < 0 ? 0 : acked, sscf->wait_replicas,
                  sscf->wait_timeout);

    ngx_http_stripe_sync_count_redis(NGX_HTTP_STRIPE_SYNC_REDIS_UNREPLICATED,
                                     1);

    rc = ngx_http_stripe_sync_unavailable(r, ctx,
                                          "Redis replicas did not confirm "
                                          "in time");

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_stripe_sync_reject(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_reject_e reason,
    ngx_uint_t status, const char *message)
{
    static time_t      logged;       /* when this worker last said so */
    static ngx_uint_t  unlogged;     /* rejections since, not logged */

    time_t  now;

    /*
     * One line a second per worker at most: a flood of forged requests
     * must not become a flood of error log writes (bench/flood)
     */

    now = ngx_time();

    if (now == logged) {
        unlogged++;

    } else if (unlogged) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "stripe_sync: rejected: %s (and %ui more since the "
                      "last such line, not logged)", message, unlogged);
        logged = now;
        unlogged = 0;

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "stripe_sync: rejected: %s", message);
        logged = now;
    }

    ngx_http_stripe_sync_count_reject(r, reason);

    return ngx_http_stripe_sync_message(r, ctx, NGX_HTTP_STRIPE_SYNC_REJECTED,
                                        status, "error", message);
}


static ngx_int_t
ngx_http_stripe_sync_unavailable(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, const char *message)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* Stripe retries on its own schedule; others may use the hint */
    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    ngx_str_set(&h->value, "5");

    return ngx_http_stripe_sync_message(r, ctx,
                                        NGX_HTTP_STRIPE_SYNC_UNAVAILABLE,
                                        NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "error", message);
}


/* {"error":"..."} or {"received":true,"ignored":"..."} */

static ngx_int_t
ngx_http_stripe_sync_message(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_result_e result,
    ngx_uint_t status, const char *key, const char *message)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   body;

    len = ngx_strlen(message);

    body.len = sizeof("{\"received\":true,\"\":\"\"}") - 1 + ngx_strlen(key)
               + len + ngx_escape_json(NULL, (u_char *) message, len);

    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body.data;

    if (result == NGX_HTTP_STRIPE_SYNC_IGNORED) {
        p = ngx_sprintf(p, "{\"received\":true,\"%s\":\"", key);

    } else {
        p = ngx_sprintf(p, "{\"%s\":\"", key);
    }

    p = (u_char *) ngx_escape_json(p, (u_char *) message, len);
    *p++ = '"';
    *p++ = '}';

    body.len = p - body.data;

    return ngx_http_stripe_sync_respond(r, ctx, result, status, &body);
}


static ngx_int_t
ngx_http_stripe_sync_respond(ngx_http_request_t *r,
    ngx_http_stripe_sync_ctx_t *ctx, ngx_http_stripe_sync_result_e result,
    ngx_uint_t status, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    ctx->result = result;
    ngx_http_stripe_sync_count_request(r, ctx);

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_http_stripe_sync_json;
    r->headers_out.content_type_len = ngx_http_stripe_sync_json.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body->len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_stripe_sync_cleanup(void *data)
{
    ngx_http_stripe_sync_ctx_t  *ctx = data;

    ngx_http_stripe_sync_redis_detach(ctx);

    if (ctx->action_built) {
        action_free(&ctx->action);
        ctx->action_built = 0;
    }
}
