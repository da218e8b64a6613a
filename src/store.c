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
#include "sentinel.h"
#include "store.h"


#define STORE_CONNECT_TIMEOUT_S  2
#define STORE_COMMAND_TIMEOUT_S  5      /* more than any BLMOVE wait */
#define STORE_BACKOFF_MIN_MS     100
#define STORE_BACKOFF_MAX_MS     5000
#define STORE_SENTINEL_BACKOFF_MAX_MS  1000   /* a retry is one lookup */
#define STORE_SENTINEL_TIMEOUT_MS      1000   /* per sentinel asked */
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
 * The customer's order (docs/consumer.md, "Many consumers"): the end of a
 * job for good takes its event id out of {P}:order:<customer>; a job parked
 * behind it that is now at the head goes back to the take end of the
 * queue, and so does a parked copy of the job itself (it then ends as
 * already_done). {P}:parked scores the customer with the time its head
 * last moved (or was last found alive), for store_order_stuck().
 */
#define STORE_LUA_NOW_MS                                                      \
    "local function now_ms()\n"                                               \
    "  local t = redis.call('TIME')\n"                                        \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"    \
    "end\n"

#define STORE_LUA_RELEASE                                                     \
    STORE_LUA_NOW_MS                                                          \
    "local function release(order, parked, index, queue, id, ck)\n"           \
    "  local was = redis.call('LINDEX', order, 0)\n"                          \
    "  redis.call('LREM', order, 1, id)\n"                                    \
    "  local head = redis.call('LINDEX', order, 0)\n"                         \
    "  for _, x in ipairs({id, head}) do\n"                                   \
    "    local raw = x and redis.call('HGET', parked, x)\n"                   \
    "    if raw then\n"                                                       \
    "      redis.call('HDEL', parked, x)\n"                                   \
    "      redis.call('RPUSH', queue, raw)\n"                                 \
    "    end\n"                                                               \
    "  end\n"                                                                 \
    "  if redis.call('HLEN', parked) == 0 then\n"                             \
    "    redis.call('ZREM', index, ck)\n"                                     \
    "  elseif head ~= was then\n"                                             \
    "    redis.call('ZADD', index, 'XX', now_ms(), ck)\n"                     \
    "  end\n"                                                                 \
    "end\n"

/*
 * KEYS[1] {P}:processing:<me>  KEYS[2] {P}:job:<id>  KEYS[3] {P}:stats
 * KEYS[4] {P}:wm:<object> (when ARGV[6] is "1")
 * then, when ARGV[7] is not "": {P}:order:<customer>,
 * {P}:parked:<customer>, {P}:parked, {P}:queue
 * ARGV[1] raw  ARGV[2] counter  ARGV[3] created  ARGV[4] event id
 * ARGV[5] watermark ttl  ARGV[6] "1": a watermark key  ARGV[7] customer
 * The watermark comparison is watermark_newer(): created, then the event
 * id bytewise (Lua's own < follows the server's locale).
 */
static const char  store_lua_done[] =
    STORE_LUA_RELEASE
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
    "local k = 4\n"
    "if ARGV[6] == '1' then\n"
    "  k = 5\n"
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
    "if ARGV[7] ~= '' then\n"
    "  release(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[4],"
    " ARGV[7])\n"
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
 * KEYS[4] {P}:job:<id> (when ARGV[4] is not "")
 * then, when ARGV[5] is not "": {P}:order:<customer>,
 * {P}:parked:<customer>, {P}:parked, {P}:queue
 * ARGV[1] raw  ARGV[2] the dead letter  ARGV[3] step record TTL
 * ARGV[4] event id or ""  ARGV[5] customer or ""
 *
 * The step record outlives the job: a replayed dead letter resumes at the
 * step that failed and never repeats a purchase made before it. A dead
 * letter leaves its customer's order: a replay runs without waiting.
 */
static const char  store_lua_dead[] =
    STORE_LUA_RELEASE
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end\n"
    "redis.call('LPUSH', KEYS[2], ARGV[2])\n"
    "if ARGV[4] ~= '' then redis.call('EXPIRE', KEYS[4], ARGV[3]) end\n"
    "if ARGV[4] ~= '' and ARGV[5] ~= '' then\n"
    "  release(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[4], ARGV[5])\n"
    "end\n"
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

