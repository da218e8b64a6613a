/*
 * http.c - unit tests for the libcurl multi wrapper (src/http.c) against a
 * tiny HTTP/1.0 server forked on a loopback port, one process per
 * connection:
 *
 *   /ok            200 "hello", Retry-After: 7
 *   /status/NNN    that status
 *   /big           200 with HTTP_BODY_MAX + 1000 bytes
 *   /sleep/MS      200 after MS milliseconds
 *   /echo          200 "<method> <body length> <X-Test header> <body>"
 *   /close         closes without answering
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "tap.h"


static int    port;
static pid_t  server;


static long long
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
send_all(int fd, const char *p, size_t n)
{
    ssize_t  w;

    while (n > 0 && (w = write(fd, p, n)) > 0) {
        p += w;
        n -= (size_t) w;
    }
}


static void
answer(int fd, int status, const char *extra, const char *body, size_t len)
{
    char  head[512];
    int   n;

    n = snprintf(head, sizeof(head), "HTTP/1.0 %d X\r\nContent-Length: %zu"
                 "\r\nConnection: close\r\n%s\r\n", status, len, extra);
    send_all(fd, head, (size_t) n);
    send_all(fd, body, len);
}


static void
serve(int fd)
{
    char     req[65536], method[16], path[256], xtest[128], out[70000];
    char    *end, *h, *big;
    size_t   got, clen, blen, n;
    ssize_t  r;

    got = 0;
    end = NULL;

    while (got < sizeof(req) - 1
           && (r = read(fd, req + got, sizeof(req) - 1 - got)) > 0)
    {
        got += (size_t) r;
        req[got] = '\0';
        if ((end = strstr(req, "\r\n\r\n")) != NULL) {
            break;
        }
    }

    if (end == NULL || sscanf(req, "%15s %255s", method, path) != 2) {
        return;
    }

    clen = 0;
    h = strcasestr(req, "\r\nContent-Length:");
    if (h != NULL && h < end) {
        clen = strtoul(h + 17, NULL, 10);
    }

    xtest[0] = '\0';
    h = strcasestr(req, "\r\nX-Test:");
    if (h != NULL && h < end) {
        sscanf(h + 9, " %127[^\r]", xtest);
    }

    blen = got - (size_t) (end + 4 - req);
    while (blen < clen && got < sizeof(req) - 1
           && (r = read(fd, req + got, sizeof(req) - 1 - got)) > 0)
    {
        got += (size_t) r;
        blen += (size_t) r;
    }
    req[got] = '\0';

    if (strcmp(path, "/ok") == 0) {
        answer(fd, 200, "Retry-After: 7\r\n", "hello", 5);

    } else if (strncmp(path, "/status/", 8) == 0) {
        n = (size_t) snprintf(out, sizeof(out), "status %s", path + 8);
        answer(fd, atoi(path + 8), "", out, n);

    } else if (strcmp(path, "/big") == 0) {
        n = HTTP_BODY_MAX + 1000;
        big = malloc(n);
        memset(big, 'b', n);
        answer(fd, 200, "", big, n);
        free(big);

    } else if (strncmp(path, "/sleep/", 7) == 0) {
        usleep((useconds_t) atoi(path + 7) * 1000);
        answer(fd, 200, "", "slept", 5);

    } else if (strcmp(path, "/echo") == 0) {
        n = (size_t) snprintf(out, sizeof(out), "%s %zu %s %s", method, blen,
                              xtest[0] ? xtest : "-", end + 4);
        answer(fd, 200, "", out, n);

    } else if (strcmp(path, "/close") == 0) {
        return;

    } else {
        answer(fd, 404, "", "no", 2);
    }
}


static void
start_server(void)
{
    struct sockaddr_in  sa;
    socklen_t           len;
    int                 ls, fd, one;

    ls = socket(AF_INET, SOCK_STREAM, 0);
    one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;

    if (bind(ls, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(ls, 64) != 0)
    {
        perror("server");
        exit(1);
    }

    len = sizeof(sa);
    getsockname(ls, (struct sockaddr *) &sa, &len);
    port = ntohs(sa.sin_port);

    server = fork();
    if (server != 0) {
        close(ls);
        return;
    }

    signal(SIGCHLD, SIG_IGN);   /* connection handlers reap themselves */

    /* its own group, killed at once; off the TAP pipe, so prove need not
       wait for a handler still sleeping */
    setpgid(0, 0);
    fd = open("/dev/null", O_WRONLY);
    dup2(fd, STDOUT_FILENO);
    close(fd);

    for ( ;; ) {
        fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            continue;
        }

        if (fork() == 0) {
            close(ls);
            serve(fd);
            close(fd);
            _exit(0);
        }

        close(fd);
    }
}


/* ---- the client side ---- */

