/*
 * config.c - loading and validating the configuration file (see config.h).
 *
 * libconfig parses; this file walks what it parsed, refusing anything it
 * does not know (a misspelt key is an error, not a silent default), and
 * reads the secret files the config names.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "rules.h"

#define SECRET_LINE_MAX  4096     /* first line of a secret file */
#define INCLUDE_DEPTH_MAX  10     /* libconfig's own limit */
#define INCLUDE_FILES_MAX  64     /* files check_includes reads at most */

#define COUNT(a)  (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const char   *path;           /* the config file, for messages */
    char         *dir;            /* its directory: relative files start
                                     there */
    char         *err;
    size_t        errlen;
    void        (*warn)(const char *msg);
} loader;

/* every action docs/events.md lists */
static const char *actions[] = {
    "purchase", "subscription_checkout", "checkout_pending",
    "payment_failed", "payment_recovered", "renewal", "invoice_paid",
    "payment_action_required", "invoice_issued", "invoice_upcoming",
    "invoice_created", "invoice_updated", "charge_succeeded",
    "charge_failed", "refund", "payment_succeeded", "customer_created",
    "customer_updated", "customer_deleted", "subscription_started",
    "plan_changed", "subscription_cancel_scheduled", "subscription_updated",
    "subscription_cancelled", "subscription_paused", "subscription_resumed",
    "trial_ending"
};

static const char *top_keys[] = {
    "redis", "redis_password_file", "redis_db", "redis_sentinels",
    "redis_sentinel_name", "redis_sentinel_password_file", "prefix",
    "consumer_id",
    "concurrency", "heartbeat", "shutdown_grace", "stripe", "provider",
    "retry", "preset", "rules"
};

static const char *stripe_keys[] = {
    "api_key_file", "api_base", "rate", "timeout"
};

static const char *provider_keys[] = {
    "type", "api_key_file", "oauth_token_file", "api_base", "url",
    "secret_file", "list", "rate", "burst", "timeout"
};

static const char *retry_keys[] = {
    "max_attempts", "base_delay", "max_delay"
};

static const char *rule_keys[] = {
    "on", "type", "product", "price", "livemode", "currency", "min_amount",
    "max_amount", "min_tenure_days", "metadata", "tag", "untag", "sequence",
    "form", "list", "fields", "purchase", "track", "properties"
};

static const char *provider_types[] = {
    "kit", "activecampaign", "klaviyo", "webhook", "log"
};

static const char *preset_names[] = {
    "convertkit", "activecampaign", "klaviyo", "customerhub"
};

/* the provider keys each type reads; the others draw a warning */
static const struct {
    const char  *type;
    const char  *keys;
} provider_uses[] = {
    { "kit", " api_key_file oauth_token_file api_base rate burst timeout " },
    { "activecampaign", " api_key_file api_base list rate burst timeout " },
    { "klaviyo", " api_key_file api_base list rate burst timeout " },
    { "webhook", " url secret_file rate burst timeout " },
    { "log", " " },
};


/* ---- messages ---- */

/*
 * The file a setting (or error) is in, as a path from here: libconfig
 * names an @include'd file as written, relative to the config's directory.
 */
static const char *
file_name(const loader *ld, const char *file, char *buf, size_t len)
{
    if (file == NULL) {
        return ld->path;
    }

    if (file[0] == '/' || ld->dir == NULL || strcmp(file, ld->path) == 0) {
        return file;
    }

    snprintf(buf, len, "%s/%s", ld->dir, file);
    return buf;
}


static void
vsay(loader *ld, const config_setting_t *s, char *buf, size_t len,
    const char *fmt, va_list ap)
{
    const char  *file;
    char         name[PATH_MAX];
    int          n;

    file = file_name(ld, s ? config_setting_source_file(s) : NULL, name,
                     sizeof(name));

    if (s != NULL && config_setting_source_line(s) > 0) {
        n = snprintf(buf, len, "%s:%u: ", file, config_setting_source_line(s));
    } else {
        n = snprintf(buf, len, "%s: ", file);
    }

    if (n >= 0 && (size_t) n < len) {
        vsnprintf(buf + n, len - n, fmt, ap);
    }
}


