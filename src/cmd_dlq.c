/*
 * cmd_dlq.c - "stripe-sync dlq" (cmd_dlq.h).
 *
 * The list is read whole (LRANGE) and each change names the exact letter
 * (LREM count 1 of its bytes), so letters that consumers push meanwhile
 * are left alone, and a letter replayed or purged by someone else in the
 * meantime is reported, not touched twice.
 *
 * The job's step record ({P}:job:<event id>) is not cleared by a replay:
 * it is what keeps a job that resumes from repeating a finished purchase
 * (the consumer keeps it 90 days past the dead letter). A replay only
 * drops its "attempts", so the replayed job gets the full retry budget.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "cli_redis.h"
#include "cmd_dlq.h"
#include "json_tree.h"
#include "provider_json.h"


#define DLQ_ERROR_CHARS  80

/*
 * KEYS[1] {P}:dead  KEYS[2] {P}:queue  KEYS[3] {P}:stats
 * KEYS[4] {P}:job:<event id>
 * ARGV[1] the letter  ARGV[2] its record
 * -> 1 replayed, 0 the letter is no longer there
 */
static const char  dlq_lua_replay[] =
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('RPUSH', KEYS[2], ARGV[2])\n"
    "redis.call('HDEL', KEYS[4], 'attempts')\n"
    "redis.call('HINCRBY', KEYS[3], 'dlq_replayed', 1)\n"
    "return 1\n";

/*
 * KEYS[1] {P}:dead  KEYS[2] {P}:stats
 * ARGV[1] the letter, or nothing: all of them
 * -> letters deleted
 */
static const char  dlq_lua_purge[] =
    "local n\n"
    "if #ARGV > 0 then\n"
    "  n = redis.call('LREM', KEYS[1], 0, ARGV[1])\n"
    "else\n"
    "  n = redis.call('LLEN', KEYS[1])\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "if n > 0 then redis.call('HINCRBY', KEYS[2], 'dlq_purged', n) end\n"
    "return n\n";

typedef enum {
    DLQ_LIST,
    DLQ_SHOW,
    DLQ_REPLAY,
    DLQ_PURGE
} dlq_verb;

typedef struct {
    const char  *config;
    dlq_verb     verb;
    const char  *id;
    int          all;
    int          yes;
} dlq_options;

static const char  dlq_why_raw[] =
    "it holds no record: the queue entry was not JSON (or over 1 MB) and "
    "is kept as \"raw\"";
static const char  dlq_why_record[] =
    "its record is not a schema v1 record with an \"id\" and an \"action\"";
static const char  dlq_why_letter[] = "it is not a JSON object";


static void
dlq_usage(FILE *f)
{
    fprintf(f,
        "usage: stripe-sync dlq [-c FILE] list\n"
        "       stripe-sync dlq [-c FILE] show ID\n"
        "       stripe-sync dlq [-c FILE] replay ID | replay --all\n"
        "       stripe-sync dlq [-c FILE] purge [ID] --yes\n"
        "\n"
        "The dead letters in {P}:dead. ID is the event id of the letter's "
        "record\n"
        "(\"dead-<hex>\" for an entry that is not a record), as \"list\" "
        "shows it.\n"
        "\n"
        "  list         oldest first: id, action, customer, attempts, "
        "failed at,\n"
        "               the start of the error\n"
        "  show ID      the whole letter as indented JSON\n"
        "  replay ID    push its record back on {P}:queue, to be taken "
        "next\n"
        "  replay --all every letter that holds a record, oldest taken "
        "first\n"
        "  purge --yes  delete every dead letter (purge ID --yes: that "
        "one)\n"
        "\n"
        "  -c, --config FILE  configuration file (default "
        CLI_DEFAULT_CONFIG ")\n"
        "\n"
        "exit status: 0 done, 1 not found / not replayable / Redis error, "
        "2 usage\n");
}


