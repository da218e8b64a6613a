/*
 * backfill.c - the "backfill" subcommand (backfill.h).
 *
 * One collection at a time, one page at a time: fetch (ingest.h paces and
 * retries), wrap each object in its synthetic event, normalize, offer to
 * the enqueue script, then write the checkpoint. A crash between the
 * enqueue and the checkpoint redoes that page on the next run, and the
 * seen keys make the redo add nothing.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "action.h"
#include "backfill.h"
#include "cli_redis.h"
#include "config.h"
#include "ingest.h"
#include "stripe_api.h"


#define BACKFILL_MAX_COLLECTIONS  8

const backfill_collection  backfill_collections[] = {
    { "checkout", "checkout/sessions", "complete",
      "checkout.session.completed", 1 },
    { "invoices", "invoices", "paid", "invoice.paid", 1 },
    { "subscriptions", "subscriptions", "active",
      "customer.subscription.created", 1 },
    { "customers", "customers", NULL, "customer.created", 0 },
    { NULL, NULL, NULL, NULL, 0 }
};

typedef enum {
    BACKFILL_NOT_RUN = 0,
    BACKFILL_RAN,
    BACKFILL_FINISHED_EARLIER,
    BACKFILL_FAILED,
    BACKFILL_INTERRUPTED
} backfill_state;

typedef struct {
    ingest_counts    n;
    long long        pages;
    backfill_state   state;
    long long        finished_at;   /* FINISHED_EARLIER: when */
} backfill_result;

typedef struct {
    const char      *config_path;
    const char      *since_arg;     /* NULL: no --since */
    long long        since;         /* -1: none */
    int              only[BACKFILL_MAX_COLLECTIONS];
    int              any_only;
    int              dry_run;
    int              restart;

    ss_config        config;
    cli_redis       *redis;
    ingest          *ingest;
    stripe_api_list  page;

    int              tty;           /* progress updated in place */
    int              progress_shown;
} backfill;


/* ------------------------------------------------------ pure parts --- */

const backfill_collection *
backfill_collection_find(const char *name)
{
    const backfill_collection  *bc;

    for (bc = backfill_collections; bc->name != NULL; bc++) {
        if (strcmp(bc->name, name) == 0) {
            return bc;
        }
    }

    return NULL;
}


/* s as a JSON string (quotes included) into out: 6 * strlen(s) + 3 bytes */
static size_t
backfill_json_string(const char *s, char *out)
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      c;
    size_t             n;

    n = 0;
    out[n++] = '"';

    for (; *s != '\0'; s++) {
        c = (unsigned char) *s;

        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char) c;

        } else if (c < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[c >> 4];
            out[n + 5] = hex[c & 0xf];
            n += 6;

        } else {
            out[n++] = (char) c;
        }
    }

    out[n++] = '"';
    out[n] = '\0';

    return n;
}


char *
backfill_envelope(const char *type, const char *id, long long created,
    int livemode, const char *obj, size_t len, size_t *outlen)
{
    char    *buf, *eid, *etype;
    size_t   n, size, cap;

    if (asprintf(&eid, "%s%s", BACKFILL_EVENT_PREFIX, id) < 0) {
        return NULL;
    }

    etype = malloc(6 * strlen(type) + 3);
    cap = 6 * strlen(eid) + 3;
    size = cap + 6 * strlen(type) + 3 + len + 256;
    buf = malloc(size);

    if (etype == NULL || buf == NULL) {
        free(eid);
        free(etype);
        free(buf);
        return NULL;
    }

    backfill_json_string(type, etype);

    n = (size_t) snprintf(buf, size, "{\"id\":");
    n += backfill_json_string(eid, buf + n);
    n += (size_t) snprintf(buf + n, size - n, ",\"object\":\"event\","
                           "\"type\":%s", etype);

    if (created >= 0) {
        n += (size_t) snprintf(buf + n, size - n, ",\"created\":%lld",
                               created);
    }

    if (livemode >= 0) {
        n += (size_t) snprintf(buf + n, size - n, ",\"livemode\":%s",
                               livemode ? "true" : "false");
    }

    n += (size_t) snprintf(buf + n, size - n, ",\"api_version\":null,"
                           "\"data\":{\"object\":");
    memcpy(buf + n, obj, len);
    n += len;
    memcpy(buf + n, "}}", 3);
    n += 2;

    free(eid);
    free(etype);

    *outlen = n;
    return buf;
}


