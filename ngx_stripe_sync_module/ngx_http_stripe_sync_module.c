
/*
 * Copyright (C) stripe-sync contributors
 *
 * Directives, configuration and variables of ngx_http_stripe_sync_module.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ngx_http_stripe_sync_module.h"
#include "enqueue_script.h"


/* one mapping of secret memory, unmapped by a pool cleanup */
typedef struct {
    u_char                        *start;
    size_t                         size;
} ngx_http_stripe_sync_secret_map_t;


static ngx_int_t ngx_http_stripe_sync_add_variables(ngx_conf_t *cf);
static void *ngx_http_stripe_sync_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_stripe_sync_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_stripe_sync_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_stripe_sync_init_process(ngx_cycle_t *cycle);
static void ngx_http_stripe_sync_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_stripe_sync(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stripe_sync_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stripe_sync_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stripe_sync_secret_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_stripe_sync_events(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stripe_sync_redis_sentinel(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_stripe_sync_redis_wait_replicas(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_stripe_sync_first_line(ngx_conf_t *cf,
    ngx_str_t *file, ngx_str_t *line);
static char *ngx_http_stripe_sync_prefix_check(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_stripe_sync_sec_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stripe_sync_msec_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_stripe_sync_num_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_stripe_sync_invalid(ngx_conf_t *cf, ngx_command_t *cmd,
    char *rv, const char *expected);

static ngx_int_t ngx_http_stripe_sync_read_file(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *content);
static u_char *ngx_http_stripe_sync_secret_alloc(ngx_conf_t *cf,
    size_t size);
static void ngx_http_stripe_sync_secret_unmap(void *data);
static void ngx_http_stripe_sync_scrub_conf(ngx_conf_t *cf,
    ngx_str_t *secret);
static void ngx_http_stripe_sync_scrub(u_char *start, u_char *end,
    ngx_str_t *secret);
static char *ngx_http_stripe_sync_prepare(ngx_conf_t *cf,
    ngx_http_stripe_sync_loc_conf_t *conf);
static ngx_http_stripe_sync_redis_t *ngx_http_stripe_sync_redis_get(
    ngx_conf_t *cf, ngx_http_stripe_sync_loc_conf_t *conf,
    ngx_str_t *password);
static ngx_int_t ngx_http_stripe_sync_sentinel_init(ngx_conf_t *cf,
    ngx_http_stripe_sync_loc_conf_t *conf,
    ngx_http_stripe_sync_redis_t *redis);
static ngx_int_t ngx_http_stripe_sync_key(ngx_conf_t *cf, ngx_str_t *key,
    ngx_str_t *prefix, const char *suffix);

static ngx_int_t ngx_http_stripe_sync_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_conf_enum_t  ngx_http_stripe_sync_livemodes[] = {
    { ngx_string("any"), NGX_HTTP_STRIPE_SYNC_LIVEMODE_ANY },
    { ngx_string("live"), NGX_HTTP_STRIPE_SYNC_LIVEMODE_LIVE },
    { ngx_string("test"), NGX_HTTP_STRIPE_SYNC_LIVEMODE_TEST },
    { ngx_null_string, 0 }
};


static ngx_conf_post_t  ngx_http_stripe_sync_prefix_post = {
    ngx_http_stripe_sync_prefix_check
};


static ngx_command_t  ngx_http_stripe_sync_commands[] = {

    { ngx_string("stripe_sync"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_stripe_sync,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stripe_sync_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_stripe_sync_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stripe_sync_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, redis_addr),
      NULL },

    { ngx_string("stripe_sync_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_stripe_sync_redis_sentinel,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stripe_sync_redis_wait_replicas"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_stripe_sync_redis_wait_replicas,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stripe_sync_redis_password_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, redis_password_file),
      NULL },

    { ngx_string("stripe_sync_redis_db"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stripe_sync_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, redis_db),
      NULL },

    { ngx_string("stripe_sync_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stripe_sync_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, redis_timeout),
      NULL },

    { ngx_string("stripe_sync_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, prefix),
      &ngx_http_stripe_sync_prefix_post },

    { ngx_string("stripe_sync_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stripe_sync_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stripe_sync_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stripe_sync_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("stripe_sync_tolerance"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stripe_sync_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, tolerance),
      NULL },

    { ngx_string("stripe_sync_livemode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, livemode),
      &ngx_http_stripe_sync_livemodes },

    { ngx_string("stripe_sync_dedup_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_stripe_sync_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_stripe_sync_loc_conf_t, dedup_ttl),
      NULL },

    { ngx_string("stripe_sync_events"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_stripe_sync_events,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_stripe_sync_module_ctx = {
    ngx_http_stripe_sync_add_variables,    /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_stripe_sync_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_stripe_sync_create_loc_conf,  /* create location configuration */
    ngx_http_stripe_sync_merge_loc_conf    /* merge location configuration */
};


ngx_module_t  ngx_http_stripe_sync_module = {
    NGX_MODULE_V1,
    &ngx_http_stripe_sync_module_ctx,      /* module context */
    ngx_http_stripe_sync_commands,         /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_stripe_sync_init_process,     /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_stripe_sync_exit_process,     /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_stripe_sync_vars[] = {

    { ngx_string("stripe_sync_event_id"), NULL,
      ngx_http_stripe_sync_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("stripe_sync_event_type"), NULL,
      ngx_http_stripe_sync_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("stripe_sync_result"), NULL,
      ngx_http_stripe_sync_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_stripe_sync_result_names[] = {
    ngx_null_string,
    ngx_string("queued"),
    ngx_string("duplicate"),
    ngx_string("ignored"),
    ngx_string("rejected"),
    ngx_string("unavailable")
};


static ngx_int_t
ngx_http_stripe_sync_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_stripe_sync_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_stripe_sync_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                   *s;
    ngx_http_stripe_sync_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_stripe_sync_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case 0:
        s = &ctx->event_id;
        break;

    case 1:
        s = &ctx->event_type;
        break;

    default:
        s = &ngx_http_stripe_sync_result_names[ctx->result];
        break;
    }

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static void *
ngx_http_stripe_sync_create_main_conf(ngx_conf_t *cf)
{
    u_char                            *p;
    unsigned int                       n, i;
    unsigned char                      md[EVP_MAX_MD_SIZE];
    ngx_http_stripe_sync_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_stripe_sync_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->shm_zone = NULL;
     *     smcf->counters = NULL;
     *     smcf->secret_mem = { NULL, NULL };
     */

    if (ngx_array_init(&smcf->servers, cf->pool, 2,
                       sizeof(ngx_http_stripe_sync_redis_t *))
        != NGX_OK)
    {
        return NULL;
    }

    ngx_str_set(&smcf->script, ENQUEUE_SCRIPT);

    /* EVALSHA names the script by the SHA1 of its text */
    if (EVP_Digest(smcf->script.data, smcf->script.len, md, &n, EVP_sha1(),
                   NULL)
        != 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "stripe_sync: SHA1 of the enqueue script failed");
        return NULL;
    }

    p = smcf->script_sha;
    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "%02xd", md[i]);
    }
    *p = '\0';

    return smcf;
}


static void *
ngx_http_stripe_sync_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_stripe_sync_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_stripe_sync_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->enable = 0;
     *     conf->enable_file = { 0, NULL };
     *     conf->redis_addr = { 0, NULL };
     *     conf->redis_password_file = { 0, NULL };
     *     conf->redis_master = { 0, NULL };
     *     conf->redis_sentinel_password = { 0, NULL };
     *     conf->prefix = { 0, NULL };
     *     conf->sig_secrets = NULL;
     *     conf->nsig_secrets = 0;
     *     conf->redis = NULL;
     *     conf->key_* = { 0, NULL };
     */

    conf->redis_db = NGX_CONF_UNSET;
    conf->redis_timeout = NGX_CONF_UNSET_MSEC;
    conf->redis_sentinels = NGX_CONF_UNSET_PTR;
    conf->wait_replicas = NGX_CONF_UNSET;
    conf->wait_timeout = NGX_CONF_UNSET_MSEC;
    conf->secrets = NGX_CONF_UNSET_PTR;
    conf->tolerance = NGX_CONF_UNSET;
    conf->livemode = NGX_CONF_UNSET_UINT;
    conf->dedup_ttl = NGX_CONF_UNSET;
    conf->events = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_stripe_sync_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_stripe_sync_loc_conf_t *prev = parent;
    ngx_http_stripe_sync_loc_conf_t *conf = child;

    /* a Redis is named one way or the other, and inherited whole */
    if (conf->redis_addr.data == NULL
        && conf->redis_sentinels == NGX_CONF_UNSET_PTR)
    {
        conf->redis_addr = prev->redis_addr;
        conf->redis_sentinels = prev->redis_sentinels;
        conf->redis_master = prev->redis_master;
        conf->redis_sentinel_password = prev->redis_sentinel_password;
    }

    if (conf->redis_addr.data == NULL) {
        ngx_str_set(&conf->redis_addr, "");
    }

    if (conf->redis_sentinels == NGX_CONF_UNSET_PTR) {
        conf->redis_sentinels = NULL;
    }
    ngx_conf_merge_str_value(conf->redis_password_file,
                             prev->redis_password_file, "");
    ngx_conf_merge_value(conf->redis_db, prev->redis_db, 0);
    ngx_conf_merge_msec_value(conf->redis_timeout, prev->redis_timeout, 2000);
    ngx_conf_merge_value(conf->wait_replicas, prev->wait_replicas, 0);
    ngx_conf_merge_msec_value(conf->wait_timeout, prev->wait_timeout,
                              ngx_max(conf->redis_timeout / 2, 1));
    ngx_conf_merge_str_value(conf->prefix, prev->prefix, "stripe_sync");
    ngx_conf_merge_ptr_value(conf->secrets, prev->secrets, NULL);
    ngx_conf_merge_sec_value(conf->tolerance, prev->tolerance, 300);
    ngx_conf_merge_uint_value(conf->livemode, prev->livemode,
                              NGX_HTTP_STRIPE_SYNC_LIVEMODE_ANY);
    ngx_conf_merge_sec_value(conf->dedup_ttl, prev->dedup_ttl, 30 * 86400);
    ngx_conf_merge_ptr_value(conf->events, prev->events, NULL);

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    return ngx_http_stripe_sync_prepare(cf, conf);
}


/*
 * Runs once per location with "stripe_sync", after inheritance: checks that
 * nothing is missing and builds what requests need, so they build nothing.
 */

static char *
ngx_http_stripe_sync_prepare(ngx_conf_t *cf,
    ngx_http_stripe_sync_loc_conf_t *conf)
{
    u_char                *p, *last;
    ngx_str_t             *secret, password;
    ngx_uint_t             i;

    if (conf->redis_addr.len == 0 && conf->redis_sentinels == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"stripe_sync\" in %V:%ui has no Redis: "
                      "set \"stripe_sync_redis\" or "
                      "\"stripe_sync_redis_sentinel\"",
                      &conf->enable_file, conf->enable_line);
        return NGX_CONF_ERROR;
    }

    if (conf->redis_addr.len && conf->redis_sentinels) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"stripe_sync\" in %V:%ui has both "
                      "\"stripe_sync_redis %V\" and "
                      "\"stripe_sync_redis_sentinel\" at one level: "
                      "use one", &conf->enable_file, conf->enable_line,
                      &conf->redis_addr);
        return NGX_CONF_ERROR;
    }

    /* WAIT's own timeout must leave the request time for its answer */
    if (conf->wait_replicas > 0) {
        if (conf->wait_timeout >= conf->redis_timeout) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"stripe_sync_redis_wait_replicas\" timeout "
                          "%Mms must be shorter than "
                          "\"stripe_sync_redis_timeout\" %Mms for "
                          "\"stripe_sync\" in %V:%ui", conf->wait_timeout,
                          conf->redis_timeout, &conf->enable_file,
                          conf->enable_line);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->secrets == NULL || conf->secrets->nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"stripe_sync\" in %V:%ui has no webhook secret: "
                      "set \"stripe_sync_secret\" or "
                      "\"stripe_sync_secret_file\"",
                      &conf->enable_file, conf->enable_line);
        return NGX_CONF_ERROR;
    }

    if (conf->dedup_ttl <= 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"stripe_sync_dedup_ttl\" must be at least 1s "
                      "for \"stripe_sync\" in %V:%ui",
                      &conf->enable_file, conf->enable_line);
        return NGX_CONF_ERROR;
    }

    /* keyed HMAC states are as sensitive as the keys: beside them */
    conf->nsig_secrets = conf->secrets->nelts;
    conf->sig_secrets = (stripe_sig_secret *)
        ngx_http_stripe_sync_secret_alloc(cf, conf->nsig_secrets
                                              * sizeof(stripe_sig_secret));
    if (conf->sig_secrets == NULL) {
        return NGX_CONF_ERROR;
    }

    secret = conf->secrets->elts;
    for (i = 0; i < conf->nsig_secrets; i++) {
        ngx_memzero(&conf->sig_secrets[i], sizeof(stripe_sig_secret));
        conf->sig_secrets[i].data = secret[i].data;
        conf->sig_secrets[i].len = secret[i].len;

        if (stripe_sig_secret_prepare(&conf->sig_secrets[i]) != 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"stripe_sync\" in %V:%ui: cannot key "
                          "HMAC-SHA256 with webhook secret #%ui",
                          &conf->enable_file, conf->enable_line, i + 1);
            return NGX_CONF_ERROR;
        }
    }

    ngx_str_null(&password);

    if (conf->redis_password_file.len) {
        if (ngx_http_stripe_sync_read_file(cf, &conf->redis_password_file,
                                           &password)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        /* the password is the first line */
        last = password.data + password.len;
        for (p = password.data; p < last; p++) {
            if (*p == '\r' || *p == '\n') {
                break;
            }
        }

        password.len = p - password.data;

        if (password.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "stripe_sync_redis_password_file \"%V\" is empty",
                          &conf->redis_password_file);
            return NGX_CONF_ERROR;
        }
    }

    conf->redis = ngx_http_stripe_sync_redis_get(cf, conf, &password);
    if (conf->redis == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_stripe_sync_key(cf, &conf->key_seen, &conf->prefix, ":seen:")
        != NGX_OK
        || ngx_http_stripe_sync_key(cf, &conf->key_queue, &conf->prefix,
                                    ":queue")
           != NGX_OK
        || ngx_http_stripe_sync_key(cf, &conf->key_customers, &conf->prefix,
                                    ":customers")
           != NGX_OK
        || ngx_http_stripe_sync_key(cf, &conf->key_stats, &conf->prefix,
                                    ":stats")
           != NGX_OK
        || ngx_http_stripe_sync_key(cf, &conf->key_once, &conf->prefix,
                                    ":once:")
           != NGX_OK
        || ngx_http_stripe_sync_key(cf, &conf->key_order, &conf->prefix,
                                    ":order:")
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->ttl.data = ngx_pnalloc(cf->pool, NGX_TIME_T_LEN + 1);
    if (conf->ttl.data == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->ttl.len = ngx_sprintf(conf->ttl.data, "%T", conf->dedup_ttl)
                    - conf->ttl.data;

    return NGX_CONF_OK;
}


/* "{P}" + suffix: the braces keep every key in one Redis Cluster slot */

static ngx_int_t
ngx_http_stripe_sync_key(ngx_conf_t *cf, ngx_str_t *key, ngx_str_t *prefix,
    const char *suffix)
{
    size_t  len;

    len = ngx_strlen(suffix);

    key->data = ngx_pnalloc(cf->pool, prefix->len + 2 + len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "{%V}%s", prefix, suffix) - key->data;

    return NGX_OK;
}


static ngx_http_stripe_sync_redis_t *
ngx_http_stripe_sync_redis_get(ngx_conf_t *cf,
    ngx_http_stripe_sync_loc_conf_t *conf, ngx_str_t *password)
{
    u_char                             *p;
    size_t                              len;
    ngx_url_t                           u;
    ngx_uint_t                          i;
    ngx_str_t                           host, unix_path;
    ngx_int_t                           port;
    ngx_http_stripe_sync_redis_t       *redis, **rp;
    ngx_http_stripe_sync_main_conf_t   *smcf;

    ngx_str_null(&host);
    ngx_str_null(&unix_path);
    port = 0;

    if (conf->redis_sentinels) {
        /* host and port: each worker asks the sentinels */

    } else if (conf->redis_addr.len > 5
               && ngx_strncmp(conf->redis_addr.data, "unix:", 5) == 0)
    {
        unix_path.len = conf->redis_addr.len - 5;
        unix_path.data = ngx_pnalloc(cf->pool, unix_path.len + 1);
        if (unix_path.data == NULL) {
            return NULL;
        }

        ngx_memcpy(unix_path.data, conf->redis_addr.data + 5, unix_path.len);
        unix_path.data[unix_path.len] = '\0';

    } else {
        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = conf->redis_addr;
        u.default_port = 6379;

        /* resolved here: hiredis 0.14 would resolve with a blocking call */
        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "invalid Redis address \"%V\" in "
                          "\"stripe_sync_redis\"%s%s",
                          &conf->redis_addr, u.err ? ": " : "",
                          u.err ? u.err : "");
            return NULL;
        }

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NULL;
        }

        host.data = p;
        host.len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                 p, NGX_SOCKADDR_STRLEN, 0);
        p[host.len] = '\0';
        port = u.port;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_stripe_sync_module);

    /* one connection per distinct Redis, shared by every location */
    rp = smcf->servers.elts;
    for (i = 0; i < smcf->servers.nelts; i++) {
        redis = rp[i];

        if (redis->port == port
            && redis->sentinels == conf->redis_sentinels
            && redis->db == conf->redis_db
            && redis->host.len == host.len
            && ngx_strncmp(redis->host.data, host.data, host.len) == 0
            && redis->unix_path.len == unix_path.len
            && ngx_strncmp(redis->unix_path.data, unix_path.data,
                           unix_path.len) == 0
            && redis->password.len == password->len
            && ngx_strncmp(redis->password.data, password->data,
                           password->len) == 0)
        {
            return redis;
        }
    }

    redis = ngx_pcalloc(cf->pool, sizeof(ngx_http_stripe_sync_redis_t));
    if (redis == NULL) {
        return NULL;
    }

    redis->name = conf->redis_addr;
    redis->host = host;
    redis->port = port;
    redis->unix_path = unix_path;
    redis->password = *password;
    redis->db = conf->redis_db;

    if (password->len) {
        /* formatted here, in the secret memory, and never by hiredis */
        len = sizeof("*2\r\n$4\r\nAUTH\r\n$\r\n\r\n") - 1 + NGX_SIZE_T_LEN
              + password->len;

        p = ngx_http_stripe_sync_secret_alloc(cf, len);
        if (p == NULL) {
            return NULL;
        }

        redis->auth.data = p;
        redis->auth.len = ngx_sprintf(p, "*2\r\n$4\r\nAUTH\r\n$%uz\r\n%V\r\n",
                                      password->len, password)
                          - p;
    }

    if (conf->redis_sentinels
        && ngx_http_stripe_sync_sentinel_init(cf, conf, redis) != NGX_OK)
    {
        return NULL;
    }

    rp = ngx_array_push(&smcf->servers);
    if (rp == NULL) {
        return NULL;
    }

    *rp = redis;

    return redis;
}


/* stripe_sync_redis_sentinel: what each worker needs to look it up */

static ngx_int_t
ngx_http_stripe_sync_sentinel_init(ngx_conf_t *cf,
    ngx_http_stripe_sync_loc_conf_t *conf, ngx_http_stripe_sync_redis_t *redis)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *password;

    redis->sentinels = conf->redis_sentinels;
    redis->master = conf->redis_master;

    /* "<name>@<primary address>" once it is known, for logs */
    redis->name.data = ngx_pnalloc(cf->pool,
                                   redis->master.len + NGX_SOCKADDR_STRLEN
                                   + 2);
    if (redis->name.data == NULL) {
        return NGX_ERROR;
    }

    redis->name.len = ngx_cpymem(redis->name.data, redis->master.data,
                                 redis->master.len)
                      - redis->name.data;

    redis->lookup = ngx_pcalloc(cf->pool,
                                sizeof(ngx_http_stripe_sync_sentinel_link_t));
    redis->watch = ngx_pcalloc(cf->pool,
                               sizeof(ngx_http_stripe_sync_sentinel_link_t));
    if (redis->lookup == NULL || redis->watch == NULL) {
        return NGX_ERROR;
    }

    redis->lookup->redis = redis;
    redis->watch->redis = redis;

    password = &conf->redis_sentinel_password;

    if (password->len) {
        len = sizeof("*2\r\n$4\r\nAUTH\r\n$\r\n\r\n") - 1 + NGX_SIZE_T_LEN
              + password->len;

        p = ngx_http_stripe_sync_secret_alloc(cf, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        redis->sentinel_auth.data = p;
        redis->sentinel_auth.len = ngx_sprintf(p,
                                       "*2\r\n$4\r\nAUTH\r\n$%uz\r\n%V\r\n",
                                       password->len, password)
                                   - p;
    }

    return NGX_OK;
}


/*
 * stripe_sync_redis_sentinel host:port ... name=<primary>
 *     [sentinel_password_file=<file>];
 */

static char *
ngx_http_stripe_sync_redis_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_stripe_sync_loc_conf_t *sscf = conf;

    u_char                           *p;
    ngx_str_t                        *value, v, file;
    ngx_url_t                         u;
    ngx_uint_t                        i, k;
    ngx_array_t                      *sentinels;
    ngx_http_stripe_sync_sentinel_t  *s;

    if (sscf->redis_sentinels != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (sscf->redis_addr.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"stripe_sync_redis_sentinel\" and "
                           "\"stripe_sync_redis %V\" at one level: use one",
                           &sscf->redis_addr);
        return NGX_CONF_ERROR;
    }

    sentinels = ngx_array_create(cf->pool, 3,
                                 sizeof(ngx_http_stripe_sync_sentinel_t));
    if (sentinels == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        v = value[i];

        if (v.len >= 5 && ngx_strncmp(v.data, "name=", 5) == 0) {
            v.data += 5;
            v.len -= 5;

            for (k = 0; k < v.len; k++) {
                if (v.data[k] <= ' ' || v.data[k] >= 0x7f) {
                    break;
                }
            }

            if (v.len == 0 || k < v.len || sscf->redis_master.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in "
                                   "\"stripe_sync_redis_sentinel\": one "
                                   "\"name=\" with the primary's name as "
                                   "in \"sentinel monitor\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            sscf->redis_master = v;
            continue;
        }

        if (v.len >= 23
            && ngx_strncmp(v.data, "sentinel_password_file=", 23) == 0)
        {
            file.data = v.data + 23;
            file.len = v.len - 23;

            if (file.len == 0 || sscf->redis_sentinel_password.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in "
                                   "\"stripe_sync_redis_sentinel\": one "
                                   "\"sentinel_password_file=\" naming a "
                                   "file", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (ngx_http_stripe_sync_first_line(cf, &file,
                                          &sscf->redis_sentinel_password)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strlchr(v.data, v.data + v.len, '=') != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"stripe_sync_redis_sentinel\", expected "
                               "host:port, \"name=\" or "
                               "\"sentinel_password_file=\"", &v);
            return NGX_CONF_ERROR;
        }

        if (v.len >= 5 && ngx_strncmp(v.data, "unix:", 5) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid sentinel address \"%V\" in "
                               "\"stripe_sync_redis_sentinel\": sentinels "
                               "are reached over TCP, host:port", &v);
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = v;
        u.default_port = 26379;

        /* resolved here: hiredis 0.14 would resolve with a blocking call */
        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0
            || u.uri.len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid sentinel address \"%V\" in "
                               "\"stripe_sync_redis_sentinel\"%s%s", &v,
                               u.err ? ": " : "", u.err ? u.err : "");
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(sentinels);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        s->name = v;
        s->host.data = p;
        s->host.len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                    p, NGX_SOCKADDR_STRLEN, 0);
        p[s->host.len] = '\0';
        s->port = u.port;
    }

    if (sentinels->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"stripe_sync_redis_sentinel\" names no "
                           "sentinel: give each one's host:port");
        return NGX_CONF_ERROR;
    }

    if (sscf->redis_master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"stripe_sync_redis_sentinel\" has no "
                           "\"name=\": the primary's name as in the "
                           "sentinels' \"sentinel monitor\" line");
        return NGX_CONF_ERROR;
    }

    sscf->redis_sentinels = sentinels;

    return NGX_CONF_OK;
}