/* "FILE:LINE: what is wrong" into ld->err; returns -1 */
static int
fail(loader *ld, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(loader *ld, const config_setting_t *s, const char *fmt, ...)
{
    va_list  ap;

    if (ld->err != NULL && ld->errlen > 0) {
        va_start(ap, fmt);
        vsay(ld, s, ld->err, ld->errlen, fmt, ap);
        va_end(ap);
    }

    return -1;
}


static void
warn(loader *ld, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
warn(loader *ld, const config_setting_t *s, const char *fmt, ...)
{
    va_list  ap;
    char     msg[CONFIG_ERR_MAX];

    if (ld->warn == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsay(ld, s, msg, sizeof(msg), fmt, ap);
    va_end(ap);

    ld->warn(msg);
}


static int
oom(loader *ld, const config_setting_t *s)
{
    return fail(ld, s, "out of memory");
}


/* ---- names ---- */

static size_t
edit_distance(const char *a, const char *b)
{
    size_t  la, lb, i, k, prev, cur, up;
    size_t  row[64];

    la = strlen(a);
    lb = strlen(b);

    if (lb >= COUNT(row) || la >= COUNT(row)) {
        return (size_t) -1;
    }

    for (k = 0; k <= lb; k++) {
        row[k] = k;
    }

    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;

        for (k = 1; k <= lb; k++) {
            up = row[k];
            cur = prev + (a[i - 1] != b[k - 1]);
            if (row[k] + 1 < cur) {
                cur = row[k] + 1;
            }
            if (row[k - 1] + 1 < cur) {
                cur = row[k - 1] + 1;
            }
            row[k] = cur;
            prev = up;
        }
    }

    return row[lb];
}


/* " (did you mean \"x\"?)" when one name is close, else "" */
static const char *
suggest(const char *name, const char **names, size_t n, char *buf,
    size_t len)
{
    size_t  i, d, best_d;
    int     best;

    best = -1;
    best_d = 3;

    for (i = 0; i < n; i++) {
        d = edit_distance(name, names[i]);

        /* "api_key" for "api_key_file" */
        if (strlen(name) >= 3 && strncmp(names[i], name, strlen(name)) == 0) {
            d = 1;
        }

        if (d < best_d) {
            best_d = d;
            best = (int) i;
        }
    }

    if (best < 0) {
        return "";
    }

    snprintf(buf, len, " (did you mean \"%s\"?)", names[best]);
    return buf;
}


static int
name_in(const char *name, const char **names, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strcmp(name, names[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Refuses a member of group not in keys. Values are never quoted: a secret
 * written where a file name belongs must not reach a log.
 */
static int
check_keys(loader *ld, const config_setting_t *group, const char **keys,
    size_t n, const char *where)
{
    config_setting_t  *s;
    const char        *name;
    char               hint[96];
    int                i, len;

    len = config_setting_length(group);

    for (i = 0; i < len; i++) {
        s = config_setting_get_elem(group, i);
        name = config_setting_name(s);

        if (name == NULL || name_in(name, keys, n)) {
            continue;
        }

        return fail(ld, s, "unknown key \"%s\"%s%s%s", name,
                    where ? " in " : "", where ? where : "",
                    suggest(name, keys, n, hint, sizeof(hint)));
    }

    return 0;
}


/* ---- values ---- */

static int
as_string(loader *ld, const config_setting_t *s, const char *what,
    const char **out)
{
    const char  *v;

    *out = NULL;

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        return fail(ld, s, "%s must be a string", what);
    }

    v = config_setting_get_string(s);
    if (v == NULL || v[0] == '\0') {
        return fail(ld, s, "%s must not be empty", what);
    }

    *out = v;
    return 0;
}


static int
dup_string(loader *ld, const config_setting_t *s, const char *what,
    char **out)
{
    const char  *v;
    char        *copy;

    if (as_string(ld, s, what, &v) != 0) {
        return -1;
    }

    copy = strdup(v);
    if (copy == NULL) {
        return oom(ld, s);
    }

    free(*out);
    *out = copy;
    return 0;
}


static int
as_int(loader *ld, const config_setting_t *s, const char *what,
    long long min, long long max, long long *out)
{
    long long  v;
    int        t;

    t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        return fail(ld, s, "%s must be an integer", what);
    }

    v = config_setting_get_int64(s);
    if (v < min || v > max) {
        return fail(ld, s, "%s = %lld is out of range (%lld to %lld)",
                    what, v, min, max);
    }

    *out = v;
    return 0;
}


static int
as_small_int(loader *ld, const config_setting_t *s, const char *what,
    int min, int max, int *out)
{
    long long  v;

    v = 0;

    if (as_int(ld, s, what, min, max, &v) != 0) {
        return -1;
    }

    *out = (int) v;
    return 0;
}


static int
as_number(loader *ld, const config_setting_t *s, const char *what,
    double min, double max, double *out)
{
    double  v;
    int     t;

    t = config_setting_type(s);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        v = (double) config_setting_get_int64(s);
    } else if (t == CONFIG_TYPE_FLOAT) {
        v = config_setting_get_float(s);
    } else {
        return fail(ld, s, "%s must be a number", what);
    }

    if (!(v >= min && v <= max)) {
        return fail(ld, s, "%s = %g is out of range (%g to %g)", what, v,
                    min, max);
    }

    *out = v;
    return 0;
}


static int
as_bool(loader *ld, const config_setting_t *s, const char *what, int *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        return fail(ld, s, "%s must be true or false", what);
    }

    *out = config_setting_get_bool(s) ? 1 : 0;
    return 0;
}


static int
as_url(loader *ld, const config_setting_t *s, const char *what, char **out)
{
    const char  *v;
    size_t       n;

    if (as_string(ld, s, what, &v) != 0) {
        return -1;
    }

    if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) {
        return fail(ld, s, "%s \"%s\" is not an http:// or https:// URL",
                    what, v);
    }

    /* the providers append "/path" */
    n = strlen(v);
    while (n > 8 && v[n - 1] == '/') {
        n--;
    }

    free(*out);
    *out = strndup(v, n);
    return *out == NULL ? oom(ld, s) : 0;
}


static void
strings_free(cfg_strings *s)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        free(s->v[i]);
    }

    free(s->v);
    s->v = NULL;
    s->n = 0;
}


/* a string, or an array (or list) of strings */
static int
as_strings(loader *ld, const config_setting_t *s, const char *what,
    cfg_strings *out)
{
    config_setting_t  *e;
    const char        *v;
    char               elem[96];
    int                t, i, n;

    strings_free(out);

    t = config_setting_type(s);

    if (t == CONFIG_TYPE_STRING) {
        if (as_string(ld, s, what, &v) != 0) {
            return -1;
        }

        out->v = calloc(1, sizeof(char *));
        if (out->v == NULL || (out->v[0] = strdup(v)) == NULL) {
            return oom(ld, s);
        }

        out->n = 1;
        return 0;
    }

    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        return fail(ld, s, "%s must be a string or an array of strings",
                    what);
    }

    n = config_setting_length(s);
    if (n == 0) {
        return fail(ld, s, "%s is an empty array", what);
    }

    out->v = calloc(n, sizeof(char *));
    if (out->v == NULL) {
        return oom(ld, s);
    }

    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, i);
        snprintf(elem, sizeof(elem), "%s[%d]", what, i);

        if (as_string(ld, e, elem, &v) != 0) {
            return -1;
        }

        out->v[i] = strdup(v);
        if (out->v[i] == NULL) {
            return oom(ld, e);
        }

        out->n++;
    }

    return 0;
}


static void
fields_free(plan_field *f, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(f[i].key);
        free(f[i].value);
    }

    free(f);
}


/* a template's syntax, and a warning when it names no record member */
static int
check_template(loader *ld, const config_setting_t *s, const char *what,
    const char *tpl)
{
    char  msg[CONFIG_ERR_MAX / 2];
    int   rc;

    rc = template_check(tpl, msg, sizeof(msg));

    if (rc < 0) {
        return fail(ld, s, "%s: %s", what, msg);
    }

    if (rc > 0) {
        warn(ld, s, "%s: %s", what, msg);
    }

    return 0;
}


/*
 * { plan = "{items.0.price}"; tier = 2; } or, for names libconfig cannot
 * spell, ( ["Plan tier", "{items.0.price}"] ). Values are templates.
 */
