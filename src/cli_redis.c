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


#define CLI_REDIS_CONNECT_TIMEOUT_S  5
#define CLI_REDIS_COMMAND_TIMEOUT_S  10


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
    struct timeval   tv;
    cli_redis       *r;
    redisReply      *rep;
    const char      *addr, *argv[2];
    char             host[256], unix_path[256], db[16];
    int              port;

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

    addr = c->redis != NULL ? c->redis : "127.0.0.1:6379";
    snprintf(r->addr, sizeof(r->addr), "%s", addr);
    snprintf(r->prefix, sizeof(r->prefix), "%s",
             c->prefix != NULL ? c->prefix : "stripe_sync");

    if (cli_redis_parse_addr(addr, host, sizeof(host), &port, unix_path,
                             sizeof(unix_path)) != 0)
    {
        snprintf(err, errlen, "redis address \"%s\" is not host:port or "
                 "unix:/path", addr);
        goto failed;
    }

    tv.tv_sec = CLI_REDIS_CONNECT_TIMEOUT_S;
    tv.tv_usec = 0;

    r->c = unix_path[0] ? redisConnectUnixWithTimeout(unix_path, tv)
                        : redisConnectWithTimeout(host, port, tv);

    if (r->c == NULL || r->c->err) {
        snprintf(err, errlen, "redis %s: %s", addr,
                 r->c != NULL ? r->c->errstr : "out of memory");
        goto failed;
    }

    tv.tv_sec = CLI_REDIS_COMMAND_TIMEOUT_S;

    if (redisSetTimeout(r->c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s: cannot set the command timeout",
                 addr);
        goto failed;
    }

    if (c->redis_password != NULL) {
        argv[0] = "AUTH";
        argv[1] = c->redis_password;
        rep = cli_redis_command(r, 2, argv, NULL);
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
        rep = cli_redis_command(r, 2, argv, NULL);
        if (rep == NULL) {
            snprintf(err, errlen, "%s (SELECT %s)", r->err, db);
            goto failed;
        }
        freeReplyObject(rep);
    }

    return r;

failed:

    cli_redis_free(r);
    config_free(c);

    return NULL;
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
        freeReplyObject(rep);
        return NULL;
    }

    return rep;
}
