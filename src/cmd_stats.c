/*
 * cmd_stats.c - "stripe-sync stats" (cmd_stats.h).
 *
 * One pipelined round of reads (lengths, counters, the consumer set), then
 * one for the consumers' processing lists and heartbeats: the numbers are
 * a few milliseconds apart, not one atomic snapshot.
 */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cli_redis.h"
#include "cmd_stats.h"
#include "provider_json.h"


#define STATS_RATE_MAX  300.0

typedef enum {
    STATS_TABLE,
    STATS_JSON,
    STATS_PROMETHEUS
} stats_format;

/* counters of {P}:stats that share a labelled Prometheus family */
static const char  *stats_ingest_results[] = {
    "queued", "duplicate", "duplicate_fact", NULL
};
static const char  *stats_consumer_outcomes[] = {
    "done", "retried", "dead", "stale", NULL
};

/* counters always shown in Prometheus output, 0 when absent */
static const struct {
    const char  *counter;
    const char  *metric;
    const char  *help;
} stats_known[] = {
    { "consumer_skipped_ops", "stripe_sync_consumer_skipped_ops_total",
      "Operations a provider cannot express, skipped (counted as done)." },
    { "dlq_replayed", "stripe_sync_dlq_replayed_total",
      "Dead letters pushed back on the queue by stripe-sync dlq replay." },
    { "dlq_purged", "stripe_sync_dlq_purged_total",
      "Dead letters deleted by stripe-sync dlq purge." },
    { NULL, NULL, NULL }
};


static void
stats_usage(FILE *f)
{
    fprintf(f,
        "usage: stripe-sync stats [-c FILE] [--rate[=S]] [--json | "
        "--prometheus]\n"
        "\n"
        "Queue, processing, retry and dead-letter counts, consumers, the "
        "customer\n"
        "map and the counters of {P}:stats, read from Redis now.\n"
        "\n"
        "  -c, --config FILE  configuration file (default "
        CLI_DEFAULT_CONFIG ")\n"
        "  --rate[=S]         read the counters twice, S seconds apart "
        "(default 1),\n"
        "                     and show per-second rates\n"
        "  --json             one JSON object\n"
        "  --prometheus       Prometheus text (node_exporter textfile "
        "collector)\n"
        "\n"
        "exit status: 0 done, 1 config or Redis error, 2 usage\n");
}


/* ------------------------------------------------------------ output --- */

static const stats_counter *
stats_find(const stats_snapshot *s, const char *name)
{
    size_t  i;

    for (i = 0; i < s->ncounters; i++) {
        if (strcmp(s->counters[i].name, name) == 0) {
            return &s->counters[i];
        }
    }

    return NULL;
}


void
stats_print_table(const stats_snapshot *s, FILE *f)
{
    const stats_consumer  *c;
    const stats_counter   *k;
    size_t                 i;

    fprintf(f, "%-22s %12lld\n", "queue", s->queue);
    fprintf(f, "%-22s %12lld\n", "processing", s->processing);
    fprintf(f, "%-22s %12lld  (%lld due now)\n", "retry", s->retry,
            s->retry_due);
    fprintf(f, "%-22s %12lld\n", "dead", s->dead);
    fprintf(f, "%-22s %12zu  (%zu live)\n", "consumers", s->nconsumers,
            s->live);

    for (i = 0; i < s->nconsumers; i++) {
        c = &s->consumers[i];
        fprintf(f, "  %-40s %lld in hand, %s\n", c->id, c->processing,
                c->live ? "live" : "no heartbeat");
    }

    fprintf(f, "%-22s %12lld\n", "customers", s->customers);

    if (s->ncounters == 0) {
        fprintf(f, "\nno counters in {%s}:stats\n", s->prefix);
        return;
    }

    fprintf(f, "\n%-22s %12s", "counter", "total");
    if (s->rate_window > 0) {
        fprintf(f, "  %10s", "per second");
    }
    fprintf(f, "\n");

    for (i = 0; i < s->ncounters; i++) {
        k = &s->counters[i];
        fprintf(f, "%-22s %12lld", k->name, k->value);
        if (s->rate_window > 0 && k->has_rate) {
            fprintf(f, "  %10.2f", k->rate);
        }
        fprintf(f, "\n");
    }

    if (s->rate_window > 0) {
        fprintf(f, "\n(rates over %.1f s)\n", s->rate_window);
    }
}


