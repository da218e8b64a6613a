/*
 * cmd_send.c - "stripe-sync send" (cmd_send.h).
 *
 * Every request is signed right before it is submitted, as Stripe signs
 * each delivery anew: "Stripe-Signature: t=<now>,v1=<HMAC-SHA256 of
 * "<t>.<body>" keyed with the whole whsec_ secret>". Requests go through
 * http.h (libcurl multi), at most --concurrency in flight.
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_send.h"
#include "event_gen.h"
#include "http.h"
#include "stripe_sig.h"


#define SEND_FILE_MAX     (16 * 1024 * 1024)
#define SEND_USER_AGENT   "User-Agent: Stripe/1.0 " \
                          "(+https://stripe.com/docs/webhooks)"

enum {
    OPT_URL = 256,
    OPT_SECRET_FILE,
    OPT_TYPE,
    OPT_EMAIL,
    OPT_NAME,
    OPT_PRICE,
    OPT_PRODUCT,
    OPT_CUSTOMER,
    OPT_AMOUNT,
    OPT_CURRENCY,
    OPT_LIVEMODE,
    OPT_OBJECT_ID,
    OPT_BILLING_REASON,
    OPT_ATTEMPT_COUNT,
    OPT_MODE,
    OPT_PREVIOUS_PRICE,
    OPT_API_VERSION,
    OPT_COUNT,
    OPT_CONCURRENCY,
    OPT_TIMEOUT,
    OPT_DRY_RUN,
    OPT_LIST_TYPES
};

/* one load run */
typedef struct {
    const send_options  *o;
    http_client         *http;
    send_summary         sum;
    event_template       tmpl;
    int                  have_tmpl;
    stripe_sig_secret    secret;
    long                 submitted;
    int                  failed;        /* something was not 2xx */
} send_run;

/* one request in flight */
typedef struct {
    send_run    *run;
    long long    started_us;
    char         id[EVENT_GEN_ID_MAX];
} send_req;

static volatile sig_atomic_t  send_interrupted;


void
send_usage(FILE *f)
{
    fprintf(f,
        "usage: stripe-sync send --url URL --secret-file FILE "
        "(EVENT.json | --type TYPE [options])\n"
        "\n"
        "Signs an event as Stripe does and POSTs it to URL.\n"
        "\n"
        "  --url URL             the webhook endpoint (http:// or https://)\n"
        "  --secret-file FILE    the endpoint's whsec_ secret: the first line"
        " that is\n"
        "                        neither empty nor a # comment\n"
        "  EVENT.json            an event, the \"data\" of one, or a bare "
        "object\n"
        "                        (\"-\": standard input)\n"
        "  --type TYPE           generate an event of TYPE (--list-types), "
        "or the type\n"
        "                        to wrap a bare object in\n"
        "\n"
        "generated events (--type without EVENT.json):\n"
        "  --email E --name N --customer cus_.. --price P --product P\n"
        "  --amount N (minor units) --currency C --livemode\n"
        "  --object-id ID --billing-reason R --attempt-count N\n"
        "  --mode payment|subscription (Checkout)\n"
        "  --previous-price P (customer.subscription.updated: a plan "
        "change)\n"
        "  --api-version V (default " EVENT_GEN_API_VERSION ")\n"
        "\n"
        "load:\n"
        "  --count N             send N events, each with a fresh id\n"
        "  --concurrency C       at most C requests in flight (default 1)\n"
        "\n"
        "  --timeout S           seconds per request (default 30)\n"
        "  --dry-run             print the signed events, send nothing\n"
        "  --list-types          the types --type can generate\n"
        "\n"
        "exit status: 0 every answer was 2xx, 1 otherwise, 2 usage error\n");
}


static int
send_number(const char *opt, const char *s, long min, long max, long *out,
    char *err, size_t errlen)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        snprintf(err, errlen, "%s \"%s\" is not a number from %ld to %ld",
                 opt, s, min, max);
        return -1;
    }

    *out = v;
    return 0;
}