static int
backfill_gen_string(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *) s, strlen(s))
           == yajl_gen_status_ok ? 0 : -1;
}


char *
backfill_checkpoint_encode(const backfill_checkpoint *cp)
{
    yajl_gen              g;
    const unsigned char  *buf;
    size_t                len;
    char                 *out;
    int                   bad;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NULL;
    }

    bad = yajl_gen_map_open(g) != yajl_gen_status_ok;

    bad |= backfill_gen_string(g, "since");
    bad |= (cp->since >= 0 ? yajl_gen_integer(g, cp->since)
                           : yajl_gen_null(g)) != yajl_gen_status_ok;
    bad |= backfill_gen_string(g, "since_arg");
    bad |= backfill_gen_string(g, cp->since_arg);
    bad |= backfill_gen_string(g, "after");
    bad |= backfill_gen_string(g, cp->after);
    bad |= backfill_gen_string(g, "done");
    bad |= yajl_gen_bool(g, cp->done) != yajl_gen_status_ok;
    bad |= backfill_gen_string(g, "pages");
    bad |= yajl_gen_integer(g, cp->pages) != yajl_gen_status_ok;
    bad |= backfill_gen_string(g, "fetched");
    bad |= yajl_gen_integer(g, cp->fetched) != yajl_gen_status_ok;
    bad |= backfill_gen_string(g, "updated");
    bad |= yajl_gen_integer(g, cp->updated) != yajl_gen_status_ok;

    bad |= yajl_gen_map_close(g) != yajl_gen_status_ok;

    out = NULL;

    if (!bad && yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        out = strndup((const char *) buf, len);
    }

    yajl_gen_free(g);
    return out;
}


/* copies member key (a string) into buf: 0, or -1 when too long / wrong */
static int
backfill_member_string(yajl_val v, const char *key, char *buf, size_t len,
    char *err, size_t errlen)
{
    const char  *path[2];
    yajl_val     m;

    path[0] = key;
    path[1] = NULL;
    m = yajl_tree_get(v, path, yajl_t_any);
    buf[0] = '\0';

    if (m == NULL) {
        return 0;
    }

    if (!YAJL_IS_STRING(m) || strlen(m->u.string) >= len) {
        snprintf(err, errlen, "checkpoint: \"%s\" is not a string of at "
                 "most %zu bytes", key, len - 1);
        return -1;
    }

    strcpy(buf, m->u.string);
    return 0;
}


/* member key as an integer (null or absent: dflt): 0, or -1 */
static int
backfill_member_integer(yajl_val v, const char *key, long long dflt,
    long long *out, char *err, size_t errlen)
{
    const char  *path[2];
    yajl_val     m;

    path[0] = key;
    path[1] = NULL;
    m = yajl_tree_get(v, path, yajl_t_any);
    *out = dflt;

    if (m == NULL || YAJL_IS_NULL(m)) {
        return 0;
    }

    if (!YAJL_IS_INTEGER(m)) {
        snprintf(err, errlen, "checkpoint: \"%s\" is not an integer", key);
        return -1;
    }

    *out = YAJL_GET_INTEGER(m);
    return 0;
}


