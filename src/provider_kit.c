/*
 * provider_kit.c - Kit (ConvertKit) API v4.
 *
 *   upsert    POST /subscribers {email_address, first_name, fields}
 *   fields    POST /subscribers {email_address, fields}
 *   tag       [GET /tags pages, POST /tags {name}] POST /tags/{id}/subscribers
 *   untag     [GET /tags pages] GET /subscribers?email_address=
 *             DELETE /tags/{id}/subscribers/{subscriber id}
 *   sequence  [GET /sequences pages] POST /sequences/{id}/subscribers
 *   form      [GET /forms pages] POST /forms/{id}/subscribers
 *   purchase  POST /purchases {purchase: {...}} (OAuth only: skipped
 *             without a token, a failure in check). Kit records every
 *             POST anew, so when an earlier attempt sent it and never
 *             learnt the outcome (x->resent), GET /purchases (newest
 *             first) is searched for the transaction_id before posting
 *   check     GET /account; names looked up, never created
 *
 * No find_email: v4 finds subscribers by email address only (GET
 * /subscribers has no filter on a custom field), so a Stripe customer id
 * stored with a subscriber cannot lead back to the subscriber.
 *
 * Ids found by name are cached for the process's life; a cached id the
 * platform answers 404 for is forgotten and looked up once more.
 * Kit's 429 carries no Retry-After: its window is a minute, so we wait one.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "name_cache.h"
#include "provider_json.h"

#define KIT_DEFAULT_BASE  "https://api.kit.com/v4"
#define KIT_PAGE_SIZE     1000           /* Kit's maximum per_page */
#define KIT_CACHE_MAX     10000
#define KIT_429_WAIT_MS   60000
#define KIT_FIND_PAGES    10             /* newest purchases searched */

/* x->state: the phase, plus a flag once a stale cached id was dropped */
enum {
    KIT_BEGIN = 0,
    KIT_LIST,             /* GET /tags, /sequences or /forms, one page */
    KIT_CREATE_TAG,       /* POST /tags */
    KIT_FIND_SUBSCRIBER,  /* GET /subscribers?email_address= (untag) */
    KIT_ACT,              /* the operation's own request */
    KIT_PROBE,            /* check: GET /account */
    KIT_FIND_PURCHASE,    /* GET /purchases: sent before, outcome unknown */
    KIT_PHASE_MASK = 0xff,
    KIT_RELOOKED = 0x100
};

/* x->scratch: the id found by name, the subscriber id, the page cursor */
#define KIT_ID(x)      ((x)->scratch)
#define KIT_SUB_ID(x)  ((x)->scratch + 64)
#define KIT_CURSOR(x)  ((x)->scratch + 128)
#define KIT_ID_MAX     64
#define KIT_CURSOR_MAX 128

extern const provider_ops  provider_kit_ops;

typedef struct {
    char         base[HTTP_URL_MAX / 2];
    name_cache  *tags;
    name_cache  *sequences;
    name_cache  *forms;
} kit_state;

/* what a name resolves against */
typedef struct {
    const char   *path;       /* "/tags" */
    const char   *array;      /* member holding the page's items */
    const char   *noun;       /* "tag" */
    name_cache   *cache;
} kit_listing;