int
send_options_parse(int argc, char **argv, send_options *o, FILE *out,
    char *err, size_t errlen)
{
    static const struct option  longopts[] = {
        { "url", required_argument, NULL, OPT_URL },
        { "secret-file", required_argument, NULL, OPT_SECRET_FILE },
        { "type", required_argument, NULL, OPT_TYPE },
        { "email", required_argument, NULL, OPT_EMAIL },
        { "name", required_argument, NULL, OPT_NAME },
        { "price", required_argument, NULL, OPT_PRICE },
        { "product", required_argument, NULL, OPT_PRODUCT },
        { "customer", required_argument, NULL, OPT_CUSTOMER },
        { "amount", required_argument, NULL, OPT_AMOUNT },
        { "currency", required_argument, NULL, OPT_CURRENCY },
        { "livemode", no_argument, NULL, OPT_LIVEMODE },
        { "object-id", required_argument, NULL, OPT_OBJECT_ID },
        { "billing-reason", required_argument, NULL, OPT_BILLING_REASON },
        { "attempt-count", required_argument, NULL, OPT_ATTEMPT_COUNT },
        { "mode", required_argument, NULL, OPT_MODE },
        { "previous-price", required_argument, NULL, OPT_PREVIOUS_PRICE },
        { "api-version", required_argument, NULL, OPT_API_VERSION },
        { "count", required_argument, NULL, OPT_COUNT },
        { "concurrency", required_argument, NULL, OPT_CONCURRENCY },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "dry-run", no_argument, NULL, OPT_DRY_RUN },
        { "list-types", no_argument, NULL, OPT_LIST_TYPES },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char  *generated_only;
    long         n;
    int          c;

    memset(o, 0, sizeof(*o));
    event_spec_init(&o->spec);
    o->count = 1;
    o->concurrency = 1;
    o->timeout = 30;
    generated_only = NULL;

    optind = 1;
    opterr = 0;

    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_URL:
            o->url = optarg;
            break;
        case OPT_SECRET_FILE:
            o->secret_file = optarg;
            break;
        case OPT_TYPE:
            o->spec.type = optarg;
            break;
        case OPT_EMAIL:
            o->spec.email = optarg;
            generated_only = "--email";
            break;
        case OPT_NAME:
            o->spec.name = optarg;
            generated_only = "--name";
            break;
        case OPT_PRICE:
            o->spec.price = optarg;
            generated_only = "--price";
            break;
        case OPT_PRODUCT:
            o->spec.product = optarg;
            generated_only = "--product";
            break;
        case OPT_CUSTOMER:
            o->spec.customer = optarg;
            generated_only = "--customer";
            break;
        case OPT_AMOUNT:
            if (send_number("--amount", optarg, 0, 99999999999L, &n, err,
                            errlen) != 0)
            {
                return -1;
            }
            o->spec.amount = n;
            generated_only = "--amount";
            break;
        case OPT_CURRENCY:
            o->spec.currency = optarg;
            generated_only = "--currency";
            break;
        case OPT_LIVEMODE:
            o->spec.livemode = 1;
            break;
        case OPT_OBJECT_ID:
            o->spec.object_id = optarg;
            generated_only = "--object-id";
            break;
        case OPT_BILLING_REASON:
            o->spec.billing_reason = optarg;
            generated_only = "--billing-reason";
            break;
        case OPT_ATTEMPT_COUNT:
            if (send_number("--attempt-count", optarg, 0, 1000, &n, err,
                            errlen) != 0)
            {
                return -1;
            }
            o->spec.attempt_count = n;
            generated_only = "--attempt-count";
            break;
        case OPT_MODE:
            if (strcmp(optarg, "payment") != 0
                && strcmp(optarg, "subscription") != 0)
            {
                snprintf(err, errlen, "--mode \"%s\" is not payment or "
                         "subscription", optarg);
                return -1;
            }
            o->spec.mode = optarg;
            generated_only = "--mode";
            break;
        case OPT_PREVIOUS_PRICE:
            o->spec.previous_price = optarg;
            generated_only = "--previous-price";
            break;
        case OPT_API_VERSION:
            o->spec.api_version = optarg;
            break;
        case OPT_COUNT:
            if (send_number("--count", optarg, 1, SEND_COUNT_MAX, &o->count,
                            err, errlen) != 0)
            {
                return -1;
            }
            o->load = 1;
            break;
        case OPT_CONCURRENCY:
            if (send_number("--concurrency", optarg, 1, SEND_CONCURRENCY_MAX,
                            &o->concurrency, err, errlen) != 0)
            {
                return -1;
            }
            o->load = 1;
            break;
        case OPT_TIMEOUT:
            if (send_number("--timeout", optarg, 1, 3600, &o->timeout, err,
                            errlen) != 0)
            {
                return -1;
            }
            break;
        case OPT_DRY_RUN:
            o->dry_run = 1;
            break;
        case OPT_LIST_TYPES:
            o->list_types = 1;
            break;
        case 'h':
            send_usage(out);
            return 1;
        case ':':
            snprintf(err, errlen, "option \"%s\" needs a value",
                     argv[optind - 1]);
            return -1;
        default:
            snprintf(err, errlen, "unknown option \"%s\"",
                     argv[optind - 1]);
            return -1;
        }
    }

    if (o->list_types) {
        return 0;
    }

    if (optind < argc) {
        o->file = argv[optind++];
    }

    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\" (one event file "
                 "at most)", argv[optind]);
        return -1;
    }

    if (o->file == NULL && o->spec.type == NULL) {
        snprintf(err, errlen, "give an event file or --type TYPE");
        return -1;
    }

    if (o->file != NULL && generated_only != NULL) {
        snprintf(err, errlen, "%s is for generated events (--type without "
                 "an event file)", generated_only);
        return -1;
    }

    if (o->file == NULL && !event_gen_supported(o->spec.type)) {
        snprintf(err, errlen, "--type \"%s\" cannot be generated (see "
                 "--list-types)", o->spec.type);
        return -1;
    }

    if (o->secret_file == NULL) {
        snprintf(err, errlen, "--secret-file is required");
        return -1;
    }

    if (o->url == NULL && !o->dry_run) {
        snprintf(err, errlen, "--url is required");
        return -1;
    }

    if (o->url != NULL && strncmp(o->url, "http://", 7) != 0
        && strncmp(o->url, "https://", 8) != 0)
    {
        snprintf(err, errlen, "--url \"%s\" is not http:// or https://",
                 o->url);
        return -1;
    }

    if (o->url != NULL && strlen(o->url) >= HTTP_URL_MAX) {
        snprintf(err, errlen, "--url is longer than %d bytes",
                 HTTP_URL_MAX - 1);
        return -1;
    }

    return 0;
}