static void
stats_json_number(json_writer *w, const char *key, double v)
{
    char  buf[64];

    snprintf(buf, sizeof(buf), "%.3f", isfinite(v) ? v : 0.0);
    json_writer_key(w, key);
    json_writer_number(w, buf);
}


void
stats_print_json(const stats_snapshot *s, FILE *f)
{
    http_request   out;
    json_writer    w;
    size_t         i;

    if (json_writer_init(&w) != 0) {
        return;
    }

    json_writer_map_open(&w);
    json_writer_pair(&w, "prefix", s->prefix);
    json_writer_pair_integer(&w, "time", s->time);
    json_writer_pair_integer(&w, "queue", s->queue);
    json_writer_pair_integer(&w, "processing", s->processing);
    json_writer_pair_integer(&w, "retry", s->retry);
    json_writer_pair_integer(&w, "retry_due", s->retry_due);
    json_writer_pair_integer(&w, "dead", s->dead);
    json_writer_pair_integer(&w, "customers", s->customers);
    json_writer_pair_integer(&w, "consumers", (long long) s->nconsumers);
    json_writer_pair_integer(&w, "consumers_live", (long long) s->live);

    json_writer_key(&w, "consumer_list");
    json_writer_array_open(&w);
    for (i = 0; i < s->nconsumers; i++) {
        json_writer_map_open(&w);
        json_writer_pair(&w, "id", s->consumers[i].id);
        json_writer_pair_integer(&w, "processing",
                                 s->consumers[i].processing);
        json_writer_key(&w, "live");
        json_writer_bool(&w, s->consumers[i].live);
        json_writer_map_close(&w);
    }
    json_writer_array_close(&w);

    json_writer_key(&w, "counters");
    json_writer_map_open(&w);
    for (i = 0; i < s->ncounters; i++) {
        json_writer_pair_integer(&w, s->counters[i].name,
                                 s->counters[i].value);
    }
    json_writer_map_close(&w);

    if (s->rate_window > 0) {
        stats_json_number(&w, "rate_window", s->rate_window);
        json_writer_key(&w, "rates");
        json_writer_map_open(&w);
        for (i = 0; i < s->ncounters; i++) {
            if (s->counters[i].has_rate) {
                stats_json_number(&w, s->counters[i].name,
                                  s->counters[i].rate);
            }
        }
        json_writer_map_close(&w);
    }

    json_writer_map_close(&w);

    memset(&out, 0, sizeof(out));
    if (json_writer_finish(&w, &out) == 0) {
        fprintf(f, "%s\n", out.body);
        free(out.body);
    }
}


/* a label value: \, " and newline escaped */
static void
stats_label(FILE *f, const char *v)
{
    for ( /* void */ ; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"') {
            fprintf(f, "\\%c", *v);
        } else if (*v == '\n') {
            fprintf(f, "\\n");
        } else {
            fputc(*v, f);
        }
    }
}


static void
stats_family(FILE *f, const char *metric, const char *type,
    const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
}


static void
stats_sample(FILE *f, const stats_snapshot *s, const char *metric,
    const char *label, const char *value, long long v)
{
    fprintf(f, "%s{", metric);
    if (label != NULL) {
        fprintf(f, "%s=\"", label);
        stats_label(f, value);
        fprintf(f, "\",");
    }
    fprintf(f, "prefix=\"");
    stats_label(f, s->prefix);
    fprintf(f, "\"} %lld\n", v);
}


static void
stats_gauge(FILE *f, const stats_snapshot *s, const char *metric,
    const char *help, long long v)
{
    stats_family(f, metric, "gauge", help);
    stats_sample(f, s, metric, NULL, NULL, v);
}


