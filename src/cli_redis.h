/*
 * cli_redis.h - Redis for the one-shot commands ("stripe-sync dlq",
 * "stripe-sync stats"): the configuration file loaded as "consume" loads
 * it, then one synchronous hiredis connection (AUTH, SELECT) and the
 * "{P}:" key names.
 *
 *     ss_config  c;
 *     cli_redis *r = cli_redis_open(path, &c, err, sizeof(err));
 *     reply = cli_redis_command(r, argc, argv, lens);   // NULL: r->err
 *     cli_redis_close(r, &c);
 *
 * Unlike the consumer's store.h there is no reconnecting: a command that
 * cannot reach Redis says so and exits 1. Behind Sentinel (redis_sentinels
 * in the config) the primary is looked up and checked with ROLE; a command
 * answered READONLY (the primary was demoted) is sent once more to the
 * primary the sentinels name then.
 */

#ifndef CLI_REDIS_H
#define CLI_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "config.h"

#define CLI_DEFAULT_CONFIG  "/etc/stripe-sync/stripe-sync.conf"
#define CLI_REDIS_KEY_MAX   1024

typedef struct {
    redisContext     *c;
    char              addr[256];   /* as configured, or "<name>@host:port"
                                      behind Sentinel; for messages */
    char              prefix[256];
    char              err[512];    /* never holds the password */
    const ss_config  *conf;        /* the caller's, until close */
    size_t            next_sentinel;
    int               demoted;     /* the last error was READONLY */
} cli_redis;

/*
 * Loads the config file at path into *c and connects. NULL on error, with
 * err saying "FILE:LINE: ..." or "redis ADDR: ...". On success, free both
 * with cli_redis_close().
 */
cli_redis *cli_redis_open(const char *path, ss_config *c, char *err,
    size_t errlen);

void cli_redis_close(cli_redis *r, ss_config *c);

/* "{P}:<what><arg>" into buf (CLI_REDIS_KEY_MAX bytes); NULL if too long */
const char *cli_redis_key(const cli_redis *r, char *buf, const char *what,
    const char *arg);

/*
 * One command. The reply (freeReplyObject() it), or NULL with r->err set
 * for a lost connection or an error reply ("ADDR answered: ...").
 * lens may be NULL: then every argv[i] is a C string.
 */
redisReply *cli_redis_command(cli_redis *r, int argc, const char **argv,
    const size_t *lens);

/* "host:port", "[::1]:port", "host" or "unix:/path", split; 0 or -1 */
int cli_redis_parse_addr(const char *addr, char *host, size_t hostlen,
    int *port, char *unix_path, size_t pathlen);

#endif /* CLI_REDIS_H */