/* 0 go, 1 help printed, -1 usage error (err) */
static int
dlq_options_parse(int argc, char **argv, dlq_options *o, char *err,
    size_t errlen)
{
    static const struct option  longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "all", no_argument, NULL, 'a' },
        { "yes", no_argument, NULL, 'y' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char  *verb;
    int          c;

    memset(o, 0, sizeof(*o));
    o->config = CLI_DEFAULT_CONFIG;

    optind = 1;
    opterr = 0;

    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'a':
            o->all = 1;
            break;
        case 'y':
            o->yes = 1;
            break;
        case 'h':
            dlq_usage(stdout);
            return 1;
        case ':':
            snprintf(err, errlen, "option \"%s\" needs a value",
                     argv[optind - 1]);
            return -1;
        default:
            snprintf(err, errlen, "unknown option \"%s\"", argv[optind - 1]);
            return -1;
        }
    }

    if (optind >= argc) {
        snprintf(err, errlen, "say list, show, replay or purge");
        return -1;
    }

    verb = argv[optind++];

    if (strcmp(verb, "list") == 0) {
        o->verb = DLQ_LIST;
    } else if (strcmp(verb, "show") == 0) {
        o->verb = DLQ_SHOW;
    } else if (strcmp(verb, "replay") == 0) {
        o->verb = DLQ_REPLAY;
    } else if (strcmp(verb, "purge") == 0) {
        o->verb = DLQ_PURGE;
    } else {
        snprintf(err, errlen, "unknown dlq command \"%s\" (list, show, "
                 "replay, purge)", verb);
        return -1;
    }

    if (optind < argc) {
        o->id = argv[optind++];
    }

    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        return -1;
    }

    if (o->all && o->verb != DLQ_REPLAY) {
        snprintf(err, errlen, "--all goes with replay");
        return -1;
    }

    if (o->yes && o->verb != DLQ_PURGE) {
        snprintf(err, errlen, "--yes goes with purge");
        return -1;
    }

    switch (o->verb) {
    case DLQ_LIST:
        if (o->id != NULL) {
            snprintf(err, errlen, "list takes no ID");
            return -1;
        }
        break;

    case DLQ_SHOW:
        if (o->id == NULL) {
            snprintf(err, errlen, "show needs the ID of a dead letter (see "
                     "dlq list)");
            return -1;
        }
        break;

    case DLQ_REPLAY:
        if ((o->id == NULL) == !o->all) {
            snprintf(err, errlen, "replay needs an ID or --all, not both");
            return -1;
        }
        break;

    case DLQ_PURGE:
        if (!o->yes) {
            snprintf(err, errlen, "purge deletes dead letters for good: "
                     "add --yes");
            return -1;
        }
        break;
    }

    return 0;
}


/* ------------------------------------------------------------ reading --- */

static size_t
dlq_ws(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'
                       || s[i] == '\r'))
    {
        i++;
    }

    return i;
}


/* the end of the string starting at s[i] == '"', or 0 */
static size_t
dlq_string_end(const char *s, size_t i, size_t len)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '"') {
            return i + 1;
        }
    }

    return 0;
}


/* the end of the value starting at s[i], or 0 */
static size_t
dlq_value_end(const char *s, size_t i, size_t len)
{
    size_t  depth, e;

    if (i >= len) {
        return 0;
    }

    if (s[i] == '"') {
        return dlq_string_end(s, i, len);
    }

    if (s[i] == '{' || s[i] == '[') {
        depth = 0;

        while (i < len) {
            if (s[i] == '"') {
                e = dlq_string_end(s, i, len);
                if (e == 0) {
                    return 0;
                }
                i = e;
                continue;
            }

            if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0) {
                    return i + 1;
                }
            }

            i++;
        }

        return 0;
    }

    /* a number, true, false, null */
    while (i < len && strchr(",}] \t\r\n", s[i]) == NULL) {
        i++;
    }

    return i;
}


int
dlq_member_span(const char *text, size_t len, const char *key,
    size_t *off, size_t *vlen)
{
    size_t  i, ks, ke, klen, ve;

    klen = strlen(key);
    i = dlq_ws(text, 0, len);

    if (i >= len || text[i] != '{') {
        return -1;
    }

    i++;

    for ( ;; ) {
        i = dlq_ws(text, i, len);
        if (i >= len || text[i] != '"') {
            return -1;
        }

        ks = i + 1;
        ke = dlq_string_end(text, i, len);
        if (ke == 0) {
            return -1;
        }

        i = dlq_ws(text, ke, len);
        if (i >= len || text[i] != ':') {
            return -1;
        }

        i = dlq_ws(text, i + 1, len);
        ve = dlq_value_end(text, i, len);
        if (ve == 0) {
            return -1;
        }

        if (ke - 1 - ks == klen && memcmp(text + ks, key, klen) == 0) {
            *off = i;
            *vlen = ve - i;
            return 0;
        }

        i = dlq_ws(text, ve, len);
        if (i >= len || text[i] != ',') {
            return -1;
        }

        i++;
    }
}


