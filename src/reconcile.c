/*
 * reconcile.c - the "reconcile" subcommand (reconcile.h).
 *
 * No checkpoint: the window is short (at most 30 days of events) and the
 * seen keys make a rerun cost requests, not duplicates.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "action.h"
#include "cli_redis.h"
#include "config.h"
#include "ingest.h"
#include "reconcile.h"
#include "stripe_api.h"


typedef struct {
    const char      *config_path;
    const char      *window_arg;
    long long        window;
    int              undelivered;
    int              dry_run;

    ss_config        config;
    cli_redis       *redis;
    ingest          *ingest;
    stripe_api_list  page;
} reconcile;


long long
reconcile_window(const char *s, char *err, size_t errlen)
{
    long long  w;

    w = ingest_parse_duration(s);

    if (w < 0) {
        snprintf(err, errlen, "--since \"%s\" is not a window such as 72h, "
                 "3d, 30m or a number of seconds", s);
        return -1;
    }

    if (w > RECONCILE_WINDOW_MAX) {
        snprintf(err, errlen, "--since \"%s\" is longer than 30 days: Stripe "
                 "keeps events for 30 days only (use backfill for older "
                 "purchases)", s);
        return -1;
    }

    return w;
}


static void
reconcile_on_signal(int sig)
{
    (void) sig;
    ingest_interrupt();
}


static void
reconcile_usage(FILE *f)
{
    fprintf(f, "usage: stripe-sync reconcile [-c FILE] [--since WINDOW] "
            "[--undelivered] [--dry-run]\n\n"
            "  -c, --config FILE   configuration file (default "
            CLI_DEFAULT_CONFIG ")\n"
            "      --since WINDOW  events of the last WINDOW: 72h (default), "
            "3d, 30m,\n"
            "                      seconds; at most 30d\n"
            "      --undelivered   only events Stripe failed to deliver "
            "(delivery_success=false)\n"
            "      --dry-run       print what would be queued; write "
            "nothing\n"
            "  -h, --help          this help\n");
}


static int
reconcile_options_parse(reconcile *rc, int argc, char **argv, int *done)
{
    static const struct option  longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "since", required_argument, NULL, 's' },
        { "undelivered", no_argument, NULL, 'u' },
        { "dry-run", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    char  err[256];
    int   o;

    *done = 0;
    rc->config_path = CLI_DEFAULT_CONFIG;
    rc->window_arg = RECONCILE_WINDOW_DEFAULT;
    optind = 1;
    opterr = 0;

    while ((o = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (o) {
        case 'c':
            rc->config_path = optarg;
            break;

        case 's':
            rc->window_arg = optarg;
            break;

        case 'u':
            rc->undelivered = 1;
            break;

        case 'n':
            rc->dry_run = 1;
            break;

        case 'h':
            reconcile_usage(stdout);
            *done = 1;
            return 0;

        case ':':
            fprintf(stderr, "stripe-sync reconcile: option \"%s\" needs a "
                    "value\n", argv[optind - 1]);
            reconcile_usage(stderr);
            return 2;

        default:
            fprintf(stderr, "stripe-sync reconcile: unknown option \"%s\"\n",
                    argv[optind - 1]);
            reconcile_usage(stderr);
            return 2;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "stripe-sync reconcile: unexpected argument \"%s\"\n",
                argv[optind]);
        reconcile_usage(stderr);
        return 2;
    }

    rc->window = reconcile_window(rc->window_arg, err, sizeof(err));
    if (rc->window < 0) {
        fprintf(stderr, "stripe-sync reconcile: %s\n", err);
        return 2;
    }

    return 0;
}


/* one event of a page: 0, or -1 (Redis failed) */
static int
reconcile_event(reconcile *rc, const char *body, const stripe_api_item *it,
    ingest_counts *n)
{
    action          a;
    action_status   st;
    ingest_result   res;
    char            email[256];

    n->fetched++;

    st = ingest_normalize(body + it->off, it->len, &a);

    if (ingest_offer(rc->ingest, st, &a, n, &res) != 0) {
        fprintf(stderr, "reconcile: %s: %s\n",
                it->id[0] ? it->id : "an event",
                ingest_error(rc->ingest));
        action_free(&a);
        return -1;
    }

    if (res == INGEST_INVALID) {
        fprintf(stderr, "reconcile: %s: left out: %s\n",
                it->id[0] ? it->id : "an event without an id", a.reason);

    } else if (res == INGEST_QUEUED) {
        printf("%s %s %s %s %s %s\n",
               rc->dry_run ? "would enqueue" : "enqueued", a.id, a.type,
               a.name, a.customer_id ? a.customer_id : "-",
               ingest_action_email(&a, email, sizeof(email))[0] ? email
                                                                : "-");
        fflush(stdout);
    }

    action_free(&a);
    return 0;
}


