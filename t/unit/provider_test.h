/*
 * provider_test.h - a driver for provider unit tests: runs one plan step
 * through a provider's next()/response() machine against a script of
 * canned responses, keeping a copy of every request so the test can check
 * method, URL, headers and body.
 *
 *     fake_response script[] = { { 200, "{\"tags\":[]}" }, { 201, ... } };
 *     run = run_op(p, &pl, 1, &j, 0, script, 2);
 *     is_int(run->status, STEP_DONE, ...);
 *     is_str(run->req[0].method, "GET", ...);
 *     run_free(run);
 */

#ifndef PROVIDER_TEST_H
#define PROVIDER_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_tree.h>

#include "job.h"
#include "plan.h"
#include "provider.h"
#include "tap.h"

#define RUN_REQUESTS_MAX  32

/* not every test uses every helper */
#define PT_UNUSED  __attribute__((unused))

typedef struct {
    long         status;        /* 0: no response, error says why */
    const char  *body;
    const char  *retry_after;
    const char  *error;
} fake_response;

typedef struct {
    step_status   status;
    op_exec       x;
    size_t        nreq;          /* requests the provider asked for */
    http_request  req[RUN_REQUESTS_MAX];
    int           script_short;  /* it wanted more responses than given */
    int           body_on_end;   /* next() ended with req->body still set */
} op_run;


PT_UNUSED static const char *
step_name(step_status s)
{
    switch (s) {
    case STEP_REQUEST: return "REQUEST";
    case STEP_DONE:    return "DONE";
    case STEP_SKIP:    return "SKIP";
    case STEP_RETRY:   return "RETRY";
    case STEP_FAIL:    return "FAIL";
    }

    return "?";
}


/* with PROVIDER_TEST_DUMP=file, every request is appended to file as
   "METHOD<TAB>URL<TAB>BODY" lines, for checking against the API specs */
PT_UNUSED static void
run_dump(const http_request *req)
{
    const char  *path;
    FILE        *f;

    path = getenv("PROVIDER_TEST_DUMP");
    if (path == NULL || *path == '\0') {
        return;
    }

    f = fopen(path, "a");
    if (f == NULL) {
        return;
    }

    fprintf(f, "%s\t%s\t%s\n", req->method, req->url,
            req->body != NULL ? req->body : "");
    fclose(f);
}


/* x.resent for the next run_op() calls: an earlier attempt sent the step's
   "once" request and never learnt its outcome */
PT_UNUSED static int  run_resent;


/*
 * Runs plan step index for job j as the consumer does; the n responses of
 * script answer the requests in order. The scratch starts dirty on
 * purpose: a provider must not rely on the consumer clearing it.
 */
PT_UNUSED static op_run *
run_op(provider *p, const plan *pl, size_t index, const job *j, int check,
    const fake_response *script, size_t n)
{
    op_run        *r;
    http_request   req;
    http_response  res;
    step_status    s;
    size_t         used;

    r = calloc(1, sizeof(op_run));
    if (r == NULL) {
        abort();
    }

    r->x.plan = pl;
    r->x.index = index;
    r->x.op = &pl->ops[index];
    r->x.job = j;
    r->x.check = check;
    r->x.resent = run_resent;
    r->x.state = 0;
    memset(r->x.scratch, 'Z', sizeof(r->x.scratch));
    r->x.scratch[sizeof(r->x.scratch) - 1] = '\0';

    used = 0;

    for ( ;; ) {
        memset(&req, 0xA5, sizeof(req));   /* next() must set every field */
        s = p->ops->next(p, &r->x, &req);
        if (s != STEP_REQUEST) {
            r->body_on_end = req.body != NULL;
            break;
        }

        run_dump(&req);

        if (r->nreq < RUN_REQUESTS_MAX) {
            r->req[r->nreq] = req;
        } else {
            free(req.body);
        }
        r->nreq++;

        if (used >= n || r->nreq > RUN_REQUESTS_MAX) {
            r->script_short = 1;
            s = STEP_FAIL;
            break;
        }

        memset(&res, 0, sizeof(res));
        res.status = script[used].status;
        res.body = script[used].body != NULL ? script[used].body : "";
        res.body_len = strlen(res.body);
        res.retry_after = script[used].retry_after;
        res.error = script[used].error;
        used++;

        s = p->ops->response(p, &r->x, &res);
        if (s != STEP_REQUEST) {
            break;
        }
    }

    r->status = s;

    if (r->script_short) {
        diag("provider wanted request %zu, the script has %zu", r->nreq, n);
    }

    if (used < n) {
        diag("provider stopped after %zu of %zu scripted responses "
             "(%s: %s)", used, n, step_name(s), r->x.err);
    }

    return r;
}


