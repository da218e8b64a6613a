/*
 * store.c - Redis for the consumer (store.h): connection, keys, scripts.
 *
 * Scripts are loaded with SCRIPT LOAD at each connect and run with EVALSHA,
 * falling back to EVAL when Redis answers NOSCRIPT (a SCRIPT FLUSH, or a
 * failover to a replica that never saw them).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "logging.h"
#include "store.h"


#define STORE_CONNECT_TIMEOUT_S  2
#define STORE_COMMAND_TIMEOUT_S  5      /* more than any BLMOVE wait */
#define STORE_BACKOFF_MIN_MS     100
#define STORE_BACKOFF_MAX_MS     5000
#define STORE_ERROR_PAUSE_MS     1000   /* after an error reply */
#define STORE_KEY_MAX            1024


/*
 * KEYS[1] {P}:job:<id>  KEYS[2] {P}:wm:<object> (optional)
 * ARGV[1] ttl
 * -> {attempts (0: another copy finished the job), {done step numbers},
 *     watermark or nil, {step numbers sent without a known outcome}}
 */
static const char  store_lua_begin[] =
    /* done by another copy (a list recovered while its owner lived) */
    "if redis.call('HGET', KEYS[1], 'done') == '1' then\n"
    "  return {0, {}, false, {}}\n"
    "end\n"
    "local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "local steps, sent = {}, {}\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  if string.sub(all[i], 1, 5) == 'step:' then\n"
    "    if all[i + 1] == 'done' then\n"
    "      steps[#steps + 1] = string.sub(all[i], 6)\n"
    "    elseif all[i + 1] == 'sent' then\n"
    "      sent[#sent + 1] = string.sub(all[i], 6)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local wm = false\n"
    "if #KEYS > 1 then wm = redis.call('GET', KEYS[2]) end\n"
    "return {n, steps, wm, sent}\n";

/*
 * KEYS[1] {P}:job:<id>  KEYS[2] {P}:stats
 * ARGV[1] "step:<i>"  ARGV[2] ttl  ARGV[3] "1" if skipped
 */
static const char  store_lua_step[] =
    "redis.call('HSET', KEYS[1], ARGV[1], 'done')\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "if ARGV[3] == '1' then\n"
    "  redis.call('HINCRBY', KEYS[2], 'consumer_skipped_ops', 1)\n"
    "end\n"
    "return 1\n";

/*
 * KEYS[1] {P}:job:<id>  ARGV[1] "step:<i>"  ARGV[2] ttl
 * Before a request the platform does not dedupe goes out: a later attempt
 * that finds "sent" looks at the platform before sending it again.
 */
static const char  store_lua_sent[] =
    "if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'done' then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], 'sent')\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return 1\n";

/*
 * KEYS[1] {P}:processing:<me>  KEYS[2] {P}:job:<id>  KEYS[3] {P}:stats
 * KEYS[4] {P}:wm:<object> (optional)
 * ARGV[1] raw  ARGV[2] counter  ARGV[3] created  ARGV[4] event id
 * ARGV[5] watermark ttl
 * The watermark comparison is watermark_newer(): created, then the event
 * id bytewise (Lua's own < follows the server's locale).
 */
static const char  store_lua_done[] =
    "local function after(a, b)\n"
    "  for i = 1, math.min(#a, #b) do\n"
    "    local x, y = string.byte(a, i), string.byte(b, i)\n"
    "    if x ~= y then return x > y end\n"
    "  end\n"
    "  return #a > #b\n"
    "end\n"
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('DEL', KEYS[2])\n"
    /* a marker, not nothing: a second copy of the job must end at begin */
    "redis.call('HSET', KEYS[2], 'done', '1')\n"
    "redis.call('EXPIRE', KEYS[2], 604800)\n"
    "redis.call('HINCRBY', KEYS[3], ARGV[2], 1)\n"
    "if #KEYS > 3 then\n"
    "  local cur = redis.call('GET', KEYS[4])\n"
    "  local newer = true\n"
    "  if cur then\n"
    "    local c, id = string.match(cur, '^(%-?%d+):(.*)$')\n"
    "    if c then\n"
    "      c = tonumber(c)\n"
    "      local mine = tonumber(ARGV[3])\n"
    "      newer = mine > c or (mine == c and after(ARGV[4], id))\n"
    "    end\n"
    "  end\n"
    "  if newer then\n"
    "    redis.call('SET', KEYS[4], ARGV[3] .. ':' .. ARGV[4], 'EX',"
    " ARGV[5])\n"
    "  end\n"
    "end\n"
    "return 1\n";