static provider *
kit_create(const ss_config *c, char *err, size_t errlen)
{
    provider    *p;
    kit_state   *k;
    const char  *base;
    size_t       len;

    if ((c->provider_api_key == NULL || c->provider_api_key[0] == '\0')
        && (c->provider_oauth_token == NULL
            || c->provider_oauth_token[0] == '\0'))
    {
        snprintf(err, errlen, "kit provider needs provider.api_key_file "
                 "or provider.oauth_token_file");
        return NULL;
    }

    base = c->provider_api_base != NULL && c->provider_api_base[0] != '\0'
           ? c->provider_api_base : KIT_DEFAULT_BASE;

    len = strlen(base);
    while (len > 0 && base[len - 1] == '/') {
        len--;
    }

    if (len == 0 || len >= sizeof(((kit_state *) 0)->base)) {
        snprintf(err, errlen, "kit provider.api_base \"%.200s\" is empty "
                 "or too long", base);
        return NULL;
    }

    p = calloc(1, sizeof(provider));
    k = calloc(1, sizeof(kit_state));
    if (p == NULL || k == NULL) {
        goto nomem;
    }

    memcpy(k->base, base, len);
    k->base[len] = '\0';

    k->tags = name_cache_create(KIT_CACHE_MAX);
    k->sequences = name_cache_create(KIT_CACHE_MAX);
    k->forms = name_cache_create(KIT_CACHE_MAX);
    if (k->tags == NULL || k->sequences == NULL || k->forms == NULL) {
        goto nomem;
    }

    p->ops = &provider_kit_ops;
    p->config = c;
    p->data = k;
    return p;

nomem:

    if (k != NULL) {
        name_cache_free(k->tags);
        name_cache_free(k->sequences);
        name_cache_free(k->forms);
    }

    free(k);
    free(p);
    snprintf(err, errlen, "kit provider: out of memory");
    return NULL;
}


static void
kit_destroy(provider *p)
{
    kit_state  *k;

    if (p == NULL) {
        return;
    }

    k = p->data;
    if (k != NULL) {
        name_cache_free(k->tags);
        name_cache_free(k->sequences);
        name_cache_free(k->forms);
        free(k);
    }

    free(p);
}


static int
kit_supports(const provider *p, op_kind kind)
{
    (void) p;

    switch (kind) {
    case OP_UPSERT:
    case OP_TAG:
    case OP_UNTAG:
    case OP_SEQUENCE:
    case OP_FORM:
    case OP_FIELDS:
    case OP_PURCHASE:
        return 1;
    default:
        /* Kit has no lists, no custom events, and no search by a custom
           field (find_email) */
        return 0;
    }
}


static int
kit_has_oauth(const provider *p)
{
    return p->config->provider_oauth_token != NULL
           && p->config->provider_oauth_token[0] != '\0';
}


static kit_listing
kit_listing_for(kit_state *k, op_kind kind)
{
    kit_listing  l;

    switch (kind) {
    case OP_SEQUENCE:
        l.path = "/sequences";
        l.array = "sequences";
        l.noun = "sequence";
        l.cache = k->sequences;
        break;
    case OP_FORM:
        l.path = "/forms";
        l.array = "forms";
        l.noun = "form";
        l.cache = k->forms;
        break;
    default:
        l.path = "/tags";
        l.array = "tags";
        l.noun = "tag";
        l.cache = k->tags;
        break;
    }

    return l;
}


/* "Kit tag \"Buyer\": POST /tags" */
static void
kit_what(const op_exec *x, char *buf, size_t len)
{
    const char  *kind, *step;
    char         path[200];

    kind = op_kind_name(x->op->kind);

    switch (x->state & KIT_PHASE_MASK) {
    case KIT_LIST:
        step = x->op->kind == OP_SEQUENCE ? "GET /sequences"
               : x->op->kind == OP_FORM ? "GET /forms" : "GET /tags";
        break;
    case KIT_CREATE_TAG:
        step = "POST /tags";
        break;
    case KIT_FIND_SUBSCRIBER:
        step = "GET /subscribers";
        break;
    case KIT_PROBE:
        step = "GET /account";
        break;
    case KIT_FIND_PURCHASE:
        step = "GET /purchases";
        break;
    default:
        switch (x->op->kind) {
        case OP_TAG:
            snprintf(path, sizeof(path), "POST /tags/%.63s/subscribers",
                     KIT_ID(x));
            break;
        case OP_UNTAG:
            snprintf(path, sizeof(path), "DELETE /tags/%.63s/subscribers/%.63s",
                     KIT_ID(x), KIT_SUB_ID(x));
            break;
        case OP_SEQUENCE:
            snprintf(path, sizeof(path), "POST /sequences/%.63s/subscribers",
                     KIT_ID(x));
            break;
        case OP_FORM:
            snprintf(path, sizeof(path), "POST /forms/%.63s/subscribers",
                     KIT_ID(x));
            break;
        case OP_PURCHASE:
            snprintf(path, sizeof(path), "POST /purchases");
            break;
        default:
            snprintf(path, sizeof(path), "POST /subscribers");
            break;
        }
        step = path;
        break;
    }

    if (x->op->name != NULL) {
        snprintf(buf, len, "Kit %s \"%.100s\": %.199s", kind, x->op->name,
                 step);
    } else {
        snprintf(buf, len, "Kit %s: %.199s", kind, step);
    }
}


