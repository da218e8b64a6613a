/*
 * Unit tests of config.c: a config with every key, the defaults, and each
 * error with its exact "FILE:LINE: message"; secrets read from files,
 * never quoted in any message; warnings (world-readable secrets, keys a
 * provider does not use, template typos).
 *
 * Each config is written to a file in a fresh temporary directory, where
 * the secret files live too.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

#define SECRET_KIT     "kit_SECRET_c0ffee_0123456789"
#define SECRET_OAUTH   "oauth_SECRET_d00d_9876543210"
#define SECRET_STRIPE  "sk_live_SECRET_51H_abcdef"
#define SECRET_REDIS   "redis_SECRET_pa55"
#define SECRET_HOOK    "whsec_SECRET_hook_1234"

static char  dir[64];
static char  cfg_path[128];
static char  warnings[8192];
static int   nwarnings;


static void
collect_warning(const char *msg)
{
    size_t  n = strlen(warnings);

    snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
    nwarnings++;
}


/* writes dir/name with the given mode */
static void
put_file(const char *name, int mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
put_file(const char *name, int mode, const char *fmt, ...)
{
    char     path[256];
    FILE    *f;
    va_list  ap;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);

    f = fopen(path, "w");
    if (f == NULL) {
        diag("cannot write %s", path);
        exit(1);
    }

    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    chmod(path, mode);
}


static int
load_text(ss_config *c, const char *text, char *err, size_t errlen)
{
    put_file("stripe-sync.conf", 0600, "%s", text);
    warnings[0] = '\0';
    nwarnings = 0;
    err[0] = '\0';
    return config_load(c, cfg_path, err, errlen, collect_warning);
}


static int
no_secret_in(const char *s)
{
    return strstr(s, SECRET_KIT) == NULL && strstr(s, SECRET_OAUTH) == NULL
           && strstr(s, SECRET_STRIPE) == NULL
           && strstr(s, SECRET_REDIS) == NULL
           && strstr(s, SECRET_HOOK) == NULL
           && strstr(s, "SECRET") == NULL;
}


/*
 * The config must be refused with "<path>:<want>" (want begins with the
 * line number), and no secret in the message or the warnings.
 */
static void
fails(const char *text, const char *want, const char *what)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX], expect[CONFIG_ERR_MAX + 128];

    snprintf(expect, sizeof(expect), "%s:%s", cfg_path, want);

    is_int(load_text(&c, text, err, sizeof(err)), -1, "refused: %s", what);
    is_str(err, expect, "message: %s", what);
    ok(no_secret_in(err) && no_secret_in(warnings),
       "no secret in the message: %s", what);
    ok(c.file == NULL && c.rules == NULL && c.provider_api_key == NULL,
       "nothing left allocated: %s", what);
}


/* loads, and the warnings are exactly want ("" for none) */
static void
warns(const char *text, const char *want, const char *what)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX], expect[2048];

    expect[0] = '\0';
    if (want[0] != '\0') {
        snprintf(expect, sizeof(expect), "%s:%s\n", cfg_path, want);
    }

    is_int(load_text(&c, text, err, sizeof(err)), 0, "loads: %s", what);
    if (err[0] != '\0') {
        diag("error: %s", err);
    }

    is_str(warnings, expect, "warning: %s", what);
    ok(no_secret_in(warnings), "no secret in the warnings: %s", what);
    config_free(&c);
}


static void
make_secrets(void)
{
    put_file("kit.key", 0600, "  %s  \nsecond line is ignored\n",
             SECRET_KIT);
    put_file("kit.oauth", 0400, "%s", SECRET_OAUTH);        /* no newline */
    put_file("stripe.key", 0600, "%s\r\n", SECRET_STRIPE);
    put_file("redis.pass", 0640, "%s\n", SECRET_REDIS);
    put_file("hook.secret", 0600, "%s\n", SECRET_HOOK);
    put_file("empty.key", 0600, "\n\nnot on the first line\n");
    put_file("blank.key", 0600, "   \t  \n");
    put_file("control.key", 0600, "SECRET\001x\n");
    put_file("world.key", 0644, "%s\n", SECRET_KIT);
}