static int
stats_in(const char *name, const char **list)
{
    for ( /* void */ ; *list != NULL; list++) {
        if (strcmp(name, *list) == 0) {
            return 1;
        }
    }

    return 0;
}


/* a counter that no family above claims: stripe_sync_<name>_total */
static int
stats_is_other(const char *name)
{
    size_t  i;

    if (strncmp(name, "ingest_", 7) == 0) {
        return 0;
    }

    if (strncmp(name, "consumer_", 9) == 0
        && stats_in(name + 9, stats_consumer_outcomes))
    {
        return 0;
    }

    for (i = 0; stats_known[i].counter != NULL; i++) {
        if (strcmp(name, stats_known[i].counter) == 0) {
            return 0;
        }
    }

    return 1;
}


void
stats_print_prometheus(const stats_snapshot *s, FILE *f)
{
    const stats_counter  *k;
    const char          **p;
    char                  name[256], metric[300], help[320];
    size_t                i, j;

    stats_gauge(f, s, "stripe_sync_queue_length",
                "Actions waiting in the queue.", s->queue);
    stats_gauge(f, s, "stripe_sync_processing_jobs",
                "Jobs held in the consumers' processing lists.",
                s->processing);
    stats_gauge(f, s, "stripe_sync_retry_jobs",
                "Jobs waiting for a retry.", s->retry);
    stats_gauge(f, s, "stripe_sync_retry_due_jobs",
                "Retries already due, about to move to the queue.",
                s->retry_due);
    stats_gauge(f, s, "stripe_sync_dead_letters",
                "Dead letters waiting for dlq replay or purge.", s->dead);
    stats_gauge(f, s, "stripe_sync_consumers",
                "Consumers registered (that may hold jobs).",
                (long long) s->nconsumers);
    stats_gauge(f, s, "stripe_sync_consumers_live",
                "Consumers with a live heartbeat.", (long long) s->live);
    stats_gauge(f, s, "stripe_sync_customers",
                "Customers in the customer map.", s->customers);

    /* the webhook's results: the known ones always, then any other */
    stats_family(f, "stripe_sync_ingest_events_total", "counter",
                 "Events accepted by the webhook (and backfill, reconcile),"
                 " by result.");
    for (p = stats_ingest_results; *p != NULL; p++) {
        snprintf(name, sizeof(name), "ingest_%s", *p);
        k = stats_find(s, name);
        stats_sample(f, s, "stripe_sync_ingest_events_total", "result", *p,
                     k ? k->value : 0);
    }
    for (i = 0; i < s->ncounters; i++) {
        k = &s->counters[i];
        if (strncmp(k->name, "ingest_", 7) == 0
            && !stats_in(k->name + 7, stats_ingest_results))
        {
            stats_sample(f, s, "stripe_sync_ingest_events_total", "result",
                         k->name + 7, k->value);
        }
    }

    stats_family(f, "stripe_sync_consumer_jobs_total", "counter",
                 "Jobs the consumers ended, by outcome.");
    for (p = stats_consumer_outcomes; *p != NULL; p++) {
        snprintf(name, sizeof(name), "consumer_%s", *p);
        k = stats_find(s, name);
        stats_sample(f, s, "stripe_sync_consumer_jobs_total", "outcome", *p,
                     k ? k->value : 0);
    }

    for (i = 0; stats_known[i].counter != NULL; i++) {
        k = stats_find(s, stats_known[i].counter);
        stats_family(f, stats_known[i].metric, "counter",
                     stats_known[i].help);
        stats_sample(f, s, stats_known[i].metric, NULL, NULL,
                     k ? k->value : 0);
    }

    for (i = 0; i < s->ncounters; i++) {
        k = &s->counters[i];
        if (!stats_is_other(k->name)) {
            continue;
        }

        /* a metric name: [a-zA-Z0-9_] */
        snprintf(name, sizeof(name), "%s", k->name);
        for (j = 0; name[j] != '\0'; j++) {
            if (!((name[j] >= 'a' && name[j] <= 'z')
                  || (name[j] >= 'A' && name[j] <= 'Z')
                  || (name[j] >= '0' && name[j] <= '9')))
            {
                name[j] = '_';
            }
        }

        snprintf(metric, sizeof(metric), "stripe_sync_%s_total", name);
        snprintf(help, sizeof(help), "Counter %s of the stats hash.", name);
        stats_family(f, metric, "counter", help);
        stats_sample(f, s, metric, NULL, NULL, k->value);
    }
}