int
send_read_secret(const char *path, char *secret, size_t len, char *err,
    size_t errlen)
{
    FILE    *f;
    char     line[SEND_SECRET_MAX + 2];
    char    *b, *e;
    size_t   n;
    int      found;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the secret file %s: %s", path,
                 strerror(errno));
        return -1;
    }

    found = 0;

    while (fgets(line, sizeof(line), f) != NULL) {
        n = strlen(line);

        if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
            snprintf(err, errlen, "the secret file %s has a line longer "
                     "than %d bytes", path, SEND_SECRET_MAX);
            explicit_bzero(line, sizeof(line));
            fclose(f);
            return -1;
        }

        b = line;
        e = line + n;
        while (b < e && isspace((unsigned char) *b)) {
            b++;
        }
        while (e > b && isspace((unsigned char) e[-1])) {
            e--;
        }

        if (b == e || *b == '#') {
            continue;
        }

        if ((size_t) (e - b) >= len) {
            snprintf(err, errlen, "the secret in %s is too long", path);
            explicit_bzero(line, sizeof(line));
            fclose(f);
            return -1;
        }

        memcpy(secret, b, e - b);
        secret[e - b] = '\0';
        found = 1;
        break;
    }

    explicit_bzero(line, sizeof(line));
    fclose(f);

    if (!found) {
        snprintf(err, errlen, "the secret file %s has no secret (only empty "
                 "or # lines)", path);
        return -1;
    }

    return 0;
}


/* ------------------------------------------------------------ summary --- */

