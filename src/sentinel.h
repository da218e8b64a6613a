/*
 * sentinel.h - Redis Sentinel for the tool's synchronous connections
 * (store.c for "consume", cli_redis.c for the one-shot commands): where the
 * primary is, and whether a connection is to it.
 *
 *     char    host[SENTINEL_HOST_MAX];
 *     int     port;
 *     size_t  next = 0;
 *
 *     if (sentinel_primary(&c->redis_sentinels, c->redis_sentinel_name,
 *                          c->redis_sentinel_password, 1000, &next,
 *                          host, sizeof(host), &port, err, errlen) == 0)
 *     {
 *         rc = redisConnectWithTimeout(host, port, tv);   ... AUTH, SELECT
 *         if (sentinel_check_role(rc, err, errlen) != 1) ... not the primary
 *     }
 *
 * Each lookup asks the sentinels in turn (SENTINEL get-master-addr-by-name)
 * starting with the one that answered last, and takes the first address.
 * ROLE is what decides: a sentinel in a minority may name an old primary.
 */

#ifndef SENTINEL_H
#define SENTINEL_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "config.h"

#define SENTINEL_HOST_MAX  256

/*
 * The primary's address. 0 with host and *port set; -1 with err naming
 * what each sentinel said ("no sentinel named the primary of \"name\":
 * 127.0.0.1:26379: Connection refused; ..."). *next: the sentinel to ask
 * first, left at the one that answered.
 */
int sentinel_primary(const cfg_strings *sentinels, const char *name,
    const char *password, int timeout_ms, size_t *next, char *host,
    size_t hostlen, int *port, char *err, size_t errlen);

/* SENTINEL get-master-addr-by-name's reply: ["ip", "port"]; 0 or -1 */
int sentinel_parse_address(const redisReply *r, char *host, size_t hostlen,
    int *port, char *err, size_t errlen);

/* ROLE on c: 1 "master", 0 another role (err says which), -1 no answer */
int sentinel_check_role(redisContext *c, char *err, size_t errlen);

/* 1 for an error reply that means "not the primary": READONLY, or
   UNBLOCKED (a BLMOVE ended by a demotion) */
int sentinel_demoted(const char *error);

#endif /* SENTINEL_H */
