/*
 * cmd_send.h - "stripe-sync send": sign a Stripe-style event as Stripe
 * does and POST it to a webhook endpoint; the offline twin of
 * "stripe trigger".
 *
 *   stripe-sync send --url URL --secret-file F FILE.json
 *   stripe-sync send --url URL --secret-file F --type invoice.paid
 *       [--email E] [--price P] [--customer cus_..] [--amount N] ...
 *   ... --count N --concurrency C       load: N events, a summary
 *
 * One event: prints "<event id> <type>: HTTP <status> <body>". Load: a
 * summary (sent, 2xx, non-2xx by status, errors, requests/s, latency
 * percentiles). Exit 0 when every answer was 2xx, 1 otherwise, 2 for a
 * usage error. The secret is never printed.
 *
 * The parts without I/O (options, the secret file's line, the summary)
 * are here for the unit tests.
 */

#ifndef CMD_SEND_H
#define CMD_SEND_H

#include <stddef.h>
#include <stdio.h>

#include "event_gen.h"

#define SEND_SECRET_MAX      1024
#define SEND_STATUSES_MAX    32
#define SEND_COUNT_MAX       10000000L
#define SEND_CONCURRENCY_MAX 1000L

typedef struct {
    const char  *url;
    const char  *secret_file;
    const char  *file;            /* FILE.json, "-" for stdin, or NULL */
    event_spec   spec;            /* spec.type: --type, or NULL */
    long         count;           /* events to send, default 1 */
    long         concurrency;     /* in flight at most, default 1 */
    long         timeout;         /* seconds per request, default 30 */
    int          load;            /* --count or --concurrency given */
    int          dry_run;         /* print, do not send */
    int          list_types;      /* --list-types */
} send_options;

/*
 * Parses argv (argv[0] is "send"). 0: go; 1: --help (usage printed to
 * out); -1: a usage error, err says which option and why.
 */
int send_options_parse(int argc, char **argv, send_options *o, FILE *out,
    char *err, size_t errlen);

void send_usage(FILE *f);

/*
 * The secret: the first line of the file that is neither empty nor a
 * comment ("#..."), without surrounding blanks. 0, or -1 with err (which
 * never holds the secret).
 */
int send_read_secret(const char *path, char *secret, size_t len, char *err,
    size_t errlen);

typedef struct {
    long         status;
    long long    n;
    char         body[104];       /* the first such answer, cut */
} send_status_count;

/* what came back, for the load summary */
typedef struct {
    long long           sent;
    long long           ok;           /* 2xx */
    long long           queued;       /* 2xx {"received":true} */
    long long           duplicate;    /* 2xx ... "duplicate":true */
    long long           ignored;      /* 2xx ... "ignored":"..." */
    long long           non2xx;
    long long           errors;       /* no response */
    send_status_count   statuses[SEND_STATUSES_MAX];  /* non-2xx */
    size_t              nstatuses;
    char                first_error[200];
    long long          *latency_us;   /* answered requests only */
    size_t              nlatency;
    size_t              cap;
    long long           elapsed_us;
} send_summary;

/* status 0: no response (error says why); 0, or -1 when out of memory */
int send_summary_add(send_summary *s, long status, const char *body,
    const char *error, long long latency_us);

/* nearest-rank percentile (q in 0..1) of the latencies, µs; 0 if none */
long long send_summary_percentile(send_summary *s, double q);

void send_summary_print(send_summary *s, FILE *f);
void send_summary_free(send_summary *s);

/* the subcommand: argv[0] is "send" */
int cmd_send(int argc, char **argv);

#endif /* CMD_SEND_H */
