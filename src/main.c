/*
 * main.c - the stripe-sync tool: one binary, one subcommand per job.
 *
 *   stripe-sync consume -c FILE    the daemon (foreground)
 *   stripe-sync check -c FILE      validate the config, probe credentials
 *   stripe-sync backfill -c FILE   past purchasers from the Stripe API
 *   stripe-sync reconcile -c FILE  events the webhook did not get
 *   stripe-sync send --url URL     sign and POST a Stripe-style event
 *   stripe-sync dlq -c FILE ...    list, show, replay, purge dead letters
 *   stripe-sync stats -c FILE      what is in Redis (also --prometheus)
 *
 * Exit status: 0 success, 1 failure (config error, failed check), 2 usage.
 *
 * Every command handles secrets (API keys, OAuth tokens, the Redis password,
 * webhook secrets), kept in ordinary memory and copied by libcurl and
 * hiredis into theirs: so the process is made non-dumpable with no core
 * size before the command runs, and no core dump of ours carries them.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "backfill.h"
#include "check.h"
#include "cmd_dlq.h"
#include "cmd_send.h"
#include "cmd_stats.h"
#include "config.h"
#include "consumer.h"
#include "reconcile.h"


#define STRIPE_SYNC_VERSION  "0.1.0"
#define DEFAULT_CONFIG       "/etc/stripe-sync/stripe-sync.conf"

typedef struct {
    const char   *name;
    int         (*run)(int argc, char **argv);
    const char   *summary;
} command;

static int cmd_consume(int argc, char **argv);
static int cmd_check(int argc, char **argv);

static const command  commands[] = {
    { "consume", cmd_consume,
      "drain the queue into the email platform (runs in the foreground)" },
    { "check", cmd_check,
      "validate the config; probe Redis, Stripe and the provider" },

    { "backfill", cmd_backfill,
      "queue past purchasers and active subscriptions from the Stripe API" },
    { "reconcile", cmd_reconcile,
      "queue the events of the last days the webhook did not get" },

    { "dlq", cmd_dlq,
      "dead letters: list, show ID, replay ID|--all, purge --yes" },
    { "send", cmd_send,
      "sign and POST a Stripe-style event (a file, or one made by type)" },
    { "stats", cmd_stats,
      "queue, retries, dead letters, consumers, counters (--json, "
      "--prometheus)" },

    { NULL, NULL, NULL }
};

static consumer  *running_consumer;


/*
 * No core file (RLIMIT_CORE 0, hard: it cannot be raised again) and not
 * dumpable: no core even through a core_pattern pipe, and other processes
 * of the same user can neither ptrace() it nor read /proc/PID/mem. A
 * failure is reported, not fatal: neither can fail on Linux in practice.
 */
static void
no_core_dumps(void)
{
    struct rlimit  rl;

    rl.rlim_cur = 0;
    rl.rlim_max = 0;

    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        fprintf(stderr, "stripe-sync: warning: setrlimit(RLIMIT_CORE, 0) "
                "failed: %s\n", strerror(errno));
    }

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        fprintf(stderr, "stripe-sync: warning: prctl(PR_SET_DUMPABLE, 0) "
                "failed: %s\n", strerror(errno));
    }
}


static void
usage(FILE *f)
{
    const command  *c;

    fprintf(f, "usage: stripe-sync <command> [options]\n\ncommands:\n");

    for (c = commands; c->name != NULL; c++) {
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    }

    fprintf(f, "\noptions:\n"
            "  -c, --config FILE  configuration file (default "
            DEFAULT_CONFIG ")\n"
            "  -h, --help         this help\n"
            "      --version      the version\n");
}


/* "-c FILE" and "--help" for a command; NULL and *rc set when done */
static const char *
command_options(int argc, char **argv, int *rc)
{
    static const struct option  longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char  *path;
    int          o;

    path = DEFAULT_CONFIG;
    optind = 1;
    opterr = 0;

    while ((o = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;

        case 'h':
            usage(stdout);
            *rc = 0;
            return NULL;

        default:
            if (optopt == 'c') {
                fprintf(stderr, "stripe-sync %s: -c needs a file\n",
                        argv[0]);
            } else {
                fprintf(stderr, "stripe-sync %s: unknown option \"%s\"\n",
                        argv[0], argv[optind - 1]);
            }
            usage(stderr);
            *rc = 2;
            return NULL;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "stripe-sync %s: unexpected argument \"%s\"\n",
                argv[0], argv[optind]);
        usage(stderr);
        *rc = 2;
        return NULL;
    }

    return path;
}


static void
on_stop(int sig)
{
    (void) sig;

    if (running_consumer != NULL) {
        consumer_stop(running_consumer);
    }
}


static void
on_reload(int sig)
{
    (void) sig;

    if (running_consumer != NULL) {
        consumer_reload(running_consumer);
    }
}


static void
config_warning(const char *msg)
{
    fprintf(stderr, "warning: %s\n", msg);
}


static int
cmd_consume(int argc, char **argv)
{
    struct sigaction   sa;
    ss_config         *c;
    consumer          *cs;
    const char        *path;
    char               err[CONFIG_ERR_MAX];
    int                rc;

    path = command_options(argc, argv, &rc);
    if (path == NULL) {
        return rc;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "stripe-sync: out of memory\n");
        return 1;
    }

    if (config_load(c, path, err, sizeof(err), config_warning) != 0) {
        fprintf(stderr, "%s\n", err);
        free(c);
        return 1;
    }

    cs = consumer_create(c, path, err, sizeof(err));
    if (cs == NULL) {
        fprintf(stderr, "stripe-sync consume: %s\n", err);
        return 1;
    }

    running_consumer = cs;

    /* no SA_RESTART: a signal ends the wait in poll() at once */
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);

    /* a Redis or HTTP peer that hangs up must not kill the daemon */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    rc = consumer_run(cs);
    if (rc != 0) {
        fprintf(stderr, "stripe-sync consume: %s\n", consumer_error(cs));
    }

    running_consumer = NULL;
    consumer_free(cs);

    return rc == 0 ? 0 : 1;
}


static int
cmd_check(int argc, char **argv)
{
    struct sigaction   sa;
    const char        *path;
    int                rc;

    path = command_options(argc, argv, &rc);
    if (path == NULL) {
        return rc;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    return check_run(path, stdout, stderr);
}


int
main(int argc, char **argv)
{
    const command  *c;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0)
    {
        usage(stdout);
        return 0;
    }

    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("stripe-sync " STRIPE_SYNC_VERSION "\n");
        return 0;
    }

    for (c = commands; c->name != NULL; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            no_core_dumps();
            return c->run(argc - 1, argv + 1);
        }
    }

    fprintf(stderr, "stripe-sync: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