static int
as_fields(loader *ld, const config_setting_t *s, const char *what,
    plan_field **out, size_t *nout)
{
    config_setting_t  *e, *k, *v;
    plan_field        *f;
    const char        *key, *val;
    char               elem[128], num[32];
    int                t, i, n;
    size_t             m;

    t = config_setting_type(s);
    if (t != CONFIG_TYPE_GROUP && t != CONFIG_TYPE_LIST) {
        return fail(ld, s, "%s must be a group { name = \"value\"; ... } "
                    "or a list ( [\"name\", \"value\"], ... )", what);
    }

    n = config_setting_length(s);
    if (n == 0) {
        return fail(ld, s, "%s is empty", what);
    }

    fields_free(*out, *nout);
    *nout = 0;
    *out = f = calloc(n, sizeof(plan_field));
    if (f == NULL) {
        return oom(ld, s);
    }

    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, i);

        if (t == CONFIG_TYPE_GROUP) {
            key = config_setting_name(e);
            v = e;
            snprintf(elem, sizeof(elem), "%s.%s", what, key);
        } else {
            snprintf(elem, sizeof(elem), "%s[%d]", what, i);
            if ((config_setting_type(e) != CONFIG_TYPE_ARRAY
                 && config_setting_type(e) != CONFIG_TYPE_LIST)
                || config_setting_length(e) != 2)
            {
                return fail(ld, e, "%s must be a pair [\"name\", "
                            "\"value\"]", elem);
            }

            k = config_setting_get_elem(e, 0);
            v = config_setting_get_elem(e, 1);
            if (as_string(ld, k, elem, &key) != 0) {
                return -1;
            }
        }

        for (m = 0; m < *nout; m++) {
            if (strcmp(f[m].key, key) == 0) {
                return fail(ld, e, "%s: \"%s\" is given twice", what, key);
            }
        }

        /* a number is its decimal text */
        if (config_setting_type(v) == CONFIG_TYPE_INT
            || config_setting_type(v) == CONFIG_TYPE_INT64)
        {
            snprintf(num, sizeof(num), "%lld", config_setting_get_int64(v));
            val = num;
        } else if (config_setting_type(v) == CONFIG_TYPE_STRING) {
            val = config_setting_get_string(v);
        } else {
            return fail(ld, v, "%s must be a string or an integer", elem);
        }

        if (check_template(ld, v, elem, val) != 0) {
            return -1;
        }

        f[m].key = strdup(key);
        f[m].value = strdup(val);
        (*nout)++;

        if (f[m].key == NULL || f[m].value == NULL) {
            return oom(ld, e);
        }
    }

    return 0;
}


/* ---- secrets ---- */

/*
 * Reads the first line of the file s names, trimmed. The content never
 * goes into a message: errors say which file and why, nothing more.
 */
static int
as_secret(loader *ld, const config_setting_t *s, const char *what,
    char **out)
{
    const char   *name;
    char         *path, *secret, buf[SECRET_LINE_MAX + 2];
    char         *b, *e;
    struct stat   st;
    ssize_t       r;
    size_t        got;
    int           fd, err;

    if (as_string(ld, s, what, &name) != 0) {
        return -1;
    }

    if (name[0] == '/' || ld->dir == NULL) {
        path = strdup(name);
    } else if (asprintf(&path, "%s/%s", ld->dir, name) < 0) {
        path = NULL;
    }

    if (path == NULL) {
        return oom(ld, s);
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        err = errno;
        free(path);
        return fail(ld, s, "cannot read %s \"%s\": %s", what, name,
                    strerror(err));
    }

    free(path);

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IROTH)) {
        warn(ld, s, "%s \"%s\" is readable by every user (mode %04o); "
             "chmod o-r it", what, name, (unsigned) (st.st_mode & 07777));
    }

    got = 0;

    while (got < sizeof(buf) - 1) {
        r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r == -1 && errno == EINTR) {
            continue;
        }

        if (r == -1) {
            err = errno;
            close(fd);
            explicit_bzero(buf, sizeof(buf));
            return fail(ld, s, "cannot read %s \"%s\": %s", what, name,
                        strerror(err));
        }

        if (r == 0 || memchr(buf + got, '\n', r) != NULL) {
            got += r;
            break;
        }

        got += r;
    }

    close(fd);
    buf[got] = '\0';

    e = memchr(buf, '\n', got);
    if (e == NULL && got > SECRET_LINE_MAX) {
        explicit_bzero(buf, sizeof(buf));
        return fail(ld, s, "%s \"%s\": the first line is longer than %d "
                    "bytes", what, name, SECRET_LINE_MAX);
    }

    if (e == NULL) {
        e = buf + got;
    }

    b = buf;
    while (b < e && isspace((unsigned char) *b)) {
        b++;
    }
    while (e > b && isspace((unsigned char) e[-1])) {
        e--;
    }

    if (b == e) {
        explicit_bzero(buf, sizeof(buf));
        return fail(ld, s, "%s \"%s\" is empty: the secret goes on its first "
                    "line", what, name);
    }

    for (secret = b; secret < e; secret++) {
        if ((unsigned char) *secret < 0x20 || *secret == 0x7f) {
            explicit_bzero(buf, sizeof(buf));
            return fail(ld, s, "%s \"%s\" has a control character in its "
                        "first line", what, name);
        }
    }

    secret = strndup(b, e - b);
    explicit_bzero(buf, sizeof(buf));

    if (secret == NULL) {
        return oom(ld, s);
    }

    if (*out != NULL) {
        explicit_bzero(*out, strlen(*out));
        free(*out);
    }

    *out = secret;
    return 0;
}


/* ---- sections ---- */

static config_setting_t *
member(const config_setting_t *group, const char *key)
{
    return config_setting_get_member(group, key);
}


/* "host:port" or "unix:/path" */
static int
check_redis(loader *ld, const config_setting_t *s, const char *v)
{
    const char  *colon;
    char        *end;
    long         port;

    if (strncmp(v, "unix:", 5) == 0) {
        if (v[5] == '\0') {
            return fail(ld, s, "redis \"%s\" has no socket path", v);
        }

        return 0;
    }

    colon = strrchr(v, ':');
    if (colon == NULL || colon == v) {
        return fail(ld, s, "redis \"%s\" is not \"host:port\" or "
                    "\"unix:/path\"", v);
    }

    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1
        || port > 65535)
    {
        return fail(ld, s, "redis \"%s\" has no valid port (1 to 65535)", v);
    }

    return 0;
}