void
stats_snapshot_free(stats_snapshot *s)
{
    size_t  i;

    for (i = 0; i < s->ncounters; i++) {
        free(s->counters[i].name);
    }

    for (i = 0; i < s->nconsumers; i++) {
        free(s->consumers[i].id);
    }

    free(s->counters);
    free(s->consumers);
    s->counters = NULL;
    s->consumers = NULL;
    s->ncounters = 0;
    s->nconsumers = 0;
}


/* ------------------------------------------------------------ reading --- */

static long long
stats_integer(const redisReply *r)
{
    if (r == NULL) {
        return 0;
    }

    if (r->type == REDIS_REPLY_INTEGER) {
        return r->integer;
    }

    if (r->type == REDIS_REPLY_STRING) {
        return strtoll(r->str, NULL, 10);
    }

    return 0;
}


/* n commands appended on r->c; their replies into rep[] (NULL on error) */
static int
stats_replies(cli_redis *r, redisReply **rep, size_t n)
{
    void    *p;
    size_t   i;
    int      failed;

    failed = 0;

    for (i = 0; i < n; i++) {
        rep[i] = NULL;
    }

    for (i = 0; i < n; i++) {
        if (redisGetReply(r->c, &p) != REDIS_OK) {
            snprintf(r->err, sizeof(r->err), "redis %s: %s", r->addr,
                     r->c->errstr[0] ? r->c->errstr : "connection error");
            return -1;
        }

        rep[i] = p;

        if (rep[i]->type == REDIS_REPLY_ERROR && !failed) {
            snprintf(r->err, sizeof(r->err), "redis %s answered: %.200s",
                     r->addr, rep[i]->str);
            failed = 1;
        }
    }

    return failed ? -1 : 0;
}


static void
stats_free_replies(redisReply **rep, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (rep[i] != NULL) {
            freeReplyObject(rep[i]);
        }
    }
}


static int
stats_cmp_counter(const void *a, const void *b)
{
    const stats_counter  *x = a, *y = b;

    return strcmp(x->name, y->name);
}


static int
stats_cmp_consumer(const void *a, const void *b)
{
    const stats_consumer  *x = a, *y = b;

    return strcmp(x->id, y->id);
}


static int
stats_counters(stats_snapshot *s, const redisReply *h)
{
    size_t  i, n;

    if (h->type != REDIS_REPLY_ARRAY) {
        return 0;
    }

    n = h->elements / 2;
    s->counters = calloc(n + 1, sizeof(stats_counter));
    if (s->counters == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        s->counters[i].name = strdup(h->element[2 * i]->str);
        if (s->counters[i].name == NULL) {
            return -1;
        }
        s->counters[i].value = stats_integer(h->element[2 * i + 1]);
        s->ncounters++;
    }

    qsort(s->counters, s->ncounters, sizeof(stats_counter),
          stats_cmp_counter);

    return 0;
}