/*
 * KEYS[1] {P}:processing:<me>  KEYS[2] {P}:retry  KEYS[3] {P}:stats
 * ARGV[1] raw  ARGV[2] due (unix ms)
 */
static const char  store_lua_retry[] =
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n"
    "redis.call('HINCRBY', KEYS[3], 'consumer_retried', 1)\n"
    "return 1\n";

/*
 * KEYS[1] {P}:processing:<me>  KEYS[2] {P}:dead  KEYS[3] {P}:stats
 * KEYS[4] {P}:job:<id> (optional)
 * ARGV[1] raw  ARGV[2] the dead letter  ARGV[3] step record TTL
 *
 * The step record outlives the job: a replayed dead letter resumes at the
 * step that failed and never repeats a purchase made before it.
 */
static const char  store_lua_dead[] =
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('LPUSH', KEYS[2], ARGV[2])\n"
    "if #KEYS > 3 then redis.call('EXPIRE', KEYS[4], ARGV[3]) end\n"
    "redis.call('HINCRBY', KEYS[3], 'consumer_dead', 1)\n"
    "return 1\n";

/*
 * KEYS[1] {P}:retry  KEYS[2] {P}:queue
 * ARGV[1] now (unix ms)  ARGV[2] limit
 * The earliest due is pushed last, so it is taken first.
 */
static const char  store_lua_due[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],"
    " 'LIMIT', 0, ARGV[2])\n"
    "for i = #due, 1, -1 do\n"
    "  redis.call('ZREM', KEYS[1], due[i])\n"
    "  redis.call('RPUSH', KEYS[2], due[i])\n"
    "end\n"
    "return #due\n";

/*
 * KEYS[1] {P}:processing:<me>  KEYS[2] {P}:queue
 * ARGV    the entries this consumer holds (kept)
 * The list is newest first: pushing its entries right in that order
 * leaves the oldest at the take end.
 */
static const char  store_lua_requeue[] =
    "local held = {}\n"
    "for i = 1, #ARGV do held[ARGV[i]] = (held[ARGV[i]] or 0) + 1 end\n"
    "local all = redis.call('LRANGE', KEYS[1], 0, -1)\n"
    "local keep, moved = {}, 0\n"
    "for i = 1, #all do\n"
    "  local raw = all[i]\n"
    "  if (held[raw] or 0) > 0 then\n"
    "    held[raw] = held[raw] - 1\n"
    "    keep[#keep + 1] = raw\n"
    "  else\n"
    "    redis.call('RPUSH', KEYS[2], raw)\n"
    "    moved = moved + 1\n"
    "  end\n"
    "end\n"
    "if moved > 0 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  for i = 1, #keep do redis.call('RPUSH', KEYS[1], keep[i]) end\n"
    "end\n"
    "return moved\n";

/*
 * KEYS[1] {P}:consumers  KEYS[2] {P}:consumer:<other>
 * KEYS[3] {P}:processing:<other>  KEYS[4] {P}:queue
 * ARGV[1] <other>
 * -> entries moved, or -1 when <other> is alive after all
 */