static void
test_every_key(void)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX], text[4096];
    cfg_rule  *r;

    snprintf(text, sizeof(text),
        "# every key\n"
        "redis = \"redis.internal:6380\";\n"
        "redis_password_file = \"redis.pass\";\n"
        "redis_db = 3;\n"
        "prefix = \"shop\";\n"
        "consumer_id = \"worker-1\";\n"
        "concurrency = 8;\n"
        "heartbeat = 5;\n"
        "shutdown_grace = 60;\n"
        "stripe = { api_key_file = \"%s/stripe.key\";\n"
        "           api_base = \"http://127.0.0.1:12111/\";\n"
        "           rate = 12.5; timeout = 10; };\n"
        "provider = { type = \"kit\"; api_key_file = \"kit.key\";\n"
        "             oauth_token_file = \"kit.oauth\";\n"
        "             api_base = \"https://api.kit.example/v4\";\n"
        "             rate = 2; burst = 10; timeout = 15; };\n"
        "retry = { max_attempts = 5; base_delay = 2; max_delay = 600; };\n"
        "preset = \"convertkit\";\n"
        "rules = (\n"
        "  { on = \"purchase\"; product = \"prod_COURSE\";\n"
        "    tag = [\"Course buyer\"]; sequence = \"Onboarding\"; },\n"
        "  { on = [\"payment_failed\"]; type = \"invoice.payment_failed\";\n"
        "    price = [\"price_A\", \"price_B\"]; livemode = true;\n"
        "    currency = [\"USD\", \"eur\"]; min_amount = 100;\n"
        "    max_amount = 5000000000L; min_tenure_days = 30;\n"
        "    metadata = [\"plan=pro\", \"src=a=b\"];\n"
        "    untag = \"active\"; form = \"F1\"; list = [\"L1\", \"L2\"];\n"
        "    fields = { plan = \"{items.0.price}\"; tier = 2; };\n"
        "    purchase = true; track = \"Failed\";\n"
        "    properties = ( [\"Attempt Count\", \"{attempt_count}\"] ); }\n"
        ");\n", dir);

    is_int(load_text(&c, text, err, sizeof(err)), 0, "every key loads");
    if (err[0] != '\0') {
        diag("%s", err);
    }

    is_str(warnings, "", "no warning");
    is_str(c.file, cfg_path, "file");
    is_str(c.redis, "redis.internal:6380", "redis");
    is_str(c.redis_password, SECRET_REDIS, "redis password from a file "
           "relative to the config");
    is_int(c.redis_db, 3, "redis_db");
    is_str(c.prefix, "shop", "prefix");
    is_str(c.consumer_id, "worker-1", "consumer_id");
    is_int(c.concurrency, 8, "concurrency");
    is_int(c.heartbeat, 5, "heartbeat");
    is_int(c.shutdown_grace, 60, "shutdown_grace");
    is_str(c.stripe_api_key, SECRET_STRIPE, "stripe key (CRLF trimmed)");
    is_str(c.stripe_api_base, "http://127.0.0.1:12111",
           "stripe api_base, trailing slash dropped");
    ok(c.stripe_rate == 12.5, "stripe rate");
    is_int(c.stripe_timeout, 10, "stripe timeout");
    is_str(c.provider_type, "kit", "provider type");
    is_str(c.provider_api_key, SECRET_KIT, "provider key: first line, "
           "trimmed");
    is_str(c.provider_oauth_token, SECRET_OAUTH, "oauth token (no newline)");
    is_str(c.provider_api_base, "https://api.kit.example/v4",
           "provider api_base");
    ok(c.provider_rate == 2.0, "provider rate (an integer for a number)");
    is_int(c.provider_burst, 10, "provider burst");
    is_int(c.provider_timeout, 15, "provider timeout");
    is_int(c.retry_max_attempts, 5, "retry max_attempts");
    is_int(c.retry_base_delay, 2, "retry base_delay");
    is_int(c.retry_max_delay, 600, "retry max_delay");
    is_str(c.preset, "convertkit", "preset");
    is_int(c.nrules, 2, "two rules");

    r = &c.rules[0];
    is_int(r->line, 20, "rule 1 line");
    ok(r->on.n == 1 && strcmp(r->on.v[0], "purchase") == 0, "rule 1 on");
    ok(r->product.n == 1 && strcmp(r->product.v[0], "prod_COURSE") == 0,
       "rule 1 product");
    ok(r->tag.n == 1 && strcmp(r->tag.v[0], "Course buyer") == 0,
       "rule 1 tag");
    ok(r->sequence.n == 1 && strcmp(r->sequence.v[0], "Onboarding") == 0,
       "rule 1 sequence");
    ok(r->livemode == -1 && r->min_amount == -1 && r->max_amount == -1
       && r->min_tenure_days == -1, "rule 1: unset conditions are -1");
    ok(r->purchase == 0 && r->track == NULL && r->nfields == 0
       && r->type.n == 0 && r->untag.n == 0, "rule 1: nothing else");

    r = &c.rules[1];
    is_int(r->line, 22, "rule 2 line");
    ok(r->type.n == 1 && strcmp(r->type.v[0], "invoice.payment_failed") == 0,
       "rule 2 type");
    ok(r->price.n == 2 && strcmp(r->price.v[1], "price_B") == 0,
       "rule 2 price");
    is_int(r->livemode, 1, "rule 2 livemode");
    ok(r->currency.n == 2 && strcmp(r->currency.v[0], "usd") == 0
       && strcmp(r->currency.v[1], "eur") == 0,
       "rule 2 currency, lowercased");
    is_int(r->min_amount, 100, "rule 2 min_amount");
    is_int(r->max_amount, 5000000000LL, "rule 2 max_amount (64-bit)");
    is_int(r->min_tenure_days, 30, "rule 2 min_tenure_days");
    ok(r->metadata.n == 2 && strcmp(r->metadata.v[0], "plan=pro") == 0
       && strcmp(r->metadata.v[1], "src=a=b") == 0, "rule 2 metadata");
    ok(r->untag.n == 1 && strcmp(r->untag.v[0], "active") == 0,
       "rule 2 untag (a string)");
    ok(r->form.n == 1 && strcmp(r->form.v[0], "F1") == 0, "rule 2 form");
    ok(r->list.n == 2 && strcmp(r->list.v[1], "L2") == 0, "rule 2 list");
    ok(r->nfields == 2 && strcmp(r->fields[0].key, "plan") == 0
       && strcmp(r->fields[0].value, "{items.0.price}") == 0
       && strcmp(r->fields[1].key, "tier") == 0
       && strcmp(r->fields[1].value, "2") == 0,
       "rule 2 fields (an integer as text)");
    is_int(r->purchase, 1, "rule 2 purchase");
    is_str(r->track, "Failed", "rule 2 track");
    ok(r->nproperties == 1
       && strcmp(r->properties[0].key, "Attempt Count") == 0
       && strcmp(r->properties[0].value, "{attempt_count}") == 0,
       "rule 2 properties as a list of pairs");

    config_free(&c);
    ok(c.file == NULL && c.rules == NULL && c.nrules == 0,
       "config_free empties");
    config_free(&c);
    ok(1, "config_free twice is harmless");
}