/*
 * KEYS[1] {P}:order:<customer>  KEYS[2] {P}:processing:<me>
 * KEYS[3] {P}:parked:<customer>  KEYS[4] {P}:parked  KEYS[5] {P}:stats
 * ARGV[1] event id  ARGV[2] raw  ARGV[3] customer
 * -> {1, head} start: the job is at the head of its customer's order, or
 *    not in it; {0, head} parked: out of the processing list into
 *    {P}:parked:<customer> until the jobs before it end; {2, head} not in
 *    this consumer's processing list (recovered by another)
 */
static const char  store_lua_claim[] =
    STORE_LUA_NOW_MS
    "local head = redis.call('LINDEX', KEYS[1], 0)\n"
    "if not head or head == ARGV[1]"
    " or not redis.call('LPOS', KEYS[1], ARGV[1]) then\n"
    /* ours still? a lost reply to an earlier claim may have parked it,
       and the end of the job before it sent it back to the queue */
    "  if not redis.call('LPOS', KEYS[2], ARGV[2]) then\n"
    "    return {2, head or ''}\n"
    "  end\n"
    "  return {1, head or ''}\n"
    "end\n"
    "if redis.call('LREM', KEYS[2], 1, ARGV[2]) == 0 then\n"
    "  return {2, head}\n"
    "end\n"
    "redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])\n"
    "redis.call('ZADD', KEYS[4], 'NX', now_ms(), ARGV[3])\n"
    /* a customer waiting is a customer still active */
    "redis.call('EXPIRE', KEYS[1], 604800)\n"
    "redis.call('HINCRBY', KEYS[5], 'consumer_parked', 1)\n"
    "return {0, head}\n";

/*
 * KEYS[1] {P}:parked  ARGV[1] ms  ARGV[2] limit
 * -> the customers with parked jobs whose head has not moved for ARGV[1]
 *    ms (Redis's clock: consumers' clocks may differ)
 */
static const char  store_lua_stuck[] =
    STORE_LUA_NOW_MS
    "return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',"
    " now_ms() - tonumber(ARGV[1]), 'LIMIT', 0, ARGV[2])\n";

/*
 * KEYS[1] {P}:order:<customer>  KEYS[2] {P}:parked:<customer>
 * KEYS[3] {P}:parked  KEYS[4] {P}:queue  KEYS[5] {P}:stats
 * ARGV[1] the head to skip (a job that exists nowhere), or ""
 * ARGV[2] customer  ARGV[3] "1": its head was found alive
 * Then every parked job at the head of the order, or no longer in it (an
 * order list expired or deleted), goes back to the queue. A customer whose
 * head is alive goes to the back of {P}:parked, so that the customers
 * looked at next are others (store_order_stuck takes the oldest).
 * -> {skipped (0 or 1), parked jobs moved}
 */
static const char  store_lua_heal[] =
    STORE_LUA_RELEASE
    "local skipped, moved = 0, 0\n"
    "if ARGV[1] ~= '' and redis.call('LINDEX', KEYS[1], 0) == ARGV[1]"
    " and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then\n"
    "  release(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])\n"
    "  redis.call('HINCRBY', KEYS[5], 'consumer_order_skipped', 1)\n"
    "  skipped = 1\n"
    "end\n"
    "local ids = redis.call('HKEYS', KEYS[2])\n"
    "if #ids > 0 then\n"
    "  local at = {}\n"
    "  local order = redis.call('LRANGE', KEYS[1], 0, -1)\n"
    "  for i = #order, 1, -1 do at[order[i]] = i end\n"
    "  for _, id in ipairs(ids) do\n"
    "    if at[id] == nil or at[id] == 1 then\n"
    "      redis.call('RPUSH', KEYS[4], redis.call('HGET', KEYS[2], id))\n"
    "      redis.call('HDEL', KEYS[2], id)\n"
    "      moved = moved + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if redis.call('HLEN', KEYS[2]) == 0 then\n"
    "  redis.call('ZREM', KEYS[3], ARGV[2])\n"
    "elseif ARGV[3] == '1' then\n"
    "  redis.call('ZADD', KEYS[3], 'XX', now_ms(), ARGV[2])\n"
    "end\n"
    "return {skipped, moved}\n";