static const char  store_lua_recover[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\n"
    "local n = 0\n"
    "while redis.call('LMOVE', KEYS[3], KEYS[4], 'LEFT', 'RIGHT') do\n"
    "  n = n + 1\n"
    "end\n"
    "redis.call('SREM', KEYS[1], ARGV[1])\n"
    "return n\n";

/*
 * KEYS[1] {P}:consumers  KEYS[2] {P}:consumer:<me>
 * KEYS[3] {P}:processing:<me>
 * ARGV[1] <me>
 */
static const char  store_lua_leave[] =
    "redis.call('DEL', KEYS[2])\n"
    "if redis.call('LLEN', KEYS[3]) == 0 then\n"
    "  redis.call('SREM', KEYS[1], ARGV[1])\n"
    "end\n"
    "return 1\n";

enum {
    STORE_BEGIN = 0,
    STORE_STEP,
    STORE_DONE,
    STORE_RETRY,
    STORE_DEAD,
    STORE_DUE,
    STORE_REQUEUE,
    STORE_RECOVER,
    STORE_LEAVE,
    STORE_SENT,
    STORE_SCRIPTS
};

static const char  *store_scripts[STORE_SCRIPTS] = {
    store_lua_begin, store_lua_step, store_lua_done, store_lua_retry,
    store_lua_dead, store_lua_due, store_lua_requeue, store_lua_recover,
    store_lua_leave, store_lua_sent
};

typedef enum {
    STORE_NEW = 0,      /* never tried */
    STORE_UP,
    STORE_DOWN          /* logged as down */
} store_state;

struct store {
    redisContext   *c;
    store_state     state;
    int             quiet;
    unsigned        generation;
    long long       retry_at;       /* ms: no command before this */
    long long       backoff;        /* ms: the next reconnect delay */

    char           *addr;           /* as configured, for logs */
    char           *host;
    int             port;
    char           *unix_path;
    char           *password;
    int             db;
    char           *prefix;
    char           *id;

    char            sha[STORE_SCRIPTS][41];
    char            err[512];
};


static long long
store_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static int
store_parse_addr(store *s, const char *addr, char *err, size_t errlen)
{
    const char  *colon, *host, *end;
    char        *p;
    long         port;
    size_t       hlen;

    if (strncmp(addr, "unix:", 5) == 0) {
        s->unix_path = strdup(addr + 5);
        return s->unix_path != NULL ? 0 : -1;
    }

    /* "[::1]:6379", "host:6379", "host" */
    if (addr[0] == '[') {
        end = strchr(addr, ']');
        if (end == NULL) {
            snprintf(err, errlen, "redis address \"%s\" has no \"]\"", addr);
            return -1;
        }
        host = addr + 1;
        hlen = (size_t) (end - host);
        colon = end[1] == ':' ? end + 1 : NULL;

    } else {
        host = addr;
        colon = strrchr(addr, ':');
        hlen = colon ? (size_t) (colon - addr) : strlen(addr);
    }

    port = 6379;

    if (colon != NULL) {
        port = strtol(colon + 1, &p, 10);
        if (p == colon + 1 || *p != '\0' || port < 1 || port > 65535) {
            snprintf(err, errlen, "redis address \"%s\" has a bad port",
                     addr);
            return -1;
        }
    }

    s->host = strndup(host, hlen);
    s->port = (int) port;

    return s->host != NULL ? 0 : -1;
}


store *
store_create(const ss_config *c, char *err, size_t errlen)
{
    store       *s;
    char         host[256];
    const char  *addr;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    addr = c->redis != NULL ? c->redis : "127.0.0.1:6379";

    if (c->consumer_id == NULL) {
        if (gethostname(host, sizeof(host)) != 0) {
            strcpy(host, "localhost");
        }
        host[sizeof(host) - 1] = '\0';

        if (asprintf(&s->id, "%s:%ld", host, (long) getpid()) < 0) {
            s->id = NULL;
        }

    } else {
        s->id = strdup(c->consumer_id);
    }

    s->addr = strdup(addr);
    s->prefix = strdup(c->prefix != NULL ? c->prefix : "stripe_sync");
    s->password = c->redis_password ? strdup(c->redis_password) : NULL;
    s->db = c->redis_db;
    s->backoff = STORE_BACKOFF_MIN_MS;

    if (s->id == NULL || s->addr == NULL || s->prefix == NULL
        || (c->redis_password != NULL && s->password == NULL))
    {
        snprintf(err, errlen, "out of memory");
        store_free(s);
        return NULL;
    }

    err[0] = '\0';

    if (store_parse_addr(s, addr, err, errlen) != 0) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "out of memory");
        }
        store_free(s);
        return NULL;
    }

    return s;
}


void
store_free(store *s)
{
    if (s == NULL) {
        return;
    }

    if (s->c != NULL) {
        redisFree(s->c);
    }

    if (s->password != NULL) {
        /* do not leave it in freed memory */
        memset(s->password, 0, strlen(s->password));
    }

    free(s->addr);
    free(s->host);
    free(s->unix_path);
    free(s->password);
    free(s->prefix);
    free(s->id);
    free(s);
}


void
store_set_quiet(store *s, int quiet)
{
    s->quiet = quiet;
}


unsigned
store_generation(const store *s)
{
    return s->generation;
}


const char *
store_error(const store *s)
{
    return s->err;
}


const char *
store_consumer_id(const store *s)
{
    return s->id;
}


/* "{P}:<what><arg>" */
static const char *
store_key(const store *s, char *buf, const char *what, const char *arg)
{
    int  n;

    n = snprintf(buf, STORE_KEY_MAX, "{%s}:%s%s", s->prefix, what,
                 arg != NULL ? arg : "");

    return n > 0 && n < STORE_KEY_MAX ? buf : NULL;
}


/* the connection is gone: log it once, reconnect after the backoff */
static void
store_lost(store *s, const char *why)
{
    if (why != s->err) {
        snprintf(s->err, sizeof(s->err), "%s", why);
    }

    if (s->state != STORE_DOWN && !s->quiet) {
        logging_printf("redis: %s %s: %s; retrying",
                       s->state == STORE_UP ? "lost the connection to"
                                            : "cannot connect to",
                       s->addr, s->err);
        s->state = STORE_DOWN;
    }

    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }

    s->retry_at = store_now_ms() + s->backoff;
    s->backoff = s->backoff * 2 < STORE_BACKOFF_MAX_MS ? s->backoff * 2
                                                       : STORE_BACKOFF_MAX_MS;
}


