/*
 * stripe_api.c - Stripe API requests and responses (stripe_api.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#include "http.h"
#include "job.h"
#include "json_tree.h"
#include "provider.h"
#include "stripe_api.h"


#define STRIPE_ID_ESCAPED_MAX  (3 * 255 + 1)
#define STRIPE_EXCERPT_MAX     200


static const char *
stripe_api_base(const ss_config *c)
{
    const char  *base;

    base = c->stripe_api_base != NULL ? c->stripe_api_base
                                      : "https://api.stripe.com";
    return base;
}


/* the base without a trailing slash: "<base>/v1/..." never has "//" */
static int
stripe_api_url(const ss_config *c, http_request *req, const char *path)
{
    const char  *base;
    size_t       blen;

    base = stripe_api_base(c);
    blen = strlen(base);

    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }

    return http_request_url(req, "%.*s%s", (int) blen, base, path);
}


static int
stripe_api_start(const ss_config *c, http_request *req, const char *path)
{
    memset(req, 0, sizeof(*req));
    req->method = "GET";

    if (stripe_api_url(c, req, path) != 0) {
        return -1;
    }

    if (c->stripe_api_key != NULL
        && http_request_header(req, "Authorization: Bearer %s",
                               c->stripe_api_key) != 0)
    {
        return -1;
    }

    return http_request_header(req, "Accept: application/json");
}


int
stripe_api_customer_request(const ss_config *c, const char *customer_id,
    http_request *req)
{
    char  id[STRIPE_ID_ESCAPED_MAX], path[STRIPE_ID_ESCAPED_MAX + 32];

    if (http_escape(customer_id, id, sizeof(id)) != 0) {
        return -1;
    }

    snprintf(path, sizeof(path), "/v1/customers/%s", id);

    return stripe_api_start(c, req, path);
}


int
stripe_api_line_items_request(const ss_config *c, const char *session_id,
    const char *starting_after, http_request *req)
{
    char  id[STRIPE_ID_ESCAPED_MAX], after[STRIPE_ID_ESCAPED_MAX];
    char  path[2 * STRIPE_ID_ESCAPED_MAX + 96];

    if (http_escape(session_id, id, sizeof(id)) != 0) {
        return -1;
    }

    if (starting_after != NULL && starting_after[0] != '\0') {
        if (http_escape(starting_after, after, sizeof(after)) != 0) {
            return -1;
        }

        snprintf(path, sizeof(path), "/v1/checkout/sessions/%s/line_items"
                 "?limit=100&starting_after=%s", id, after);

    } else {
        snprintf(path, sizeof(path), "/v1/checkout/sessions/%s/line_items"
                 "?limit=100", id);
    }

    return stripe_api_start(c, req, path);
}


int
stripe_api_subscription_request(const ss_config *c,
    const char *subscription_id, http_request *req)
{
    char  id[STRIPE_ID_ESCAPED_MAX], path[STRIPE_ID_ESCAPED_MAX + 32];

    if (http_escape(subscription_id, id, sizeof(id)) != 0) {
        return -1;
    }

    snprintf(path, sizeof(path), "/v1/subscriptions/%s", id);

    return stripe_api_start(c, req, path);
}


int
stripe_api_probe_request(const ss_config *c, http_request *req)
{
    return stripe_api_start(c, req, "/v1/customers?limit=1");
}


static yajl_val
stripe_api_parse(const char *body, size_t len, char *err, size_t errlen)
{
    char      *copy, yerr[128];
    yajl_val   v;

    /* yajl_tree_free recurses: a nesting bomb would overflow the stack */
    if (json_nesting_exceeds(body, len, JOB_DEPTH_MAX)) {
        snprintf(err, errlen, "Stripe response is nested deeper than %d "
                 "levels", JOB_DEPTH_MAX);
        return NULL;
    }

    copy = malloc(len + 1);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    memcpy(copy, body, len);
    copy[len] = '\0';

    yerr[0] = '\0';
    v = yajl_tree_parse(copy, yerr, sizeof(yerr));
    free(copy);

    if (v == NULL) {
        provider_excerpt(yerr, strlen(yerr), yerr, sizeof(yerr));
        snprintf(err, errlen, "Stripe response is not JSON: %s", yerr);
        return NULL;
    }

    if (!YAJL_IS_OBJECT(v)) {
        snprintf(err, errlen, "Stripe response is not a JSON object");
        yajl_tree_free(v);
        return NULL;
    }

    return v;
}


static yajl_val
stripe_api_member(yajl_val obj, const char *key, yajl_type type)
{
    const char  *path[2];

    path[0] = key;
    path[1] = NULL;

    return obj != NULL ? yajl_tree_get(obj, path, type) : NULL;
}