int
send_summary_add(send_summary *s, long status, const char *body,
    const char *error, long long latency_us)
{
    send_status_count  *sc;
    long long          *v;
    size_t              i, cap;

    s->sent++;

    if (status == 0) {
        s->errors++;
        if (s->first_error[0] == '\0') {
            snprintf(s->first_error, sizeof(s->first_error), "%s",
                     error != NULL && error[0] ? error : "no response");
        }
        return 0;
    }

    if (s->nlatency == s->cap) {
        cap = s->cap ? s->cap * 2 : 256;
        v = realloc(s->latency_us, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        s->latency_us = v;
        s->cap = cap;
    }

    s->latency_us[s->nlatency++] = latency_us;

    if (status >= 200 && status <= 299) {
        s->ok++;

        if (body != NULL && strstr(body, "\"duplicate\":true") != NULL) {
            s->duplicate++;
        } else if (body != NULL && strstr(body, "\"ignored\":") != NULL) {
            s->ignored++;
        } else if (body != NULL && strstr(body, "\"received\":true")) {
            s->queued++;
        }

        return 0;
    }

    s->non2xx++;

    for (i = 0; i < s->nstatuses; i++) {
        if (s->statuses[i].status == status) {
            s->statuses[i].n++;
            return 0;
        }
    }

    if (s->nstatuses == SEND_STATUSES_MAX) {
        return 0;     /* counted in non2xx, not broken down */
    }

    sc = &s->statuses[s->nstatuses++];
    sc->status = status;
    sc->n = 1;
    snprintf(sc->body, sizeof(sc->body), "%s", body != NULL ? body : "");

    /* one line */
    for (i = 0; sc->body[i] != '\0'; i++) {
        if ((unsigned char) sc->body[i] < 0x20) {
            sc->body[i] = ' ';
        }
    }

    while (i > 0 && sc->body[i - 1] == ' ') {
        sc->body[--i] = '\0';
    }

    return 0;
}


static int
send_cmp_ll(const void *a, const void *b)
{
    long long  x = *(const long long *) a, y = *(const long long *) b;

    return x < y ? -1 : x > y;
}


long long
send_summary_percentile(send_summary *s, double q)
{
    size_t  rank;
    double  r;

    if (s->nlatency == 0) {
        return 0;
    }

    qsort(s->latency_us, s->nlatency, sizeof(long long), send_cmp_ll);

    /* nearest rank: the smallest value with at least q of them <= it */
    r = q * (double) s->nlatency;
    rank = (size_t) r;
    if ((double) rank < r) {
        rank++;
    }
    if (rank < 1) {
        rank = 1;
    }
    if (rank > s->nlatency) {
        rank = s->nlatency;
    }

    return s->latency_us[rank - 1];
}


static int
send_cmp_status(const void *a, const void *b)
{
    const send_status_count  *x = a, *y = b;

    return x->status < y->status ? -1 : x->status > y->status;
}


void
send_summary_print(send_summary *s, FILE *f)
{
    double  secs, rate;
    size_t  i;

    secs = (double) s->elapsed_us / 1e6;
    rate = secs > 0 ? (double) s->sent / secs : 0;

    fprintf(f, "sent: %lld in %.3f s, %.1f requests/s\n", s->sent, secs,
            rate);
    fprintf(f, "2xx: %lld (queued %lld, duplicate %lld, ignored %lld)\n",
            s->ok, s->queued, s->duplicate, s->ignored);

    fprintf(f, "non-2xx: %lld", s->non2xx);
    qsort(s->statuses, s->nstatuses, sizeof(s->statuses[0]),
          send_cmp_status);
    for (i = 0; i < s->nstatuses; i++) {
        fprintf(f, "%s%ld x%lld %s", i == 0 ? " (" : "; ",
                s->statuses[i].status, s->statuses[i].n,
                s->statuses[i].body);
    }
    fprintf(f, "%s\n", s->nstatuses ? ")" : "");

    fprintf(f, "errors: %lld", s->errors);
    if (s->errors > 0) {
        fprintf(f, " (first: %s)", s->first_error);
    }
    fprintf(f, "\n");

    if (s->nlatency > 0) {
        fprintf(f, "latency: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, "
                "max %.1f ms\n",
                (double) send_summary_percentile(s, 0.50) / 1000,
                (double) send_summary_percentile(s, 0.90) / 1000,
                (double) send_summary_percentile(s, 0.99) / 1000,
                (double) send_summary_percentile(s, 1.0) / 1000);
    } else {
        fprintf(f, "latency: -\n");
    }
}


void
send_summary_free(send_summary *s)
{
    free(s->latency_us);
    s->latency_us = NULL;
    s->nlatency = 0;
    s->cap = 0;
}


/* -------------------------------------------------------------- sending --- */

static long long
send_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static void
send_on_interrupt(int sig)
{
    (void) sig;
    send_interrupted = 1;
}


static int
send_read_file(const char *path, char **text, size_t *len, char *err,
    size_t errlen)
{
    FILE    *f;
    char    *b, *nb;
    size_t   n, cap, r;

    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }

    b = NULL;
    n = 0;
    cap = 0;

    for ( ;; ) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            nb = realloc(b, cap);
            if (nb == NULL) {
                snprintf(err, errlen, "out of memory");
                goto failed;
            }
            b = nb;
        }

        r = fread(b + n, 1, cap - n - 1, f);
        n += r;

        if (n > SEND_FILE_MAX) {
            snprintf(err, errlen, "%s is over %d bytes", path,
                     SEND_FILE_MAX);
            goto failed;
        }

        if (r == 0) {
            break;
        }
    }

    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto failed;
    }

    if (f != stdin) {
        fclose(f);
    }

    b[n] = '\0';
    *text = b;
    *len = n;

    return 0;