static const char *
dlq_str(const json_node *n)
{
    return n != NULL && n->type == JSON_STRING ? n->u.str.s : NULL;
}


/* copies at most max characters of s into out, one line */
static void
dlq_cut(const char *s, size_t max, char *out, size_t outlen)
{
    const unsigned char  *u;
    size_t                i, o, chars, n;

    u = (const unsigned char *) s;
    o = 0;
    chars = 0;

    for (i = 0; u[i] != '\0' && chars < max; i += n, chars++) {
        n = u[i] < 0x80 ? 1 : u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : 2;

        if (o + n + 4 > outlen) {
            break;
        }

        if (u[i] < 0x20 || u[i] == 0x7f) {
            out[o++] = ' ';
            n = 1;
            continue;
        }

        if (strnlen(s + i, n) < n) {
            break;
        }

        memcpy(out + o, s + i, n);
        o += n;
    }

    if (u[i] != '\0' && o + 4 <= outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }

    out[o] = '\0';
}


/* an id that prints on one line as a word: printable ASCII, no space */
static int
dlq_printable_id(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }

    for ( /* void */ ; *s != '\0'; s++) {
        if (*s <= ' ' || *s > '~') {
            return 0;
        }
    }

    return 1;
}


static void
dlq_hash_id(const char *text, size_t len, char *id, size_t idlen)
{
    unsigned char  md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *) text, len, md);
    snprintf(id, idlen, "dead-%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2],
             md[3], md[4], md[5]);
}


int
dlq_letter_parse(const char *text, size_t len, dlq_letter *l)
{
    json_arena        ar;
    const json_node  *root, *rec, *n, *v;
    const char       *s;
    char              reason[256];
    size_t            off, vlen;
    int               replayable;

    memset(l, 0, sizeof(*l));
    l->attempts = -1;
    l->failed_at = -1;
    l->why = dlq_why_letter;

    ar.head = NULL;
    ar.chunk = len < 65536 ? 65536 : len * 2;

    root = json_parse(&ar, text, len, reason, sizeof(reason));

    if (root == NULL || root->type != JSON_OBJECT) {
        dlq_hash_id(text, len, l->id, sizeof(l->id));
        json_arena_free(ar.head);
        return -1;
    }

    rec = json_get(root, "record");
    s = dlq_str(json_at(rec, "id", NULL));

    if (dlq_printable_id(s) && strlen(s) < sizeof(l->id)) {
        snprintf(l->id, sizeof(l->id), "%s", s);
    } else {
        dlq_hash_id(text, len, l->id, sizeof(l->id));
    }

    s = dlq_str(json_get(rec, "action"));
    snprintf(l->action, sizeof(l->action), "%s", s ? s : "");
    s = dlq_str(json_at(rec, "customer", "id", NULL));
    snprintf(l->customer, sizeof(l->customer), "%s", s ? s : "");
    s = dlq_str(json_get(root, "error"));
    snprintf(l->error, sizeof(l->error), "%s", s ? s : "");

    n = json_get(root, "attempts");
    if (n != NULL && n->type == JSON_INT) {
        l->attempts = n->u.i;
    }

    n = json_get(root, "failed_at");
    if (n != NULL && n->type == JSON_INT) {
        l->failed_at = n->u.i;
    }

    v = json_get(rec, "v");
    replayable = rec != NULL && rec->type == JSON_OBJECT
                 && v != NULL && v->type == JSON_INT && v->u.i == 1
                 && dlq_str(json_get(rec, "id")) != NULL
                 && dlq_str(json_get(rec, "id"))[0] != '\0'
                 && l->action[0] != '\0';

    if (replayable
        && dlq_member_span(text, len, "record", &off, &vlen) == 0)
    {
        l->replayable = 1;
        l->why = NULL;
        l->record_off = off;
        l->record_len = vlen;

    } else {
        l->why = rec == NULL ? dlq_why_raw : dlq_why_record;
    }

    json_arena_free(ar.head);

    return 0;
}