int
backfill_checkpoint_decode(const char *s, size_t len,
    backfill_checkpoint *cp, char *err, size_t errlen)
{
    yajl_val     v, done;
    const char  *path[2];
    char        *copy, yerr[128];
    int          rc;

    memset(cp, 0, sizeof(*cp));
    cp->since = -1;

    copy = strndup(s, len);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    yerr[0] = '\0';
    v = yajl_tree_parse(copy, yerr, sizeof(yerr));
    free(copy);

    if (v == NULL || !YAJL_IS_OBJECT(v)) {
        snprintf(err, errlen, "checkpoint is not a JSON object");
        if (v != NULL) {
            yajl_tree_free(v);
        }
        return -1;
    }

    path[0] = "done";
    path[1] = NULL;
    done = yajl_tree_get(v, path, yajl_t_any);
    cp->done = YAJL_IS_TRUE(done);

    rc = backfill_member_integer(v, "since", -1, &cp->since, err, errlen)
         | backfill_member_string(v, "since_arg", cp->since_arg,
                                  sizeof(cp->since_arg), err, errlen)
         | backfill_member_string(v, "after", cp->after, sizeof(cp->after),
                                  err, errlen)
         | backfill_member_integer(v, "pages", 0, &cp->pages, err, errlen)
         | backfill_member_integer(v, "fetched", 0, &cp->fetched, err,
                                   errlen)
         | backfill_member_integer(v, "updated", 0, &cp->updated, err,
                                   errlen);

    if (rc == 0 && done != NULL && !YAJL_IS_TRUE(done)
        && !YAJL_IS_FALSE(done))
    {
        snprintf(err, errlen, "checkpoint: \"done\" is not true or false");
        rc = -1;
    }

    yajl_tree_free(v);
    return rc != 0 ? -1 : 0;
}


/* -------------------------------------------------------- the run --- */

static void
backfill_on_signal(int sig)
{
    (void) sig;
    ingest_interrupt();
}


/* the progress line (a terminal) is taken away before other output */
static void
backfill_progress_clear(backfill *bf)
{
    if (bf->tty && bf->progress_shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        bf->progress_shown = 0;
    }
}


static void
backfill_progress(backfill *bf, const backfill_collection *bc,
    const backfill_result *r, size_t on_page, long long t0, int last)
{
    struct timespec  ts;
    double           secs, rate;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    secs = (double) ts.tv_sec + ts.tv_nsec / 1e9 - (double) t0 / 1000.0;
    rate = secs > 0.001 ? (double) r->n.fetched / secs : 0;

    /* Stripe lists have no total: so no ETA, the pages and the pace */
    if (bf->tty) {
        fprintf(stderr, "\r\033[K%s: page %lld, %lld object(s), %lld %s, "
                "%.1f/s%s", bc->name, r->pages, r->n.fetched, r->n.queued,
                bf->dry_run ? "to queue" : "queued", rate,
                last ? "\n" : "");
        bf->progress_shown = !last;

    } else {
        fprintf(stderr, "%s: page %lld: %zu object(s), %lld in all, %lld "
                "%s, %.1f/s%s\n", bc->name, r->pages, on_page, r->n.fetched,
                r->n.queued, bf->dry_run ? "to queue" : "queued", rate,
                last ? ", done" : "");
    }

    fflush(stderr);
}


static long long
backfill_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* GET {P}:backfill:<name>: 1 read, 0 none (or unreadable: said), -1 */
static int
backfill_checkpoint_read(backfill *bf, const backfill_collection *bc,
    backfill_checkpoint *cp)
{
    redisReply  *rep;
    const char  *argv[2];
    char         key[CLI_REDIS_KEY_MAX], err[256];

    if (cli_redis_key(bf->redis, key, "backfill:", bc->name) == NULL) {
        fprintf(stderr, "backfill: the checkpoint key is too long\n");
        return -1;
    }

    argv[0] = "GET";
    argv[1] = key;

    rep = cli_redis_command(bf->redis, 2, argv, NULL);
    if (rep == NULL) {
        fprintf(stderr, "backfill: reading the checkpoint %s: %s\n", key,
                bf->redis->err);
        return -1;
    }

    if (rep->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        return 0;
    }

    if (backfill_checkpoint_decode(rep->str, rep->len, cp, err, sizeof(err))
        != 0)
    {
        fprintf(stderr, "%s: ignoring the checkpoint in %s: %s\n",
                bc->name, key, err);
        freeReplyObject(rep);
        return 0;
    }

    freeReplyObject(rep);
    return 1;
}