failed:

    if (f != stdin) {
        fclose(f);
    }
    free(b);

    return -1;
}


/* the next event's body and id: generated, or from the file */
static char *
send_next_event(send_run *run, char *id, size_t *len, char *err,
    size_t errlen)
{
    const send_options  *o;
    char                *body;

    o = run->o;

    if (run->have_tmpl) {
        /* one event: the file's own id when it has one */
        if (!o->load && run->tmpl.id[0] != '\0') {
            snprintf(id, EVENT_GEN_ID_MAX, "%s", run->tmpl.id);
            body = event_template_body(&run->tmpl, NULL, len);

        } else if (event_gen_event_id(id, EVENT_GEN_ID_MAX) != 0) {
            snprintf(err, errlen, "no randomness for the event id");
            return NULL;

        } else {
            body = event_template_body(&run->tmpl, id, len);
        }

        if (body == NULL) {
            snprintf(err, errlen, "out of memory");
        }

        return body;
    }

    if (event_gen_event_id(id, EVENT_GEN_ID_MAX) != 0) {
        snprintf(err, errlen, "no randomness for the event id");
        return NULL;
    }

    return event_gen_build(&o->spec, id, (long long) time(NULL), len, err,
                           errlen);
}


/* "t=<now>,v1=<hex>" */
static int
send_sign(send_run *run, const char *body, size_t len, char *header,
    size_t hlen)
{
    char       hex[STRIPE_SIG_HEX_LEN + 1];
    long long  t;

    t = (long long) time(NULL);

    if (stripe_sig_sign(&run->secret, t, (const unsigned char *) body, len,
                        hex) != 0)
    {
        return -1;
    }

    snprintf(header, hlen, "t=%lld,v1=%s", t, hex);

    return 0;
}


static void
send_on_response(void *data, const http_result *res)
{
    send_req    *rq;
    send_run    *run;
    long         status;
    long long    us;

    rq = data;
    run = rq->run;
    status = res->response.status;
    us = send_now_us() - rq->started_us;

    if (status < 200 || status > 299) {
        run->failed = 1;
    }

    if (send_summary_add(&run->sum, status, res->response.body,
                         res->response.error, us) != 0)
    {
        run->failed = 1;
    }

    if (!run->o->load) {
        if (status == 0) {
            printf("%s %s: error: %s\n", rq->id, run->tmpl.type[0]
                   ? run->tmpl.type : run->o->spec.type,
                   res->response.error ? res->response.error
                                       : "no response");
        } else {
            printf("%s %s: HTTP %ld %s\n", rq->id, run->tmpl.type[0]
                   ? run->tmpl.type : run->o->spec.type, status,
                   res->response.body ? res->response.body : "");
        }
    }

    free(rq);
}


static int
send_submit_one(send_run *run, char *err, size_t errlen)
{
    http_request   req;
    send_req      *rq;
    char          *body, sig[STRIPE_SIG_HEX_LEN + 64];
    size_t         len;

    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    body = send_next_event(run, rq->id, &len, err, errlen);
    if (body == NULL) {
        free(rq);
        return -1;
    }

    if (send_sign(run, body, len, sig, sizeof(sig)) != 0) {
        snprintf(err, errlen, "cannot compute the signature");
        free(body);
        free(rq);
        return -1;
    }

    if (run->o->dry_run) {
        printf("Stripe-Signature: %s\n%s\n", sig, body);
        free(body);
        free(rq);
        run->submitted++;
        return 0;
    }

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    snprintf(req.url, sizeof(req.url), "%s", run->o->url);
    snprintf(req.headers[0], HTTP_HEADER_MAX, "Content-Type: "
             "application/json; charset=utf-8");
    snprintf(req.headers[1], HTTP_HEADER_MAX, "Stripe-Signature: %s", sig);
    snprintf(req.headers[2], HTTP_HEADER_MAX, "%s", SEND_USER_AGENT);
    snprintf(req.headers[3], HTTP_HEADER_MAX, "Accept: */*; q=0.5, "
             "text/html");
    snprintf(req.headers[4], HTTP_HEADER_MAX, "Cache-Control: no-cache");
    req.nheaders = 5;
    req.body = body;
    req.body_len = len;

    rq->run = run;
    rq->started_us = send_now_us();

    if (http_submit(run->http, &req, run->o->timeout * 1000,
                    send_on_response, rq) != 0)
    {
        snprintf(err, errlen, "%s", http_client_error(run->http));
        free(body);
        free(rq);
        return -1;
    }

    free(body);
    run->submitted++;

    return 0;
}