static const char *
stripe_api_string(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = stripe_api_member(obj, key, yajl_t_string);

    return v != NULL && YAJL_GET_STRING(v)[0] != '\0' ? YAJL_GET_STRING(v)
                                                       : NULL;
}


static long long
stripe_api_integer(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = stripe_api_member(obj, key, yajl_t_number);

    return v != NULL && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : -1;
}


/* an id, or the id of an expanded object */
static const char *
stripe_api_id(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = stripe_api_member(obj, key, yajl_t_any);

    if (YAJL_IS_STRING(v)) {
        return YAJL_GET_STRING(v)[0] != '\0' ? YAJL_GET_STRING(v) : NULL;
    }

    return YAJL_IS_OBJECT(v) ? stripe_api_string(v, "id") : NULL;
}


stripe_api_status
stripe_api_classify(const http_response *res, const char *what, char *err,
    size_t errlen, long long *retry_after_ms)
{
    char         excerpt[STRIPE_EXCERPT_MAX + 1], e2[CONFIG_ERR_MAX];
    yajl_val     v, error;
    const char  *msg;
    long         s;

    *retry_after_ms = -1;
    s = res->status;

    if (s >= 200 && s <= 299) {
        return STRIPE_API_OK;
    }

    if (s == 0) {
        snprintf(err, errlen, "%s: %s", what,
                 res->error ? res->error : "no response");
        return STRIPE_API_RETRY;
    }

    *retry_after_ms = http_retry_after_ms(res->retry_after,
                                          (long long) time(NULL));

    msg = NULL;
    v = res->body_len > 0 ? stripe_api_parse(res->body, res->body_len, e2,
                                             sizeof(e2))
                          : NULL;
    error = stripe_api_member(v, "error", yajl_t_object);
    msg = stripe_api_string(error, "message");

    if (msg != NULL) {
        provider_excerpt(msg, strlen(msg), excerpt, sizeof(excerpt));
    } else {
        provider_excerpt(res->body, res->body_len, excerpt,
                           sizeof(excerpt));
    }

    if (v != NULL) {
        yajl_tree_free(v);
    }

    snprintf(err, errlen, "%s: HTTP %ld: %s", what, s, excerpt);

    return s == 408 || s == 429 || s >= 500 ? STRIPE_API_RETRY
                                            : STRIPE_API_FAIL;
}


static int
stripe_api_dup(char **dst, const char *s)
{
    *dst = NULL;

    if (s == NULL) {
        return 0;
    }

    *dst = strdup(s);
    return *dst != NULL ? 0 : -1;
}


