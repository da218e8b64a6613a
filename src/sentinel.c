/*
 * sentinel.c - Redis Sentinel lookups for the tool (sentinel.h).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "cli_redis.h"
#include "sentinel.h"


/* appends "; <what>" (or "<what>" first) to err, truncating */
static void
sentinel_note(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sentinel_note(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;
    size_t   n;

    n = strlen(err);
    if (n + 3 >= errlen) {
        return;
    }

    if (n > 0) {
        strcpy(err + n, "; ");
        n += 2;
    }

    va_start(ap, fmt);
    vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
}


int
sentinel_parse_address(const redisReply *r, char *host, size_t hostlen,
    int *port, char *err, size_t errlen)
{
    char  *end;
    long   p;

    if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "knows no such primary");
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "answered: %.200s", r->str);
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        snprintf(err, errlen, "answered something else than [ip, port]");
        return -1;
    }

    if (r->element[0]->len == 0 || r->element[0]->len >= hostlen
        || strpbrk(r->element[0]->str, " \t\r\n") != NULL)
    {
        snprintf(err, errlen, "named an invalid host");
        return -1;
    }

    p = strtol(r->element[1]->str, &end, 10);
    if (r->element[1]->len == 0 || *end != '\0' || p < 1 || p > 65535) {
        snprintf(err, errlen, "named an invalid port \"%.20s\"",
                 r->element[1]->str);
        return -1;
    }

    memcpy(host, r->element[0]->str, r->element[0]->len);
    host[r->element[0]->len] = '\0';
    *port = (int) p;

    return 0;
}


/* one sentinel: 0 with host and port, -1 with why in err */
static int
sentinel_ask(const char *addr, const char *name, const char *password,
    int timeout_ms, char *host, size_t hostlen, int *port, char *err,
    size_t errlen)
{
    struct timeval   tv;
    redisContext    *c;
    redisReply      *r;
    char             shost[SENTINEL_HOST_MAX], path[8];
    int              sport, rc;

    if (cli_redis_parse_addr(addr, shost, sizeof(shost), &sport, path,
                             sizeof(path)) != 0 || path[0] != '\0')
    {
        snprintf(err, errlen, "not host:port");
        return -1;
    }

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;

    c = redisConnectWithTimeout(shost, sport, tv);

    if (c == NULL || c->err) {
        snprintf(err, errlen, "%s", c != NULL ? c->errstr : "out of memory");
        if (c != NULL) {
            redisFree(c);
        }
        return -1;
    }

    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "cannot set a timeout");
        redisFree(c);
        return -1;
    }

    if (password != NULL) {
        r = redisCommand(c, "AUTH %s", password);

        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "AUTH: %.200s",
                     r != NULL ? r->str : c->errstr);
            if (r != NULL) {
                freeReplyObject(r);
            }
            redisFree(c);
            return -1;
        }

        freeReplyObject(r);
    }

    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);

    if (r == NULL) {
        snprintf(err, errlen, "%s", c->errstr[0] ? c->errstr
                                                  : "connection error");
        redisFree(c);
        return -1;
    }

    rc = sentinel_parse_address(r, host, hostlen, port, err, errlen);

    freeReplyObject(r);
    redisFree(c);

    return rc;
}


int
sentinel_primary(const cfg_strings *sentinels, const char *name,
    const char *password, int timeout_ms, size_t *next, char *host,
    size_t hostlen, int *port, char *err, size_t errlen)
{
    char    why[256];
    size_t  i, k;

    if (sentinels->n == 0) {
        snprintf(err, errlen, "no sentinels configured");
        return -1;
    }

    snprintf(err, errlen, "no sentinel named the primary of \"%s\": ",
             name);

    for (i = 0; i < sentinels->n; i++) {
        k = (*next + i) % sentinels->n;

        why[0] = '\0';

        if (sentinel_ask(sentinels->v[k], name, password, timeout_ms, host,
                         hostlen, port, why, sizeof(why)) == 0)
        {
            *next = k;
            err[0] = '\0';
            return 0;
        }

        if (i == 0) {
            snprintf(err + strlen(err), errlen - strlen(err), "%s: %s",
                     sentinels->v[k], why);
        } else {
            sentinel_note(err, errlen, "%s: %s", sentinels->v[k], why);
        }
    }

    *next = (*next + 1) % sentinels->n;

    return -1;
}


int
sentinel_check_role(redisContext *c, char *err, size_t errlen)
{
    redisReply  *r;
    int          rc;

    r = redisCommand(c, "ROLE");

    if (r == NULL) {
        snprintf(err, errlen, "ROLE: %s", c->errstr[0] ? c->errstr
                                                      : "connection error");
        return -1;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0
        && r->element[0]->type == REDIS_REPLY_STRING)
    {
        rc = strcmp(r->element[0]->str, "master") == 0;

        if (!rc) {
            snprintf(err, errlen, "not the primary (ROLE: %.40s)",
                     r->element[0]->str);
        }

    } else {
        rc = 0;
        snprintf(err, errlen, "not the primary (ROLE: %.200s)",
                 r->type == REDIS_REPLY_ERROR ? r->str : "?");
    }

    freeReplyObject(r);

    return rc;
}


int
sentinel_demoted(const char *error)
{
    /* UNBLOCKED: a blocking command (BLMOVE) ended by a demotion */
    return error != NULL
           && (strncmp(error, "READONLY", 8) == 0
               || strncmp(error, "UNBLOCKED", 9) == 0);
}
