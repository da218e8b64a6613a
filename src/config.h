/*
 * config.h - the stripe-sync configuration file (libconfig syntax, SPEC 6).
 *
 *   redis = "127.0.0.1:6379";            # or "unix:/run/redis.sock"
 *   redis_password_file = "/etc/stripe-sync/redis.pass";
 *   redis_db = 0;
 *   # or, behind Redis Sentinel, instead of redis:
 *   # redis_sentinels = ["10.0.0.1:26379", "10.0.0.2:26379"];
 *   # redis_sentinel_name = "mymaster";
 *   # redis_sentinel_password_file = "/etc/stripe-sync/sentinel.pass";
 *   prefix = "stripe_sync";              # same as the module's
 *   concurrency = 32;                    # jobs in flight
 *   stripe = { api_key_file = "..."; api_base = "https://api.stripe.com"; };
 *   provider = { type = "kit"; api_key_file = "..."; };
 *   retry = { max_attempts = 15; base_delay = 10; max_delay = 21600; };
 *   preset = "convertkit";
 *   rules = ( { on = "purchase"; product = "prod_X"; tag = ["Buyer"]; } );
 *
 * Every secret is read from a file named in the config, never written in it;
 * config_load() reads those files and nothing ever prints their content.
 */

#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>

#include "plan.h"

#define CONFIG_ERR_MAX  512

/* a list of strings from a string or an array of strings */
typedef struct {
    char   **v;
    size_t   n;
} cfg_strings;

typedef struct {
    int          line;             /* where the rule starts in the file */

    /* match: every set condition must hold; unset ones match anything */
    cfg_strings  on;               /* action names */
    cfg_strings  type;             /* raw Stripe types */
    cfg_strings  product;          /* any item's product */
    cfg_strings  price;            /* any item's price */
    int          livemode;         /* -1 any, 0 test, 1 live */
    cfg_strings  currency;
    long long    min_amount;       /* -1 unset; minor units */
    long long    max_amount;       /* -1 unset */
    long long    min_tenure_days;  /* -1 unset */
    cfg_strings  metadata;         /* "key=value", all must hold */

    /* operations, in this order: tag, untag, sequence, form, list, fields,
       purchase, track (upsert is always the implicit first step) */
    cfg_strings  tag;
    cfg_strings  untag;
    cfg_strings  sequence;
    cfg_strings  form;
    cfg_strings  list;
    plan_field  *fields;           /* values are templates: "{items.0.price}" */
    size_t       nfields;
    int          purchase;         /* 0/1 */
    char        *track;            /* metric / event name, or NULL */
    plan_field  *properties;       /* the track's properties (templates);
                                      none: a default set (rules.c) */
    size_t       nproperties;
} cfg_rule;

typedef struct {
    char        *file;

    char        *redis;            /* "host:port" or "unix:/path" */
    char        *redis_password;   /* from redis_password_file, or NULL */
    int          redis_db;

    /* or the primary is asked of Redis Sentinel (instead of redis) */
    cfg_strings  redis_sentinels;  /* "host:port" each; n == 0: not used */
    char        *redis_sentinel_name;      /* as in "sentinel monitor" */
    char        *redis_sentinel_password;  /* from
                                              redis_sentinel_password_file */

    char        *prefix;           /* default "stripe_sync" */
    char        *consumer_id;      /* default "<hostname>:<pid>" */
    int          concurrency;      /* default 32 */
    int          heartbeat;        /* seconds, default 10; expiry 3x */
    int          shutdown_grace;   /* seconds SIGTERM waits, default 30 */

    char        *stripe_api_key;   /* from stripe.api_key_file, or NULL */
    char        *stripe_api_base;  /* default "https://api.stripe.com" */
    double       stripe_rate;      /* requests/s, default 25 */
    int          stripe_timeout;   /* seconds, default 30 */

    char        *provider_type;    /* kit|activecampaign|klaviyo|webhook|log */
    char        *provider_api_key;     /* api_key_file */
    char        *provider_oauth_token; /* oauth_token_file (kit purchases) */
    char        *provider_api_base;    /* default per provider */
    char        *provider_url;         /* webhook target */
    char        *provider_secret;      /* webhook signing secret (file) */
    char        *provider_list;        /* default list (klaviyo/AC), or NULL */
    double       provider_rate;        /* requests/s, 0 = provider default */
    int          provider_burst;       /* 0 = provider default */
    int          provider_timeout;     /* seconds, default 30 */

    int          retry_max_attempts;   /* default 15 */
    int          retry_base_delay;     /* seconds, default 10 */
    int          retry_max_delay;      /* seconds, default 21600 (6 h) */

    char        *preset;           /* convertkit|activecampaign|klaviyo|
                                      customerhub, or NULL */
    cfg_rule    *rules;
    size_t       nrules;
} ss_config;

/*
 * Loads and validates a file. On error returns -1 and err holds
 * "FILE:LINE: what is wrong", naming the key and the value at fault.
 * Secrets files are read here (a warning goes to warn, if not NULL, when
 * one is readable by others).
 */
int config_load(ss_config *c, const char *path, char *err, size_t errlen,
    void (*warn)(const char *msg));

void config_free(ss_config *c);

#endif /* CONFIG_H */