void
dlq_format_line(const dlq_letter *l, char *buf, size_t len)
{
    char  when[32], err[DLQ_ERROR_CHARS * 4 + 8], attempts[24];

    if (l->failed_at < 0 || iso8601_utc(l->failed_at, when, sizeof(when)))
    {
        snprintf(when, sizeof(when), "-");
    }

    if (l->attempts >= 0) {
        snprintf(attempts, sizeof(attempts), "%lld", l->attempts);
    } else {
        snprintf(attempts, sizeof(attempts), "-");
    }

    dlq_cut(l->error[0] ? l->error : "-", DLQ_ERROR_CHARS, err, sizeof(err));

    snprintf(buf, len, "%-28s  %-22s  %-18s  %2s  %-20s  %s", l->id,
             l->action[0] ? l->action : "-",
             l->customer[0] ? l->customer : "-", attempts, when, err);
}


/* ------------------------------------------------------------- pretty --- */

#define DLQ_GEN(call)  (call == yajl_gen_status_ok)

static int
dlq_on_null(void *g)
{
    return DLQ_GEN(yajl_gen_null(g));
}


static int
dlq_on_bool(void *g, int b)
{
    return DLQ_GEN(yajl_gen_bool(g, b));
}


static int
dlq_on_number(void *g, const char *s, size_t len)
{
    return DLQ_GEN(yajl_gen_number(g, s, len));
}


static int
dlq_on_string(void *g, const unsigned char *s, size_t len)
{
    return DLQ_GEN(yajl_gen_string(g, s, len));
}


static int
dlq_on_map_open(void *g)
{
    return DLQ_GEN(yajl_gen_map_open(g));
}


static int
dlq_on_map_close(void *g)
{
    return DLQ_GEN(yajl_gen_map_close(g));
}


static int
dlq_on_array_open(void *g)
{
    return DLQ_GEN(yajl_gen_array_open(g));
}


static int
dlq_on_array_close(void *g)
{
    return DLQ_GEN(yajl_gen_array_close(g));
}


char *
dlq_pretty(const char *text, size_t len, size_t *outlen)
{
    static const yajl_callbacks  cb = {
        dlq_on_null, dlq_on_bool, NULL, NULL, dlq_on_number, dlq_on_string,
        dlq_on_map_open, dlq_on_string, dlq_on_map_close,
        dlq_on_array_open, dlq_on_array_close
    };
    const unsigned char  *buf;
    yajl_handle           h;
    yajl_status           st;
    yajl_gen              g;
    size_t                n;
    char                 *out;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NULL;
    }

    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_config(g, yajl_gen_indent_string, "  ");

    h = yajl_alloc(&cb, NULL, g);
    if (h == NULL) {
        yajl_gen_free(g);
        return NULL;
    }

    st = yajl_parse(h, (const unsigned char *) text, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    out = NULL;

    if (st == yajl_status_ok
        && yajl_gen_get_buf(g, &buf, &n) == yajl_gen_status_ok)
    {
        out = malloc(n + 1);
        if (out != NULL) {
            memcpy(out, buf, n);
            out[n] = '\0';
            *outlen = n;
        }
    }

    yajl_free(h);
    yajl_gen_free(g);

    return out;
}


/* ------------------------------------------------------------- redis --- */

typedef struct {
    cli_redis    *r;
    redisReply   *list;       /* LRANGE {P}:dead 0 -1 */
    dlq_letter   *letters;    /* list->element[i] */
    char          dead[CLI_REDIS_KEY_MAX];
    char          queue[CLI_REDIS_KEY_MAX];
    char          stats[CLI_REDIS_KEY_MAX];
} dlq_ctx;


static int
dlq_fetch(dlq_ctx *x)
{
    const char  *argv[4];
    size_t       i;

    argv[0] = "LRANGE";
    argv[1] = x->dead;
    argv[2] = "0";
    argv[3] = "-1";

    x->list = cli_redis_command(x->r, 4, argv, NULL);
    if (x->list == NULL) {
        fprintf(stderr, "stripe-sync dlq: %s\n", x->r->err);
        return -1;
    }

    if (x->list->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "stripe-sync dlq: %s is not a list\n", x->dead);
        return -1;
    }

    x->letters = calloc(x->list->elements + 1, sizeof(dlq_letter));
    if (x->letters == NULL) {
        fprintf(stderr, "stripe-sync dlq: out of memory\n");
        return -1;
    }

    for (i = 0; i < x->list->elements; i++) {
        dlq_letter_parse(x->list->element[i]->str,
                         x->list->element[i]->len, &x->letters[i]);
    }

    return 0;
}


