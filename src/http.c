/*
 * http.c - libcurl multi plumbing (http.h).
 *
 * One curl easy handle per request, kept on a list from http_submit() until
 * its callback has run; libcurl's connection cache keeps connections to
 * the same host alive across requests.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "http.h"


#define HTTP_CONNECT_TIMEOUT_MS  10000
#define HTTP_RETRY_AFTER_MAX_MS  (24LL * 3600 * 1000)
#define HTTP_USER_AGENT          "stripe-sync/0.1"

typedef struct http_transfer  http_transfer;

struct http_transfer {
    http_client         *client;
    CURL                *easy;
    struct curl_slist   *headers;
    http_callback        cb;
    void                *data;

    char                *body;          /* the response, NUL-terminated */
    size_t               len;
    size_t               cap;
    int                  truncated;

    char                 retry_after[128];
    char                 errbuf[CURL_ERROR_SIZE];
    long long            started_ms;

    http_transfer       *prev;
    http_transfer       *next;
};

struct http_client {
    CURLM               *multi;
    http_transfer       *transfers;
    size_t               n;
    char                 err[256];
};


static int  http_global_users;


static long long
http_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


http_client *
http_client_create(int max_connections, char *err, size_t errlen)
{
    http_client  *c;

    if (http_global_users++ == 0
        && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    {
        http_global_users--;
        snprintf(err, errlen, "libcurl: global initialization failed");
        return NULL;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        snprintf(err, errlen, "libcurl: curl_multi_init() failed");
        free(c);
        goto failed;
    }

    http_client_set_max_connections(c, max_connections);

    return c;

failed:

    if (--http_global_users == 0) {
        curl_global_cleanup();
    }

    return NULL;
}


static void
http_transfer_unlink(http_transfer *t)
{
    http_client  *c;

    c = t->client;

    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        c->transfers = t->next;
    }

    if (t->next != NULL) {
        t->next->prev = t->prev;
    }

    c->n--;

    curl_multi_remove_handle(c->multi, t->easy);
}


/* t is unlinked already */
static void
http_transfer_free(http_transfer *t)
{
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    free(t);
}


void
http_client_free(http_client *c)
{
    http_transfer  *t;

    if (c == NULL) {
        return;
    }

    while (c->transfers != NULL) {
        t = c->transfers;
        http_transfer_unlink(t);
        http_transfer_free(t);
    }

    curl_multi_cleanup(c->multi);
    free(c);

    if (--http_global_users == 0) {
        curl_global_cleanup();
    }
}


void
http_client_set_max_connections(http_client *c, int max_connections)
{
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      (long) (max_connections > 0 ? max_connections : 0));
}


static size_t
http_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_transfer  *t;
    size_t          n, room, cap;
    char           *b;

    t = userdata;
    n = size * nmemb;

    room = HTTP_BODY_MAX - t->len;

    if (n > room) {
        t->truncated = 1;
    }

    /* keep reading past the cap: the status and connection stay usable */
    if (room == 0) {
        return n;
    }

    if (n > room) {
        n = room;
    }

    if (t->len + n + 1 > t->cap) {
        cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        if (cap > HTTP_BODY_MAX + 1) {
            cap = HTTP_BODY_MAX + 1;
        }

        b = realloc(t->body, cap);
        if (b == NULL) {
            return 0;   /* libcurl ends the transfer: CURLE_WRITE_ERROR */
        }

        t->body = b;
        t->cap = cap;
    }

    memcpy(t->body + t->len, ptr, n);
    t->len += n;
    t->body[t->len] = '\0';

    return size * nmemb;
}


static size_t
http_on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_transfer  *t;
    size_t          n, vlen;
    const char     *v, *end;

    t = userdata;
    n = size * nmemb;

    /* a new status line (after a 100 Continue): forget earlier headers */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        t->retry_after[0] = '\0';
        return n;
    }

    if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
        v = ptr + 12;
        end = ptr + n;

        while (v < end && (*v == ' ' || *v == '\t')) {
            v++;
        }

        while (end > v && isspace((unsigned char) end[-1])) {
            end--;
        }

        vlen = (size_t) (end - v);
        if (vlen >= sizeof(t->retry_after)) {
            vlen = sizeof(t->retry_after) - 1;
        }

        memcpy(t->retry_after, v, vlen);
        t->retry_after[vlen] = '\0';
    }

    return n;
}


static int
http_set_method(http_transfer *t, const http_request *req)
{
    CURL        *e;
    const char  *m;

    e = t->easy;
    m = req->method != NULL ? req->method : "GET";

    if (strcmp(m, "GET") == 0 && req->body == NULL) {
        return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK ? 0 : -1;
    }

    if (strcmp(m, "HEAD") == 0) {
        return curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK ? 0 : -1;
    }

    if (strcmp(m, "POST") != 0
        && curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m) != CURLE_OK)
    {
        return -1;
    }

    /* POST, or another method with a body: PUT, PATCH, DELETE */
    if (strcmp(m, "POST") == 0 || req->body != NULL) {
        if (curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE,
                             (long) (req->body ? req->body_len : 0))
                != CURLE_OK
            || curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
                                req->body ? req->body : "")
                != CURLE_OK)
        {
            return -1;
        }
    }

    return 0;
}