/* stripe_sync_redis_wait_replicas <n> [timeout]; 0 turns it off */

static char *
ngx_http_stripe_sync_redis_wait_replicas(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_stripe_sync_loc_conf_t *sscf = conf;

    ngx_int_t   n, ms;
    ngx_str_t  *value;

    if (sscf->wait_replicas != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n > 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of replicas \"%V\" in "
                           "\"stripe_sync_redis_wait_replicas\", expected "
                           "0 to 100", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        ms = ngx_parse_time(&value[2], 0);

        /* WAIT with 0 would wait for ever */
        if (ms == NGX_ERROR || ms == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid timeout \"%V\" in "
                               "\"stripe_sync_redis_wait_replicas\", "
                               "expected a time such as 200ms, not 0",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        sscf->wait_timeout = (ngx_msec_t) ms;
    }

    sscf->wait_replicas = n;

    return NGX_CONF_OK;
}


/* a password file: its first line, in the secret memory */

static ngx_int_t
ngx_http_stripe_sync_first_line(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *line)
{
    u_char     *p, *last;
    ngx_str_t   content;

    if (ngx_http_stripe_sync_read_file(cf, file, &content) != NGX_OK) {
        return NGX_ERROR;
    }

    last = content.data + content.len;

    for (p = content.data; p < last; p++) {
        if (*p == '\r' || *p == '\n') {
            break;
        }
    }

    if (p == content.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "password file \"%V\" is empty", file);
        return NGX_ERROR;
    }

    line->data = content.data;
    line->len = p - content.data;

    return NGX_OK;
}