static int
send_load_template(send_run *run, char *err, size_t errlen)
{
    const send_options  *o;
    char                *text, msg[512];
    size_t               len;

    o = run->o;

    if (send_read_file(o->file, &text, &len, err, errlen) != 0) {
        return -1;
    }

    if (event_template_load(&run->tmpl, text, len, o->file, o->spec.type,
                            (long long) time(NULL), o->spec.api_version,
                            o->spec.livemode ? 1 : -1, msg, sizeof(msg))
        != 0)
    {
        snprintf(err, errlen, "%s: %s", o->file, msg);
        free(text);
        return -1;
    }

    free(text);
    run->have_tmpl = 1;

    return 0;
}


int
cmd_send(int argc, char **argv)
{
    struct sigaction     sa;
    send_options         o;
    send_run             run;
    const char *const   *types;
    char                 err[1024], secret[SEND_SECRET_MAX + 1];
    long long            t0;
    int                  rc;

    rc = send_options_parse(argc, argv, &o, stdout, err, sizeof(err));
    if (rc == 1) {
        return 0;
    }

    if (rc != 0) {
        fprintf(stderr, "stripe-sync send: %s\n", err);
        send_usage(stderr);
        return 2;
    }

    if (o.list_types) {
        for (types = event_gen_types(); *types != NULL; types++) {
            printf("%s\n", *types);
        }
        return 0;
    }

    memset(&run, 0, sizeof(run));
    run.o = &o;

    if (send_read_secret(o.secret_file, secret, sizeof(secret), err,
                         sizeof(err)) != 0)
    {
        fprintf(stderr, "stripe-sync send: %s\n", err);
        return 1;
    }

    run.secret.data = (const unsigned char *) secret;
    run.secret.len = strlen(secret);

    if (o.file != NULL && send_load_template(&run, err, sizeof(err)) != 0) {
        fprintf(stderr, "stripe-sync send: %s\n", err);
        explicit_bzero(secret, sizeof(secret));
        return 1;
    }

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = send_on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!o.dry_run) {
        run.http = http_client_create((int) o.concurrency, err, sizeof(err));
        if (run.http == NULL) {
            fprintf(stderr, "stripe-sync send: %s\n", err);
            rc = 1;
            goto done;
        }
    }

    rc = 0;
    t0 = send_now_us();

    while (!send_interrupted) {
        while (run.submitted < o.count && !send_interrupted
               && (run.http == NULL
                   || http_in_flight(run.http) < (size_t) o.concurrency))
        {
            if (send_submit_one(&run, err, sizeof(err)) != 0) {
                fprintf(stderr, "stripe-sync send: %s\n", err);
                rc = 1;
                break;
            }
        }

        if (rc != 0 || run.http == NULL || http_in_flight(run.http) == 0) {
            break;
        }

        if (http_poll(run.http, 100) < 0) {
            fprintf(stderr, "stripe-sync send: %s\n",
                    http_client_error(run.http));
            rc = 1;
            break;
        }
    }

    /* interrupted, or a submit failed: let what is in flight finish */
    while (run.http != NULL && http_in_flight(run.http) > 0) {
        if (http_poll(run.http, 100) < 0) {
            break;
        }
    }

    run.sum.elapsed_us = send_now_us() - t0;

    if (send_interrupted) {
        fprintf(stderr, "stripe-sync send: interrupted after %ld of %ld "
                "event(s)\n", run.submitted, o.count);
        rc = 1;
    }

    if (o.load && !o.dry_run) {
        send_summary_print(&run.sum, stdout);
    }

    if (run.failed || (!o.dry_run && run.sum.sent < run.submitted)) {
        rc = 1;
    }

done:

    http_client_free(run.http);
    send_summary_free(&run.sum);
    if (run.have_tmpl) {
        event_template_free(&run.tmpl);
    }
    explicit_bzero(secret, sizeof(secret));

    return rc;
}
