/*
 * Unit tests of sentinel.c: the SENTINEL get-master-addr-by-name reply
 * parsed (addresses, nil, errors, junk), READONLY / UNBLOCKED recognised,
 * and a lookup when no sentinel answers (a closed port on loopback) naming
 * every sentinel tried.
 */

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sentinel.h"
#include "tap.h"


static redisReply *
str_reply(const char *s)
{
    static redisReply  r[8];
    static int         k;
    redisReply        *e;

    e = &r[k++ % 8];
    memset(e, 0, sizeof(*e));
    e->type = REDIS_REPLY_STRING;
    e->str = (char *) s;
    e->len = strlen(s);

    return e;
}


static int
parse(redisReply *r, char *host, int *port, char *err)
{
    host[0] = '\0';
    *port = 0;
    err[0] = '\0';

    return sentinel_parse_address(r, host, 64, port, err, 128);
}


/* a loopback port nothing listens on (bound, then closed) */
static int
closed_port(void)
{
    struct sockaddr_in  sa;
    socklen_t           len;
    int                 fd, port;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sa);

    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || getsockname(fd, (struct sockaddr *) &sa, &len) != 0)
    {
        return 1;
    }

    port = ntohs(sa.sin_port);
    close(fd);

    return port;
}


int
main(void)
{
    redisReply    r, *el[2];
    cfg_strings   sentinels;
    char          host[64], err[512], a0[64], a1[64];
    char         *v[2];
    int           port;
    size_t        next;

    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_ARRAY;
    r.elements = 2;
    r.element = el;

    el[0] = str_reply("10.0.0.7");
    el[1] = str_reply("6380");
    is_int(parse(&r, host, &port, err), 0, "[ip, port] parsed");
    is_str(host, "10.0.0.7", "the host");
    is_int(port, 6380, "the port");

    el[0] = str_reply("::1");
    el[1] = str_reply("6379");
    is_int(parse(&r, host, &port, err), 0, "an IPv6 address");
    is_str(host, "::1", "as the sentinel wrote it");

    el[1] = str_reply("0");
    is_int(parse(&r, host, &port, err), -1, "port 0 refused");
    is_str(err, "named an invalid port \"0\"", "says which port");

    el[1] = str_reply("63x");
    is_int(parse(&r, host, &port, err), -1, "a port with junk refused");

    el[0] = str_reply("");
    el[1] = str_reply("6379");
    is_int(parse(&r, host, &port, err), -1, "an empty host refused");
    is_str(err, "named an invalid host", "says so");

    el[0] = str_reply("a-very-long-host-name-that-does-not-fit-the-buffer-"
                      "of-sixty-four-bytes.example.org");
    is_int(parse(&r, host, &port, err), -1, "a host too long refused");

    r.elements = 1;
    is_int(parse(&r, host, &port, err), -1, "one element refused");
    is_str(err, "answered something else than [ip, port]", "says so");

    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_NIL;
    is_int(parse(&r, host, &port, err), -1, "nil: no such primary");
    is_str(err, "knows no such primary", "says so");

    r.type = REDIS_REPLY_ERROR;
    r.str = "NOAUTH Authentication required.";
    r.len = strlen(r.str);
    is_int(parse(&r, host, &port, err), -1, "an error reply");
    is_str(err, "answered: NOAUTH Authentication required.",
           "the error is kept");

    ok(sentinel_demoted("READONLY You can't write against a read only "
                        "replica."), "READONLY: demoted");
    ok(sentinel_demoted("UNBLOCKED force unblock from blocking operation, "
                        "instance state changed (master -> replica?)"),
       "UNBLOCKED: demoted");
    ok(!sentinel_demoted("NOSCRIPT No matching script."),
       "NOSCRIPT: not demoted");
    ok(!sentinel_demoted("ERR wrong number of arguments"), "ERR: not demoted");
    ok(!sentinel_demoted(NULL), "no error: not demoted");

    /* nobody listening: every sentinel named in the error, in turn */
    snprintf(a0, sizeof(a0), "127.0.0.1:%d", closed_port());
    snprintf(a1, sizeof(a1), "127.0.0.1:%d", closed_port());
    v[0] = a0;
    v[1] = a1;
    sentinels.v = v;
    sentinels.n = 2;
    next = 1;

    is_int(sentinel_primary(&sentinels, "mymaster", NULL, 500, &next, host,
                            sizeof(host), &port, err, sizeof(err)), -1,
           "no sentinel answers: -1");
    ok(strncmp(err, "no sentinel named the primary of \"mymaster\": ",
               45) == 0, "the error says which primary");
    ok(strstr(err, a0) != NULL && strstr(err, a1) != NULL
       && strstr(err, a1) < strstr(err, a0),
       "both sentinels named, the next one first");
    ok(strstr(err, "refused") != NULL, "with why");
    is_int((int) next, 0, "next time the other one is asked first");

    diag("no sentinel: %s", err);

    sentinels.n = 0;
    is_int(sentinel_primary(&sentinels, "m", NULL, 500, &next, host,
                            sizeof(host), &port, err, sizeof(err)), -1,
           "no sentinels: -1");

    return tap_done();
}