static int
dlq_list(dlq_ctx *x)
{
    char    line[2048];
    size_t  i;

    /* oldest first, as a log reads */
    for (i = x->list->elements; i > 0; i--) {
        dlq_format_line(&x->letters[i - 1], line, sizeof(line));
        printf("%s\n", line);
    }

    fprintf(stderr, "%zu dead letter(s) in %s\n", x->list->elements,
            x->dead);

    return 0;
}


static int
dlq_show(dlq_ctx *x, const char *id)
{
    redisReply  *e;
    char        *p;
    size_t       i, n, found;

    found = 0;

    for (i = x->list->elements; i > 0; i--) {
        if (strcmp(x->letters[i - 1].id, id) != 0) {
            continue;
        }

        e = x->list->element[i - 1];
        p = dlq_pretty(e->str, e->len, &n);

        if (found++ > 0) {
            printf("\n");
        }

        if (p != NULL) {
            fwrite(p, 1, n, stdout);
            free(p);
        } else {
            /* not JSON: as it is */
            fwrite(e->str, 1, e->len, stdout);
            printf("\n");
        }
    }

    if (found == 0) {
        fprintf(stderr, "stripe-sync dlq: no dead letter \"%s\" in %s\n",
                id, x->dead);
        return 1;
    }

    if (found > 1) {
        fprintf(stderr, "%zu dead letters have the id \"%s\"\n", found, id);
    }

    return 0;
}


/* 1 replayed, 0 gone meanwhile, -1 Redis error */
static int
dlq_replay_one(dlq_ctx *x, size_t i)
{
    const dlq_letter  *l;
    redisReply        *e, *rep;
    const char        *argv[10];
    size_t             lens[10], k;
    char               job[CLI_REDIS_KEY_MAX];
    int                rc;

    l = &x->letters[i];
    e = x->list->element[i];

    if (cli_redis_key(x->r, job, "job:", l->id) == NULL) {
        fprintf(stderr, "stripe-sync dlq: the id \"%s\" is too long\n",
                l->id);
        return -1;
    }

    argv[0] = "EVAL";
    argv[1] = dlq_lua_replay;
    argv[2] = "4";
    argv[3] = x->dead;
    argv[4] = x->queue;
    argv[5] = x->stats;
    argv[6] = job;
    argv[7] = e->str;
    argv[8] = e->str + l->record_off;

    for (k = 0; k < 7; k++) {
        lens[k] = strlen(argv[k]);
    }
    lens[7] = e->len;
    lens[8] = l->record_len;

    rep = cli_redis_command(x->r, 9, argv, lens);
    if (rep == NULL) {
        fprintf(stderr, "stripe-sync dlq: %s\n", x->r->err);
        return -1;
    }

    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);

    return rc;
}


static int
dlq_replay(dlq_ctx *x, const char *id)
{
    const dlq_letter  *l;
    size_t             i, found, done, skipped;
    int                rc;

    if (id != NULL) {
        /* the newest letter with that id */
        for (i = 0; i < x->list->elements; i++) {
            if (strcmp(x->letters[i].id, id) == 0) {
                break;
            }
        }

        if (i == x->list->elements) {
            fprintf(stderr, "stripe-sync dlq: no dead letter \"%s\" in %s\n",
                    id, x->dead);
            return 1;
        }

        l = &x->letters[i];

        if (!l->replayable) {
            fprintf(stderr, "stripe-sync dlq: dead letter \"%s\" cannot be "
                    "replayed: %s; it can be shown and purged\n", id,
                    l->why);
            return 1;
        }

        rc = dlq_replay_one(x, i);
        if (rc < 0) {
            return 1;
        }

        if (rc == 0) {
            fprintf(stderr, "stripe-sync dlq: dead letter \"%s\" is no longer "
                    "in %s (replayed or purged meanwhile)\n", id, x->dead);
            return 1;
        }

        printf("replayed %s (%s) to %s\n", id, l->action, x->queue);

        for (found = 0, i++; i < x->list->elements; i++) {
            found += strcmp(x->letters[i].id, id) == 0;
        }

        if (found > 0) {
            fprintf(stderr, "%zu older dead letter(s) have the same id and "
                    "stay\n", found);
        }

        return 0;
    }

    /* --all: newest pushed first, so the oldest is taken first */
    done = 0;
    skipped = 0;

    for (i = 0; i < x->list->elements; i++) {
        l = &x->letters[i];

        if (!l->replayable) {
            fprintf(stderr, "skipped %s: %s\n", l->id, l->why);
            skipped++;
            continue;
        }

        rc = dlq_replay_one(x, i);
        if (rc < 0) {
            printf("replayed %zu dead letter(s) to %s before the error\n",
                   done, x->queue);
            return 1;
        }

        if (rc == 0) {
            fprintf(stderr, "skipped %s: no longer in %s\n", l->id, x->dead);
            skipped++;
            continue;
        }

        done++;
    }

    printf("replayed %zu dead letter(s) to %s", done, x->queue);
    if (skipped > 0) {
        printf("; %zu left in %s", skipped, x->dead);
    }
    printf("\n");

    return 0;
}