/* sends one command; NULL (the error in s->err) for no reply or an error */
static redisReply *
store_command(store *s, int argc, const char **argv, const size_t *lens)
{
    redisReply  *r;

    if (s->c == NULL) {
        snprintf(s->err, sizeof(s->err), "not connected");
        return NULL;
    }

    r = redisCommandArgv(s->c, argc, argv, lens);

    if (r == NULL) {
        store_lost(s, s->c->errstr[0] ? s->c->errstr : "connection error");
        return NULL;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->err, sizeof(s->err), "%s answered: %.400s", s->addr,
                 r->str);
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


/* a command that failed with an error reply: pause, and say so */
static void
store_failed(store *s, const char *what)
{
    if (s->c == NULL) {
        return;     /* store_lost() logged it */
    }

    if (!s->quiet) {
        logging_printf("redis: %s failed: %s", what, s->err);
    }

    s->retry_at = store_now_ms() + STORE_ERROR_PAUSE_MS;
}


static redisReply *
store_simple(store *s, const char *a0, const char *a1, const char *a2,
    const char *a3)
{
    const char  *argv[4];
    size_t       lens[4];
    int          argc;

    argv[0] = a0;
    argv[1] = a1;
    argv[2] = a2;
    argv[3] = a3;

    for (argc = 0; argc < 4 && argv[argc] != NULL; argc++) {
        lens[argc] = strlen(argv[argc]);
    }

    return store_command(s, argc, argv, lens);
}


static int
store_connect(store *s)
{
    struct timeval   tv;
    redisContext    *c;
    redisReply      *r;
    char             db[16];
    int              i;

    tv.tv_sec = STORE_CONNECT_TIMEOUT_S;
    tv.tv_usec = 0;

    c = s->unix_path != NULL ? redisConnectUnixWithTimeout(s->unix_path, tv)
                             : redisConnectWithTimeout(s->host, s->port, tv);

    if (c == NULL || c->err) {
        snprintf(s->err, sizeof(s->err), "%s",
                 c != NULL ? c->errstr : "out of memory");
        if (c != NULL) {
            redisFree(c);
        }
        return -1;
    }

    tv.tv_sec = STORE_COMMAND_TIMEOUT_S;

    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(s->err, sizeof(s->err), "cannot set the command timeout");
        redisFree(c);
        return -1;
    }

    s->c = c;

    if (s->password != NULL) {
        r = store_simple(s, "AUTH", s->password, NULL, NULL);
        if (r == NULL) {
            goto failed;
        }
        freeReplyObject(r);
    }

    if (s->db != 0) {
        snprintf(db, sizeof(db), "%d", s->db);
        r = store_simple(s, "SELECT", db, NULL, NULL);
        if (r == NULL) {
            goto failed;
        }
        freeReplyObject(r);
    }

    for (i = 0; i < STORE_SCRIPTS; i++) {
        r = store_simple(s, "SCRIPT", "LOAD", store_scripts[i], NULL);
        if (r == NULL) {
            goto failed;
        }

        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
            freeReplyObject(r);
            snprintf(s->err, sizeof(s->err), "SCRIPT LOAD: unexpected "
                     "reply");
            goto failed;
        }

        memcpy(s->sha[i], r->str, 40);
        s->sha[i][40] = '\0';
        freeReplyObject(r);
    }

    return 0;

failed:

    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }

    return -1;
}


int
store_ready(store *s, long long now_ms)
{
    if (now_ms < s->retry_at) {
        return 0;
    }

    if (s->c != NULL) {
        return 1;
    }

    if (store_connect(s) != 0) {
        store_lost(s, s->err);
        return 0;
    }

    if (!s->quiet) {
        logging_printf("redis: connected to %s as consumer \"%s\"",
                       s->addr, s->id);
    }

    s->state = STORE_UP;
    s->generation++;
    s->backoff = STORE_BACKOFF_MIN_MS;
    s->retry_at = 0;

    return 1;
}