static int
backfill_checkpoint_write(backfill *bf, const backfill_collection *bc,
    backfill_checkpoint *cp)
{
    redisReply  *rep;
    const char  *argv[3];
    char         key[CLI_REDIS_KEY_MAX], *json;

    if (bf->dry_run) {
        return 0;
    }

    cp->updated = (long long) time(NULL);

    json = backfill_checkpoint_encode(cp);
    if (json == NULL
        || cli_redis_key(bf->redis, key, "backfill:", bc->name) == NULL)
    {
        free(json);
        fprintf(stderr, "backfill: cannot encode the checkpoint of %s\n",
                bc->name);
        return -1;
    }

    argv[0] = "SET";
    argv[1] = key;
    argv[2] = json;

    rep = cli_redis_command(bf->redis, 3, argv, NULL);
    free(json);

    if (rep == NULL) {
        fprintf(stderr, "backfill: writing the checkpoint %s: %s\n", key,
                bf->redis->err);
        return -1;
    }

    freeReplyObject(rep);
    return 0;
}


/* one object of a page: 0, or -1 (Redis failed) */
static int
backfill_object(backfill *bf, const backfill_collection *bc,
    const char *body, const stripe_api_item *it, backfill_result *r)
{
    action          a;
    action_status   st;
    ingest_result   res;
    char           *env, email[256];
    size_t          len;
    int             rc;

    r->n.fetched++;

    if (it->id[0] == '\0') {
        backfill_progress_clear(bf);
        fprintf(stderr, "%s: an object without an id: left out\n", bc->name);
        r->n.invalid++;
        return 0;
    }

    env = backfill_envelope(bc->type, it->id, it->created, it->livemode,
                            body + it->off, it->len, &len);
    if (env == NULL) {
        fprintf(stderr, "backfill: out of memory\n");
        return -1;
    }

    st = ingest_normalize(env, len, &a);
    free(env);

    /* a completed session whose payment has not cleared buys nothing */
    if (st == ACTION_OK && strcmp(a.name, "checkout_pending") == 0) {
        r->n.skipped++;
        action_free(&a);
        return 0;
    }

    rc = ingest_offer(bf->ingest, st, &a, &r->n, &res);

    if (rc != 0) {
        backfill_progress_clear(bf);
        fprintf(stderr, "backfill: %s: %s\n", it->id,
                ingest_error(bf->ingest));

    } else if (res == INGEST_INVALID) {
        backfill_progress_clear(bf);
        fprintf(stderr, "%s: %s: left out: %s\n", bc->name, it->id,
                a.reason);

    } else if (res == INGEST_QUEUED && bf->dry_run) {
        backfill_progress_clear(bf);
        printf("would queue: %s %s %s %s %s\n", bc->type, a.name, it->id,
               a.customer_id ? a.customer_id : "-",
               ingest_action_email(&a, email, sizeof(email))[0] ? email
                                                                : "-");
        fflush(stdout);
    }

    action_free(&a);
    return rc;
}