/* redis_sentinels[i]: "host:port" (sentinels speak TCP only) */
static int
check_sentinel(loader *ld, const config_setting_t *s, size_t i,
    const char *v)
{
    const char  *colon;
    char        *end;
    long         port;

    if (strncmp(v, "unix:", 5) == 0) {
        return fail(ld, s, "redis_sentinels[%zu] \"%s\": sentinels are "
                    "reached over TCP, \"host:port\"", i, v);
    }

    colon = strrchr(v, ':');
    if (colon == NULL || colon == v) {
        return fail(ld, s, "redis_sentinels[%zu] \"%s\" is not "
                    "\"host:port\"", i, v);
    }

    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1
        || port > 65535)
    {
        return fail(ld, s, "redis_sentinels[%zu] \"%s\" has no valid port "
                    "(1 to 65535)", i, v);
    }

    return 0;
}


/*
 * redis_sentinels, redis_sentinel_name, redis_sentinel_password_file: the
 * primary is asked of Sentinel. Exclusive with redis, and each needs the
 * other.
 */
static int
load_sentinels(loader *ld, const config_setting_t *root, ss_config *c)
{
    config_setting_t  *s, *name;
    size_t             i;

    s = member(root, "redis_sentinels");
    name = member(root, "redis_sentinel_name");

    if (s == NULL) {
        if (name != NULL) {
            return fail(ld, name, "redis_sentinel_name is set, "
                        "redis_sentinels is not: list the sentinels");
        }

        if ((name = member(root, "redis_sentinel_password_file")) != NULL) {
            return fail(ld, name, "redis_sentinel_password_file is set, "
                        "redis_sentinels is not: list the sentinels");
        }

        return 0;
    }

    if (member(root, "redis") != NULL) {
        return fail(ld, s, "redis_sentinels and redis name the Redis two "
                    "ways: keep one");
    }

    if (as_strings(ld, s, "redis_sentinels", &c->redis_sentinels) != 0) {
        return -1;
    }

    for (i = 0; i < c->redis_sentinels.n; i++) {
        if (check_sentinel(ld, s, i, c->redis_sentinels.v[i]) != 0) {
            return -1;
        }
    }

    if (name == NULL) {
        return fail(ld, s, "redis_sentinels needs redis_sentinel_name: the "
                    "primary's name in the sentinels' \"sentinel monitor\" "
                    "line");
    }

    if (dup_string(ld, name, "redis_sentinel_name",
                   &c->redis_sentinel_name) != 0)
    {
        return -1;
    }

    if (strpbrk(c->redis_sentinel_name, " \t\r\n") != NULL) {
        return fail(ld, name, "redis_sentinel_name \"%s\" must not hold "
                    "white space", c->redis_sentinel_name);
    }

    if ((s = member(root, "redis_sentinel_password_file")) != NULL
        && as_secret(ld, s, "redis_sentinel_password_file",
                     &c->redis_sentinel_password) != 0)
    {
        return -1;
    }

    return 0;
}