/* EVALSHA, then EVAL when the server lost the script */
static redisReply *
store_script(store *s, int script, int nkeys, const char **keys, int nargs,
    const char **args, const size_t *arglens)
{
    const char   **argv;
    size_t        *lens;
    char           numkeys[16];
    int            argc, i;
    redisReply    *r;

    if (s->c == NULL) {
        snprintf(s->err, sizeof(s->err), "not connected");
        return NULL;
    }

    argc = 3 + nkeys + nargs;
    argv = malloc(argc * sizeof(*argv));
    lens = malloc(argc * sizeof(*lens));

    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        snprintf(s->err, sizeof(s->err), "out of memory");
        return NULL;
    }

    snprintf(numkeys, sizeof(numkeys), "%d", nkeys);

    argv[0] = "EVALSHA";
    argv[1] = s->sha[script];
    argv[2] = numkeys;

    for (i = 0; i < nkeys; i++) {
        argv[3 + i] = keys[i];
    }

    for (i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = args[i];
    }

    for (i = 0; i < argc; i++) {
        lens[i] = i >= 3 + nkeys && arglens != NULL
                  ? arglens[i - 3 - nkeys] : strlen(argv[i]);
    }

    r = redisCommandArgv(s->c, argc, argv, lens);

    if (r != NULL && r->type == REDIS_REPLY_ERROR
        && strncmp(r->str, "NOSCRIPT", 8) == 0)
    {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = store_scripts[script];
        lens[0] = 4;
        lens[1] = strlen(store_scripts[script]);
        r = redisCommandArgv(s->c, argc, argv, lens);
    }

    free(argv);
    free(lens);

    if (r == NULL) {
        store_lost(s, s->c->errstr[0] ? s->c->errstr : "connection error");
        return NULL;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->err, sizeof(s->err), "%s answered: %.400s", s->addr,
                 r->str);
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


/* a script's integer reply, or -1 (and the failure logged) */
static long long
store_script_integer(store *s, const char *what, int script, int nkeys,
    const char **keys, int nargs, const char **args, const size_t *lens)
{
    redisReply  *r;
    long long    v;

    r = store_script(s, script, nkeys, keys, nargs, args, lens);
    if (r == NULL) {
        store_failed(s, what);
        return -1;
    }

    v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);

    if (v < 0) {
        snprintf(s->err, sizeof(s->err), "%s: unexpected reply", what);
        store_failed(s, what);
    }

    return v;
}


int
store_take(store *s, long long block_ms, char **raw, size_t *len)
{
    char          queue[STORE_KEY_MAX], processing[STORE_KEY_MAX];
    char          timeout[32];
    redisReply   *r;
    const char   *argv[6];
    size_t        lens[6];
    int           argc, i;

    if (store_key(s, queue, "queue", NULL) == NULL
        || store_key(s, processing, "processing:", s->id) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    argc = 0;
    argv[argc++] = block_ms > 0 ? "BLMOVE" : "LMOVE";
    argv[argc++] = queue;
    argv[argc++] = processing;
    argv[argc++] = "RIGHT";
    argv[argc++] = "LEFT";

    if (block_ms > 0) {
        snprintf(timeout, sizeof(timeout), "%lld.%03lld", block_ms / 1000,
                 block_ms % 1000);
        argv[argc++] = timeout;
    }

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = store_command(s, argc, argv, lens);
    if (r == NULL) {
        store_failed(s, "taking from the queue");
        return -1;
    }

    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return 0;
    }

    *raw = malloc(r->len + 1);
    if (*raw == NULL) {
        /* it is in the processing list: recovered at the next start */
        freeReplyObject(r);
        snprintf(s->err, sizeof(s->err), "out of memory");
        return -1;
    }

    memcpy(*raw, r->str, r->len);
    (*raw)[r->len] = '\0';
    *len = r->len;

    freeReplyObject(r);
    return 1;
}


/* a step number from the begin script's reply, or -1 */
static long
store_step_number(const redisReply *e)
{
    long   n;
    char  *end;

    if (e->type != REDIS_REPLY_STRING) {
        return -1;
    }

    n = strtol(e->str, &end, 10);
    if (end == e->str || *end != '\0' || n < 0 || n >= 100000) {
        return -1;
    }

    return n;
}