static void
test_defaults(void)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX], host[256], id[300];

    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(id, sizeof(id), "%s:%ld", host, (long) getpid());

    is_int(load_text(&c, "# nothing\n", err, sizeof(err)), 0,
           "an empty config loads");
    is_str(c.redis, "127.0.0.1:6379", "default redis");
    ok(c.redis_password == NULL, "no redis password");
    is_int(c.redis_db, 0, "default redis_db");
    is_str(c.prefix, "stripe_sync", "default prefix");
    is_str(c.consumer_id, id, "default consumer_id: <hostname>:<pid>");
    is_int(c.concurrency, 32, "default concurrency");
    is_int(c.heartbeat, 10, "default heartbeat");
    is_int(c.shutdown_grace, 30, "default shutdown_grace");
    ok(c.stripe_api_key == NULL, "no stripe key");
    is_str(c.stripe_api_base, "https://api.stripe.com", "default stripe "
           "api_base");
    ok(c.stripe_rate == 25.0, "default stripe rate");
    is_int(c.stripe_timeout, 30, "default stripe timeout");
    is_str(c.provider_type, "log", "default provider: log");
    ok(c.provider_api_key == NULL && c.provider_oauth_token == NULL
       && c.provider_api_base == NULL && c.provider_url == NULL
       && c.provider_secret == NULL && c.provider_list == NULL,
       "no provider settings");
    ok(c.provider_rate == 0 && c.provider_burst == 0,
       "provider rate and burst: the provider's defaults");
    is_int(c.provider_timeout, 30, "default provider timeout");
    is_int(c.retry_max_attempts, 15, "default retry max_attempts");
    is_int(c.retry_base_delay, 10, "default retry base_delay");
    is_int(c.retry_max_delay, 21600, "default retry max_delay");
    ok(c.preset == NULL && c.rules == NULL && c.nrules == 0,
       "no preset, no rules");
    config_free(&c);

    is_int(load_text(&c, "rules = ();\n", err, sizeof(err)), 0,
           "an empty rule list loads");
    is_int(c.nrules, 0, "no rules");
    config_free(&c);
}


static void
test_providers(void)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX];

    is_int(load_text(&c, "provider = { type = \"activecampaign\";\n"
                     "  api_key_file = \"kit.key\";\n"
                     "  api_base = \"https://acct.api-us1.com\";\n"
                     "  list = \"Customers\"; };\n", err, sizeof(err)), 0,
           "activecampaign loads");
    is_str(c.provider_api_base, "https://acct.api-us1.com", "AC api_base");
    is_str(c.provider_list, "Customers", "AC list");
    config_free(&c);

    is_int(load_text(&c, "provider = { type = \"klaviyo\";\n"
                     "  api_key_file = \"kit.key\"; };\n", err,
                     sizeof(err)), 0, "klaviyo loads");
    config_free(&c);

    is_int(load_text(&c, "provider = { type = \"webhook\";\n"
                     "  url = \"https://hooks.example/stripe\";\n"
                     "  secret_file = \"hook.secret\"; };\n", err,
                     sizeof(err)), 0, "webhook loads");
    is_str(c.provider_url, "https://hooks.example/stripe", "webhook url");
    is_str(c.provider_secret, SECRET_HOOK, "webhook secret");
    config_free(&c);

    is_int(load_text(&c, "provider = { type = \"kit\";\n"
                     "  oauth_token_file = \"kit.oauth\"; };\n", err,
                     sizeof(err)), 0, "kit with only an OAuth token loads");
    config_free(&c);

    is_int(load_text(&c, "provider = { type = \"log\"; };\n", err,
                     sizeof(err)), 0, "log loads");
    is_str(c.provider_type, "log", "log");
    config_free(&c);
}