static int
load_top(loader *ld, const config_setting_t *root, ss_config *c)
{
    config_setting_t  *s;
    const char        *v;
    char               hint[96];

    if ((s = member(root, "redis")) != NULL) {
        if (dup_string(ld, s, "redis", &c->redis) != 0
            || check_redis(ld, s, c->redis) != 0)
        {
            return -1;
        }
    }

    if ((s = member(root, "redis_password_file")) != NULL
        && as_secret(ld, s, "redis_password_file", &c->redis_password) != 0)
    {
        return -1;
    }

    if ((s = member(root, "redis_db")) != NULL
        && as_small_int(ld, s, "redis_db", 0, INT_MAX, &c->redis_db) != 0)
    {
        return -1;
    }

    if (load_sentinels(ld, root, c) != 0) {
        return -1;
    }

    if ((s = member(root, "prefix")) != NULL) {
        if (dup_string(ld, s, "prefix", &c->prefix) != 0) {
            return -1;
        }

        /* the keys are "{prefix}:...": a brace would break the slot */
        if (strpbrk(c->prefix, "{} \t\r\n") != NULL) {
            return fail(ld, s, "prefix \"%s\" must not hold braces or "
                        "white space", c->prefix);
        }
    }

    if ((s = member(root, "consumer_id")) != NULL) {
        if (dup_string(ld, s, "consumer_id", &c->consumer_id) != 0) {
            return -1;
        }

        if (strpbrk(c->consumer_id, " \t\r\n") != NULL) {
            return fail(ld, s, "consumer_id \"%s\" must not hold white "
                        "space", c->consumer_id);
        }
    }

    if ((s = member(root, "concurrency")) != NULL
        && as_small_int(ld, s, "concurrency", 1, 10000, &c->concurrency) != 0)
    {
        return -1;
    }

    if ((s = member(root, "heartbeat")) != NULL
        && as_small_int(ld, s, "heartbeat", 1, 3600, &c->heartbeat) != 0)
    {
        return -1;
    }

    if ((s = member(root, "shutdown_grace")) != NULL
        && as_small_int(ld, s, "shutdown_grace", 0, 86400,
                        &c->shutdown_grace) != 0)
    {
        return -1;
    }

    if ((s = member(root, "preset")) != NULL) {
        if (as_string(ld, s, "preset", &v) != 0) {
            return -1;
        }

        if (!name_in(v, preset_names, COUNT(preset_names))) {
            return fail(ld, s, "preset \"%s\" is not one of convertkit, "
                        "activecampaign, klaviyo, customerhub%s", v,
                        suggest(v, preset_names, COUNT(preset_names), hint,
                                sizeof(hint)));
        }

        if (dup_string(ld, s, "preset", &c->preset) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
load_stripe(loader *ld, const config_setting_t *root, ss_config *c)
{
    config_setting_t  *g, *s;

    g = member(root, "stripe");
    if (g == NULL) {
        return 0;
    }

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        return fail(ld, g, "stripe must be a group: stripe = { ... };");
    }

    if (check_keys(ld, g, stripe_keys, COUNT(stripe_keys), "stripe") != 0) {
        return -1;
    }

    if ((s = member(g, "api_key_file")) != NULL
        && as_secret(ld, s, "stripe.api_key_file", &c->stripe_api_key) != 0)
    {
        return -1;
    }

    if ((s = member(g, "api_base")) != NULL
        && as_url(ld, s, "stripe.api_base", &c->stripe_api_base) != 0)
    {
        return -1;
    }

    if ((s = member(g, "rate")) != NULL
        && as_number(ld, s, "stripe.rate", 0.01, 10000, &c->stripe_rate) != 0)
    {
        return -1;
    }

    if ((s = member(g, "timeout")) != NULL
        && as_small_int(ld, s, "stripe.timeout", 1, 3600,
                        &c->stripe_timeout) != 0)
    {
        return -1;
    }

    return 0;
}


static int
load_provider(loader *ld, const config_setting_t *root, ss_config *c)
{
    config_setting_t  *g, *s;
    const char        *type, *name, *uses;
    char               hint[96], pat[64];
    size_t             i;
    int                n;

    g = member(root, "provider");
    if (g == NULL) {
        return 0;                               /* "log": a dry run */
    }

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        return fail(ld, g, "provider must be a group: provider = { type = "
                    "\"kit\"; ... };");
    }

    if (check_keys(ld, g, provider_keys, COUNT(provider_keys), "provider")
        != 0)
    {
        return -1;
    }

    s = member(g, "type");
    if (s == NULL) {
        return fail(ld, g, "provider has no type (kit, activecampaign, "
                    "klaviyo, webhook or log)");
    }

    if (as_string(ld, s, "provider.type", &type) != 0) {
        return -1;
    }

    if (!name_in(type, provider_types, COUNT(provider_types))) {
        return fail(ld, s, "provider.type \"%s\" is not one of kit, "
                    "activecampaign, klaviyo, webhook, log%s", type,
                    suggest(type, provider_types, COUNT(provider_types),
                            hint, sizeof(hint)));
    }

    if (dup_string(ld, s, "provider.type", &c->provider_type) != 0) {
        return -1;
    }

    if (((s = member(g, "api_key_file")) != NULL
         && as_secret(ld, s, "provider.api_key_file",
                      &c->provider_api_key) != 0)
        || ((s = member(g, "oauth_token_file")) != NULL
            && as_secret(ld, s, "provider.oauth_token_file",
                         &c->provider_oauth_token) != 0)
        || ((s = member(g, "secret_file")) != NULL
            && as_secret(ld, s, "provider.secret_file",
                         &c->provider_secret) != 0)
        || ((s = member(g, "api_base")) != NULL
            && as_url(ld, s, "provider.api_base", &c->provider_api_base)
               != 0)
        || ((s = member(g, "url")) != NULL
            && as_url(ld, s, "provider.url", &c->provider_url) != 0)
        || ((s = member(g, "list")) != NULL
            && dup_string(ld, s, "provider.list", &c->provider_list) != 0)
        || ((s = member(g, "rate")) != NULL
            && as_number(ld, s, "provider.rate", 0, 10000,
                         &c->provider_rate) != 0)
        || ((s = member(g, "burst")) != NULL
            && as_small_int(ld, s, "provider.burst", 0, 100000,
                            &c->provider_burst) != 0)
        || ((s = member(g, "timeout")) != NULL
            && as_small_int(ld, s, "provider.timeout", 1, 3600,
                            &c->provider_timeout) != 0))
    {
        return -1;
    }

    if (strcmp(type, "kit") == 0 && c->provider_api_key == NULL
        && c->provider_oauth_token == NULL)
    {
        return fail(ld, g, "provider \"kit\" needs api_key_file or "
                    "oauth_token_file");
    }

    if (strcmp(type, "activecampaign") == 0 && c->provider_api_key == NULL) {
        return fail(ld, g, "provider \"activecampaign\" needs api_key_file");
    }

    if (strcmp(type, "activecampaign") == 0 && c->provider_api_base == NULL) {
        return fail(ld, g, "provider \"activecampaign\" needs api_base, the "
                    "account's API URL (https://ACCOUNT.api-us1.com)");
    }

    if (strcmp(type, "klaviyo") == 0 && c->provider_api_key == NULL) {
        return fail(ld, g, "provider \"klaviyo\" needs api_key_file");
    }

    if (strcmp(type, "webhook") == 0 && c->provider_url == NULL) {
        return fail(ld, g, "provider \"webhook\" needs url");
    }

    if (strcmp(type, "webhook") == 0 && c->provider_secret == NULL) {
        return fail(ld, g, "provider \"webhook\" needs secret_file");
    }

    /* a key the type never reads is most likely a mistake */
    uses = " ";
    for (i = 0; i < COUNT(provider_uses); i++) {
        if (strcmp(provider_uses[i].type, type) == 0) {
            uses = provider_uses[i].keys;
        }
    }

    n = config_setting_length(g);
    for (i = 0; i < (size_t) n; i++) {
        s = config_setting_get_elem(g, i);
        name = config_setting_name(s);
        snprintf(pat, sizeof(pat), " %s ", name);

        if (strcmp(name, "type") != 0 && strstr(uses, pat) == NULL) {
            warn(ld, s, "provider.%s is not used by type \"%s\"", name,
                 type);
        }
    }

    return 0;
}


static int
load_retry(loader *ld, const config_setting_t *root, ss_config *c)
{
    config_setting_t  *g, *s;

    g = member(root, "retry");
    if (g == NULL) {
        return 0;
    }

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        return fail(ld, g, "retry must be a group: retry = { ... };");
    }

    if (check_keys(ld, g, retry_keys, COUNT(retry_keys), "retry") != 0) {
        return -1;
    }

    if (((s = member(g, "max_attempts")) != NULL
         && as_small_int(ld, s, "retry.max_attempts", 1, 1000,
                         &c->retry_max_attempts) != 0)
        || ((s = member(g, "base_delay")) != NULL
            && as_small_int(ld, s, "retry.base_delay", 1, 86400,
                            &c->retry_base_delay) != 0)
        || ((s = member(g, "max_delay")) != NULL
            && as_small_int(ld, s, "retry.max_delay", 1, 7 * 86400,
                            &c->retry_max_delay) != 0))
    {
        return -1;
    }

    if (c->retry_base_delay > c->retry_max_delay) {
        return fail(ld, g, "retry.base_delay (%d) is above retry.max_delay "
                    "(%d)", c->retry_base_delay, c->retry_max_delay);
    }

    return 0;
}