typedef struct {
    int         calls;
    long        status;
    char        body[256];
    size_t      body_len;
    char        retry_after[64];
    char        error[256];
    int         truncated;
    http_client *client;       /* to submit from the callback */
    int         chain;
} result;


static void
on_done(void *data, const http_result *r)
{
    result  *res;
    size_t   n;

    res = data;
    res->calls++;
    res->status = r->response.status;
    res->body_len = r->response.body_len;
    res->truncated = r->truncated;

    n = r->response.body_len < sizeof(res->body) - 1
        ? r->response.body_len : sizeof(res->body) - 1;
    memcpy(res->body, r->response.body, n);
    res->body[n] = '\0';

    snprintf(res->retry_after, sizeof(res->retry_after), "%s",
             r->response.retry_after ? r->response.retry_after : "");
    snprintf(res->error, sizeof(res->error), "%s",
             r->response.error ? r->response.error : "");
}


static http_request
request(const char *method, const char *path)
{
    http_request  req;

    memset(&req, 0, sizeof(req));
    req.method = method;
    snprintf(req.url, sizeof(req.url), "http://127.0.0.1:%d%s", port, path);

    return req;
}


/* polls until every result in v got its callback, or 10 s */
static void
wait_all(http_client *c, result *v, int n)
{
    long long  end;
    int        i, done;

    end = now_ms() + 10000;

    do {
        http_poll(c, 100);
        done = 1;
        for (i = 0; i < n; i++) {
            if (v[i].calls == 0) {
                done = 0;
            }
        }
    } while (!done && now_ms() < end);
}


static void
fetch(http_client *c, http_request *req, long timeout, result *res)
{
    memset(res, 0, sizeof(*res));

    if (http_submit(c, req, timeout, on_done, res) != 0) {
        diag("submit: %s", http_client_error(c));
        return;
    }

    wait_all(c, res, 1);
}


static void
test_basics(http_client *c)
{
    http_request  req;
    result        r;

    req = request("GET", "/ok");
    fetch(c, &req, 5000, &r);
    is_int(r.calls, 1, "GET /ok: the callback ran once");
    is_int(r.status, 200, "status 200");
    is_str(r.body, "hello", "body");
    is_str(r.retry_after, "7", "Retry-After captured");
    is_int(r.truncated, 0, "not truncated");
    is_int(http_in_flight(c), 0, "nothing in flight after");

    req = request("POST", "/echo");
    req.body = strdup("{\"a\":1}");
    req.body_len = 7;
    snprintf(req.headers[0], HTTP_HEADER_MAX, "X-Test: yes");
    snprintf(req.headers[1], HTTP_HEADER_MAX, "Content-Type: "
             "application/json");
    req.nheaders = 2;
    fetch(c, &req, 5000, &r);
    free(req.body);
    is_str(r.body, "POST 7 yes {\"a\":1}", "POST with a body and headers");
    is_str(r.retry_after, "", "no Retry-After: NULL");

    req = request("POST", "/echo");
    fetch(c, &req, 5000, &r);
    is_str(r.body, "POST 0 - ", "POST without a body");

    req = request("DELETE", "/echo");
    fetch(c, &req, 5000, &r);
    is_str(r.body, "DELETE 0 - ", "DELETE");

    req = request("DELETE", "/echo");
    req.body = strdup("xy");
    req.body_len = 2;
    fetch(c, &req, 5000, &r);
    free(req.body);
    is_str(r.body, "DELETE 2 - xy", "DELETE with a body");

    req = request("PATCH", "/echo");
    req.body = strdup("p");
    req.body_len = 1;
    fetch(c, &req, 5000, &r);
    free(req.body);
    is_str(r.body, "PATCH 1 - p", "PATCH");

    req = request(NULL, "/echo");
    fetch(c, &req, 5000, &r);
    is_str(r.body, "GET 0 - ", "no method: GET");

    req = request("GET", "/status/503");
    fetch(c, &req, 5000, &r);
    is_int(r.status, 503, "a 503 is a response, not an error");
    is_str(r.body, "status 503", "with its body");
    is_str(r.error, "", "and no transport error");
}


static void
test_failures(http_client *c)
{
    http_request  req;
    result        r;
    long long     t;

    req = request("GET", "/big");
    fetch(c, &req, 10000, &r);
    is_int(r.status, 200, "a big body: 200");
    is_int(r.body_len, HTTP_BODY_MAX, "cut at HTTP_BODY_MAX");
    is_int(r.truncated, 1, "and marked truncated");

    req = request("GET", "/sleep/3000");
    t = now_ms();
    fetch(c, &req, 300, &r);
    t = now_ms() - t;
    is_int(r.status, 0, "a timeout: status 0");
    ok(r.error[0] != '\0', "with an error: %s", r.error);
    ok(t < 2000, "after about the timeout (%lld ms)", t);

    req = request("GET", "/close");
    fetch(c, &req, 5000, &r);
    is_int(r.status, 0, "closed without an answer: status 0");
    ok(r.error[0] != '\0', "with an error: %s", r.error);

    memset(&req, 0, sizeof(req));
    snprintf(req.url, sizeof(req.url), "http://127.0.0.1:1/x");
    fetch(c, &req, 5000, &r);
    is_int(r.calls, 1, "connection refused: the callback runs");
    is_int(r.status, 0, "status 0");

    memset(&req, 0, sizeof(req));
    snprintf(req.url, sizeof(req.url), "ftp://127.0.0.1:%d/x", port);
    fetch(c, &req, 5000, &r);
    is_int(r.status, 0, "ftp:// is refused");
    ok(r.error[0] != '\0', "with an error: %s", r.error);
}