static int
stats_read(cli_redis *r, stats_snapshot *s)
{
    struct timeval   tv;
    redisReply      *rep[7], **per;
    const char      *argv[4];
    char             queue[CLI_REDIS_KEY_MAX], retry[CLI_REDIS_KEY_MAX],
                     dead[CLI_REDIS_KEY_MAX], customers[CLI_REDIS_KEY_MAX],
                     stats[CLI_REDIS_KEY_MAX], consumers[CLI_REDIS_KEY_MAX],
                     key[CLI_REDIS_KEY_MAX], now_ms[32];
    const redisReply  *set;
    size_t           i, n;
    int              rc;

    if (r->c == NULL) {
        snprintf(r->err, sizeof(r->err), "not connected");
        return -1;
    }

    if (cli_redis_key(r, queue, "queue", NULL) == NULL
        || cli_redis_key(r, retry, "retry", NULL) == NULL
        || cli_redis_key(r, dead, "dead", NULL) == NULL
        || cli_redis_key(r, customers, "customers", NULL) == NULL
        || cli_redis_key(r, stats, "stats", NULL) == NULL
        || cli_redis_key(r, consumers, "consumers", NULL) == NULL)
    {
        snprintf(r->err, sizeof(r->err), "the prefix is too long");
        return -1;
    }

    gettimeofday(&tv, NULL);
    s->time = (long long) tv.tv_sec;
    snprintf(now_ms, sizeof(now_ms), "%lld",
             (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000);
    snprintf(s->prefix, sizeof(s->prefix), "%s", r->prefix);

    argv[0] = "LLEN";
    argv[1] = queue;
    redisAppendCommandArgv(r->c, 2, argv, NULL);
    argv[0] = "ZCARD";
    argv[1] = retry;
    redisAppendCommandArgv(r->c, 2, argv, NULL);
    argv[0] = "ZCOUNT";
    argv[1] = retry;
    argv[2] = "-inf";
    argv[3] = now_ms;
    redisAppendCommandArgv(r->c, 4, argv, NULL);
    argv[0] = "LLEN";
    argv[1] = dead;
    redisAppendCommandArgv(r->c, 2, argv, NULL);
    argv[0] = "HLEN";
    argv[1] = customers;
    redisAppendCommandArgv(r->c, 2, argv, NULL);
    argv[0] = "HGETALL";
    argv[1] = stats;
    redisAppendCommandArgv(r->c, 2, argv, NULL);
    argv[0] = "SMEMBERS";
    argv[1] = consumers;
    redisAppendCommandArgv(r->c, 2, argv, NULL);

    if (stats_replies(r, rep, 7) != 0) {
        stats_free_replies(rep, 7);
        return -1;
    }

    s->queue = stats_integer(rep[0]);
    s->retry = stats_integer(rep[1]);
    s->retry_due = stats_integer(rep[2]);
    s->dead = stats_integer(rep[3]);
    s->customers = stats_integer(rep[4]);

    if (stats_counters(s, rep[5]) != 0) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        stats_free_replies(rep, 7);
        return -1;
    }

    set = rep[6];
    n = set->type == REDIS_REPLY_ARRAY ? set->elements : 0;

    s->consumers = calloc(n + 1, sizeof(stats_consumer));
    per = calloc(2 * n + 1, sizeof(redisReply *));
    if (s->consumers == NULL || per == NULL) {
        free(per);
        snprintf(r->err, sizeof(r->err), "out of memory");
        stats_free_replies(rep, 7);
        return -1;
    }

    for (i = 0; i < n; i++) {
        s->consumers[i].id = strdup(set->element[i]->str);
        if (s->consumers[i].id == NULL) {
            break;
        }
        s->nconsumers++;
    }

    for (i = 0; i < s->nconsumers; i++) {
        argv[0] = "LLEN";
        argv[1] = cli_redis_key(r, key, "processing:", s->consumers[i].id)
                  ? key : "";
        redisAppendCommandArgv(r->c, 2, argv, NULL);
        argv[0] = "EXISTS";
        argv[1] = cli_redis_key(r, key, "consumer:", s->consumers[i].id)
                  ? key : "";
        redisAppendCommandArgv(r->c, 2, argv, NULL);
    }

    rc = stats_replies(r, per, 2 * s->nconsumers);

    for (i = 0; rc == 0 && i < s->nconsumers; i++) {
        s->consumers[i].processing = stats_integer(per[2 * i]);
        s->consumers[i].live = stats_integer(per[2 * i + 1]) > 0;
        s->processing += s->consumers[i].processing;
        s->live += s->consumers[i].live;
    }

    qsort(s->consumers, s->nconsumers, sizeof(stats_consumer),
          stats_cmp_consumer);

    stats_free_replies(per, 2 * s->nconsumers);
    free(per);
    stats_free_replies(rep, 7);

    if (s->nconsumers < n) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        return -1;
    }

    return rc;
}