/* every page: 0, 1 interrupted, -1 failed (said) */
static int
reconcile_run(reconcile *rc, long long since, ingest_counts *n,
    long long *pages)
{
    stripe_api_list_query  q;
    http_request           req;
    const char            *body;
    char                   after[256], err[CONFIG_ERR_MAX];
    size_t                 len, i;
    int                    r, limit, truncated;

    after[0] = '\0';
    limit = 100;

    for ( ;; ) {
        memset(&q, 0, sizeof(q));
        q.limit = limit;
        q.created_gte = since;
        q.undelivered = rc->undelivered;
        q.starting_after = after;

        if (stripe_api_list_request(&rc->config, "events", &q, &req) != 0) {
            fprintf(stderr, "reconcile: cannot build the request for GET "
                    "/v1/events after \"%s\"\n", after);
            return -1;
        }

        r = ingest_fetch(rc->ingest, &req, &body, &len, &truncated);

        if (r == 0) {
            return 1;
        }

        if (r < 0 && truncated && limit > 1) {
            limit /= 2;
            fprintf(stderr, "reconcile: %s: asking for %d a page\n",
                    ingest_error(rc->ingest), limit);
            continue;
        }

        if (r < 0) {
            fprintf(stderr, "reconcile: %s\n", ingest_error(rc->ingest));
            return -1;
        }

        if (stripe_api_parse_list(body, len, &rc->page, err, sizeof(err))
            != 0)
        {
            fprintf(stderr, "reconcile: GET /v1/events: %s\n", err);
            return -1;
        }

        for (i = 0; i < rc->page.n; i++) {
            if (reconcile_event(rc, body, &rc->page.items[i], n) != 0) {
                return -1;
            }
        }

        (*pages)++;

        if (!rc->page.has_more) {
            return 0;
        }

        snprintf(after, sizeof(after), "%s", rc->page.last_id);
    }
}


int
cmd_reconcile(int argc, char **argv)
{
    struct sigaction   sa;
    ingest_counts      n;
    reconcile          rc;
    long long          since, pages;
    char               err[CONFIG_ERR_MAX], when[32];
    int                r, done;

    memset(&rc, 0, sizeof(rc));
    memset(&n, 0, sizeof(n));

    r = reconcile_options_parse(&rc, argc, argv, &done);
    if (r != 0 || done) {
        return r;
    }

    rc.redis = cli_redis_open(rc.config_path, &rc.config, err, sizeof(err));
    if (rc.redis == NULL) {
        fprintf(stderr, "stripe-sync reconcile: %s\n", err);
        return 1;
    }

    if (rc.config.stripe_api_key == NULL) {
        fprintf(stderr, "stripe-sync reconcile: %s: no stripe.api_key_file: "
                "reconcile reads the Stripe API\n", rc.config_path);
        cli_redis_close(rc.redis, &rc.config);
        return 1;
    }

    rc.ingest = ingest_create(&rc.config, rc.redis, rc.dry_run, err,
                              sizeof(err));
    if (rc.ingest == NULL) {
        fprintf(stderr, "stripe-sync reconcile: %s\n", err);
        cli_redis_close(rc.redis, &rc.config);
        return 1;
    }

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = reconcile_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    since = (long long) time(NULL) - rc.window;
    pages = 0;

    r = reconcile_run(&rc, since, &n, &pages);

    printf("reconcile%s: events since %s%s: listed %lld (%lld page(s)), "
           "already seen %lld, %s %lld, duplicate facts %lld, ignored %lld",
           rc.dry_run ? " (dry run)" : "",
           ingest_iso_time(since, when, sizeof(when)),
           rc.undelivered ? " not delivered" : "", n.fetched, pages, n.seen,
           rc.dry_run ? "would enqueue" : "enqueued", n.queued, n.facts,
           n.ignored);

    if (n.invalid > 0) {
        printf(", invalid %lld", n.invalid);
    }

    printf("%s\n", r == 1 ? " (interrupted)" : r < 0 ? " (failed)" : "");

    stripe_api_list_free(&rc.page);
    ingest_free(rc.ingest);
    cli_redis_close(rc.redis, &rc.config);

    return r == 0 ? 0 : 1;
}