static char *
ngx_http_stripe_sync(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_stripe_sync_loc_conf_t *sscf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (sscf->enable) {
        return "is duplicate";
    }

    sscf->enable = 1;
    sscf->enable_file = cf->conf_file->file.name;
    sscf->enable_line = cf->conf_file->line;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_stripe_sync_handler;

    if (ngx_http_stripe_sync_status_init_zone(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_stripe_sync_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_stripe_sync_status_handler;

    if (ngx_http_stripe_sync_status_init_zone(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_stripe_sync_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_stripe_sync_loc_conf_t *sscf = conf;

    ngx_str_t  *value, *s;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes an empty secret";
    }

    if (sscf->secrets == NGX_CONF_UNSET_PTR) {
        sscf->secrets = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (sscf->secrets == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    s = ngx_array_push(sscf->secrets);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    s->len = value[1].len;
    s->data = ngx_http_stripe_sync_secret_alloc(cf, s->len);
    if (s->data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(s->data, value[1].data, s->len);

    /* nginx's copies: the token, the text kept for "nginx -T" */
    ngx_http_stripe_sync_scrub_conf(cf, &value[1]);
    ngx_explicit_memzero(value[1].data, value[1].len);

    return NGX_CONF_OK;
}


/* one secret per line; blank lines and lines starting with '#' skipped */

static char *
ngx_http_stripe_sync_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_stripe_sync_loc_conf_t *sscf = conf;

    u_char      *p, *start, *end, *last;
    ngx_str_t   *value, content, *s;
    ngx_uint_t   n;

    value = cf->args->elts;

    if (ngx_http_stripe_sync_read_file(cf, &value[1], &content) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (sscf->secrets == NGX_CONF_UNSET_PTR) {
        sscf->secrets = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (sscf->secrets == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    n = 0;
    last = content.data + content.len;

    for (p = content.data; p < last; p = end + 1) {
        end = ngx_strlchr(p, last, '\n');
        if (end == NULL) {
            end = last;
        }

        start = p;
        while (start < end && (*start == ' ' || *start == '\t')) {
            start++;
        }

        p = end;
        while (p > start
               && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\r'))
        {
            p--;
        }

        if (p == start || *start == '#') {
            continue;
        }

        s = ngx_array_push(sscf->secrets);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->data = start;
        s->len = p - start;
        n++;
    }

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "stripe_sync_secret_file \"%V\" holds no secret",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* every argument is a type, or a prefix ending in '*'; repeatable */

static char *
ngx_http_stripe_sync_events(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_stripe_sync_loc_conf_t *sscf = conf;

    ngx_str_t   *value, *type;
    ngx_uint_t   i;

    if (sscf->events == NGX_CONF_UNSET_PTR) {
        sscf->events = ngx_array_create(cf->pool, 8, sizeof(ngx_str_t));
        if (sscf->events == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0
            || ngx_strlchr(value[i].data, value[i].data + value[i].len - 1,
                           '*')
               != NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid event type \"%V\" in "
                               "\"stripe_sync_events\": a type, or a "
                               "prefix ending in \"*\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        type = ngx_array_push(sscf->events);
        if (type == NULL) {
            return NGX_CONF_ERROR;
        }

        *type = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * Reads a whole small file at configuration time straight into the secret
 * memory (no other copy is made), and warns when it is readable by others:
 * it holds a secret.
 */

static ngx_int_t
ngx_http_stripe_sync_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content)
{
    ssize_t          n;
    ngx_str_t        path;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    path = *name;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = path;
    file.log = cf->log;

    file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open secret file \"%V\"", &path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &path);
        goto failed;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "secret file \"%V\" is not a regular file", &path);
        goto failed;
    }

    if (ngx_file_size(&fi) > 65536) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "secret file \"%V\" is larger than 64k", &path);
        goto failed;
    }

    if (fi.st_mode & S_IROTH) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "secret file \"%V\" is readable by others", &path);
    }

    content->len = (size_t) ngx_file_size(&fi);
    content->data = ngx_http_stripe_sync_secret_alloc(cf, content->len + 1);
    if (content->data == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, content->data, content->len, 0);

    if (n == NGX_ERROR || (size_t) n != content->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read secret file \"%V\"", &path);
        goto failed;
    }

    content->data[n] = '\0';

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &path);
    }

    return NGX_OK;

failed:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &path);
    }

    return NGX_ERROR;
}


