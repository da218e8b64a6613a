/*
 * http.h - many HTTP requests at once on one thread: a small wrapper over
 * libcurl's multi interface.
 *
 *     http_client *c = http_client_create(32, err, sizeof(err));
 *     http_submit(c, &req, 30000, on_done, job);   // copies req
 *     while (busy) http_poll(c, 100);              // runs on_done
 *     http_client_free(c);                         // drops the rest
 *
 * Callbacks run from http_poll() only, never from http_submit(), and may
 * submit further requests. TLS peers are verified (libcurl's default);
 * redirects are not followed; http:// and https:// only.
 */

#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>

#include "provider.h"

#define HTTP_BODY_MAX  (1024 * 1024)   /* a longer body is cut, truncated */

typedef struct {
    http_response   response;   /* what providers read */
    int             truncated;  /* the body was over HTTP_BODY_MAX */
    long long       elapsed_ms;
} http_result;

/* res and everything it points to lives only during the call */
typedef void (*http_callback)(void *data, const http_result *res);

typedef struct http_client  http_client;

/* NULL on error (err filled); max_connections 0: libcurl's default */
http_client *http_client_create(int max_connections, char *err,
    size_t errlen);

/* aborts what is in flight without running its callbacks */
void http_client_free(http_client *c);

void http_client_set_max_connections(http_client *c, int max_connections);

/*
 * Starts req (copied: the caller may free req->body at once); cb runs
 * exactly once from a later http_poll(), with status 0 and an error text
 * when no response came within timeout_ms. Returns 0, or -1 with
 * http_client_error() saying why (cb will not run).
 */
int http_submit(http_client *c, const http_request *req, long timeout_ms,
    http_callback cb, void *data);

/*
 * Waits at most timeout_ms for network activity (0: do not wait), moves
 * every transfer on, runs the callbacks of those that finished. Returns
 * how many ran, or -1 on a libcurl error. Signals end the wait early.
 */
int http_poll(http_client *c, int timeout_ms);

/* requests submitted whose callback has not run yet */
size_t http_in_flight(const http_client *c);

const char *http_client_error(const http_client *c);

/*
 * A Retry-After value (delta-seconds or an HTTP date) as milliseconds from
 * now_unix; -1 when absent or unreadable. Capped at one day.
 */
long long http_retry_after_ms(const char *value, long long now_unix);

#endif /* HTTP_H */