PT_UNUSED static void
run_free(op_run *r)
{
    size_t  i;

    for (i = 0; i < r->nreq && i < RUN_REQUESTS_MAX; i++) {
        free(r->req[i].body);
    }

    free(r);
}


/* the value of header name in r ("Name: value"), case-insensitive name */
PT_UNUSED static const char *
req_header(const http_request *r, const char *name)
{
    size_t  i, n;

    n = strlen(name);
    for (i = 0; i < r->nheaders; i++) {
        if (strncasecmp(r->headers[i], name, n) == 0
            && r->headers[i][n] == ':')
        {
            return r->headers[i][n + 1] == ' ' ? r->headers[i] + n + 2
                                               : r->headers[i] + n + 1;
        }
    }

    return NULL;
}


/* the body as a tree; NULL when absent or not JSON (free with yajl) */
PT_UNUSED static yajl_val
req_json(const http_request *r)
{
    char  err[128];

    if (r->body == NULL) {
        return NULL;
    }

    if (strlen(r->body) != r->body_len) {
        return NULL;
    }

    return yajl_tree_parse(r->body, err, sizeof(err));
}


/* v at a path of object keys ("data", "attributes", "email", NULL) */
PT_UNUSED static yajl_val
jget(yajl_val v, ...)
{
    va_list      ap;
    const char  *key;
    size_t       i;

    va_start(ap, v);
    while (v != NULL && (key = va_arg(ap, const char *)) != NULL) {
        if (!YAJL_IS_OBJECT(v)) {
            v = NULL;
            break;
        }

        for (i = 0; i < v->u.object.len; i++) {
            if (strcmp(v->u.object.keys[i], key) == 0) {
                break;
            }
        }

        v = i < v->u.object.len ? v->u.object.values[i] : NULL;
    }
    va_end(ap);

    return v;
}


/* the string at v, or NULL when v is not a string */
PT_UNUSED static const char *
jstr(yajl_val v)
{
    return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}


/* the array element i, or NULL */
PT_UNUSED static yajl_val
jat(yajl_val v, size_t i)
{
    if (!YAJL_IS_ARRAY(v) || i >= v->u.array.len) {
        return NULL;
    }

    return v->u.array.values[i];
}


PT_UNUSED static size_t
jlen(yajl_val v)
{
    if (YAJL_IS_ARRAY(v)) {
        return v->u.array.len;
    }

    if (YAJL_IS_OBJECT(v)) {
        return v->u.object.len;
    }

    return 0;
}


/* the raw text of a number ("249.00"), or NULL */
PT_UNUSED static const char *
jnum(yajl_val v)
{
    return YAJL_IS_NUMBER(v) ? v->u.number.r : NULL;
}


/* a job from an action record; aborts the test binary when it is bad */
PT_UNUSED static void
job_from(job *j, const char *record)
{
    char  err[256];

    if (job_parse(j, record, strlen(record), err, sizeof(err)) != 0) {
        printf("Bail out! test record does not parse: %s\n", err);
        exit(255);
    }
}


/* a one-step plan whose only op is at index 0 */
PT_UNUSED static void
plan_one(plan *pl, op_kind kind, const char *name, const plan_field *f,
    size_t nf)
{
    memset(pl, 0, sizeof(*pl));
    if (plan_add(pl, kind, name, f, nf, 0) != 0) {
        printf("Bail out! plan_add failed\n");
        exit(255);
    }
}


/* no err of any outcome may carry a credential */
PT_UNUSED static void
no_secret(const op_run *r, const char *secret, const char *what)
{
    ok(secret == NULL || strstr(r->x.err, secret) == NULL,
       "%s: err holds no secret", what);
}

#endif /* PROVIDER_TEST_H */