/* the error message never carries a credential, whatever a server echoed */
static void
kit_redact(const provider *p, op_exec *x)
{
    provider_redact(x->err, sizeof(x->err), p->config->provider_api_key);
    provider_redact(x->err, sizeof(x->err), p->config->provider_oauth_token);
}


static step_status
kit_fail(op_exec *x, http_request *req, step_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static step_status
kit_fail(op_exec *x, http_request *req, step_status s, const char *fmt, ...)
{
    va_list  ap;

    free(req->body);
    req->body = NULL;
    req->body_len = 0;

    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);

    return s;
}


static int
kit_headers(const provider *p, http_request *req)
{
    const ss_config  *c = p->config;
    int               rc;

    if (kit_has_oauth(p)) {
        rc = http_request_header(req, "Authorization: Bearer %s",
                                 c->provider_oauth_token);
    } else {
        rc = http_request_header(req, "X-Kit-Api-Key: %s",
                                 c->provider_api_key);
    }

    rc |= http_request_header(req, "Accept: application/json");

    if (req->body != NULL) {
        rc |= http_request_header(req, "Content-Type: application/json");
    }

    return rc;
}


static void
kit_fields(json_writer *w, const plan_op *op)
{
    size_t  i;

    if (op->nfields == 0) {
        return;
    }

    json_writer_key(w, "fields");
    json_writer_map_open(w);
    for (i = 0; i < op->nfields; i++) {
        json_writer_pair(w, op->fields[i].key, op->fields[i].value);
    }
    json_writer_map_close(w);
}