/* ---- rules ---- */

static int
check_actions(loader *ld, const config_setting_t *s, const char *what,
    const cfg_strings *on)
{
    const config_setting_t  *e;
    char                     hint[96];
    size_t                   i;

    for (i = 0; i < on->n; i++) {
        if (name_in(on->v[i], actions, COUNT(actions))) {
            continue;
        }

        e = config_setting_type(s) == CONFIG_TYPE_STRING
            ? s : config_setting_get_elem(s, i);

        if (strchr(on->v[i], '.') != NULL) {
            return fail(ld, e, "%s: \"%s\" is a Stripe event type, not an "
                        "action: match it with type = \"%s\"", what,
                        on->v[i], on->v[i]);
        }

        return fail(ld, e, "%s: \"%s\" is not an action (see "
                    "docs/events.md)%s", what, on->v[i],
                    suggest(on->v[i], actions, COUNT(actions), hint,
                            sizeof(hint)));
    }

    return 0;
}


static int
check_strings_templates(loader *ld, const config_setting_t *s,
    const char *what, const cfg_strings *v)
{
    size_t  i;

    for (i = 0; i < v->n; i++) {
        if (check_template(ld, config_setting_type(s) == CONFIG_TYPE_STRING
                               ? s : config_setting_get_elem(s, i),
                           what, v->v[i]) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* metadata = "plan=pro"; or ["a=b", "c=d"]; or { plan = "pro"; } */
static int
load_metadata(loader *ld, const config_setting_t *s, const char *what,
    cfg_strings *md)
{
    config_setting_t  *e;
    const char        *v;
    char               elem[128];
    int                i, n;
    size_t             k;

    if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
        if (as_strings(ld, s, what, md) != 0) {
            return -1;
        }

        for (k = 0; k < md->n; k++) {
            if (md->v[k][0] == '=' || strchr(md->v[k], '=') == NULL) {
                e = config_setting_type(s) == CONFIG_TYPE_STRING
                    ? (config_setting_t *) s : config_setting_get_elem(s, k);
                return fail(ld, e, "%s: \"%s\" is not \"key=value\"", what,
                            md->v[k]);
            }
        }

        return 0;
    }

    n = config_setting_length(s);
    if (n == 0) {
        return fail(ld, s, "%s is empty", what);
    }

    md->v = calloc(n, sizeof(char *));
    if (md->v == NULL) {
        return oom(ld, s);
    }

    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, i);
        snprintf(elem, sizeof(elem), "%s.%s", what, config_setting_name(e));

        if (as_string(ld, e, elem, &v) != 0) {
            return -1;
        }

        if (asprintf(&md->v[i], "%s=%s", config_setting_name(e), v) < 0) {
            md->v[i] = NULL;
            return oom(ld, e);
        }

        md->n++;
    }

    return 0;
}