static int
dlq_purge(dlq_ctx *x, const char *id)
{
    redisReply  *rep, *e;
    const char  *argv[6];
    size_t       lens[6], i, found;
    long long    n;

    argv[0] = "EVAL";
    argv[1] = dlq_lua_purge;
    argv[2] = "2";
    argv[3] = x->dead;
    argv[4] = x->stats;

    for (i = 0; i < 5; i++) {
        lens[i] = strlen(argv[i]);
    }

    if (id == NULL) {
        rep = cli_redis_command(x->r, 5, argv, lens);
        if (rep == NULL) {
            fprintf(stderr, "stripe-sync dlq: %s\n", x->r->err);
            return 1;
        }

        printf("purged %lld dead letter(s) from %s\n",
               rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0LL,
               x->dead);
        freeReplyObject(rep);

        return 0;
    }

    found = 0;
    n = 0;

    for (i = 0; i < x->list->elements; i++) {
        if (strcmp(x->letters[i].id, id) != 0) {
            continue;
        }

        found++;
        e = x->list->element[i];
        argv[5] = e->str;
        lens[5] = e->len;

        rep = cli_redis_command(x->r, 6, argv, lens);
        if (rep == NULL) {
            fprintf(stderr, "stripe-sync dlq: %s\n", x->r->err);
            return 1;
        }

        n += rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
        freeReplyObject(rep);
    }

    if (found == 0) {
        fprintf(stderr, "stripe-sync dlq: no dead letter \"%s\" in %s\n", id,
                x->dead);
        return 1;
    }

    printf("purged %lld dead letter(s) from %s\n", n, x->dead);

    return 0;
}


int
cmd_dlq(int argc, char **argv)
{
    struct sigaction   sa;
    dlq_options        o;
    dlq_ctx            x;
    ss_config          c;
    char               err[1024];
    int                rc;

    rc = dlq_options_parse(argc, argv, &o, err, sizeof(err));
    if (rc == 1) {
        return 0;
    }

    if (rc != 0) {
        fprintf(stderr, "stripe-sync dlq: %s\n", err);
        dlq_usage(stderr);
        return 2;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    memset(&x, 0, sizeof(x));

    x.r = cli_redis_open(o.config, &c, err, sizeof(err));
    if (x.r == NULL) {
        fprintf(stderr, "stripe-sync dlq: %s\n", err);
        return 1;
    }

    if (cli_redis_key(x.r, x.dead, "dead", NULL) == NULL
        || cli_redis_key(x.r, x.queue, "queue", NULL) == NULL
        || cli_redis_key(x.r, x.stats, "stats", NULL) == NULL)
    {
        fprintf(stderr, "stripe-sync dlq: the prefix is too long\n");
        rc = 1;
        goto done;
    }

    if (o.verb == DLQ_PURGE && o.id == NULL) {
        rc = dlq_purge(&x, NULL);
        goto done;
    }

    if (dlq_fetch(&x) != 0) {
        rc = 1;
        goto done;
    }

    switch (o.verb) {
    case DLQ_LIST:
        rc = dlq_list(&x);
        break;
    case DLQ_SHOW:
        rc = dlq_show(&x, o.id);
        break;
    case DLQ_REPLAY:
        rc = dlq_replay(&x, o.id);
        break;
    case DLQ_PURGE:
        rc = dlq_purge(&x, o.id);
        break;
    }

done:

    if (x.list != NULL) {
        freeReplyObject(x.list);
    }
    free(x.letters);
    cli_redis_close(x.r, &c);

    return rc;
}
