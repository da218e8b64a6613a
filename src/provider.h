/*
 * provider.h - an email platform, as a machine that turns one plan
 * operation into HTTP requests, one at a time.
 *
 * The consumer owns the network (libcurl multi), rate limits, retries and
 * the record of finished steps. A provider only says what to send next and
 * what a response means:
 *
 *     x.state = 0;
 *     while ((s = p->ops->next(p, &x, &req)) == STEP_REQUEST) {
 *         send req, wait for the response
 *         s = p->ops->response(p, &x, &res);
 *         if (s != STEP_REQUEST) break;   // REQUEST: call next() again
 *     }
 *     s is DONE, SKIP, RETRY or FAIL
 *
 * No I/O inside a provider; everything it needs between two requests (an
 * id it looked up) goes in x->scratch or in its own caches (tag ids by
 * name, kept for the process's life).
 */

#ifndef PROVIDER_H
#define PROVIDER_H

#include <stddef.h>

#include "config.h"
#include "job.h"
#include "plan.h"

#define HTTP_URL_MAX      2048
#define HTTP_HEADERS_MAX  8
#define HTTP_HEADER_MAX   512

typedef struct {
    const char  *method;                      /* "GET", "POST", "DELETE" */
    char         url[HTTP_URL_MAX];
    char         headers[HTTP_HEADERS_MAX][HTTP_HEADER_MAX]; /* "K: v" */
    size_t       nheaders;
    char        *body;                        /* malloc'd, consumer frees */
    size_t       body_len;
    int          once;      /* the platform does not dedupe it (a
                               purchase): the consumer marks the step
                               "sent" before it goes out */
} http_request;

typedef struct {
    long         status;       /* HTTP status; 0 when no response came */
    const char  *body;         /* NUL-terminated, may be truncated */
    size_t       body_len;
    const char  *retry_after;  /* Retry-After header value, or NULL */
    const char  *error;        /* transport error text when status is 0 */
} http_response;

typedef enum {
    STEP_REQUEST = 0,  /* next(): req is filled, send it;
                          response(): call next() for the following one */
    STEP_DONE,         /* the operation is finished (or was already so) */
    STEP_SKIP,         /* this provider cannot express it: log, count done */
    STEP_RETRY,        /* transient: retry the job later; err says why */
    STEP_FAIL          /* permanent: dead-letter the job; err says why */
} step_status;

typedef struct {
    const plan     *plan;
    size_t          index;          /* of the op in the plan */
    const plan_op  *op;             /* plan->ops[index] */
    const job      *job;
    int             check;          /* 1: "stripe-sync check": resolve
                                       names and probe credentials, change
                                       nothing (see below) */
    int             resent;         /* 1: an earlier attempt sent this
                                       step's "once" request and never
                                       learnt its outcome: look at the
                                       platform before sending it again */
    int             state;          /* provider's progress; starts at 0 */
    char            scratch[256];   /* provider's notes between requests */
    long long       retry_after_ms; /* on RETRY: wait at least this */
    char            err[512];       /* on SKIP/RETRY/FAIL: why, with an
                                       excerpt of the response; no secret */
} op_exec;

typedef struct provider  provider;

typedef struct {
    const char   *name;             /* "kit" */
    double        default_rate;     /* requests per second */
    int           default_burst;
    const char   *default_api_base;

    /* NULL on error, with err filled (e.g. missing api_key_file) */
    provider   *(*create)(const ss_config *c, char *err, size_t errlen);
    void        (*destroy)(provider *p);

    /* 1 if the provider can express the operation kind at all */
    int         (*supports)(const provider *p, op_kind kind);

    step_status (*next)(provider *p, op_exec *x, http_request *req);
    step_status (*response)(provider *p, op_exec *x,
                            const http_response *res);
} provider_ops;

struct provider {
    const provider_ops  *ops;
    const ss_config     *config;
    void                *data;      /* the provider's own state */
};

/* "kit", "activecampaign", "klaviyo", "webhook", "log"; NULL if unknown */
const provider_ops *provider_find(const char *type);

/*
 * Check mode (x->check = 1), used by "stripe-sync check":
 *   OP_UPSERT    probe the credentials with a harmless GET; FAIL if refused
 *   OP_TAG/UNTAG look the tag up: DONE with err "exists" or
 *                "will be created"
 *   OP_SEQUENCE, OP_FORM, OP_LIST
 *                look it up: DONE if it exists, FAIL "... not found"
 *   OP_PURCHASE  FAIL when the credentials cannot record one (Kit without
 *                an OAuth token), else DONE
 *   others       DONE without a request (OP_FIND_EMAIL: scratch empty)
 *
 * OP_FIND_EMAIL, outside check mode: the consumer's last source of an
 * email, asked only of a provider whose supports() says so. The provider
 * looks for its contact carrying x->job->customer_id (the Stripe customer
 * id; the job has no email) and ends DONE with that contact's email in
 * x->scratch, or with x->scratch empty and x->err saying what it looked
 * for when there is none; RETRY and FAIL as for any operation.
 *
 * Shared helpers for providers (provider.c):
 */

/* classifies a status the SPEC's way: 2xx DONE; 408, 429, 5xx, 0 RETRY;
   other 4xx FAIL; fills x->err with "<what>: HTTP <status>: <excerpt>" and
   x->retry_after_ms from Retry-After (seconds or HTTP date) */
step_status provider_classify(op_exec *x, const http_response *res,
    const char *what);

/* printf into req->url / a header; -1 if it does not fit */
int http_request_url(http_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int http_request_header(http_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* a body (or any text) as one printable line of at most outlen - 1 bytes,
   never cut inside a UTF-8 sequence; out may be body itself */
void provider_excerpt(const char *body, size_t len, char *out,
    size_t outlen);

/* URL-encodes s into out (for path segments and query values) */
int http_escape(const char *s, char *out, size_t len);

/* starts a request: method set, empty URL, no headers, no body */
void http_request_init(http_request *req, const char *method);

/* replaces every occurrence of secret (when not NULL or empty) in the
   NUL-terminated s with "[redacted]", truncating to len if need be */
void provider_redact(char *s, size_t len, const char *secret);

#endif /* PROVIDER_H */