static void
test_errors(void)
{
    char  text[1024];

    /* libconfig's own */
    fails("a = 1;\nb = ;\n", "2: syntax error", "syntax");
    fails("redis = \"x:1\";\nredis = \"y:2\";\n",
          "2: duplicate setting name", "duplicate key");

    /* unknown keys */
    fails("redis = \"h:1\";\n\nprovder = { type = \"log\"; };\n",
          "3: unknown key \"provder\" (did you mean \"provider\"?)",
          "unknown top-level key");
    fails("whatever = 1;\n", "1: unknown key \"whatever\"",
          "unknown key, nothing close");
    fails("provider = { type = \"kit\";\n"
          "  api_key = \"" SECRET_KIT "\"; };\n",
          "2: unknown key \"api_key\" in provider (did you mean "
          "\"api_key_file\"?)", "a secret written in the config");
    fails("stripe = { key = \"" SECRET_STRIPE "\"; };\n",
          "1: unknown key \"key\" in stripe", "unknown stripe key");
    fails("retry = { attempts = 3; };\n",
          "1: unknown key \"attempts\" in retry", "unknown retry key");
    fails("rules = (\n  { on = \"purchase\"; tag = \"a\"; },\n"
          "  { on = \"refund\";\n    tags = \"x\"; }\n);\n",
          "4: unknown key \"tags\" in rule 2 (did you mean \"tag\"?)",
          "unknown rule key");

    /* types and ranges */
    fails("concurrency = \"32\";\n", "1: concurrency must be an integer",
          "string for an integer");
    fails("\nconcurrency = 0;\n",
          "2: concurrency = 0 is out of range (1 to 10000)", "concurrency 0");
    fails("heartbeat = 1.5;\n", "1: heartbeat must be an integer",
          "float for an integer");
    fails("redis_db = -1;\n", "1: redis_db = -1 is out of range (0 to "
          "2147483647)", "negative db");
    fails("redis = 6379;\n", "1: redis must be a string", "redis a number");
    fails("redis = \"\";\n", "1: redis must not be empty", "redis empty");
    fails("redis = \"localhost\";\n", "1: redis \"localhost\" is not "
          "\"host:port\" or \"unix:/path\"", "redis without a port");
    fails("redis = \"localhost:99999\";\n", "1: redis \"localhost:99999\" "
          "has no valid port (1 to 65535)", "redis port out of range");
    fails("redis = \"unix:\";\n", "1: redis \"unix:\" has no socket path",
          "unix without a path");
    fails("prefix = \"{shop}\";\n", "1: prefix \"{shop}\" must not hold "
          "braces or white space", "prefix with braces");
    fails("consumer_id = \"a b\";\n", "1: consumer_id \"a b\" must not hold "
          "white space", "consumer_id with a space");
    fails("stripe = \"x\";\n", "1: stripe must be a group: stripe = "
          "{ ... };", "stripe not a group");
    fails("stripe = { rate = \"fast\"; };\n",
          "1: stripe.rate must be a number", "rate a string");
    fails("stripe = { rate = 0; };\n",
          "1: stripe.rate = 0 is out of range (0.01 to 10000)", "rate 0");
    fails("stripe = {\n api_base = \"api.stripe.com\"; };\n",
          "2: stripe.api_base \"api.stripe.com\" is not an http:// or "
          "https:// URL", "api_base without a scheme");
    fails("retry = { base_delay = 100; max_delay = 50; };\n",
          "1: retry.base_delay (100) is above retry.max_delay (50)",
          "retry delays reversed");
    fails("retry = { max_attempts = 0; };\n", "1: retry.max_attempts = 0 is "
          "out of range (1 to 1000)", "retry attempts 0");

    /* presets and providers */
    fails("preset = \"convertkitt\";\n", "1: preset \"convertkitt\" is not "
          "one of convertkit, activecampaign, klaviyo, customerhub (did you "
          "mean \"convertkit\"?)", "unknown preset");
    fails("preset = [\"klaviyo\"];\n", "1: preset must be a string",
          "preset an array");
    fails("provider = \"kit\";\n", "1: provider must be a group: provider = "
          "{ type = \"kit\"; ... };", "provider not a group");
    fails("provider = {\n  api_key_file = \"kit.key\"; };\n",
          "1: provider has no type (kit, activecampaign, klaviyo, webhook "
          "or log)", "provider without a type");
    fails("provider = {\n  type = \"kitt\"; };\n", "2: provider.type "
          "\"kitt\" is not one of kit, activecampaign, klaviyo, webhook, log "
          "(did you mean \"kit\"?)", "unknown provider");
    fails("\nprovider = { type = \"kit\"; };\n", "2: provider \"kit\" needs "
          "api_key_file or oauth_token_file", "kit without a key");
    fails("provider = { type = \"activecampaign\";\n"
          "  api_base = \"https://a.api-us1.com\"; };\n",
          "1: provider \"activecampaign\" needs api_key_file",
          "activecampaign without a key");
    fails("provider = { type = \"activecampaign\";\n"
          "  api_key_file = \"kit.key\"; };\n",
          "1: provider \"activecampaign\" needs api_base, the account's API "
          "URL (https://ACCOUNT.api-us1.com)", "activecampaign without "
          "api_base");
    fails("provider = { type = \"klaviyo\"; };\n",
          "1: provider \"klaviyo\" needs api_key_file",
          "klaviyo without a key");
    fails("provider = { type = \"webhook\"; secret_file = \"hook.secret\"; "
          "};\n", "1: provider \"webhook\" needs url", "webhook without url");
    fails("provider = { type = \"webhook\"; url = \"https://h.example\"; "
          "};\n", "1: provider \"webhook\" needs secret_file",
          "webhook without a secret");
    fails("provider = { type = \"webhook\";\n  url = \"ftp://h.example\";\n"
          "  secret_file = \"hook.secret\"; };\n", "2: provider.url "
          "\"ftp://h.example\" is not an http:// or https:// URL",
          "webhook url not http");
    fails("provider = { type = \"kit\";\n"
          "  api_key_file = \"kit.key\"; burst = -1; };\n",
          "2: provider.burst = -1 is out of range (0 to 100000)",
          "negative burst");

    /* secrets */
    snprintf(text, sizeof(text), "provider = { type = \"kit\";\n"
             "  api_key_file = \"%s/missing.key\"; };\n", dir);
    snprintf(text + 600, sizeof(text) - 600, "2: cannot read "
             "provider.api_key_file \"%s/missing.key\": No such file or "
             "directory", dir);
    fails(text, text + 600, "missing secret file (absolute)");
    fails("stripe = {\n\n  api_key_file = \"nope.key\"; };\n",
          "3: cannot read stripe.api_key_file \"nope.key\": No such file or "
          "directory", "missing secret file (relative)");
    fails("redis_password_file = \".\";\n", "1: cannot read "
          "redis_password_file \".\": Is a directory", "a directory");
    fails("provider = { type = \"kit\"; api_key_file = \"empty.key\"; };\n",
          "1: provider.api_key_file \"empty.key\" is empty: the secret goes "
          "on its first line", "empty first line");
    fails("provider = { type = \"kit\"; api_key_file = \"blank.key\"; };\n",
          "1: provider.api_key_file \"blank.key\" is empty: the secret goes "
          "on its first line", "blank first line");
    fails("provider = { type = \"kit\"; api_key_file = \"control.key\"; "
          "};\n", "1: provider.api_key_file \"control.key\" has a control "
          "character in its first line", "control character");
    fails("provider = { type = \"kit\"; api_key_file = 5; };\n",
          "1: provider.api_key_file must be a string", "file name a number");

    /* an error after every secret was read names none of them */
    fails("redis_password_file = \"redis.pass\";\n"
          "stripe = { api_key_file = \"stripe.key\"; };\n"
          "provider = { type = \"kit\"; api_key_file = \"kit.key\";\n"
          "  oauth_token_file = \"kit.oauth\"; };\n"
          "rules = ( { on = \"refund\"; } );\n",
          "5: rule 1 has no operation: give it tag, untag, sequence, form, "
          "list, fields, purchase or track", "late error, secrets loaded");

    /* rules */
    fails("rules = { on = \"purchase\"; tag = \"x\"; };\n",
          "1: rules must be a list: rules = ( { ... }, { ... } );",
          "rules a group");
    fails("rules = ( \"purchase\" );\n", "1: rule 1 must be a group "
          "{ on = \"...\"; ... }", "rule not a group");
    fails("rules = (\n  { on = \"purchased\"; tag = \"x\"; }\n);\n",
          "2: rule 1: on: \"purchased\" is not an action (see "
          "docs/events.md) (did you mean \"purchase\"?)", "unknown action");
    fails("rules = (\n  { on = [\"purchase\",\n          \"refunded\"];\n"
          "    tag = \"x\"; }\n);\n",
          "3: rule 1: on: \"refunded\" is not an action (see "
          "docs/events.md) (did you mean \"refund\"?)",
          "unknown action in an array, at its own line");
    fails("rules = (\n  { on = \"invoice.paid\"; tag = \"x\"; }\n);\n",
          "2: rule 1: on: \"invoice.paid\" is a Stripe event type, not an "
          "action: match it with type = \"invoice.paid\"",
          "a Stripe type in on");
    fails("rules = (\n  { on = \"refund\";\n    tag = \"x\"; },\n"
          "  { on = \"refund\"; }\n);\n",
          "4: rule 2 has no operation: give it tag, untag, sequence, form, "
          "list, fields, purchase or track", "rule without an operation");
    fails("rules = ( { on = \"refund\"; purchase = false; } );\n",
          "1: rule 1 has no operation: give it tag, untag, sequence, form, "
          "list, fields, purchase or track", "purchase = false is none");
    fails("rules = ( { on = 5; tag = \"x\"; } );\n",
          "1: rule 1: on must be a string or an array of strings",
          "on a number");
    fails("rules = ( { on = []; tag = \"x\"; } );\n",
          "1: rule 1: on is an empty array", "on empty");
    fails("rules = (\n  { tag = (\"a\",\n    5); } );\n",
          "3: rule 1: tag[1] must be a string", "tag element a number");
    fails("rules = ( { tag = [\"a\", \"\"]; } );\n",
          "1: rule 1: tag[1] must not be empty", "empty tag");
    fails("rules = ( { livemode = \"true\"; tag = \"x\"; } );\n",
          "1: rule 1: livemode must be true or false", "livemode a string");
    fails("rules = ( { min_amount = 1.5; tag = \"x\"; } );\n",
          "1: rule 1: min_amount must be an integer", "min_amount a float");
    fails("rules = ( { max_amount = -1; tag = \"x\"; } );\n",
          "1: rule 1: max_amount = -1 is out of range (0 to "
          "9223372036854775807)", "negative max_amount");
    fails("rules = (\n  { min_amount = 500; max_amount = 100;\n"
          "    tag = \"x\"; } );\n",
          "2: rule 1: min_amount (500) is above max_amount (100)",
          "amount bounds reversed");
    fails("rules = ( { min_tenure_days = -30; tag = \"x\"; } );\n",
          "1: rule 1: min_tenure_days = -30 is out of range (0 to 100000)",
          "negative tenure");
    fails("rules = ( { currency = \"dollars\"; tag = \"x\"; } );\n",
          "1: rule 1: currency: \"dollars\" is not a three-letter currency "
          "code", "bad currency");
    fails("rules = ( { metadata = \"plan\"; tag = \"x\"; } );\n",
          "1: rule 1: metadata: \"plan\" is not \"key=value\"",
          "metadata without =");
    fails("rules = ( { metadata = [\"a=b\", \"=b\"]; tag = \"x\"; } );\n",
          "1: rule 1: metadata: \"=b\" is not \"key=value\"",
          "metadata without a key");
    fails("rules = ( { metadata = { plan = 1; }; tag = \"x\"; } );\n",
          "1: rule 1: metadata.plan must be a string", "metadata group int");
    fails("rules = ( { purchase = 1; } );\n",
          "1: rule 1: purchase must be true or false", "purchase an int");
    fails("rules = (\n  { on = \"renewal\";\n"
          "    fields = { plan = \"{items.0.price\"; }; } );\n",
          "3: rule 1: fields.plan: template \"{items.0.price\" has a \"{\" "
          "without its \"}\", an empty \"{}\", or a name over 255 bytes "
          "(write \"{{\" for a brace)", "field template unclosed");
    fails("rules = ( { fields = { plan = true; }; } );\n",
          "1: rule 1: fields.plan must be a string or an integer",
          "field a boolean");
    fails("rules = ( { fields = \"plan\"; } );\n",
          "1: rule 1: fields must be a group { name = \"value\"; ... } or a "
          "list ( [\"name\", \"value\"], ... )", "fields a string");
    fails("rules = ( { fields = {}; } );\n", "1: rule 1: fields is empty",
          "fields empty");
    fails("rules = ( { fields = ( [\"a\"] ); } );\n",
          "1: rule 1: fields[0] must be a pair [\"name\", \"value\"]",
          "fields pair of one");
    fails("rules = ( { fields = ( [\"a\", \"1\"], [\"a\", \"2\"] ); } );\n",
          "1: rule 1: fields: \"a\" is given twice", "field twice");
    fails("rules = ( { tag = \"x-{reason\"; } );\n",
          "1: rule 1: tag: template \"x-{reason\" has a \"{\" without its "
          "\"}\", an empty \"{}\", or a name over 255 bytes (write \"{{\" "
          "for a brace)", "tag template unclosed");
    fails("rules = ( { tag = \"x\"; properties = { a = \"b\"; }; } );\n",
          "1: rule 1: properties without track", "properties without track");
    fails("rules = ( { track = \"\"; } );\n",
          "1: rule 1: track must not be empty", "empty track");

    /* an included file's errors name that file */
    put_file("bad.inc", 0600, "x = 1;\ny = ;\n");
    {
        ss_config  c;
        char       err[CONFIG_ERR_MAX], want[256];

        is_int(load_text(&c, "@include \"bad.inc\"\n", err, sizeof(err)),
               -1, "a broken include is refused");
        snprintf(want, sizeof(want), "%s/bad.inc:2: syntax error", dir);
        is_str(err, want, "the message names the included file");
    }
}