/*
 * Secrets live in pages of their own: left out of core dumps
 * (MADV_DONTDUMP: nginx itself stays dumpable), locked in RAM when the
 * memlock limit allows, zeroed and unmapped with the cycle's pool. Blocks
 * are NGX_ALIGNMENT-aligned: structs (prepared secrets) live here too.
 */

static u_char *
ngx_http_stripe_sync_secret_alloc(ngx_conf_t *cf, size_t size)
{
    u_char                             *p;
    size_t                              len;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_stripe_sync_secret_mem_t  *mem;
    ngx_http_stripe_sync_secret_map_t  *map;
    ngx_http_stripe_sync_main_conf_t   *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_stripe_sync_module);
    mem = &smcf->secret_mem;

    /* end is page-aligned, so the aligned pos never passes it */
    p = ngx_align_ptr(mem->pos, NGX_ALIGNMENT);

    if ((size_t) (mem->end - p) >= size) {
        mem->pos = p + size;
        return p;
    }

    /* usually one mapping per cycle: a secret file is at most 64k */
    len = ngx_align(ngx_max(size, 16384), ngx_pagesize);

    cln = ngx_pool_cleanup_add(cf->pool,
                               sizeof(ngx_http_stripe_sync_secret_map_t));
    if (cln == NULL) {
        return NULL;
    }

    p = mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "stripe_sync: mmap(%uz) for secrets failed", len);
        return NULL;
    }

    map = cln->data;
    map->start = p;
    map->size = len;
    cln->handler = ngx_http_stripe_sync_secret_unmap;