/*
 * KEYS[1] {P}:queue  KEYS[2] {P}:retry  KEYS[3...] processing lists
 * ARGV[1] at most this many entries looked at in the queue and in the
 * retry set  ARGV[2...] event ids
 * -> per event id: 1 its job is in one of them, or there were too many
 *    entries to tell; 0 it is in none. A record's first "id" is its event
 *    id (action.c writes "v", then "id"). Atomic: a job moving between the
 *    lists cannot be missed, unless its consumer joined after the caller
 *    listed them.
 */
static const char  store_lua_find[] =
    "local want = {}\n"
    "for i = 2, #ARGV do want[ARGV[i]] = 0 end\n"
    "local max = tonumber(ARGV[1])\n"
    "local function look(entries)\n"
    "  for _, raw in ipairs(entries) do\n"
    "    local id = string.match(raw, '\"id\":\"([^\"]*)\"')\n"
    "    if id and want[id] then want[id] = 1 end\n"
    "  end\n"
    "end\n"
    "local all = redis.call('LLEN', KEYS[1]) > max"
    " or redis.call('ZCARD', KEYS[2]) > max\n"
    "if not all then\n"
    "  for i = 0, max - 1, 1000 do\n"
    "    local page = redis.call('LRANGE', KEYS[1], i, i + 999)\n"
    "    if #page == 0 then break end\n"
    "    look(page)\n"
    "  end\n"
    "  look(redis.call('ZRANGE', KEYS[2], 0, -1))\n"
    "  for k = 3, #KEYS do look(redis.call('LRANGE', KEYS[k], 0, -1)) end\n"
    "end\n"
    "local out = {}\n"
    "for i = 2, #ARGV do\n"
    "  out[#out + 1] = (all or want[ARGV[i]] == 1) and 1 or 0\n"
    "end\n"
    "return out\n";

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
    STORE_CLAIM,
    STORE_STUCK,
    STORE_HEAL,
    STORE_FIND,
    STORE_SCRIPTS
};

static const char  *store_scripts[STORE_SCRIPTS] = {
    store_lua_begin, store_lua_step, store_lua_done, store_lua_retry,
    store_lua_dead, store_lua_due, store_lua_requeue, store_lua_recover,
    store_lua_leave, store_lua_sent, store_lua_claim, store_lua_stuck,
    store_lua_heal, store_lua_find
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

    /* behind Sentinel: host and port are looked up at each connect, and
       addr is "<name>@<host>:<port>" */
    cfg_strings     sentinels;
    char           *sentinel_name;
    char           *sentinel_password;
    size_t          next_sentinel;

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


static int store_copy_sentinels(store *s, const ss_config *c);
static int store_find_primary(store *s);
static void store_error_reply(store *s, redisReply *r);


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

    if (c->redis_sentinels.n > 0) {
        if (store_copy_sentinels(s, c) != 0) {
            snprintf(err, errlen, "out of memory");
            store_free(s);
            return NULL;
        }

        return s;
    }

    if (store_parse_addr(s, addr, err, errlen) != 0) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "out of memory");
        }
        store_free(s);
        return NULL;
    }

    return s;
}


/* addr is the primary's name until a lookup says where it is */
static int
store_copy_sentinels(store *s, const ss_config *c)
{
    size_t  i;

    s->sentinels.v = calloc(c->redis_sentinels.n, sizeof(char *));
    if (s->sentinels.v == NULL) {
        return -1;
    }

    for (i = 0; i < c->redis_sentinels.n; i++) {
        s->sentinels.v[i] = strdup(c->redis_sentinels.v[i]);
        if (s->sentinels.v[i] == NULL) {
            return -1;
        }
        s->sentinels.n++;
    }

    free(s->addr);
    s->addr = strdup(c->redis_sentinel_name);
    s->sentinel_name = strdup(c->redis_sentinel_name);

    if (c->redis_sentinel_password != NULL) {
        s->sentinel_password = strdup(c->redis_sentinel_password);
        if (s->sentinel_password == NULL) {
            return -1;
        }
    }

    return s->addr != NULL && s->sentinel_name != NULL ? 0 : -1;
}