static void
on_chain(void *data, const http_result *r)
{
    result        *res;
    http_request   req;

    res = data;
    on_done(res, r);

    if (res->chain-- > 0) {
        res->calls = 0;
        req = request("GET", "/ok");
        http_submit(res->client, &req, 5000, on_chain, res);
    }
}


static void
test_concurrency(http_client *c)
{
    http_request  req;
    result        v[10], r;
    long long     t;
    int           i, ok200, ran;

    t = now_ms();
    for (i = 0; i < 10; i++) {
        memset(&v[i], 0, sizeof(v[i]));
        req = request("GET", "/sleep/500");
        http_submit(c, &req, 5000, on_done, &v[i]);
    }
    is_int(http_in_flight(c), 10, "10 in flight");
    wait_all(c, v, 10);
    t = now_ms() - t;

    ok200 = 0;
    for (i = 0; i < 10; i++) {
        ok200 += v[i].status == 200 && v[i].calls == 1;
    }
    is_int(ok200, 10, "all 10 answered once");
    ok(t < 2500, "at once, not one after the other (%lld ms)", t);

    /* a callback may submit the next request */
    memset(&r, 0, sizeof(r));
    r.client = c;
    r.chain = 3;
    req = request("GET", "/ok");
    http_submit(c, &req, 5000, on_chain, &r);
    t = now_ms() + 10000;
    while ((r.chain >= 0 || r.calls == 0) && now_ms() < t) {
        http_poll(c, 100);
    }
    is_int(r.chain, -1, "three requests submitted from callbacks ran");
    is_int(r.status, 200, "the last one answered");

    t = now_ms();
    ran = http_poll(c, 150);
    t = now_ms() - t;
    is_int(ran, 0, "an idle poll runs nothing");
    ok(t >= 100 && t < 500, "and waits about as long as asked (%lld ms)",
       t);

    t = now_ms();
    ran = http_poll(c, 0);
    ok(now_ms() - t < 50, "poll(0) does not wait");

    memset(&r, 0, sizeof(r));
    req = request("GET", "/sleep/2000");
    http_submit(c, &req, 5000, on_done, &r);
    t = now_ms();
    http_poll(c, 200);
    t = now_ms() - t;
    ok(t < 600, "a slow transfer does not hold poll past its timeout "
       "(%lld ms)", t);
    is_int(r.calls, 0, "nor ends early");
}


static void
test_free_in_flight(void)
{
    http_client   *c;
    http_request   req;
    result         r;
    char           err[256];

    c = http_client_create(4, err, sizeof(err));
    memset(&r, 0, sizeof(r));
    req = request("GET", "/sleep/2000");
    http_submit(c, &req, 5000, on_done, &r);
    http_poll(c, 50);
    http_client_free(c);
    is_int(r.calls, 0, "freeing with a transfer in flight runs no callback");
}


static void
test_retry_after(void)
{
    char  date[64];
    time_t  t;
    struct tm  tm;

    is_int(http_retry_after_ms("120", 0), 120000, "120 s");
    is_int(http_retry_after_ms("0", 0), 0, "0 s");
    is_int(http_retry_after_ms("999999999999", 0), 86400000,
           "capped at a day");
    is_int(http_retry_after_ms("abc", 0), -1, "garbage: -1");
    is_int(http_retry_after_ms("", 0), -1, "empty: -1");
    is_int(http_retry_after_ms(NULL, 0), -1, "none: -1");
    is_int(http_retry_after_ms("12a", 0), -1, "digits then garbage: -1");

    t = 1745437580;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    is_int(http_retry_after_ms(date, 1745437520), 60000,
           "an HTTP date a minute ahead: 60 s (%s)", date);
    is_int(http_retry_after_ms(date, 1745437600), 0, "a past date: 0");
}


int
main(void)
{
    http_client  *c;
    char          err[256];

    start_server();

    c = http_client_create(16, err, sizeof(err));
    ok(c != NULL, "client created");

    test_basics(c);
    test_failures(c);
    test_concurrency(c);

    http_client_free(c);

    test_free_in_flight();
    test_retry_after();

    kill(-server, SIGKILL);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);

    return tap_done();
}
