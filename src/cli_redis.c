/*
 * cli_redis.c - Redis for the one-shot commands (cli_redis.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "cli_redis.h"
#include "config.h"
#include "sentinel.h"


#define CLI_REDIS_CONNECT_TIMEOUT_S  5
#define CLI_REDIS_COMMAND_TIMEOUT_S  10
#define CLI_REDIS_SENTINEL_TIMEOUT_MS  2000   /* per sentinel asked */


static int cli_redis_connect(cli_redis *r, char *err, size_t errlen);
static redisReply *cli_redis_command_once(cli_redis *r, int argc,
    const char **argv, const size_t *lens);


int
cli_redis_parse_addr(const char *addr, char *host, size_t hostlen,
    int *port, char *unix_path, size_t pathlen)
{
    const char  *colon, *h, *end;
    char        *p;
    long         n;
    size_t       hlen;

    host[0] = '\0';
    unix_path[0] = '\0';
    *port = 6379;

    if (strncmp(addr, "unix:", 5) == 0) {
        if (addr[5] == '\0' || strlen(addr + 5) >= pathlen) {
            return -1;
        }
        strcpy(unix_path, addr + 5);
        return 0;
    }

    if (addr[0] == '[') {
        end = strchr(addr, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            return -1;
        }
        h = addr + 1;
        hlen = (size_t) (end - h);
        colon = end[1] == ':' ? end + 1 : NULL;

    } else {
        h = addr;
        colon = strrchr(addr, ':');
        hlen = colon ? (size_t) (colon - addr) : strlen(addr);
    }

    if (colon != NULL) {
        n = strtol(colon + 1, &p, 10);
        if (p == colon + 1 || *p != '\0' || n < 1 || n > 65535) {
            return -1;
        }
        *port = (int) n;
    }

    if (hlen == 0 || hlen >= hostlen) {
        return -1;
    }

    memcpy(host, h, hlen);
    host[hlen] = '\0';

    return 0;
}


static void
cli_redis_free(cli_redis *r)
{
    if (r->c != NULL) {
        redisFree(r->c);
    }
    free(r);
}


cli_redis *
cli_redis_open(const char *path, ss_config *c, char *err, size_t errlen)
{
    cli_redis  *r;

    memset(c, 0, sizeof(*c));

    if (config_load(c, path, err, errlen, NULL) != 0) {
        return NULL;
    }

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        config_free(c);
        return NULL;
    }

    r->conf = c;
    snprintf(r->prefix, sizeof(r->prefix), "%s",
             c->prefix != NULL ? c->prefix : "stripe_sync");

    if (cli_redis_connect(r, err, errlen) != 0) {
        cli_redis_free(r);
        config_free(c);
        return NULL;
    }

    return r;
}


/*
 * Connects to the configured Redis, or to the primary the sentinels name
 * (checked with ROLE), then AUTH and SELECT. 0, or -1 with err set.
 */