/* {"email_address": .., "first_name": .., "fields": {..}} */
static int
kit_subscriber_body(const op_exec *x, http_request *req)
{
    json_writer  w;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_pair(&w, "email_address", x->job->email);
    if (x->op->kind == OP_UPSERT && x->job->first_name != NULL) {
        json_writer_pair(&w, "first_name", x->job->first_name);
    }
    kit_fields(&w, x->op);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* {"email_address": ..} */
static int
kit_email_body(const op_exec *x, http_request *req)
{
    json_writer  w;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_pair(&w, "email_address", x->job->email);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* {"name": ..} */
static int
kit_tag_body(const op_exec *x, http_request *req)
{
    json_writer  w;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_pair(&w, "name", x->op->name);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* the line's unit price in minor units: its amount over its quantity */
static long long
kit_unit_amount(const job_item *it)
{
    long long  q;

    q = it->quantity > 0 ? it->quantity : 1;
    if (it->amount < 0) {
        return 0;
    }

    return (it->amount + q / 2) / q;
}


static int
kit_products(json_writer *w, const job *j, const char *fallback_id,
    long long total)
{
    const job_item  *it;
    const char      *pid, *name;
    char             lid[160], money[48];
    size_t           i, k;
    int              unique;

    json_writer_key(w, "products");
    json_writer_array_open(w);

    if (j->nitems == 0) {
        /* the payment as a single product: Kit wants at least one */
        if (money_major_units(total, j->currency, money, sizeof(money))
            != 0)
        {
            return -1;
        }

        json_writer_map_open(w);
        json_writer_pair(w, "name", j->object_type != NULL
                                    ? j->object_type : "payment");
        json_writer_pair(w, "pid", fallback_id);
        json_writer_pair(w, "lid", fallback_id);
        json_writer_pair_integer(w, "quantity", 1);
        json_writer_key(w, "unit_price");
        json_writer_number(w, money);
        json_writer_map_close(w);
    }

    for (i = 0; i < j->nitems; i++) {
        it = &j->items[i];

        pid = it->product != NULL ? it->product
              : it->price != NULL ? it->price : fallback_id;
        name = it->description != NULL ? it->description : pid;

        /* lid must be unique within the purchase: the price, unless two
           lines share it */
        unique = it->price != NULL;
        for (k = 0; unique && k < j->nitems; k++) {
            if (k != i && j->items[k].price != NULL
                && strcmp(j->items[k].price, it->price) == 0)
            {
                unique = 0;
            }
        }

        if (unique) {
            snprintf(lid, sizeof(lid), "%s", it->price);
        } else {
            snprintf(lid, sizeof(lid), "%.120s-%zu",
                     it->price != NULL ? it->price : fallback_id, i + 1);
        }

        if (money_major_units(kit_unit_amount(it), j->currency, money,
                              sizeof(money)) != 0)
        {
            return -1;
        }

        json_writer_map_open(w);
        json_writer_pair(w, "name", name);
        json_writer_pair(w, "pid", pid);
        json_writer_pair(w, "lid", lid);
        json_writer_pair_integer(w, "quantity",
                                 it->quantity > 0 ? it->quantity : 1);
        json_writer_key(w, "unit_price");
        json_writer_number(w, money);
        json_writer_map_close(w);
    }

    json_writer_array_close(w);
    return 0;
}


/*
 * {"purchase": {"email_address", "first_name", "transaction_id", "status":
 * "paid", "currency": "USD", "subtotal": 249.00, "total": 249.00,
 * "transaction_time": "2025-...Z", "products": [{name, pid, lid, quantity,
 * unit_price}]}}: amounts in major units, as Kit's numbers are.
 */
static int
kit_purchase_body(op_exec *x, http_request *req)
{
    json_writer  w;
    const job   *j;
    const char  *tid;
    char         cur[16], money[48], when[32];
    long long    subtotal, total;
    size_t       i;

    j = x->job;

    if (currency_upper(j->currency, cur, sizeof(cur)) != 0) {
        snprintf(x->err, sizeof(x->err),
                 "Kit purchase: the record has no currency");
        return -1;
    }

    subtotal = j->nitems > 0 ? 0 : -1;
    for (i = 0; i < j->nitems; i++) {
        if (j->items[i].amount < 0) {
            subtotal = -1;
            break;
        }
        subtotal += j->items[i].amount;
    }

    total = j->amount >= 0 ? j->amount : subtotal;
    if (subtotal < 0) {
        subtotal = total;
    }

    if (total < 0) {
        snprintf(x->err, sizeof(x->err),
                 "Kit purchase: the record has no amount");
        return -1;
    }

    tid = j->object_id != NULL ? j->object_id : j->id;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "purchase");
    json_writer_map_open(&w);

    json_writer_pair(&w, "email_address", j->email);
    if (j->first_name != NULL) {
        json_writer_pair(&w, "first_name", j->first_name);
    }
    json_writer_pair(&w, "transaction_id", tid);
    json_writer_pair(&w, "status", "paid");
    json_writer_pair(&w, "currency", cur);

    money_major_units(subtotal, j->currency, money, sizeof(money));
    json_writer_key(&w, "subtotal");
    json_writer_number(&w, money);

    money_major_units(total, j->currency, money, sizeof(money));
    json_writer_key(&w, "total");
    json_writer_number(&w, money);

    if (iso8601_utc(j->created, when, sizeof(when)) == 0) {
        json_writer_pair(&w, "transaction_time", when);
    }

    if (kit_products(&w, j, tid, total) != 0) {
        w.failed = 1;
    }

    json_writer_map_close(&w);
    json_writer_map_close(&w);

    if (json_writer_finish(&w, req) != 0) {
        snprintf(x->err, sizeof(x->err),
                 "Kit purchase: cannot encode the body (invalid UTF-8?)");
        return -1;
    }

    return 0;
}


/* the first phase: from the cache when the id is known */
static int
kit_begin(provider *p, op_exec *x)
{
    kit_state    *k = p->data;
    kit_listing   l;
    const char   *id;
    int           flags;

    flags = x->state & ~KIT_PHASE_MASK;

    switch (x->op->kind) {
    case OP_TAG:
    case OP_UNTAG:
    case OP_SEQUENCE:
    case OP_FORM:
        l = kit_listing_for(k, x->op->kind);
        id = name_cache_get(l.cache, x->op->name);
        KIT_CURSOR(x)[0] = '\0';

        if (id == NULL) {
            return KIT_LIST | flags;
        }

        snprintf(KIT_ID(x), KIT_ID_MAX, "%s", id);

        if (x->check) {
            return KIT_ACT | flags;     /* kit_next() answers "exists" */
        }

        return (x->op->kind == OP_UNTAG ? KIT_FIND_SUBSCRIBER : KIT_ACT)
               | flags;

    case OP_PURCHASE:
        KIT_CURSOR(x)[0] = '\0';
        return (x->resent && !x->check ? KIT_FIND_PURCHASE : KIT_ACT)
               | flags;

    default:
        return (x->check && x->op->kind == OP_UPSERT ? KIT_PROBE : KIT_ACT)
               | flags;
    }
}


static step_status
kit_request_act(provider *p, op_exec *x, http_request *req)
{
    kit_state  *k = p->data;
    int         rc;

    switch (x->op->kind) {
    case OP_UPSERT:
    case OP_FIELDS:
        req->method = "POST";
        rc = http_request_url(req, "%s/subscribers", k->base);
        rc |= kit_subscriber_body(x, req);
        break;

    case OP_TAG:
        req->method = "POST";
        rc = http_request_url(req, "%s/tags/%s/subscribers", k->base,
                              KIT_ID(x));
        rc |= kit_email_body(x, req);
        break;

    case OP_UNTAG:
        req->method = "DELETE";
        rc = http_request_url(req, "%s/tags/%s/subscribers/%s", k->base,
                              KIT_ID(x), KIT_SUB_ID(x));
        break;

    case OP_SEQUENCE:
        req->method = "POST";
        rc = http_request_url(req, "%s/sequences/%s/subscribers", k->base,
                              KIT_ID(x));
        rc |= kit_email_body(x, req);
        break;

    case OP_FORM:
        req->method = "POST";
        rc = http_request_url(req, "%s/forms/%s/subscribers", k->base,
                              KIT_ID(x));
        rc |= kit_email_body(x, req);
        break;

    case OP_PURCHASE:
        req->method = "POST";
        if (kit_purchase_body(x, req) != 0) {
            return STEP_FAIL;           /* err says what is missing */
        }
        rc = http_request_url(req, "%s/purchases", k->base);
        req->once = 1;
        break;

    default:
        return kit_fail(x, req, STEP_SKIP, "Kit cannot express %s",
                        op_kind_name(x->op->kind));
    }

    if (rc != 0) {
        return kit_fail(x, req, STEP_FAIL, "Kit %s: the request does not "
                        "fit, or its body is not UTF-8",
                        op_kind_name(x->op->kind));
    }

    return STEP_REQUEST;
}


static step_status
kit_next(provider *p, op_exec *x, http_request *req)
{
    kit_state    *k = p->data;
    kit_listing   l;
    step_status   s;
    char          esc[3 * 320];
    int           rc;

    http_request_init(req, "GET");
    x->retry_after_ms = 0;

    if (!kit_supports(p, x->op->kind)) {
        return kit_fail(x, req, STEP_SKIP, "Kit cannot express %s (Kit "
                        "has no lists, custom events or search by Stripe "
                        "customer id)",
                        op_kind_name(x->op->kind));
    }

    if (x->op->kind != OP_UPSERT && x->op->kind != OP_FIELDS
        && x->op->kind != OP_PURCHASE
        && (x->op->name == NULL || x->op->name[0] == '\0'))
    {
        return kit_fail(x, req, STEP_FAIL, "Kit %s: no name given",
                        op_kind_name(x->op->kind));
    }

    /* check reports it as a failure; a job skips the step (with this
       line in the log) so its other steps still run */
    if (x->op->kind == OP_PURCHASE && !kit_has_oauth(p)) {
        return kit_fail(x, req, x->check ? STEP_FAIL : STEP_SKIP,
                        "Kit purchases need an OAuth token "
                        "(provider.oauth_token_file)");
    }

    if (x->check) {
        if (x->op->kind == OP_PURCHASE || x->op->kind == OP_FIELDS) {
            x->err[0] = '\0';
            return STEP_DONE;
        }
    } else if (x->job->email == NULL || x->job->email[0] == '\0') {
        return kit_fail(x, req, STEP_FAIL, "Kit %s: the job has no email",
                        op_kind_name(x->op->kind));
    }

    if ((x->state & KIT_PHASE_MASK) == KIT_BEGIN) {
        x->state = kit_begin(p, x);
    }

    switch (x->state & KIT_PHASE_MASK) {
    case KIT_LIST:
        l = kit_listing_for(k, x->op->kind);
        if (KIT_CURSOR(x)[0] == '\0') {
            rc = http_request_url(req, "%s%s?per_page=%d", k->base, l.path,
                                  KIT_PAGE_SIZE);
        } else {
            rc = http_escape(KIT_CURSOR(x), esc, sizeof(esc));
            rc |= http_request_url(req, "%s%s?per_page=%d&after=%s",
                                   k->base, l.path, KIT_PAGE_SIZE, esc);
        }
        break;

    case KIT_CREATE_TAG:
        req->method = "POST";
        rc = http_request_url(req, "%s/tags", k->base);
        rc |= kit_tag_body(x, req);
        break;

    case KIT_FIND_SUBSCRIBER:
        rc = http_escape(x->job->email, esc, sizeof(esc));
        rc |= http_request_url(req, "%s/subscribers?email_address=%s"
                               "&status=all", k->base, esc);
        break;

    case KIT_PROBE:
        rc = http_request_url(req, "%s/account", k->base);
        break;

    case KIT_FIND_PURCHASE:
        if (KIT_CURSOR(x)[0] == '\0') {
            rc = http_request_url(req, "%s/purchases?per_page=%d", k->base,
                                  KIT_PAGE_SIZE);
        } else {
            rc = http_escape(KIT_CURSOR(x), esc, sizeof(esc));
            rc |= http_request_url(req, "%s/purchases?per_page=%d&after=%s",
                                   k->base, KIT_PAGE_SIZE, esc);
        }
        break;

    case KIT_ACT:
        if (x->check) {
            /* a name found in the cache: it exists */
            snprintf(x->err, sizeof(x->err), "exists");
            return STEP_DONE;
        }

        s = kit_request_act(p, x, req);
        if (s != STEP_REQUEST) {
            return s;
        }
        rc = 0;
        break;

    default:
        return kit_fail(x, req, STEP_FAIL, "Kit %s: lost its place "
                        "(state %d)", op_kind_name(x->op->kind), x->state);
    }

    if (rc != 0) {
        return kit_fail(x, req, STEP_FAIL, "Kit %s: the request does not "
                        "fit, or its body is not UTF-8",
                        op_kind_name(x->op->kind));
    }

    if (kit_headers(p, req) != 0) {
        return kit_fail(x, req, STEP_FAIL, "Kit %s: the credential does not "
                        "fit in a header", op_kind_name(x->op->kind));
    }

    return STEP_REQUEST;
}


/* a listing page: remember every name on it, stop at ours */
static step_status
kit_on_list(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    kit_state    *k = p->data;
    kit_listing   l;
    yajl_val      v, items, item, pagination;
    const char   *name, *cursor;
    char          id[KIT_ID_MAX];
    step_status   s;
    size_t        i;
    int           found, more, pages;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    l = kit_listing_for(k, x->op->kind);
    items = provider_json_array(x, v, l.array, what, res->status);
    if (items == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    found = 0;
    for (i = 0; i < items->u.array.len; i++) {
        item = items->u.array.values[i];
        name = json_member_string(item, "name");
        if (name == NULL || json_member_id(item, "id", id, sizeof(id)) != 0) {
            continue;
        }

        name_cache_put(l.cache, name, id);

        if (!found && strcmp(name, x->op->name) == 0) {
            snprintf(KIT_ID(x), KIT_ID_MAX, "%s", id);
            found = 1;
        }
    }

    pagination = json_member(v, "pagination");
    more = json_member_true(pagination, "has_next_page");
    cursor = json_member_string(pagination, "end_cursor");

    if (found) {
        yajl_tree_free(v);

        if (x->check) {
            snprintf(x->err, sizeof(x->err), "exists");
            return STEP_DONE;
        }

        x->state = (x->state & ~KIT_PHASE_MASK)
                   | (x->op->kind == OP_UNTAG ? KIT_FIND_SUBSCRIBER
                                              : KIT_ACT);
        return STEP_REQUEST;
    }

    if (more && cursor != NULL && cursor[0] != '\0') {
        pages = (x->state >> 16) + 1;

        if (strlen(cursor) >= KIT_CURSOR_MAX
            || strcmp(cursor, KIT_CURSOR(x)) == 0 || pages > 1000)
        {
            snprintf(x->err, sizeof(x->err), "%s: the %ss' pagination does "
                     "not advance (page %d)", what, l.noun, pages);
            yajl_tree_free(v);
            return STEP_FAIL;
        }

        snprintf(KIT_CURSOR(x), KIT_CURSOR_MAX, "%s", cursor);
        x->state = (x->state & 0xffff) | (pages << 16);
        yajl_tree_free(v);
        return STEP_REQUEST;
    }

    yajl_tree_free(v);

    switch (x->op->kind) {
    case OP_TAG:
        if (x->check) {
            snprintf(x->err, sizeof(x->err), "will be created");
            return STEP_DONE;
        }

        x->state = (x->state & ~KIT_PHASE_MASK & 0xffff) | KIT_CREATE_TAG;
        return STEP_REQUEST;

    case OP_UNTAG:
        snprintf(x->err, sizeof(x->err), "Kit tag \"%.100s\" does not "
                 "exist: nothing to remove", x->op->name);
        return STEP_DONE;

    default:
        snprintf(x->err, sizeof(x->err), "Kit %s \"%.100s\" not found",
                 l.noun, x->op->name);
        return STEP_FAIL;
    }
}


static step_status
kit_on_tag_created(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    kit_state    *k = p->data;
    yajl_val      v;
    char          id[KIT_ID_MAX];
    step_status   s;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    if (json_member_id(json_member(v, "tag"), "id", id, sizeof(id)) != 0) {
        snprintf(x->err, sizeof(x->err), "%s: HTTP %ld: the response has "
                 "no tag id", what, res->status);
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    yajl_tree_free(v);

    name_cache_put(k->tags, x->op->name, id);
    snprintf(KIT_ID(x), KIT_ID_MAX, "%s", id);
    x->state = (x->state & ~KIT_PHASE_MASK & 0xffff) | KIT_ACT;
    return STEP_REQUEST;
}


static step_status
kit_on_subscriber(op_exec *x, const http_response *res, const char *what)
{
    yajl_val      v, subs;
    char          id[KIT_ID_MAX];
    step_status   s;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    subs = provider_json_array(x, v, "subscribers", what, res->status);
    if (subs == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    if (subs->u.array.len == 0
        || json_member_id(subs->u.array.values[0], "id", id, sizeof(id))
           != 0)
    {
        yajl_tree_free(v);
        snprintf(x->err, sizeof(x->err), "no Kit subscriber has this "
                 "email: nothing to remove");
        return STEP_DONE;
    }

    yajl_tree_free(v);

    snprintf(KIT_SUB_ID(x), KIT_ID_MAX, "%s", id);
    x->state = (x->state & ~KIT_PHASE_MASK & 0xffff) | KIT_ACT;
    return STEP_REQUEST;
}


/*
 * A page of purchases, newest first: DONE when one carries our
 * transaction_id (the earlier attempt was recorded), the next page while
 * there is one and KIT_FIND_PAGES are not searched, else post it.
 */
static step_status
kit_on_purchases(op_exec *x, const http_response *res, const char *what)
{
    yajl_val      v, items, item, pagination;
    const char   *tid, *got, *cursor;
    char          id[KIT_ID_MAX];
    step_status   s;
    size_t        i;
    int           pages, more;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    items = provider_json_array(x, v, "purchases", what, res->status);
    if (items == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    tid = x->job->object_id != NULL ? x->job->object_id : x->job->id;

    for (i = 0; i < items->u.array.len; i++) {
        item = items->u.array.values[i];
        got = json_member_string(item, "transaction_id");

        if (got != NULL && strcmp(got, tid) == 0) {
            if (json_member_id(item, "id", id, sizeof(id)) != 0) {
                snprintf(id, sizeof(id), "?");
            }

            snprintf(x->err, sizeof(x->err), "already recorded by an "
                     "earlier attempt (Kit purchase %s): not sent again",
                     id);
            yajl_tree_free(v);
            return STEP_DONE;
        }
    }

    pagination = json_member(v, "pagination");
    more = json_member_true(pagination, "has_next_page");
    cursor = json_member_string(pagination, "end_cursor");
    pages = (x->state >> 16) + 1;

    if (more && cursor != NULL && cursor[0] != '\0'
        && strlen(cursor) < KIT_CURSOR_MAX
        && strcmp(cursor, KIT_CURSOR(x)) != 0 && pages < KIT_FIND_PAGES)
    {
        snprintf(KIT_CURSOR(x), KIT_CURSOR_MAX, "%s", cursor);
        x->state = (x->state & 0xffff) | (pages << 16);
        yajl_tree_free(v);
        return STEP_REQUEST;
    }

    yajl_tree_free(v);

    /* not among the newest: the earlier attempt never reached Kit */
    x->state = (x->state & ~KIT_PHASE_MASK & 0xffff) | KIT_ACT;
    return STEP_REQUEST;
}


static step_status
kit_on_act(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    kit_state    *k = p->data;
    kit_listing   l;

    if (res->status == 404) {
        if (x->op->kind == OP_UNTAG) {
            snprintf(x->err, sizeof(x->err), "%s: already removed", what);
            return STEP_DONE;
        }

        /* a cached id deleted at Kit since: look the name up once more */
        if ((x->op->kind == OP_TAG || x->op->kind == OP_SEQUENCE
             || x->op->kind == OP_FORM)
            && !(x->state & KIT_RELOOKED))
        {
            l = kit_listing_for(k, x->op->kind);
            name_cache_remove(l.cache, x->op->name);
            x->state = KIT_BEGIN | KIT_RELOOKED;
            return STEP_REQUEST;
        }
    }

    return provider_json_classify(x, res, what);
}


static step_status
kit_response(provider *p, op_exec *x, const http_response *res)
{
    char          what[360];
    step_status   s;

    kit_what(x, what, sizeof(what));
    x->retry_after_ms = 0;

    switch (x->state & KIT_PHASE_MASK) {
    case KIT_LIST:
        s = kit_on_list(p, x, res, what);
        break;
    case KIT_CREATE_TAG:
        s = kit_on_tag_created(p, x, res, what);
        break;
    case KIT_FIND_SUBSCRIBER:
        s = kit_on_subscriber(x, res, what);
        break;
    case KIT_FIND_PURCHASE:
        s = kit_on_purchases(x, res, what);
        break;
    case KIT_ACT:
        s = kit_on_act(p, x, res, what);
        break;
    case KIT_PROBE:
        s = provider_json_classify(x, res, what);
        if (s == STEP_DONE) {
            snprintf(x->err, sizeof(x->err), "credentials accepted");
        }
        break;
    default:
        snprintf(x->err, sizeof(x->err), "%s: response in no known phase "
                 "(state %d)", what, x->state);
        s = STEP_FAIL;
        break;
    }

    /* Kit's 429 has no Retry-After; its limit is per 60 s */
    if (s == STEP_RETRY && res->status == 429 && x->retry_after_ms <= 0) {
        x->retry_after_ms = KIT_429_WAIT_MS;
    }

    kit_redact(p, x);
    return s;
}


const provider_ops  provider_kit_ops = {
    "kit",
    2.0,
    10,
    KIT_DEFAULT_BASE,
    kit_create,
    kit_destroy,
    kit_supports,
    kit_next,
    kit_response
};