static double
stats_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


/* s gets the second reading, with rates against the first */
static int
stats_read_rates(cli_redis *r, stats_snapshot *s, double window)
{
    stats_snapshot        first;
    const stats_counter  *old;
    struct timespec       ts;
    double                t0, dt;
    size_t                i;

    memset(&first, 0, sizeof(first));

    t0 = stats_now();
    if (stats_read(r, &first) != 0) {
        stats_snapshot_free(&first);
        return -1;
    }

    ts.tv_sec = (time_t) window;
    ts.tv_nsec = (long) ((window - (double) ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* the rest of it */
    }

    if (stats_read(r, s) != 0) {
        stats_snapshot_free(&first);
        return -1;
    }

    dt = stats_now() - t0;
    s->rate_window = dt;

    for (i = 0; i < s->ncounters; i++) {
        old = stats_find(&first, s->counters[i].name);
        s->counters[i].rate = (double) (s->counters[i].value
                                        - (old ? old->value : 0)) / dt;
        s->counters[i].has_rate = 1;
    }

    stats_snapshot_free(&first);

    return 0;
}


int
cmd_stats(int argc, char **argv)
{
    static const struct option  longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "prometheus", no_argument, NULL, 'p' },
        { "rate", optional_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct sigaction   sa;
    stats_snapshot     s;
    stats_format       fmt;
    ss_config          c;
    cli_redis         *r;
    const char        *path;
    double             window;
    char               err[1024], *end;
    int                o, formats, rc;

    path = CLI_DEFAULT_CONFIG;
    fmt = STATS_TABLE;
    formats = 0;
    window = 0;

    optind = 1;
    opterr = 0;

    while ((o = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;
        case 'j':
            fmt = STATS_JSON;
            formats++;
            break;
        case 'p':
            fmt = STATS_PROMETHEUS;
            formats++;
            break;
        case 'r':
            window = 1;
            if (optarg != NULL) {
                errno = 0;
                window = strtod(optarg, &end);
                if (errno != 0 || end == optarg || *end != '\0'
                    || !(window >= 0.1 && window <= STATS_RATE_MAX))
                {
                    fprintf(stderr, "stripe-sync stats: --rate=%s is not "
                            "a number of seconds from 0.1 to %.0f\n",
                            optarg, STATS_RATE_MAX);
                    return 2;
                }
            }
            break;
        case 'h':
            stats_usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "stripe-sync stats: option \"%s\" needs a "
                    "value\n", argv[optind - 1]);
            stats_usage(stderr);
            return 2;
        default:
            fprintf(stderr, "stripe-sync stats: unknown option \"%s\"\n",
                    argv[optind - 1]);
            stats_usage(stderr);
            return 2;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "stripe-sync stats: unexpected argument \"%s\"\n",
                argv[optind]);
        stats_usage(stderr);
        return 2;
    }

    if (formats > 1) {
        fprintf(stderr, "stripe-sync stats: --json or --prometheus, not "
                "both\n");
        return 2;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    r = cli_redis_open(path, &c, err, sizeof(err));
    if (r == NULL) {
        fprintf(stderr, "stripe-sync stats: %s\n", err);
        return 1;
    }

    memset(&s, 0, sizeof(s));

    rc = window > 0 && fmt != STATS_PROMETHEUS
         ? stats_read_rates(r, &s, window) : stats_read(r, &s);

    if (rc != 0) {
        fprintf(stderr, "stripe-sync stats: %s\n", r->err);
        stats_snapshot_free(&s);
        cli_redis_close(r, &c);
        return 1;
    }

    switch (fmt) {
    case STATS_TABLE:
        stats_print_table(&s, stdout);
        break;
    case STATS_JSON:
        stats_print_json(&s, stdout);
        break;
    case STATS_PROMETHEUS:
        stats_print_prometheus(&s, stdout);
        break;
    }

    stats_snapshot_free(&s);
    cli_redis_close(r, &c);

    return fflush(stdout) == 0 ? 0 : 1;
}