/* asks the sentinels where the primary is: host, port and addr; 0 or -1 */
static int
store_find_primary(store *s)
{
    char   host[SENTINEL_HOST_MAX], *h, *addr;
    int    port;

    if (sentinel_primary(&s->sentinels, s->sentinel_name,
                         s->sentinel_password, STORE_SENTINEL_TIMEOUT_MS,
                         &s->next_sentinel, host, sizeof(host), &port,
                         s->err, sizeof(s->err)) != 0)
    {
        return -1;
    }

    if (s->host != NULL && (strcmp(s->host, host) != 0 || s->port != port)
        && !s->quiet)
    {
        logging_printf("redis: the sentinels name %s:%d as the primary of "
                       "%s (was %s:%d)", host, port, s->sentinel_name,
                       s->host, s->port);
    }

    h = strdup(host);
    if (h == NULL || asprintf(&addr, "%s@%s:%d", s->sentinel_name, host,
                              port) < 0)
    {
        free(h);
        snprintf(s->err, sizeof(s->err), "out of memory");
        return -1;
    }

    free(s->host);
    free(s->addr);
    s->host = h;
    s->port = port;
    s->addr = addr;

    return 0;
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

    if (s->sentinel_password != NULL) {
        memset(s->sentinel_password, 0, strlen(s->sentinel_password));
        free(s->sentinel_password);
    }

    while (s->sentinels.n > 0) {
        free(s->sentinels.v[--s->sentinels.n]);
    }

    free(s->sentinels.v);
    free(s->sentinel_name);
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
store_address(const store *s)
{
    return s->addr;
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
    s->backoff = s->backoff * 2;

    if (s->backoff > (s->sentinels.n > 0 ? STORE_SENTINEL_BACKOFF_MAX_MS
                                         : STORE_BACKOFF_MAX_MS))
    {
        s->backoff = s->sentinels.n > 0 ? STORE_SENTINEL_BACKOFF_MAX_MS
                                        : STORE_BACKOFF_MAX_MS;
    }
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
        store_error_reply(s, r);
        return NULL;
    }

    return r;
}


/*
 * Frees an error reply; READONLY (or UNBLOCKED) means the server is no
 * longer the primary: drop the connection, the next store_ready() looks
 * for the primary again (asking the sentinels when configured).
 */
static void
store_error_reply(store *s, redisReply *r)
{
    int  demoted;

    demoted = sentinel_demoted(r->str);
    freeReplyObject(r);

    if (demoted) {
        store_lost(s, s->err);
    }
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


/* a command answered with a string or nil: 1 with *out (malloc'd), 0 for
   anything but a string, -1 on error (logged, doing what) */
static int
store_get_string(store *s, const char *what, char **out, const char *a0,
    const char *a1, const char *a2)
{
    redisReply  *r;

    *out = NULL;

    r = store_simple(s, a0, a1, a2, NULL);
    if (r == NULL) {
        store_failed(s, what);
        return -1;
    }

    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return 0;
    }

    *out = strndup(r->str, r->len);
    freeReplyObject(r);

    if (*out == NULL) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        return -1;
    }

    return 1;
}