static void
test_missing_file(void)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX], path[256], want[512];

    snprintf(path, sizeof(path), "%s/no-such.conf", dir);
    snprintf(want, sizeof(want), "cannot read %s: No such file or directory",
             path);
    is_int(config_load(&c, path, err, sizeof(err), NULL), -1,
           "a missing config file");
    is_str(err, want, "names the file and why");
}


/*
 * libconfig 1.5 exit()s the process when it reads a directory (the config
 * itself, or an @include of "", "." or a directory): refused before.
 */
static void
test_directories(void)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX], want[512], sub[256];

    snprintf(want, sizeof(want), "cannot read %s: Is a directory", dir);
    is_int(config_load(&c, dir, err, sizeof(err), NULL), -1,
           "a directory as the config file is refused");
    is_str(err, want, "saying so");

    snprintf(want, sizeof(want), "%s:2: @include \"\" is a directory, not "
             "a file", cfg_path);
    is_int(load_text(&c, "provider = { type = \"log\"; };\n@include \"\"\n",
                     err, sizeof(err)), -1, "@include \"\" is refused");
    is_str(err, want, "naming the line");

    is_int(load_text(&c, "  @include\t\".\" # here\n", err, sizeof(err)), -1,
           "@include \".\" is refused");

    snprintf(sub, sizeof(sub), "%s/sub.d", dir);
    mkdir(sub, 0700);
    put_file("dir.inc", 0600, "x = 1;\n\n@include \"sub.d\"\n");
    snprintf(want, sizeof(want), "%s/dir.inc:3: @include \"sub.d\" is a "
             "directory, not a file", dir);
    is_int(load_text(&c, "@include \"dir.inc\"\n", err, sizeof(err)), -1,
           "a directory included by an included file is refused");
    is_str(err, want, "naming that file and line");

    put_file("self.inc", 0600, "@include \"self.inc\"\n@include \"self.inc\"\n"
             "@include \"self.inc\"\n");
    is_int(load_text(&c, "@include \"self.inc\"\n", err, sizeof(err)), -1,
           "a file including itself is refused (by libconfig), at once");
    rmdir(sub);
}