int
stripe_api_parse_customer(const char *body, size_t len, char **email,
    char **name, char *err, size_t errlen)
{
    yajl_val  v, deleted;

    *email = NULL;
    *name = NULL;

    v = stripe_api_parse(body, len, err, errlen);
    if (v == NULL) {
        return -1;
    }

    deleted = stripe_api_member(v, "deleted", yajl_t_any);

    if (!YAJL_IS_TRUE(deleted)
        && (stripe_api_dup(email, stripe_api_string(v, "email")) != 0
            || stripe_api_dup(name, stripe_api_string(v, "name")) != 0))
    {
        free(*email);
        *email = NULL;
        yajl_tree_free(v);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    yajl_tree_free(v);
    return 0;
}


static int
stripe_api_item_add(stripe_api_items *items, yajl_val li)
{
    job_item    *it, *v;
    yajl_val     price;
    size_t       cap;
    long long    q, a;

    if (items->n == items->cap) {
        cap = items->cap ? items->cap * 2 : 16;
        v = realloc(items->v, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        items->v = v;
        items->cap = cap;
    }

    it = &items->v[items->n];
    memset(it, 0, sizeof(*it));

    price = stripe_api_member(li, "price", yajl_t_object);
    q = stripe_api_integer(li, "quantity");
    a = stripe_api_integer(li, "amount_total");

    it->quantity = q >= 0 ? q : -1;
    it->amount = a >= 0 ? a : -1;

    if (stripe_api_dup(&it->price, stripe_api_string(price, "id")) != 0
        || stripe_api_dup(&it->product, stripe_api_id(price, "product")) != 0
        || stripe_api_dup(&it->description,
                          stripe_api_string(li, "description")) != 0)
    {
        free(it->price);
        free(it->product);
        return -1;
    }

    items->n++;
    return 0;
}


int
stripe_api_parse_line_items(const char *body, size_t len,
    stripe_api_items *items, char *err, size_t errlen)
{
    yajl_val     v, data, li;
    size_t       i;
    const char  *id;

    v = stripe_api_parse(body, len, err, errlen);
    if (v == NULL) {
        return -1;
    }

    data = stripe_api_member(v, "data", yajl_t_array);
    if (data == NULL) {
        snprintf(err, errlen, "Stripe line items response has no \"data\" "
                 "list");
        yajl_tree_free(v);
        return -1;
    }

    items->has_more = YAJL_IS_TRUE(stripe_api_member(v, "has_more",
                                                     yajl_t_any));
    items->pages++;

    for (i = 0; i < YAJL_GET_ARRAY(data)->len; i++) {
        li = YAJL_GET_ARRAY(data)->values[i];

        if (!YAJL_IS_OBJECT(li)) {
            continue;
        }

        id = stripe_api_string(li, "id");
        if (id != NULL && strlen(id) < sizeof(items->last_id)) {
            strcpy(items->last_id, id);
        }

        if (items->n >= STRIPE_API_LINE_ITEMS_MAX) {
            items->has_more = 0;
            break;
        }

        if (stripe_api_item_add(items, li) != 0) {
            snprintf(err, errlen, "out of memory");
            yajl_tree_free(v);
            return -1;
        }
    }

    /* a page without ids cannot be followed: stop rather than loop */
    if (YAJL_GET_ARRAY(data)->len == 0 || items->last_id[0] == '\0') {
        items->has_more = 0;
    }

    yajl_tree_free(v);
    return 0;
}


void
stripe_api_items_free(stripe_api_items *items)
{
    size_t  i;

    for (i = 0; i < items->n; i++) {
        free(items->v[i].price);
        free(items->v[i].product);
        free(items->v[i].description);
    }

    free(items->v);
    memset(items, 0, sizeof(*items));
}


int
stripe_api_parse_subscription(const char *body, size_t len,
    long long *start_date, char *err, size_t errlen)
{
    yajl_val   v;
    long long  s;

    v = stripe_api_parse(body, len, err, errlen);
    if (v == NULL) {
        return -1;
    }

    s = stripe_api_integer(v, "start_date");
    yajl_tree_free(v);

    if (s < 0) {
        snprintf(err, errlen, "Stripe subscription has no \"start_date\"");
        return -1;
    }

    *start_date = s;
    return 0;
}


int
stripe_api_list_request(const ss_config *c, const char *collection,
    const stripe_api_list_query *q, http_request *req)
{
    char         path[HTTP_URL_MAX], after[STRIPE_ID_ESCAPED_MAX];
    char         status[STRIPE_ID_ESCAPED_MAX];
    const char  *p;
    size_t       n;
    int          limit;

    for (p = collection; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '/')) {
            return -1;
        }
    }

    limit = q->limit >= 1 && q->limit <= 100 ? q->limit : 100;
    n = (size_t) snprintf(path, sizeof(path), "/v1/%s?limit=%d", collection,
                          limit);

    if (q->status != NULL) {
        if (http_escape(q->status, status, sizeof(status)) != 0) {
            return -1;
        }
        n += (size_t) snprintf(path + n, sizeof(path) - n, "&status=%s",
                               status);
    }

    /* brackets percent-encoded, as Stripe's own libraries send them */
    if (q->created_gte >= 0 && n < sizeof(path)) {
        n += (size_t) snprintf(path + n, sizeof(path) - n,
                               "&created%%5Bgte%%5D=%lld", q->created_gte);
    }

    if (q->undelivered && n < sizeof(path)) {
        n += (size_t) snprintf(path + n, sizeof(path) - n,
                               "&delivery_success=false");
    }

    if (q->starting_after != NULL && q->starting_after[0] != '\0'
        && n < sizeof(path))
    {
        if (http_escape(q->starting_after, after, sizeof(after)) != 0) {
            return -1;
        }
        n += (size_t) snprintf(path + n, sizeof(path) - n,
                               "&starting_after=%s", after);
    }

    if (n >= sizeof(path)) {
        return -1;
    }

    return stripe_api_start(c, req, path);
}


/*
 * The spans of the "data" array's elements in a body yajl has accepted, so
 * the scanner can trust the syntax: it only tracks strings and nesting.
 */

static const char *
stripe_api_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }

    return p;
}


/* p at the opening quote: returns the byte after the closing one */
static const char *
stripe_api_skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }

    return end;
}