static void
backfill_collection_run(backfill *bf, const backfill_collection *bc,
    backfill_result *r)
{
    backfill_checkpoint    cp, old;
    stripe_api_list_query  q;
    http_request           req;
    const char            *body, *since_arg;
    char                   err[CONFIG_ERR_MAX];
    size_t                 len, i;
    long long              t0;
    int                    rc, have, limit, resuming, first, truncated;

    r->state = BACKFILL_FAILED;
    since_arg = bf->since_arg != NULL ? bf->since_arg : "";

    memset(&cp, 0, sizeof(cp));
    cp.since = bf->since;
    snprintf(cp.since_arg, sizeof(cp.since_arg), "%s", since_arg);

    have = backfill_checkpoint_read(bf, bc, &old);
    if (have < 0) {
        return;
    }

    if (have && !bf->restart) {
        if (strcmp(old.since_arg, since_arg) != 0) {
            fprintf(stderr, "%s: the checkpoint is for --since \"%s\": "
                    "starting over\n", bc->name, old.since_arg);

        } else if (old.done) {
            r->state = BACKFILL_FINISHED_EARLIER;
            r->finished_at = old.updated;
            return;

        } else {
            cp = old;
            fprintf(stderr, "%s: resuming after %s (%lld page(s), %lld "
                    "object(s) read before)\n", bc->name,
                    cp.after[0] ? cp.after : "the start", cp.pages,
                    cp.fetched);
        }
    }

    limit = 100;
    resuming = cp.after[0] != '\0';
    first = 1;
    t0 = backfill_now_ms();

    for ( ;; ) {
        memset(&q, 0, sizeof(q));
        q.limit = limit;
        q.status = bc->status;
        q.created_gte = cp.since;
        q.starting_after = cp.after;

        if (stripe_api_list_request(&bf->config, bc->path, &q, &req) != 0) {
            fprintf(stderr, "%s: cannot build the request for GET /v1/%s "
                    "after \"%s\"\n", bc->name, bc->path, cp.after);
            return;
        }

        rc = ingest_fetch(bf->ingest, &req, &body, &len, &truncated);

        if (rc == 0) {
            r->state = BACKFILL_INTERRUPTED;
            return;
        }

        if (rc < 0 && truncated && limit > 1) {
            limit /= 2;
            backfill_progress_clear(bf);
            fprintf(stderr, "%s: %s: asking for %d a page\n", bc->name,
                    ingest_error(bf->ingest), limit);
            continue;
        }

        /* the object the checkpoint names is gone (a deleted customer) */
        if (rc < 0 && first && resuming
            && ingest_status(bf->ingest) == 404)
        {
            backfill_progress_clear(bf);
            fprintf(stderr, "%s: Stripe no longer has %s, the checkpoint: "
                    "starting over\n", bc->name, cp.after);
            cp.after[0] = '\0';
            resuming = 0;
            continue;
        }

        if (rc < 0) {
            backfill_progress_clear(bf);
            fprintf(stderr, "%s: %s\n", bc->name, ingest_error(bf->ingest));
            return;
        }

        first = 0;

        if (stripe_api_parse_list(body, len, &bf->page, err, sizeof(err))
            != 0)
        {
            backfill_progress_clear(bf);
            fprintf(stderr, "%s: GET /v1/%s: %s\n", bc->name, bc->path, err);
            return;
        }

        for (i = 0; i < bf->page.n; i++) {
            if (backfill_object(bf, bc, body, &bf->page.items[i], r) != 0) {
                return;
            }
        }

        r->pages++;
        cp.pages++;
        cp.fetched += (long long) bf->page.n;

        if (bf->page.last_id != NULL) {
            snprintf(cp.after, sizeof(cp.after), "%s", bf->page.last_id);
        }

        cp.done = !bf->page.has_more;

        if (backfill_checkpoint_write(bf, bc, &cp) != 0) {
            return;
        }

        backfill_progress(bf, bc, r, bf->page.n, t0, cp.done);

        if (cp.done) {
            break;
        }
    }

    r->state = BACKFILL_RAN;
}


static void
backfill_counts_add(ingest_counts *sum, const ingest_counts *n)
{
    sum->fetched += n->fetched;
    sum->queued += n->queued;
    sum->seen += n->seen;
    sum->facts += n->facts;
    sum->ignored += n->ignored;
    sum->skipped += n->skipped;
    sum->invalid += n->invalid;
}