static int
load_rule(loader *ld, const config_setting_t *g, int index, cfg_rule *r)
{
    config_setting_t  *s;
    char               where[32], what[64], *cur;
    int                live;
    size_t             i;

    static const struct {
        const char  *key;
        size_t       offset;
    } lists[] = {
        { "type", offsetof(cfg_rule, type) },
        { "product", offsetof(cfg_rule, product) },
        { "price", offsetof(cfg_rule, price) },
        { "tag", offsetof(cfg_rule, tag) },
        { "untag", offsetof(cfg_rule, untag) },
        { "sequence", offsetof(cfg_rule, sequence) },
        { "form", offsetof(cfg_rule, form) },
        { "list", offsetof(cfg_rule, list) },
    };

    r->line = config_setting_source_line(g);
    r->livemode = -1;
    r->min_amount = -1;
    r->max_amount = -1;
    r->min_tenure_days = -1;

    snprintf(where, sizeof(where), "rule %d", index + 1);

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        return fail(ld, g, "%s must be a group { on = \"...\"; ... }", where);
    }

    if (check_keys(ld, g, rule_keys, COUNT(rule_keys), where) != 0) {
        return -1;
    }

    if ((s = member(g, "on")) != NULL) {
        snprintf(what, sizeof(what), "%s: on", where);
        if (as_strings(ld, s, what, &r->on) != 0
            || check_actions(ld, s, what, &r->on) != 0)
        {
            return -1;
        }
    }

    for (i = 0; i < COUNT(lists); i++) {
        s = member(g, lists[i].key);
        if (s == NULL) {
            continue;
        }

        snprintf(what, sizeof(what), "%s: %s", where, lists[i].key);
        if (as_strings(ld, s, what,
                       (cfg_strings *) ((char *) r + lists[i].offset)) != 0)
        {
            return -1;
        }
    }

    /* names of tags, sequences, ... may be templates */
    for (i = 3; i < COUNT(lists); i++) {
        s = member(g, lists[i].key);
        snprintf(what, sizeof(what), "%s: %s", where, lists[i].key);

        if (s != NULL
            && check_strings_templates(ld, s, what,
                   (cfg_strings *) ((char *) r + lists[i].offset)) != 0)
        {
            return -1;
        }
    }

    if ((s = member(g, "livemode")) != NULL) {
        live = 0;
        snprintf(what, sizeof(what), "%s: livemode", where);
        if (as_bool(ld, s, what, &live) != 0) {
            return -1;
        }
        r->livemode = live;
    }

    if ((s = member(g, "currency")) != NULL) {
        snprintf(what, sizeof(what), "%s: currency", where);
        if (as_strings(ld, s, what, &r->currency) != 0) {
            return -1;
        }

        for (i = 0; i < r->currency.n; i++) {
            cur = r->currency.v[i];

            if (strlen(cur) != 3 || !isalpha((unsigned char) cur[0])
                || !isalpha((unsigned char) cur[1])
                || !isalpha((unsigned char) cur[2]))
            {
                return fail(ld, config_setting_type(s) == CONFIG_TYPE_STRING
                                ? s : config_setting_get_elem(s, i),
                            "%s: \"%s\" is not a three-letter currency code",
                            what, cur);
            }

            /* Stripe sends them lowercase */
            cur[0] = tolower((unsigned char) cur[0]);
            cur[1] = tolower((unsigned char) cur[1]);
            cur[2] = tolower((unsigned char) cur[2]);
        }
    }

    if ((s = member(g, "min_amount")) != NULL) {
        snprintf(what, sizeof(what), "%s: min_amount", where);
        if (as_int(ld, s, what, 0, LLONG_MAX, &r->min_amount) != 0) {
            return -1;
        }
    }

    if ((s = member(g, "max_amount")) != NULL) {
        snprintf(what, sizeof(what), "%s: max_amount", where);
        if (as_int(ld, s, what, 0, LLONG_MAX, &r->max_amount) != 0) {
            return -1;
        }
    }

    if (r->min_amount >= 0 && r->max_amount >= 0
        && r->min_amount > r->max_amount)
    {
        return fail(ld, g, "%s: min_amount (%lld) is above max_amount "
                    "(%lld)", where, r->min_amount, r->max_amount);
    }

    if ((s = member(g, "min_tenure_days")) != NULL) {
        snprintf(what, sizeof(what), "%s: min_tenure_days", where);
        if (as_int(ld, s, what, 0, 100000, &r->min_tenure_days) != 0) {
            return -1;
        }
    }

    if ((s = member(g, "metadata")) != NULL) {
        snprintf(what, sizeof(what), "%s: metadata", where);
        if (load_metadata(ld, s, what, &r->metadata) != 0) {
            return -1;
        }
    }

    if ((s = member(g, "fields")) != NULL) {
        snprintf(what, sizeof(what), "%s: fields", where);
        if (as_fields(ld, s, what, &r->fields, &r->nfields) != 0) {
            return -1;
        }
    }

    if ((s = member(g, "purchase")) != NULL) {
        snprintf(what, sizeof(what), "%s: purchase", where);
        if (as_bool(ld, s, what, &r->purchase) != 0) {
            return -1;
        }
    }

    if ((s = member(g, "track")) != NULL) {
        snprintf(what, sizeof(what), "%s: track", where);
        if (dup_string(ld, s, what, &r->track) != 0
            || check_template(ld, s, what, r->track) != 0)
        {
            return -1;
        }
    }

    if ((s = member(g, "properties")) != NULL) {
        snprintf(what, sizeof(what), "%s: properties", where);
        if (r->track == NULL) {
            return fail(ld, s, "%s: properties without track", where);
        }

        if (as_fields(ld, s, what, &r->properties, &r->nproperties) != 0) {
            return -1;
        }
    }

    if (r->tag.n == 0 && r->untag.n == 0 && r->sequence.n == 0
        && r->form.n == 0 && r->list.n == 0 && r->nfields == 0
        && !r->purchase && r->track == NULL)
    {
        return fail(ld, g, "%s has no operation: give it tag, untag, "
                    "sequence, form, list, fields, purchase or track",
                    where);
    }

    return 0;
}


static int
load_rules(loader *ld, const config_setting_t *root, ss_config *c)
{
    config_setting_t  *list;
    int                i, n;

    list = member(root, "rules");
    if (list == NULL) {
        return 0;
    }

    if (config_setting_type(list) != CONFIG_TYPE_LIST) {
        return fail(ld, list, "rules must be a list: rules = ( { ... }, "
                    "{ ... } );");
    }

    n = config_setting_length(list);
    if (n == 0) {
        return 0;
    }

    c->rules = calloc(n, sizeof(cfg_rule));
    if (c->rules == NULL) {
        return oom(ld, list);
    }

    /* every rule counts from here, so config_free() frees what was read */
    c->nrules = n;

    for (i = 0; i < n; i++) {
        c->rules[i].livemode = -1;
        c->rules[i].min_amount = -1;
        c->rules[i].max_amount = -1;
        c->rules[i].min_tenure_days = -1;
    }

    for (i = 0; i < n; i++) {
        if (load_rule(ld, config_setting_get_elem(list, i), i, &c->rules[i])
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* ---- the whole file ---- */

static int
set_defaults(ss_config *c, const char *path)
{
    char  host[256];

    memset(c, 0, sizeof(*c));

    c->concurrency = 32;
    c->heartbeat = 10;
    c->shutdown_grace = 30;
    c->stripe_rate = 25;
    c->stripe_timeout = 30;
    c->provider_timeout = 30;
    c->retry_max_attempts = 15;
    c->retry_base_delay = 10;
    c->retry_max_delay = 21600;

    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "localhost");
    }
    host[sizeof(host) - 1] = '\0';

    c->file = strdup(path);
    c->redis = strdup("127.0.0.1:6379");
    c->prefix = strdup("stripe_sync");
    c->stripe_api_base = strdup("https://api.stripe.com");
    c->provider_type = strdup("log");

    if (asprintf(&c->consumer_id, "%s:%ld", host, (long) getpid()) < 0) {
        c->consumer_id = NULL;
    }

    return c->file && c->redis && c->prefix && c->stripe_api_base
           && c->provider_type && c->consumer_id ? 0 : -1;
}


/* ---- @include ---- */

/*
 * libconfig 1.5 (bookworm) ends the process, exit(2) with "input in flex
 * scanner failed", when it reads a directory: the config named by -c, or
 * an @include of "", "." or a directory. A daemon reloading on SIGHUP must
 * not die of a typo, so the file and every @include it holds (and theirs)
 * are looked at first. An @include is found as libconfig's scanner finds
 * it: a line starting with @include, the name up to the closing quote (\"
 * and \\ escaped, cut at a NUL), relative to the config's directory. A
 * commented-out one is looked at too: harmless. A file including itself
 * twice would make this exponential: past *budget files, libconfig's own
 * depth limit is left to answer.
 */
static int
check_includes(loader *ld, const char *file, int depth, int *budget)
{
    FILE         *f;
    char         *line, *p, *name, *full;
    size_t        cap, n;
    ssize_t       len;
    unsigned      lineno;
    struct stat   st;
    int           rc;

    if (*budget <= 0) {
        return 0;
    }

    (*budget)--;

    f = fopen(file, "r");
    if (f == NULL) {
        return 0;    /* libconfig says why */
    }

    line = NULL;
    cap = 0;
    lineno = 0;
    rc = 0;

    while (rc == 0 && (len = getline(&line, &cap, f)) != -1) {
        lineno++;

        p = line + strspn(line, " \t");
        if (strncmp(p, "@include", 8) != 0 || (p[8] != ' ' && p[8] != '\t')) {
            continue;
        }

        p += 8 + strspn(p + 8, " \t");
        if (*p != '"') {
            continue;
        }

        /* the name, unescaped in place; the line is ours */
        name = ++p;
        for (n = 0; *p != '\0' && *p != '"'; p++) {
            if (*p == '\\' && (p[1] == '\\' || p[1] == '"')) {
                p++;
            }
            name[n++] = *p;
        }
        name[n] = '\0';

        if (name[0] == '/' || ld->dir == NULL) {
            full = strdup(name);
        } else if (asprintf(&full, "%s/%s", ld->dir, name) < 0) {
            full = NULL;
        }

        if (full == NULL) {
            rc = oom(ld, NULL);
            break;
        }

        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (ld->err != NULL && ld->errlen > 0) {
                /* file is the path from here already */
                snprintf(ld->err, ld->errlen, "%s:%u: @include \"%s\" is a "
                         "directory, not a file", file, lineno, name);
            }
            rc = -1;

        } else if (stat(full, &st) == 0 && S_ISREG(st.st_mode)
                   && depth < INCLUDE_DEPTH_MAX)
        {
            rc = check_includes(ld, full, depth + 1, budget);
        }

        free(full);
    }

    free(line);
    fclose(f);

    return rc;
}