static void
test_warnings(void)
{
    char  text[512], want[512];

    warns("provider = { type = \"kit\"; api_key_file = \"world.key\"; };\n",
          "1: provider.api_key_file \"world.key\" is readable by every user "
          "(mode 0644); chmod o-r it", "a world-readable secret");
    warns("provider = { type = \"kit\"; api_key_file = \"kit.key\"; };\n",
          "", "a private secret: no warning");
    warns("redis_password_file = \"redis.pass\";\n", "",
          "group-readable is fine");

    snprintf(text, sizeof(text), "stripe = {\n  api_key_file = "
             "\"%s/world.key\"; };\n", dir);
    snprintf(want, sizeof(want), "2: stripe.api_key_file \"%s/world.key\" is "
             "readable by every user (mode 0644); chmod o-r it", dir);
    warns(text, want, "world-readable, absolute path");

    warns("provider = { type = \"kit\"; api_key_file = \"kit.key\";\n"
          "  url = \"https://x.example\"; };\n",
          "2: provider.url is not used by type \"kit\"",
          "a key the provider does not use");
    warns("rules = (\n  { on = \"renewal\";\n"
          "    fields = { plan = \"{itmes.0.price}\"; }; } );\n",
          "3: rule 1: fields.plan: template \"{itmes.0.price}\" refers to "
          "\"itmes\", which no action record has (see docs/events.md)",
          "a template naming no record member");
    warns("preset = \"convertkit\";\n"
          "provider = { type = \"kit\"; api_key_file = \"kit.key\"; };\n",
          "1: preset \"convertkit\" records purchases, which Kit accepts "
          "only with provider.oauth_token_file; they will be skipped",
          "convertkit preset without OAuth");
    warns("preset = \"convertkit\";\n", "",
          "convertkit preset on the log provider");
}


