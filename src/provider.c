/*
 * provider.c - the provider registry and the helpers every provider shares
 * (see provider.h): status classification, Retry-After, request building,
 * URL escaping, redaction.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "provider.h"

#define EXCERPT_MAX        200
#define RETRY_AFTER_MAX_S  (24LL * 3600)   /* a day, as http.c caps it */

/* each defined in its provider_<name>.c */
extern const provider_ops  provider_kit_ops;
extern const provider_ops  provider_activecampaign_ops;
extern const provider_ops  provider_klaviyo_ops;
extern const provider_ops  provider_webhook_ops;
extern const provider_ops  provider_log_ops;

static long long provider_retry_after_ms(const char *value, long long now);

static const provider_ops  *providers[] = {
    &provider_kit_ops,
    &provider_activecampaign_ops,
    &provider_klaviyo_ops,
    &provider_webhook_ops,
    &provider_log_ops,
    NULL
};


const provider_ops *
provider_find(const char *type)
{
    size_t  i;

    if (type == NULL) {
        return NULL;
    }

    for (i = 0; providers[i] != NULL; i++) {
        if (strcmp(providers[i]->name, type) == 0) {
            return providers[i];
        }
    }

    return NULL;
}


/*
 * A body (or any text) as one line of at most outlen - 1 bytes: control
 * characters become spaces and the cut never splits a UTF-8 sequence.
 * out may be body itself.
 */
void
provider_excerpt(const char *body, size_t len, char *out, size_t outlen)
{
    size_t  i, n;

    if (outlen == 0) {
        return;
    }

    if (body == NULL) {
        len = 0;
    }

    n = len < outlen - 1 ? len : outlen - 1;

    if (n < len) {
        while (n > 0 && ((unsigned char) body[n] & 0xc0) == 0x80) {
            n--;
        }
    }

    for (i = 0; i < n; i++) {
        unsigned char  c = (unsigned char) body[i];

        out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char) c;
    }

    out[n] = '\0';
}


step_status
provider_classify(op_exec *x, const http_response *res, const char *what)
{
    char       text[EXCERPT_MAX + 1];
    long       st;
    long long  ms;

    st = res->status;
    x->retry_after_ms = 0;

    if (st == 0) {
        snprintf(x->err, sizeof(x->err), "%s: %s", what,
                 res->error != NULL && res->error[0] != '\0'
                 ? res->error : "no response");
        return STEP_RETRY;
    }

    if (st >= 200 && st < 300) {
        x->err[0] = '\0';
        return STEP_DONE;
    }

    provider_excerpt(res->body, res->body_len, text, sizeof(text));
    snprintf(x->err, sizeof(x->err), "%s: HTTP %ld: %s", what, st,
             text[0] != '\0' ? text : "(empty body)");

    if (st == 408 || st == 429 || (st >= 500 && st < 600)) {
        ms = provider_retry_after_ms(res->retry_after, (long long) time(NULL));
        x->retry_after_ms = ms > 0 ? ms : 0;
        return STEP_RETRY;
    }

    /* other 4xx; and 1xx/3xx, which a platform API never answers */
    return STEP_FAIL;
}


/* milliseconds to wait from a Retry-After value (delta seconds or an HTTP
   date, relative to now); -1 when absent or unreadable */
static long long
provider_retry_after_ms(const char *value, long long now)
{
    static const char  *formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT",    /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT",    /* RFC 850 */
        "%a %b %d %H:%M:%S %Y",         /* asctime */
        NULL
    };
    const char         *p, *end;
    struct tm           tm;
    long long           secs, t;
    size_t              i;

    if (value == NULL) {
        return -1;
    }

    while (isspace((unsigned char) *value)) {
        value++;
    }

    if (*value == '\0') {
        return -1;
    }

    if (isdigit((unsigned char) *value)) {
        secs = 0;
        for (p = value; isdigit((unsigned char) *p); p++) {
            if (secs < RETRY_AFTER_MAX_S) {
                secs = secs * 10 + (*p - '0');
            }
        }

        while (isspace((unsigned char) *p)) {
            p++;
        }

        if (*p != '\0') {
            return -1;
        }

        if (secs > RETRY_AFTER_MAX_S) {
            secs = RETRY_AFTER_MAX_S;
        }

        return secs * 1000;
    }

    for (i = 0; formats[i] != NULL; i++) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(value, formats[i], &tm);
        if (end == NULL) {
            continue;
        }

        while (isspace((unsigned char) *end)) {
            end++;
        }

        if (*end != '\0') {
            continue;
        }

        t = (long long) timegm(&tm);
        secs = t - now;
        if (secs < 0) {
            secs = 0;
        }

        if (secs > RETRY_AFTER_MAX_S) {
            secs = RETRY_AFTER_MAX_S;
        }

        return secs * 1000;
    }

    return -1;
}