int
store_job_begin(store *s, const char *event_id, const char *wm_object,
    store_job_state *st)
{
    char          job[STORE_KEY_MAX], wm[STORE_KEY_MAX], ttl[32];
    const char   *keys[2], *args[1];
    redisReply   *r, *steps;
    size_t        i, max;
    long          n;
    int           k;

    memset(st, 0, sizeof(*st));

    if (store_key(s, job, "job:", event_id) == NULL
        || (wm_object != NULL && store_key(s, wm, "wm:", wm_object) == NULL))
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    keys[0] = job;
    keys[1] = wm;
    snprintf(ttl, sizeof(ttl), "%d", STORE_JOB_TTL);
    args[0] = ttl;

    r = store_script(s, STORE_BEGIN, wm_object ? 2 : 1, keys, 1, args, NULL);
    if (r == NULL) {
        store_failed(s, "starting a job");
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4
        || r->element[0]->type != REDIS_REPLY_INTEGER
        || r->element[1]->type != REDIS_REPLY_ARRAY
        || r->element[3]->type != REDIS_REPLY_ARRAY)
    {
        freeReplyObject(r);
        snprintf(s->err, sizeof(s->err), "job start: unexpected reply");
        store_failed(s, "starting a job");
        return -1;
    }

    st->attempts = r->element[0]->integer;

    /* element 1: the steps done, element 3: those sent, outcome unknown */
    max = 0;
    for (k = 1; k <= 3; k += 2) {
        steps = r->element[k];
        for (i = 0; i < steps->elements; i++) {
            n = store_step_number(steps->element[i]);
            if (n >= 0 && (size_t) n + 1 > max) {
                max = (size_t) n + 1;
            }
        }
    }

    if (max > 0) {
        st->steps = calloc(max, 1);
        if (st->steps == NULL) {
            goto nomem;
        }
        st->nsteps = max;

        for (k = 3; k >= 1; k -= 2) {
            steps = r->element[k];
            for (i = 0; i < steps->elements; i++) {
                n = store_step_number(steps->element[i]);
                if (n >= 0) {
                    st->steps[n] = k == 1 ? STORE_STEP_DONE
                                          : STORE_STEP_SENT;
                }
            }
        }
    }

    if (r->element[2]->type == REDIS_REPLY_STRING) {
        st->watermark = strndup(r->element[2]->str, r->element[2]->len);
        if (st->watermark == NULL) {
            goto nomem;
        }
    }

    freeReplyObject(r);
    return 0;

nomem:

    freeReplyObject(r);
    store_job_state_free(st);
    snprintf(s->err, sizeof(s->err), "out of memory");
    return -1;
}


void
store_job_state_free(store_job_state *st)
{
    free(st->steps);
    free(st->watermark);
    memset(st, 0, sizeof(*st));
}