/* "-c x.conf": no directory in the path; secrets found beside it */
static void
test_relative_path(void)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX], cwd[512];
    int        rc;

    if (getcwd(cwd, sizeof(cwd)) == NULL || chdir(dir) != 0) {
        ok(0, "chdir to the test directory");
        return;
    }

    put_file("stripe-sync.conf", 0600,
             "provider = { type = \"kit\"; api_key_file = \"kit.key\"; };\n");

    rc = config_load(&c, "stripe-sync.conf", err, sizeof(err), NULL);
    is_int(rc, 0, "a bare file name loads (%s)", err);

    if (rc == 0) {
        ok(c.provider_api_key != NULL,
           "a secret path is taken relative to the config's directory");
        config_free(&c);
    }

    if (chdir(cwd) != 0) {
        diag("cannot go back to %s", cwd);
    }
}


/* redis_sentinels, redis_sentinel_name, redis_sentinel_password_file */
static void
test_sentinels(void)
{
    ss_config  c;
    char       err[CONFIG_ERR_MAX];

    is_int(load_text(&c,
        "redis_sentinels = [\"10.0.0.1:26379\", \"sentinel-b.internal:26380\","
        " \"[::1]:26381\"];\n"
        "redis_sentinel_name = \"mymaster\";\n"
        "redis_sentinel_password_file = \"redis.pass\";\n"
        "redis_password_file = \"redis.pass\";\n"
        "redis_db = 2;\n", err, sizeof(err)), 0, "sentinels: loads");
    if (err[0] != '\0') {
        diag("error: %s", err);
    }
    is_int((int) c.redis_sentinels.n, 3, "sentinels: three");
    is_str(c.redis_sentinels.v[0], "10.0.0.1:26379", "sentinels: first");
    is_str(c.redis_sentinels.v[2], "[::1]:26381", "sentinels: IPv6");
    is_str(c.redis_sentinel_name, "mymaster", "sentinels: the name");
    is_str(c.redis_sentinel_password, SECRET_REDIS,
           "sentinels: the password from its file");
    is_str(c.redis_password, SECRET_REDIS, "sentinels: the data password");
    is_int(c.redis_db, 2, "sentinels: db");
    is_str(warnings, "", "sentinels: no warning");
    config_free(&c);

    is_int(load_text(&c, "redis_sentinels = \"127.0.0.1:26379\";\n"
                     "redis_sentinel_name = \"m\";\n", err, sizeof(err)), 0,
           "one sentinel as a string loads");
    ok(c.redis_sentinels.n == 1 && c.redis_sentinel_password == NULL,
       "one sentinel, no sentinel password");
    config_free(&c);

    is_int(load_text(&c, "redis = \"127.0.0.1:6379\";\n", err, sizeof(err)),
           0, "no sentinels loads");
    ok(c.redis_sentinels.n == 0 && c.redis_sentinel_name == NULL,
       "no sentinels by default");
    config_free(&c);

    fails("redis = \"h:1\";\nredis_sentinels = [\"h:26379\"];\n"
          "redis_sentinel_name = \"m\";\n",
          "2: redis_sentinels and redis name the Redis two ways: keep one",
          "redis and redis_sentinels");
    fails("redis_sentinel_name = \"m\";\n",
          "1: redis_sentinel_name is set, redis_sentinels is not: list the "
          "sentinels", "a name without sentinels");
    fails("\nredis_sentinel_password_file = \"redis.pass\";\n",
          "2: redis_sentinel_password_file is set, redis_sentinels is not: "
          "list the sentinels", "a sentinel password without sentinels");
    fails("redis_sentinels = [\"h:26379\"];\n",
          "1: redis_sentinels needs redis_sentinel_name: the primary's name "
          "in the sentinels' \"sentinel monitor\" line",
          "sentinels without a name");
    fails("redis_sentinels = [\"h:26379\", \"unix:/run/s.sock\"];\n"
          "redis_sentinel_name = \"m\";\n",
          "1: redis_sentinels[1] \"unix:/run/s.sock\": sentinels are reached "
          "over TCP, \"host:port\"", "a unix socket sentinel");
    fails("redis_sentinels = [\"sentinel\"];\nredis_sentinel_name = \"m\";\n",
          "1: redis_sentinels[0] \"sentinel\" is not \"host:port\"",
          "a sentinel without a port");
    fails("redis_sentinels = [\"h:0\"];\nredis_sentinel_name = \"m\";\n",
          "1: redis_sentinels[0] \"h:0\" has no valid port (1 to 65535)",
          "a sentinel port out of range");
    fails("redis_sentinels = [];\nredis_sentinel_name = \"m\";\n",
          "1: redis_sentinels is an empty array", "no sentinel listed");
    fails("redis_sentinels = [\"h:1\"];\nredis_sentinel_name = \"my master\";\n",
          "2: redis_sentinel_name \"my master\" must not hold white space",
          "a name with a space");
    fails("redis_sentinels = [\"h:1\"];\nredis_sentinel_name = 1;\n",
          "2: redis_sentinel_name must be a string", "a name not a string");
    fails("redis_sentinels = [\"h:1\"];\nredis_sentinel_name = \"m\";\n"
          "redis_sentinel_password_file = \"nope.pass\";\n",
          "3: cannot read redis_sentinel_password_file \"nope.pass\": "
          "No such file or directory", "a missing sentinel password file");
}


int
main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/stripe-sync-config-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        diag("mkdtemp failed");
        return 1;
    }

    snprintf(cfg_path, sizeof(cfg_path), "%s/stripe-sync.conf", dir);
    make_secrets();

    test_every_key();
    test_defaults();
    test_providers();
    test_errors();
    test_sentinels();
    test_missing_file();
    test_directories();
    test_warnings();
    test_relative_path();

    /* clean up the directory */
    {
        const char  *names[] = {
            "stripe-sync.conf", "kit.key", "kit.oauth", "stripe.key",
            "redis.pass", "hook.secret", "empty.key", "blank.key",
            "control.key", "world.key", "bad.inc"
        };
        char         path[256];
        size_t       i;

        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            unlink(path);
        }

        rmdir(dir);
    }

    return tap_done();
}