static void
backfill_summary_line(const backfill *bf, const char *name,
    const ingest_counts *n, const char *note)
{
    printf("backfill %s: fetched %lld, %s %lld, duplicates %lld", name,
           n->fetched, bf->dry_run ? "would queue" : "queued", n->queued,
           n->seen + n->facts);

    if (n->facts > 0) {
        printf(" (%lld already queued from an event)", n->facts);
    }

    printf(", ignored %lld", n->ignored);

    if (n->skipped > 0) {
        printf(", unpaid %lld", n->skipped);
    }

    if (n->invalid > 0) {
        printf(", invalid %lld", n->invalid);
    }

    printf("%s\n", note);
}


static void
backfill_usage(FILE *f)
{
    fprintf(f, "usage: stripe-sync backfill [-c FILE] [--since DATE] "
            "[--only COLLECTION[,...]]\n"
            "                            [--dry-run] [--restart]\n\n"
            "  -c, --config FILE   configuration file (default "
            CLI_DEFAULT_CONFIG ")\n"
            "      --since DATE    objects created since DATE: YYYY-MM-DD "
            "(UTC), unix\n"
            "                      seconds, or an age such as 30d, 12h\n"
            "      --only LIST     checkout, invoices, subscriptions, "
            "customers\n"
            "                      (default: the first three)\n"
            "      --dry-run       print what would be queued; write "
            "nothing\n"
            "      --restart       ignore the checkpoints: list "
            "everything again\n"
            "  -h, --help          this help\n");
}