static const char *
stripe_api_skip_value(const char *p, const char *end)
{
    int  depth;

    if (p >= end) {
        return end;
    }

    if (*p == '"') {
        return stripe_api_skip_string(p, end);
    }

    if (*p == '{' || *p == '[') {
        depth = 0;

        while (p < end) {
            if (*p == '"') {
                p = stripe_api_skip_string(p, end);
                continue;
            }

            if (*p == '{' || *p == '[') {
                depth++;
            } else if (*p == '}' || *p == ']') {
                if (--depth == 0) {
                    return p + 1;
                }
            }

            p++;
        }

        return end;
    }

    while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ' '
           && *p != '\t' && *p != '\n' && *p != '\r')
    {
        p++;
    }

    return p;
}


static int
stripe_api_list_add(stripe_api_list *l, size_t off, size_t len)
{
    stripe_api_item  *v;
    size_t            cap;

    if (l->n == l->cap) {
        cap = l->cap ? l->cap * 2 : 16;
        v = realloc(l->items, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        l->items = v;
        l->cap = cap;
    }

    memset(&l->items[l->n], 0, sizeof(l->items[l->n]));
    l->items[l->n].off = off;
    l->items[l->n].len = len;
    l->n++;

    return 0;
}


/* -1: out of memory; -2: no top-level "data" array */
static int
stripe_api_list_spans(const char *body, size_t len, stripe_api_list *l)
{
    const char  *p, *end, *key, *start;
    size_t       klen;

    p = body;
    end = body + len;

    p = stripe_api_skip_ws(p, end);
    if (p >= end || *p != '{') {
        return -2;
    }

    for (p++; ; ) {
        p = stripe_api_skip_ws(p, end);
        if (p >= end || *p != '"') {
            return -2;
        }

        key = p + 1;
        p = stripe_api_skip_string(p, end);
        klen = (size_t) (p - key) - 1;

        p = stripe_api_skip_ws(p, end);
        if (p >= end || *p != ':') {
            return -2;
        }
        p = stripe_api_skip_ws(p + 1, end);

        if (klen == 4 && memcmp(key, "data", 4) == 0 && p < end
            && *p == '[')
        {
            p = stripe_api_skip_ws(p + 1, end);

            while (p < end && *p != ']') {
                start = p;
                p = stripe_api_skip_value(p, end);

                if (stripe_api_list_add(l, (size_t) (start - body),
                                        (size_t) (p - start)) != 0)
                {
                    return -1;
                }

                p = stripe_api_skip_ws(p, end);
                if (p < end && *p == ',') {
                    p = stripe_api_skip_ws(p + 1, end);
                }
            }

            return 0;
        }

        p = stripe_api_skip_ws(stripe_api_skip_value(p, end), end);

        if (p >= end || *p != ',') {
            return -2;
        }
        p++;
    }
}


int
stripe_api_parse_list(const char *body, size_t len, stripe_api_list *l,
    char *err, size_t errlen)
{
    yajl_val          v, data, it, live;
    stripe_api_item  *item;
    const char       *id;
    size_t            i;
    int               rc;

    l->n = 0;
    l->has_more = 0;
    l->last_id = NULL;

    v = stripe_api_parse(body, len, err, errlen);
    if (v == NULL) {
        return -1;
    }

    data = stripe_api_member(v, "data", yajl_t_array);
    if (data == NULL) {
        snprintf(err, errlen, "Stripe list response has no \"data\" list");
        yajl_tree_free(v);
        return -1;
    }

    rc = stripe_api_list_spans(body, len, l);

    if (rc == -1) {
        snprintf(err, errlen, "out of memory");
        yajl_tree_free(v);
        return -1;
    }

    /* e.g. "data" twice: the spans need not be the items yajl saw */
    if (rc != 0 || l->n != YAJL_GET_ARRAY(data)->len) {
        snprintf(err, errlen, "Stripe list response: cannot find the items "
                 "of its \"data\" list");
        l->n = 0;
        yajl_tree_free(v);
        return -1;
    }

    for (i = 0; i < l->n; i++) {
        it = YAJL_GET_ARRAY(data)->values[i];
        item = &l->items[i];

        id = stripe_api_string(it, "id");
        if (id != NULL && strlen(id) < sizeof(item->id)) {
            strcpy(item->id, id);
        }

        item->created = stripe_api_integer(it, "created");

        live = stripe_api_member(it, "livemode", yajl_t_any);
        item->livemode = YAJL_IS_TRUE(live) ? 1 : YAJL_IS_FALSE(live) ? 0 : -1;
    }

    l->has_more = YAJL_IS_TRUE(stripe_api_member(v, "has_more",
                                                 yajl_t_any));

    if (l->n > 0 && l->items[l->n - 1].id[0] != '\0') {
        l->last_id = l->items[l->n - 1].id;

    } else {
        /* nothing to start after: following it would loop */
        l->has_more = 0;
    }

    yajl_tree_free(v);
    return 0;
}


void
stripe_api_list_free(stripe_api_list *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}