static int
cli_redis_connect(cli_redis *r, char *err, size_t errlen)
{
    struct timeval    tv;
    redisReply       *rep;
    const ss_config  *c;
    const char       *addr, *argv[2];
    char              host[256], unix_path[256], db[16], why[256];
    int               port;

    c = r->conf;

    if (c->redis_sentinels.n > 0) {
        unix_path[0] = '\0';

        if (sentinel_primary(&c->redis_sentinels, c->redis_sentinel_name,
                             c->redis_sentinel_password,
                             CLI_REDIS_SENTINEL_TIMEOUT_MS, &r->next_sentinel,
                             host, sizeof(host), &port, why, sizeof(why))
            != 0)
        {
            snprintf(err, errlen, "redis: %s", why);
            return -1;
        }

        snprintf(r->addr, sizeof(r->addr), "%.100s@%.120s:%d",
                 c->redis_sentinel_name, host, port);

    } else {
        addr = c->redis != NULL ? c->redis : "127.0.0.1:6379";
        snprintf(r->addr, sizeof(r->addr), "%s", addr);

        if (cli_redis_parse_addr(addr, host, sizeof(host), &port, unix_path,
                                 sizeof(unix_path)) != 0)
        {
            snprintf(err, errlen, "redis address \"%s\" is not host:port "
                     "or unix:/path", addr);
            return -1;
        }
    }

    tv.tv_sec = CLI_REDIS_CONNECT_TIMEOUT_S;
    tv.tv_usec = 0;

    r->c = unix_path[0] ? redisConnectUnixWithTimeout(unix_path, tv)
                        : redisConnectWithTimeout(host, port, tv);

    if (r->c == NULL || r->c->err) {
        snprintf(err, errlen, "redis %s: %s", r->addr,
                 r->c != NULL ? r->c->errstr : "out of memory");
        goto failed;
    }

    tv.tv_sec = CLI_REDIS_COMMAND_TIMEOUT_S;

    if (redisSetTimeout(r->c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s: cannot set the command timeout",
                 r->addr);
        goto failed;
    }

    if (c->redis_password != NULL) {
        argv[0] = "AUTH";
        argv[1] = c->redis_password;
        rep = cli_redis_command_once(r, 2, argv, NULL);
        if (rep == NULL) {
            snprintf(err, errlen, "%s (AUTH)", r->err);
            goto failed;
        }
        freeReplyObject(rep);
    }

    if (c->redis_db != 0) {
        snprintf(db, sizeof(db), "%d", c->redis_db);
        argv[0] = "SELECT";
        argv[1] = db;
        rep = cli_redis_command_once(r, 2, argv, NULL);
        if (rep == NULL) {
            snprintf(err, errlen, "%s (SELECT %s)", r->err, db);
            goto failed;
        }
        freeReplyObject(rep);
    }

    /* a sentinel in a minority may name an old primary */
    if (c->redis_sentinels.n > 0
        && sentinel_check_role(r->c, why, sizeof(why)) != 1)
    {
        snprintf(err, errlen, "redis %s: %s", r->addr, why);
        goto failed;
    }

    return 0;

failed:

    if (r->c != NULL) {
        redisFree(r->c);
        r->c = NULL;
    }

    return -1;
}


void
cli_redis_close(cli_redis *r, ss_config *c)
{
    if (r != NULL) {
        cli_redis_free(r);
    }

    if (c != NULL) {
        config_free(c);
    }
}


const char *
cli_redis_key(const cli_redis *r, char *buf, const char *what,
    const char *arg)
{
    int  n;

    n = snprintf(buf, CLI_REDIS_KEY_MAX, "{%s}:%s%s", r->prefix, what,
                 arg != NULL ? arg : "");

    return n > 0 && n < CLI_REDIS_KEY_MAX ? buf : NULL;
}


redisReply *
cli_redis_command(cli_redis *r, int argc, const char **argv,
    const size_t *lens)
{
    redisReply  *rep;
    char         err[512];

    rep = cli_redis_command_once(r, argc, argv, lens);

    /* not executed by a demoted primary: once more, on the new one */
    if (rep == NULL && r->demoted && r->conf->redis_sentinels.n > 0) {
        r->demoted = 0;

        redisFree(r->c);
        r->c = NULL;

        if (cli_redis_connect(r, err, sizeof(err)) != 0) {
            snprintf(r->err, sizeof(r->err), "%s", err);
            return NULL;
        }

        rep = cli_redis_command_once(r, argc, argv, lens);
    }

    return rep;
}


static redisReply *
cli_redis_command_once(cli_redis *r, int argc, const char **argv,
    const size_t *lens)
{
    redisReply  *rep;

    r->demoted = 0;

    if (r->c == NULL) {
        snprintf(r->err, sizeof(r->err), "not connected");
        return NULL;
    }

    rep = redisCommandArgv(r->c, argc, argv, lens);

    if (rep == NULL) {
        snprintf(r->err, sizeof(r->err), "redis %s: %s", r->addr,
                 r->c->errstr[0] ? r->c->errstr : "connection error");
        redisFree(r->c);
        r->c = NULL;
        return NULL;
    }

    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(r->err, sizeof(r->err), "redis %s answered: %.200s",
                 r->addr, rep->str);
        r->demoted = sentinel_demoted(rep->str);
        freeReplyObject(rep);
        return NULL;
    }

    return rep;
}