#if defined(MADV_DONTDUMP)
    if (madvise(p, len, MADV_DONTDUMP) != 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, ngx_errno,
                           "stripe_sync: madvise(MADV_DONTDUMP) failed: "
                           "secrets may be written to core dumps");
    }
#elif defined(MADV_NOCORE)
    if (madvise(p, len, MADV_NOCORE) != 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, ngx_errno,
                           "stripe_sync: madvise(MADV_NOCORE) failed: "
                           "secrets may be written to core dumps");
    }
#endif

    /* kept out of swap when RLIMIT_MEMLOCK allows; not needed otherwise */
    (void) mlock(p, len);

    mem->pos = p + size;
    mem->end = p + len;

    return p;
}


static void
ngx_http_stripe_sync_secret_unmap(void *data)
{
    ngx_http_stripe_sync_secret_map_t  *map = data;

    ngx_explicit_memzero(map->start, map->size);
    (void) munmap(map->start, map->size);
}


/*
 * A secret written in nginx.conf is also in nginx's copies of the file's
 * text (kept for "nginx -T", which then shows asterisks) and in its read
 * buffer: overwrite it there. Of the read buffer only what is parsed
 * already, and what earlier reads left past its end, is touched.
 */

static void
ngx_http_stripe_sync_scrub_conf(ngx_conf_t *cf, ngx_str_t *secret)
{
    ngx_buf_t        *b;
    ngx_uint_t        i;
    ngx_conf_dump_t  *cd;

    cd = cf->cycle->config_dump.elts;
    for (i = 0; i < cf->cycle->config_dump.nelts; i++) {
        if (cd[i].buffer != NULL) {
            ngx_http_stripe_sync_scrub(cd[i].buffer->start,
                                       cd[i].buffer->last, secret);
        }
    }

    if (cf->conf_file == NULL || cf->conf_file->buffer == NULL) {
        return;
    }

    b = cf->conf_file->buffer;

    ngx_http_stripe_sync_scrub(b->start, b->pos, secret);

    if (b->last < b->end) {
        ngx_explicit_memzero(b->last, b->end - b->last);
    }
}