/* 0, or the exit status of a usage error (2) or --help (0 with *done) */
static int
backfill_options_parse(backfill *bf, int argc, char **argv, int *done)
{
    static const struct option  longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "since", required_argument, NULL, 's' },
        { "only", required_argument, NULL, 'o' },
        { "dry-run", no_argument, NULL, 'n' },
        { "restart", no_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const backfill_collection  *bc;
    char                       *list, *name, *save;
    int                         o;

    *done = 0;
    bf->config_path = CLI_DEFAULT_CONFIG;
    bf->since = -1;
    optind = 1;
    opterr = 0;

    while ((o = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (o) {
        case 'c':
            bf->config_path = optarg;
            break;

        case 's':
            bf->since_arg = optarg;
            bf->since = ingest_parse_since(optarg, (long long) time(NULL));
            if (bf->since < 0) {
                fprintf(stderr, "stripe-sync backfill: --since \"%s\" is not "
                        "YYYY-MM-DD, unix seconds or an age such as 30d\n",
                        optarg);
                return 2;
            }
            break;

        case 'o':
            list = strdup(optarg);
            if (list == NULL) {
                return 1;
            }

            for (name = strtok_r(list, ",", &save); name != NULL;
                 name = strtok_r(NULL, ",", &save))
            {
                bc = backfill_collection_find(name);
                if (bc == NULL) {
                    fprintf(stderr, "stripe-sync backfill: --only \"%s\": "
                            "not checkout, invoices, subscriptions or "
                            "customers\n", name);
                    free(list);
                    return 2;
                }
                bf->only[bc - backfill_collections] = 1;
                bf->any_only = 1;
            }

            free(list);

            if (!bf->any_only) {
                fprintf(stderr, "stripe-sync backfill: --only needs a "
                        "collection\n");
                return 2;
            }
            break;

        case 'n':
            bf->dry_run = 1;
            break;

        case 'r':
            bf->restart = 1;
            break;

        case 'h':
            backfill_usage(stdout);
            *done = 1;
            return 0;

        case ':':
            fprintf(stderr, "stripe-sync backfill: option \"%s\" needs a "
                    "value\n", argv[optind - 1]);
            backfill_usage(stderr);
            return 2;

        default:
            fprintf(stderr, "stripe-sync backfill: unknown option \"%s\"\n",
                    argv[optind - 1]);
            backfill_usage(stderr);
            return 2;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "stripe-sync backfill: unexpected argument \"%s\"\n",
                argv[optind]);
        backfill_usage(stderr);
        return 2;
    }

    return 0;
}


int
cmd_backfill(int argc, char **argv)
{
    const backfill_collection  *bc;
    backfill_result             res[BACKFILL_MAX_COLLECTIONS];
    ingest_counts               total;
    struct sigaction            sa;
    backfill                    bf;
    char                        err[CONFIG_ERR_MAX], when[32], note[128];
    size_t                      i;
    int                         rc, done, failed, interrupted;

    memset(&bf, 0, sizeof(bf));
    memset(res, 0, sizeof(res));
    memset(&total, 0, sizeof(total));

    rc = backfill_options_parse(&bf, argc, argv, &done);
    if (rc != 0 || done) {
        return rc;
    }

    bf.redis = cli_redis_open(bf.config_path, &bf.config, err, sizeof(err));
    if (bf.redis == NULL) {
        fprintf(stderr, "stripe-sync backfill: %s\n", err);
        return 1;
    }

    if (bf.config.stripe_api_key == NULL) {
        fprintf(stderr, "stripe-sync backfill: %s: no stripe.api_key_file: "
                "backfill reads the Stripe API\n", bf.config_path);
        cli_redis_close(bf.redis, &bf.config);
        return 1;
    }

    bf.ingest = ingest_create(&bf.config, bf.redis, bf.dry_run, err,
                              sizeof(err));
    if (bf.ingest == NULL) {
        fprintf(stderr, "stripe-sync backfill: %s\n", err);
        cli_redis_close(bf.redis, &bf.config);
        return 1;
    }

    bf.tty = isatty(STDERR_FILENO);

    /* no SA_RESTART: a signal ends a wait at once; the page in hand is
       finished and its checkpoint written before the exit */
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = backfill_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if (bf.dry_run) {
        printf("backfill: dry run: nothing is queued, no checkpoint "
               "written\n");
        fflush(stdout);
    }

    failed = 0;
    interrupted = 0;

    for (bc = backfill_collections, i = 0; bc->name != NULL; bc++, i++) {
        if (bf.any_only ? !bf.only[i] : !bc->by_default) {
            continue;
        }

        if (interrupted || bf.redis->c == NULL) {
            break;
        }

        backfill_collection_run(&bf, bc, &res[i]);
        backfill_progress_clear(&bf);

        failed |= res[i].state == BACKFILL_FAILED;
        interrupted |= res[i].state == BACKFILL_INTERRUPTED
                       || ingest_interrupted();
    }

    for (bc = backfill_collections, i = 0; bc->name != NULL; bc++, i++) {
        note[0] = '\0';

        switch (res[i].state) {
        case BACKFILL_NOT_RUN:
            continue;

        case BACKFILL_FINISHED_EARLIER:
            printf("backfill %s: finished earlier (%s): --restart to list "
                   "it again\n", bc->name,
                   ingest_iso_time(res[i].finished_at, when, sizeof(when)));
            continue;

        case BACKFILL_FAILED:
            snprintf(note, sizeof(note), " (incomplete: run it again to "
                     "continue)");
            break;

        case BACKFILL_INTERRUPTED:
            snprintf(note, sizeof(note), " (interrupted: run it again to "
                     "continue)");
            break;

        case BACKFILL_RAN:
            break;
        }

        backfill_summary_line(&bf, bc->name, &res[i].n, note);
        backfill_counts_add(&total, &res[i].n);
    }

    backfill_summary_line(&bf, "total", &total, "");

    stripe_api_list_free(&bf.page);
    ingest_free(bf.ingest);
    cli_redis_close(bf.redis, &bf.config);

    return failed || interrupted ? 1 : 0;
}