void
http_request_init(http_request *req, const char *method)
{
    req->method = method;
    req->url[0] = '\0';
    req->nheaders = 0;
    req->body = NULL;
    req->body_len = 0;
    req->once = 0;
}


int
http_request_url(http_request *req, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(req->url, sizeof(req->url), fmt, ap);
    va_end(ap);

    if (n < 0 || (size_t) n >= sizeof(req->url)) {
        req->url[0] = '\0';
        return -1;
    }

    return 0;
}


int
http_request_header(http_request *req, const char *fmt, ...)
{
    va_list  ap;
    char    *h;
    int      n;

    if (req->nheaders >= HTTP_HEADERS_MAX) {
        return -1;
    }

    h = req->headers[req->nheaders];

    va_start(ap, fmt);
    n = vsnprintf(h, HTTP_HEADER_MAX, fmt, ap);
    va_end(ap);

    if (n < 0 || n >= HTTP_HEADER_MAX) {
        h[0] = '\0';
        return -1;
    }

    /* a CR or LF from a secrets file would start a header of its own */
    if (strpbrk(h, "\r\n") != NULL) {
        h[0] = '\0';
        return -1;
    }

    req->nheaders++;
    return 0;
}


int
http_escape(const char *s, char *out, size_t len)
{
    static const char  hex[] = "0123456789ABCDEF";
    unsigned char      c;
    size_t             n;

    n = 0;

    for (; *s != '\0'; s++) {
        c = (unsigned char) *s;

        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            if (n + 1 >= len) {
                goto full;
            }
            out[n++] = (char) c;

        } else {
            if (n + 3 >= len) {
                goto full;
            }
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        }
    }

    if (len == 0) {
        return -1;
    }

    out[n] = '\0';
    return 0;

full:

    if (len > 0) {
        out[0] = '\0';
    }

    return -1;
}


void
provider_redact(char *s, size_t len, const char *secret)
{
    static const char  mark[] = "[redacted]";
    const char        *in, *p;
    char              *buf;
    size_t             slen, out, n;

    if (s == NULL || secret == NULL || *secret == '\0' || len == 0) {
        return;
    }

    buf = malloc(len);
    if (buf == NULL) {
        /* cannot rebuild it: dropping the text is the safe side */
        s[0] = '\0';
        return;
    }

    slen = strlen(secret);
    out = 0;
    in = s;

    while (*in != '\0' && out + 1 < len) {
        p = strstr(in, secret);
        n = p == NULL ? strlen(in) : (size_t) (p - in);

        if (n > len - 1 - out) {
            n = len - 1 - out;
        }

        memcpy(buf + out, in, n);
        out += n;

        if (p == NULL) {
            break;
        }

        n = sizeof(mark) - 1;
        if (n > len - 1 - out) {
            n = len - 1 - out;
        }

        memcpy(buf + out, mark, n);
        out += n;
        in = p + slen;
    }

    buf[out] = '\0';

    /* an excerpt may have cut the secret: its start is secret too */
    for (n = slen - 1; n >= 4; n--) {
        if (out >= n && memcmp(buf + out - n, secret, n) == 0) {
            out -= n;
            snprintf(buf + out, len - out, "%s", mark);
            break;
        }
    }

    memcpy(s, buf, strlen(buf) + 1);
    free(buf);
}