int
store_job_abandon(store *s, const char *event_id)
{
    char         job[STORE_KEY_MAX];
    redisReply  *r;

    if (store_key(s, job, "job:", event_id) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    r = store_simple(s, "HINCRBY", job, "attempts", "-1");
    if (r == NULL) {
        store_failed(s, "abandoning a job");
        return -1;
    }

    freeReplyObject(r);
    return 0;
}


int
store_step_done(store *s, const char *event_id, size_t i, int skipped)
{
    char         job[STORE_KEY_MAX], stats[STORE_KEY_MAX];
    char         field[32], ttl[32];
    const char  *keys[2], *args[3];

    if (store_key(s, job, "job:", event_id) == NULL
        || store_key(s, stats, "stats", NULL) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    snprintf(field, sizeof(field), "step:%zu", i);
    snprintf(ttl, sizeof(ttl), "%d", STORE_JOB_TTL);

    keys[0] = job;
    keys[1] = stats;
    args[0] = field;
    args[1] = ttl;
    args[2] = skipped ? "1" : "0";

    return store_script_integer(s, "recording a step", STORE_STEP, 2, keys,
                                3, args, NULL) < 0 ? -1 : 0;
}


int
store_step_sent(store *s, const char *event_id, size_t i)
{
    char         job[STORE_KEY_MAX], field[32], ttl[32];
    const char  *keys[1], *args[2];

    if (store_key(s, job, "job:", event_id) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    snprintf(field, sizeof(field), "step:%zu", i);
    snprintf(ttl, sizeof(ttl), "%d", STORE_JOB_TTL);

    keys[0] = job;
    args[0] = field;
    args[1] = ttl;

    return store_script_integer(s, "marking a step sent", STORE_SENT, 1,
                                keys, 2, args, NULL) < 0 ? -1 : 0;
}


int
store_job_done(store *s, const char *raw, size_t len, const char *event_id,
    const char *counter, const char *wm_object, long long created)
{
    char         processing[STORE_KEY_MAX], job[STORE_KEY_MAX];
    char         stats[STORE_KEY_MAX], wm[STORE_KEY_MAX];
    char         created_s[32], ttl[32];
    const char  *keys[4], *args[5];
    size_t       lens[5];
    int          i;

    if (store_key(s, processing, "processing:", s->id) == NULL
        || store_key(s, job, "job:", event_id) == NULL
        || store_key(s, stats, "stats", NULL) == NULL
        || (wm_object != NULL && store_key(s, wm, "wm:", wm_object) == NULL))
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    snprintf(created_s, sizeof(created_s), "%lld", created);
    snprintf(ttl, sizeof(ttl), "%d", STORE_WATERMARK_TTL);

    keys[0] = processing;
    keys[1] = job;
    keys[2] = stats;
    keys[3] = wm;

    args[0] = raw;
    args[1] = counter;
    args[2] = created_s;
    args[3] = event_id;
    args[4] = ttl;

    lens[0] = len;
    for (i = 1; i < 5; i++) {
        lens[i] = strlen(args[i]);
    }

    return (int) store_script_integer(s, "finishing a job", STORE_DONE,
                                      wm_object ? 4 : 3, keys, 5, args,
                                      lens);
}


int
store_job_retry(store *s, const char *raw, size_t len, long long due_ms)
{
    char         processing[STORE_KEY_MAX], retry[STORE_KEY_MAX];
    char         stats[STORE_KEY_MAX], due[32];
    const char  *keys[3], *args[2];
    size_t       lens[2];

    if (store_key(s, processing, "processing:", s->id) == NULL
        || store_key(s, retry, "retry", NULL) == NULL
        || store_key(s, stats, "stats", NULL) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    snprintf(due, sizeof(due), "%lld", due_ms);

    keys[0] = processing;
    keys[1] = retry;
    keys[2] = stats;
    args[0] = raw;
    args[1] = due;
    lens[0] = len;
    lens[1] = strlen(due);

    return (int) store_script_integer(s, "scheduling a retry", STORE_RETRY,
                                      3, keys, 2, args, lens);
}


int
store_job_dead(store *s, const char *raw, size_t len, const char *event_id,
    const char *letter)
{
    char         processing[STORE_KEY_MAX], dead[STORE_KEY_MAX];
    char         stats[STORE_KEY_MAX], job[STORE_KEY_MAX];
    const char  *keys[4], *args[3];
    size_t       lens[3];
    char         ttl[16];

    if (store_key(s, processing, "processing:", s->id) == NULL
        || store_key(s, dead, "dead", NULL) == NULL
        || store_key(s, stats, "stats", NULL) == NULL
        || (event_id != NULL && store_key(s, job, "job:", event_id) == NULL))
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    keys[0] = processing;
    keys[1] = dead;
    keys[2] = stats;
    keys[3] = job;
    snprintf(ttl, sizeof(ttl), "%d", STORE_DEAD_JOB_TTL);

    args[0] = raw;
    args[1] = letter;
    args[2] = ttl;
    lens[0] = len;
    lens[1] = strlen(letter);
    lens[2] = strlen(ttl);

    return (int) store_script_integer(s, "dead-lettering a job", STORE_DEAD,
                                      event_id ? 4 : 3, keys, 3, args, lens);
}


int
store_move_due(store *s, long long now_ms, int limit)
{
    char         retry[STORE_KEY_MAX], queue[STORE_KEY_MAX];
    char         now[32], lim[16];
    const char  *keys[2], *args[2];

    if (store_key(s, retry, "retry", NULL) == NULL
        || store_key(s, queue, "queue", NULL) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    snprintf(now, sizeof(now), "%lld", now_ms);
    snprintf(lim, sizeof(lim), "%d", limit);

    keys[0] = retry;
    keys[1] = queue;
    args[0] = now;
    args[1] = lim;

    return (int) store_script_integer(s, "moving due retries", STORE_DUE, 2,
                                      keys, 2, args, NULL);
}


int
store_heartbeat(store *s, int heartbeat)
{
    char          key[STORE_KEY_MAX], set[STORE_KEY_MAX], pid[32], ex[32];
    const char   *argv[5];
    size_t        lens[5];
    redisReply   *r;
    int           i;

    if (store_key(s, key, "consumer:", s->id) == NULL
        || store_key(s, set, "consumers", NULL) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    snprintf(pid, sizeof(pid), "%ld", (long) getpid());
    snprintf(ex, sizeof(ex), "%d", 3 * (heartbeat > 0 ? heartbeat : 10));

    argv[0] = "SET";
    argv[1] = key;
    argv[2] = pid;
    argv[3] = "EX";
    argv[4] = ex;

    for (i = 0; i < 5; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = store_command(s, 5, argv, lens);
    if (r == NULL) {
        store_failed(s, "the heartbeat");
        return -1;
    }
    freeReplyObject(r);

    r = store_simple(s, "SADD", set, s->id, NULL);
    if (r == NULL) {
        store_failed(s, "the heartbeat");
        return -1;
    }
    freeReplyObject(r);

    return 0;
}


int
store_requeue_unheld(store *s, char *const *held, const size_t *lens,
    size_t n)
{
    char         processing[STORE_KEY_MAX], queue[STORE_KEY_MAX];
    const char  *keys[2];

    if (store_key(s, processing, "processing:", s->id) == NULL
        || store_key(s, queue, "queue", NULL) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    keys[0] = processing;
    keys[1] = queue;

    return (int) store_script_integer(s, "requeueing this consumer's jobs",
                                      STORE_REQUEUE, 2, keys, (int) n,
                                      (const char **) held, lens);
}


/* 1 recovered, 0 alive after all, -1 error */
static int
store_recover_one(store *s, const char *id, long long *jobs)
{
    char          set[STORE_KEY_MAX], hb[STORE_KEY_MAX];
    char          processing[STORE_KEY_MAX], queue[STORE_KEY_MAX];
    const char   *keys[4], *args[1];
    redisReply   *r;
    long long     n;

    if (store_key(s, set, "consumers", NULL) == NULL
        || store_key(s, hb, "consumer:", id) == NULL
        || store_key(s, processing, "processing:", id) == NULL
        || store_key(s, queue, "queue", NULL) == NULL)
    {
        return 0;   /* an id too long to be one of ours */
    }

    keys[0] = set;
    keys[1] = hb;
    keys[2] = processing;
    keys[3] = queue;
    args[0] = id;

    r = store_script(s, STORE_RECOVER, 4, keys, 1, args, NULL);
    if (r == NULL) {
        store_failed(s, "recovering a consumer's jobs");
        return -1;
    }

    n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);

    if (n < 0) {
        return 0;
    }

    *jobs += n;
    logging_printf("recovered %lld job(s) of consumer \"%s\" (no "
                   "heartbeat)", n, id);
    return 1;
}


int
store_recover_dead(store *s, long long *consumers, long long *jobs)
{
    char          set[STORE_KEY_MAX], hb[STORE_KEY_MAX];
    redisReply   *members, *r;
    size_t        i;
    const char   *id;
    int           rc, alive;

    *consumers = 0;
    *jobs = 0;

    if (store_key(s, set, "consumers", NULL) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    members = store_simple(s, "SMEMBERS", set, NULL, NULL);
    if (members == NULL) {
        store_failed(s, "listing consumers");
        return -1;
    }

    rc = 0;

    for (i = 0; members->type == REDIS_REPLY_ARRAY && i < members->elements;
         i++)
    {
        if (members->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        id = members->element[i]->str;

        if (strcmp(id, s->id) == 0
            || store_key(s, hb, "consumer:", id) == NULL)
        {
            continue;
        }

        r = store_simple(s, "EXISTS", hb, NULL, NULL);
        if (r == NULL) {
            store_failed(s, "checking a heartbeat");
            rc = -1;
            break;
        }

        alive = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        freeReplyObject(r);

        if (alive) {
            continue;
        }

        switch (store_recover_one(s, id, jobs)) {
        case 1:
            (*consumers)++;
            break;
        case -1:
            rc = -1;
            break;
        }

        if (rc != 0) {
            break;
        }
    }

    freeReplyObject(members);
    return rc;
}


int
store_leave(store *s)
{
    char         set[STORE_KEY_MAX], hb[STORE_KEY_MAX];
    char         processing[STORE_KEY_MAX];
    const char  *keys[3], *args[1];

    if (store_key(s, set, "consumers", NULL) == NULL
        || store_key(s, hb, "consumer:", s->id) == NULL
        || store_key(s, processing, "processing:", s->id) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    keys[0] = set;
    keys[1] = hb;
    keys[2] = processing;
    args[0] = s->id;

    return store_script_integer(s, "leaving", STORE_LEAVE, 3, keys, 1, args,
                                NULL) < 0 ? -1 : 0;
}


int
store_customer_get(store *s, const char *customer_id, char **json)
{
    char         key[STORE_KEY_MAX];
    redisReply  *r;

    *json = NULL;

    if (store_key(s, key, "customers", NULL) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    r = store_simple(s, "HGET", key, customer_id, NULL);
    if (r == NULL) {
        store_failed(s, "reading the customer map");
        return -1;
    }

    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return 0;
    }

    *json = strndup(r->str, r->len);
    freeReplyObject(r);

    if (*json == NULL) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        return -1;
    }

    return 1;
}


int
store_customer_set(store *s, const char *customer_id, const char *json)
{
    char         key[STORE_KEY_MAX];
    redisReply  *r;

    if (store_key(s, key, "customers", NULL) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    r = store_simple(s, "HSET", key, customer_id, json);
    if (r == NULL) {
        store_failed(s, "writing the customer map");
        return -1;
    }

    freeReplyObject(r);
    return 0;
}


int
store_ping(store *s)
{
    redisReply  *r;

    r = store_simple(s, "PING", NULL, NULL, NULL);
    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);
    return 0;
}