static int
store_connect(store *s)
{
    struct timeval   tv;
    redisContext    *c;
    redisReply      *r;
    char             db[16];
    int              i;

    if (s->sentinels.n > 0 && store_find_primary(s) != 0) {
        return -1;
    }

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

    /* a sentinel in a minority may name an old primary: never write to
       a replica */
    if (s->sentinels.n > 0) {
        char  why[128];

        if (sentinel_check_role(s->c, why, sizeof(why)) != 1) {
            snprintf(s->err, sizeof(s->err), "%s: %s", s->addr, why);
            goto failed;
        }
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
        store_error_reply(s, r);
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


/* the keys of a customer's order (STORE_LUA_RELEASE), in script order */
typedef struct {
    char  order[STORE_KEY_MAX];
    char  parked[STORE_KEY_MAX];
    char  index[STORE_KEY_MAX];
    char  queue[STORE_KEY_MAX];
} store_order_keys;


/* 1 with the keys, 0 when the job has no order: no customer key, or one
   too long for a key of ours */
static int
store_order_keys_of(store *s, const char *customer, store_order_keys *k)
{
    if (customer == NULL || customer[0] == '\0') {
        return 0;
    }

    return store_key(s, k->order, "order:", customer) != NULL
           && store_key(s, k->parked, "parked:", customer) != NULL
           && store_key(s, k->index, "parked", NULL) != NULL
           && store_key(s, k->queue, "queue", NULL) != NULL;
}


int
store_job_done(store *s, const char *raw, size_t len, const char *event_id,
    const char *counter, const char *wm_object, long long created,
    const char *customer)
{
    char               processing[STORE_KEY_MAX], job[STORE_KEY_MAX];
    char               stats[STORE_KEY_MAX], wm[STORE_KEY_MAX];
    char               created_s[32], ttl[32];
    const char        *keys[8], *args[7];
    size_t             lens[7];
    int                i, nkeys, ordered;
    store_order_keys   ok;

    if (store_key(s, processing, "processing:", s->id) == NULL
        || store_key(s, job, "job:", event_id) == NULL
        || store_key(s, stats, "stats", NULL) == NULL
        || (wm_object != NULL && store_key(s, wm, "wm:", wm_object) == NULL))
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    ordered = store_order_keys_of(s, customer, &ok);

    snprintf(created_s, sizeof(created_s), "%lld", created);
    snprintf(ttl, sizeof(ttl), "%d", STORE_WATERMARK_TTL);

    nkeys = 0;
    keys[nkeys++] = processing;
    keys[nkeys++] = job;
    keys[nkeys++] = stats;
    if (wm_object != NULL) {
        keys[nkeys++] = wm;
    }
    if (ordered) {
        keys[nkeys++] = ok.order;
        keys[nkeys++] = ok.parked;
        keys[nkeys++] = ok.index;
        keys[nkeys++] = ok.queue;
    }

    args[0] = raw;
    args[1] = counter;
    args[2] = created_s;
    args[3] = event_id;
    args[4] = ttl;
    args[5] = wm_object != NULL ? "1" : "0";
    args[6] = ordered ? customer : "";

    lens[0] = len;
    for (i = 1; i < 7; i++) {
        lens[i] = strlen(args[i]);
    }

    return (int) store_script_integer(s, "finishing a job", STORE_DONE,
                                      nkeys, keys, 7, args, lens);
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
    const char *letter, const char *customer)
{
    char               processing[STORE_KEY_MAX], dead[STORE_KEY_MAX];
    char               stats[STORE_KEY_MAX], job[STORE_KEY_MAX];
    const char        *keys[8], *args[5];
    size_t             lens[5];
    char               ttl[16];
    int                i, nkeys, ordered;
    store_order_keys   ok;

    if (store_key(s, processing, "processing:", s->id) == NULL
        || store_key(s, dead, "dead", NULL) == NULL
        || store_key(s, stats, "stats", NULL) == NULL
        || (event_id != NULL && store_key(s, job, "job:", event_id) == NULL))
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    ordered = event_id != NULL && store_order_keys_of(s, customer, &ok);

    nkeys = 0;
    keys[nkeys++] = processing;
    keys[nkeys++] = dead;
    keys[nkeys++] = stats;
    if (event_id != NULL) {
        keys[nkeys++] = job;
    }
    if (ordered) {
        keys[nkeys++] = ok.order;
        keys[nkeys++] = ok.parked;
        keys[nkeys++] = ok.index;
        keys[nkeys++] = ok.queue;
    }

    snprintf(ttl, sizeof(ttl), "%d", STORE_DEAD_JOB_TTL);

    args[0] = raw;
    args[1] = letter;
    args[2] = ttl;
    args[3] = event_id != NULL ? event_id : "";
    args[4] = ordered ? customer : "";

    lens[0] = len;
    for (i = 1; i < 5; i++) {
        lens[i] = strlen(args[i]);
    }

    return (int) store_script_integer(s, "dead-lettering a job", STORE_DEAD,
                                      nkeys, keys, 5, args, lens);
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
    char  key[STORE_KEY_MAX];

    *json = NULL;

    if (store_key(s, key, "customers", NULL) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    return store_get_string(s, "reading the customer map", json, "HGET",
                            key, customer_id);
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


/* ---- the customer's order across consumers (store.h) ---- */

int
store_order_claim(store *s, const char *customer, const char *event_id,
    const char *raw, size_t len, char *head, size_t headlen)
{
    char               processing[STORE_KEY_MAX], stats[STORE_KEY_MAX];
    const char        *keys[5], *args[3];
    size_t             lens[3];
    redisReply        *r;
    store_order_keys   ok;
    long long          rc;

    if (headlen > 0) {
        head[0] = '\0';
    }

    if (!store_order_keys_of(s, customer, &ok)) {
        return STORE_ORDER_START;
    }

    if (store_key(s, processing, "processing:", s->id) == NULL
        || store_key(s, stats, "stats", NULL) == NULL)
    {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    keys[0] = ok.order;
    keys[1] = processing;
    keys[2] = ok.parked;
    keys[3] = ok.index;
    keys[4] = stats;

    args[0] = event_id;
    args[1] = raw;
    args[2] = customer;
    lens[0] = strlen(event_id);
    lens[1] = len;
    lens[2] = strlen(customer);

    r = store_script(s, STORE_CLAIM, 5, keys, 3, args, lens);
    if (r == NULL) {
        store_failed(s, "claiming a job's turn");
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_INTEGER
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        freeReplyObject(r);
        snprintf(s->err, sizeof(s->err), "claim: unexpected reply");
        store_failed(s, "claiming a job's turn");
        return -1;
    }

    rc = r->element[0]->integer;

    if (headlen > 0) {
        snprintf(head, headlen, "%.*s", (int) r->element[1]->len,
                 r->element[1]->str);
    }

    freeReplyObject(r);

    return rc == 0 ? STORE_ORDER_PARKED
           : rc == 2 ? STORE_ORDER_GONE : STORE_ORDER_START;
}


void
store_strings_free(char **v, size_t n)
{
    size_t  i;

    for (i = 0; v != NULL && i < n; i++) {
        free(v[i]);
    }

    free(v);
}


int
store_order_stuck(store *s, long long stuck_ms, int limit, char ***customers,
    size_t *n)
{
    char          index[STORE_KEY_MAX], ms[32], lim[16];
    const char   *keys[1], *args[2];
    redisReply   *r;
    char        **v;
    size_t        i;

    *customers = NULL;
    *n = 0;

    if (store_key(s, index, "parked", NULL) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    snprintf(ms, sizeof(ms), "%lld", stuck_ms);
    snprintf(lim, sizeof(lim), "%d", limit);

    keys[0] = index;
    args[0] = ms;
    args[1] = lim;

    r = store_script(s, STORE_STUCK, 1, keys, 2, args, NULL);
    if (r == NULL) {
        store_failed(s, "listing customers waiting");
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        snprintf(s->err, sizeof(s->err), "stuck: unexpected reply");
        store_failed(s, "listing customers waiting");
        return -1;
    }

    v = calloc(r->elements + 1, sizeof(*v));
    if (v == NULL) {
        freeReplyObject(r);
        snprintf(s->err, sizeof(s->err), "out of memory");
        return -1;
    }

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        v[*n] = strndup(r->element[i]->str, r->element[i]->len);
        if (v[*n] == NULL) {
            freeReplyObject(r);
            store_strings_free(v, *n);
            *n = 0;
            snprintf(s->err, sizeof(s->err), "out of memory");
            return -1;
        }
        (*n)++;
    }

    freeReplyObject(r);
    *customers = v;

    return 0;
}


int
store_order_head(store *s, const char *customer, char **head, int *done)
{
    store_order_keys   ok;
    char               job[STORE_KEY_MAX];
    redisReply        *r;
    int                rc;

    *head = NULL;
    *done = 0;

    if (!store_order_keys_of(s, customer, &ok)) {
        return 0;
    }

    rc = store_get_string(s, "reading a customer's order", head, "LINDEX",
                          ok.order, "0");
    if (rc != 1) {
        return rc;
    }

    if (store_key(s, job, "job:", *head) == NULL) {
        return 1;
    }

    r = store_simple(s, "HGET", job, "done", NULL);
    if (r == NULL) {
        store_failed(s, "reading a job's record");
        free(*head);
        *head = NULL;
        return -1;
    }

    *done = r->type == REDIS_REPLY_STRING && r->len == 1 && r->str[0] == '1';
    freeReplyObject(r);

    return 1;
}


int
store_jobs_find(store *s, char *const *ids, size_t n, int *found)
{
    char          set[STORE_KEY_MAX], max[16];
    char        (*keys_buf)[STORE_KEY_MAX];
    const char  **keys, **args;
    redisReply   *members, *r;
    size_t        i, nkeys;
    int           rc;

    for (i = 0; i < n; i++) {
        found[i] = 1;
    }

    if (n == 0) {
        return 0;
    }

    if (store_key(s, set, "consumers", NULL) == NULL) {
        snprintf(s->err, sizeof(s->err), "key too long");
        return -1;
    }

    members = store_simple(s, "SMEMBERS", set, NULL, NULL);
    if (members == NULL) {
        store_failed(s, "listing consumers");
        return -1;
    }

    nkeys = 2 + (members->type == REDIS_REPLY_ARRAY ? members->elements : 0);
    keys_buf = calloc(nkeys, sizeof(*keys_buf));
    keys = calloc(nkeys, sizeof(*keys));
    args = calloc(n + 1, sizeof(*args));

    if (keys_buf == NULL || keys == NULL || args == NULL) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        rc = -1;
        goto done;
    }

    store_key(s, keys_buf[0], "queue", NULL);
    store_key(s, keys_buf[1], "retry", NULL);
    keys[0] = keys_buf[0];
    keys[1] = keys_buf[1];
    nkeys = 2;

    for (i = 0; members->type == REDIS_REPLY_ARRAY && i < members->elements;
         i++)
    {
        if (members->element[i]->type == REDIS_REPLY_STRING
            && store_key(s, keys_buf[nkeys], "processing:",
                         members->element[i]->str) != NULL)
        {
            keys[nkeys] = keys_buf[nkeys];
            nkeys++;
        }
    }

    snprintf(max, sizeof(max), "%d", STORE_FIND_MAX);
    args[0] = max;
    for (i = 0; i < n; i++) {
        args[i + 1] = ids[i];
    }

    r = store_script(s, STORE_FIND, (int) nkeys, keys, (int) n + 1, args,
                     NULL);
    if (r == NULL) {
        store_failed(s, "looking for jobs");
        rc = -1;
        goto done;
    }

    rc = 0;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == n) {
        for (i = 0; i < n; i++) {
            found[i] = r->element[i]->type != REDIS_REPLY_INTEGER
                       || r->element[i]->integer != 0;
        }
    }

    freeReplyObject(r);

done:

    freeReplyObject(members);
    free(keys_buf);
    free(keys);
    free(args);

    return rc;
}


int
store_order_heal(store *s, const char *customer, const char *skip_head,
    int alive, int *skipped, int *moved)
{
    char               stats[STORE_KEY_MAX];
    const char        *keys[5], *args[3];
    redisReply        *r;
    store_order_keys   ok;

    *skipped = 0;
    *moved = 0;

    if (!store_order_keys_of(s, customer, &ok)
        || store_key(s, stats, "stats", NULL) == NULL)
    {
        return 0;
    }

    keys[0] = ok.order;
    keys[1] = ok.parked;
    keys[2] = ok.index;
    keys[3] = ok.queue;
    keys[4] = stats;
    args[0] = skip_head != NULL ? skip_head : "";
    args[1] = customer;
    args[2] = alive ? "1" : "0";

    r = store_script(s, STORE_HEAL, 5, keys, 3, args, NULL);
    if (r == NULL) {
        store_failed(s, "releasing a customer's parked jobs");
        return -1;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2
        && r->element[0]->type == REDIS_REPLY_INTEGER
        && r->element[1]->type == REDIS_REPLY_INTEGER)
    {
        *skipped = (int) r->element[0]->integer;
        *moved = (int) r->element[1]->integer;
    }

    freeReplyObject(r);
    return 0;
}