int
config_load(ss_config *c, const char *path, char *err, size_t errlen,
    void (*warnf)(const char *msg))
{
    config_t           cfg;
    config_setting_t  *root;
    loader             ld;
    const char        *slash, *efile;
    char               name[PATH_MAX];
    struct stat        st;
    FILE              *f;
    int                rc, budget;

    memset(&ld, 0, sizeof(ld));
    ld.path = path;
    ld.err = err;
    ld.errlen = errlen;
    ld.warn = warnf;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }

    if (set_defaults(c, path) != 0) {
        config_free(c);
        return fail(&ld, NULL, "out of memory");
    }

    /* libconfig says only "file I/O error": say which and why (and it
       would exit on a directory: see check_includes) */
    f = fopen(path, "r");
    if (f == NULL || (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))) {
        rc = f == NULL ? errno : EISDIR;
        if (f != NULL) {
            fclose(f);
        }
        config_free(c);
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(rc));
        }
        return -1;
    }
    fclose(f);

    /* secrets and @include are relative to the file: "." for "x.conf" */
    slash = strrchr(path, '/');
    ld.dir = slash ? strndup(path, slash - path == 0 ? 1 : slash - path)
                   : strdup(".");
    if (ld.dir == NULL) {
        config_free(c);
        return fail(&ld, NULL, "out of memory");
    }

    budget = INCLUDE_FILES_MAX;

    if (check_includes(&ld, path, 0, &budget) != 0) {
        free(ld.dir);
        config_free(c);
        return -1;
    }

    config_init(&cfg);
    config_set_include_dir(&cfg, ld.dir);

    rc = -1;

    if (config_read_file(&cfg, path) != CONFIG_TRUE) {
        efile = file_name(&ld, config_error_file(&cfg), name, sizeof(name));

        if (err != NULL && errlen > 0) {
            if (config_error_type(&cfg) == CONFIG_ERR_PARSE) {
                snprintf(err, errlen, "%s:%d: %s", efile,
                         config_error_line(&cfg), config_error_text(&cfg));
            } else {
                snprintf(err, errlen, "cannot read %s: %s", efile,
                         config_error_text(&cfg));
            }
        }

        goto done;
    }

    root = config_root_setting(&cfg);

    if (check_keys(&ld, root, top_keys, COUNT(top_keys), NULL) != 0
        || load_top(&ld, root, c) != 0
        || load_stripe(&ld, root, c) != 0
        || load_provider(&ld, root, c) != 0
        || load_retry(&ld, root, c) != 0
        || load_rules(&ld, root, c) != 0)
    {
        goto done;
    }

    /* SPEC 8: Kit records purchases only through OAuth */
    if (c->preset != NULL && strcmp(c->preset, "convertkit") == 0
        && strcmp(c->provider_type, "kit") == 0
        && c->provider_oauth_token == NULL)
    {
        warn(&ld, member(root, "preset"), "preset \"convertkit\" records "
             "purchases, which Kit accepts only with provider."
             "oauth_token_file; they will be skipped");
    }

    rc = 0;

done:

    config_destroy(&cfg);
    free(ld.dir);

    if (rc != 0) {
        config_free(c);
    }

    return rc;
}


static void
rule_free(cfg_rule *r)
{
    strings_free(&r->on);
    strings_free(&r->type);
    strings_free(&r->product);
    strings_free(&r->price);
    strings_free(&r->currency);
    strings_free(&r->metadata);
    strings_free(&r->tag);
    strings_free(&r->untag);
    strings_free(&r->sequence);
    strings_free(&r->form);
    strings_free(&r->list);
    fields_free(r->fields, r->nfields);
    fields_free(r->properties, r->nproperties);
    free(r->track);
}


static void
secret_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}


void
config_free(ss_config *c)
{
    size_t  i;

    for (i = 0; i < c->nrules; i++) {
        rule_free(&c->rules[i]);
    }

    free(c->rules);
    free(c->file);
    free(c->redis);
    secret_free(c->redis_password);
    strings_free(&c->redis_sentinels);
    free(c->redis_sentinel_name);
    secret_free(c->redis_sentinel_password);
    free(c->prefix);
    free(c->consumer_id);
    secret_free(c->stripe_api_key);
    free(c->stripe_api_base);
    free(c->provider_type);
    secret_free(c->provider_api_key);
    secret_free(c->provider_oauth_token);
    free(c->provider_api_base);
    free(c->provider_url);
    secret_free(c->provider_secret);
    free(c->provider_list);
    free(c->preset);

    memset(c, 0, sizeof(*c));
}