static void
ngx_http_stripe_sync_scrub(u_char *start, u_char *end, ngx_str_t *secret)
{
    u_char  *p;

    while (start != NULL && (size_t) (end - start) >= secret->len) {
        p = memmem(start, end - start, secret->data, secret->len);
        if (p == NULL) {
            return;
        }

        ngx_memset(p, '*', secret->len);
        start = p + secret->len;
    }
}


/* the stock slots say "invalid value" without the value: name it */

static char *
ngx_http_stripe_sync_sec_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_stripe_sync_invalid(cf, cmd,
                                        ngx_conf_set_sec_slot(cf, cmd, conf),
                                        "a time such as 300s, 5m or 30d");
}


static char *
ngx_http_stripe_sync_msec_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_stripe_sync_invalid(cf, cmd,
                                        ngx_conf_set_msec_slot(cf, cmd, conf),
                                        "a time such as 500ms or 2s");
}


static char *
ngx_http_stripe_sync_num_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_stripe_sync_invalid(cf, cmd,
                                        ngx_conf_set_num_slot(cf, cmd, conf),
                                        "a number");
}


static char *
ngx_http_stripe_sync_invalid(ngx_conf_t *cf, ngx_command_t *cmd, char *rv,
    const char *expected)
{
    ngx_str_t  *value;

    if (rv == NGX_CONF_OK || rv == NGX_CONF_ERROR
        || ngx_strncmp(rv, "invalid", 7) != 0)
    {
        return rv;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "expected %s", &value[1], &cmd->name, expected);

    return NGX_CONF_ERROR;
}