int
http_submit(http_client *c, const http_request *req, long timeout_ms,
    http_callback cb, void *data)
{
    http_transfer      *t;
    struct curl_slist  *h;
    size_t              i;
    CURL               *e;

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }

    t->client = c;
    t->cb = cb;
    t->data = data;
    t->started_ms = http_now_ms();

    e = curl_easy_init();
    if (e == NULL) {
        snprintf(c->err, sizeof(c->err), "libcurl: curl_easy_init() failed");
        free(t);
        return -1;
    }

    t->easy = e;

    for (i = 0; i < req->nheaders && i < HTTP_HEADERS_MAX; i++) {
        h = curl_slist_append(t->headers, req->headers[i]);
        if (h == NULL) {
            goto nomem;
        }
        t->headers = h;
    }

    /* no "Expect: 100-continue" round trip before bodies */
    h = curl_slist_append(t->headers, "Expect:");
    if (h == NULL) {
        goto nomem;
    }
    t->headers = h;

    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_USERAGENT, HTTP_USER_AGENT)
           != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                            timeout_ms < HTTP_CONNECT_TIMEOUT_MS
                            ? timeout_ms : (long) HTTP_CONNECT_TIMEOUT_MS)
           != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_body)
           != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_WRITEDATA, t) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header)
           != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_HEADERDATA, t) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK
        || curl_easy_setopt(e, CURLOPT_PRIVATE, t) != CURLE_OK
        || http_set_method(t, req) != 0)
    {
        /* not the URL: it may hold a token */
        snprintf(c->err, sizeof(c->err), "libcurl: cannot set up a %s "
                 "request", req->method ? req->method : "GET");
        curl_slist_free_all(t->headers);
        curl_easy_cleanup(e);
        free(t);
        return -1;
    }

    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        snprintf(c->err, sizeof(c->err), "libcurl: curl_multi_add_handle() "
                 "failed");
        curl_slist_free_all(t->headers);
        curl_easy_cleanup(e);
        free(t);
        return -1;
    }

    t->next = c->transfers;
    if (c->transfers != NULL) {
        c->transfers->prev = t;
    }
    c->transfers = t;
    c->n++;

    return 0;

nomem:

    snprintf(c->err, sizeof(c->err), "out of memory");
    curl_slist_free_all(t->headers);
    curl_easy_cleanup(e);
    free(t);
    return -1;
}


static void
http_finish(http_transfer *t, CURLcode result)
{
    http_result   r;
    long          status;

    memset(&r, 0, sizeof(r));

    status = 0;

    if (result == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    }

    r.response.status = status;
    r.response.body = t->body != NULL ? t->body : "";
    r.response.body_len = t->len;
    r.response.retry_after = t->retry_after[0] ? t->retry_after : NULL;
    r.truncated = t->truncated;
    r.elapsed_ms = http_now_ms() - t->started_ms;

    if (status == 0) {
        /* a partial body is no response at all */
        r.response.body = "";
        r.response.body_len = 0;
        r.response.retry_after = NULL;
        r.response.error = t->errbuf[0] ? t->errbuf
                                        : curl_easy_strerror(result);
        if (result == CURLE_OK) {
            r.response.error = "no HTTP status in the response";
        }
    }

    /* finished: no longer in flight while its callback runs */
    http_transfer_unlink(t);

    t->cb(t->data, &r);

    http_transfer_free(t);
}


static int
http_drain(http_client *c)
{
    CURLMsg        *msg;
    int             left, ran;
    http_transfer  *t;

    ran = 0;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);

        if (t != NULL) {
            http_finish(t, msg->data.result);
            ran++;
        }
    }

    return ran;
}


int
http_poll(http_client *c, int timeout_ms)
{
    CURLMcode  mc;
    int        running, ran, numfds;

    mc = curl_multi_perform(c->multi, &running);
    if (mc != CURLM_OK) {
        goto failed;
    }

    ran = http_drain(c);

    if (ran > 0 || timeout_ms <= 0) {
        return ran;
    }

    /* waits no longer than asked, shorter when libcurl has a timer due */
    mc = curl_multi_poll(c->multi, NULL, 0, timeout_ms, &numfds);
    if (mc != CURLM_OK) {
        goto failed;
    }

    mc = curl_multi_perform(c->multi, &running);
    if (mc != CURLM_OK) {
        goto failed;
    }

    return http_drain(c);

failed:

    snprintf(c->err, sizeof(c->err), "libcurl: %s", curl_multi_strerror(mc));
    return -1;
}


size_t
http_in_flight(const http_client *c)
{
    return c->n;
}


const char *
http_client_error(const http_client *c)
{
    return c->err;
}


long long
http_retry_after_ms(const char *value, long long now_unix)
{
    const char  *p;
    long long    secs;
    time_t       t;

    if (value == NULL || value[0] == '\0') {
        return -1;
    }

    for (p = value; *p >= '0' && *p <= '9'; p++) {
        /* delta-seconds */
    }

    if (p != value && *p == '\0') {
        secs = 0;
        for (p = value; *p != '\0' && secs < HTTP_RETRY_AFTER_MAX_MS; p++) {
            secs = secs * 10 + (*p - '0');
        }

        return secs * 1000 < HTTP_RETRY_AFTER_MAX_MS ? secs * 1000
                                                     : HTTP_RETRY_AFTER_MAX_MS;
    }

    t = curl_getdate(value, NULL);
    if (t == (time_t) -1) {
        return -1;
    }

    if ((long long) t <= now_unix) {
        return 0;
    }

    secs = (long long) t - now_unix;

    return secs * 1000 < HTTP_RETRY_AFTER_MAX_MS ? secs * 1000
                                                 : HTTP_RETRY_AFTER_MAX_MS;
}