/* the prefix goes inside "{...}": a brace would break the hash tag */

static char *
ngx_http_stripe_sync_prefix_check(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *prefix = data;

    ngx_uint_t  i;

    if (prefix->len == 0) {
        return "takes an empty prefix";
    }

    for (i = 0; i < prefix->len; i++) {
        if (prefix->data[i] == '{' || prefix->data[i] == '}'
            || prefix->data[i] <= ' ' || prefix->data[i] >= 0x7f)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid prefix \"%V\": no braces, spaces "
                               "or non-ASCII characters", prefix);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_stripe_sync_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_stripe_sync_redis_t     **rp;
    ngx_http_stripe_sync_main_conf_t  *smcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_stripe_sync_module);
    if (smcf == NULL) {
        return NGX_OK;
    }

    rp = smcf->servers.elts;
    for (i = 0; i < smcf->servers.nelts; i++) {
        rp[i]->log = cycle->log;

        /* a failed connect is retried from a timer: not fatal here */
        (void) ngx_http_stripe_sync_redis_connect(rp[i]);

        if (rp[i]->sentinels) {
            /* workers spread their subscriptions over the sentinels */
            rp[i]->watch->index = ngx_worker;
            ngx_http_stripe_sync_sentinel_watch(rp[i]);
        }
    }

    return NGX_OK;
}


static void
ngx_http_stripe_sync_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_stripe_sync_redis_t     **rp;
    ngx_http_stripe_sync_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_stripe_sync_module);
    if (smcf == NULL) {
        return;
    }

    rp = smcf->servers.elts;
    for (i = 0; i < smcf->servers.nelts; i++) {
        ngx_http_stripe_sync_redis_close(rp[i]);
    }

    ngx_http_stripe_sync_redis_free_ops();
}
