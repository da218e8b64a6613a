/*
 * provider_klaviyo.c - Klaviyo API, revision 2026-07-15 (JSON:API).
 *
 *   upsert    POST /profile-import {data: {type: "profile", attributes:
 *             {email, external_id, first_name, last_name, properties}}}
 *             (external_id: the Stripe customer id; sent again without it
 *             when Klaviyo answers 409, the id being another profile's)
 *   fields    POST /profile-import with the fields as properties
 *   track     POST /events {data: {type: "event", attributes: {properties,
 *             time, value, value_currency, unique_id, metric, profile}}}
 *   purchase  the same, metric "Placed Order", with the order's items
 *   list      [GET /lists?filter=equals(name,"..")] [POST /profile-import]
 *             POST /lists/{id}/relationships/profiles
 *   find_email
 *             GET /profiles?filter=equals(external_id,"<customer id>")
 *   check     GET /accounts; lists looked up
 *
 * Every request carries the revision header: Klaviyo versions its API by
 * date, and the bodies here follow that revision's schemas.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "name_cache.h"
#include "provider_json.h"

#define KL_DEFAULT_BASE  "https://a.klaviyo.com/api"
#define KL_REVISION      "2026-07-15"
#define KL_JSON_API      "application/vnd.api+json"
#define KL_CACHE_MAX     20000
#define KL_ORDER_METRIC  "Placed Order"

enum {
    KL_BEGIN = 0,
    KL_PROBE,          /* GET /accounts */
    KL_IMPORT,         /* POST /profile-import */
    KL_LIST_FIND,      /* GET /lists?filter= */
    KL_ACT,            /* POST /events, POST /lists/{id}/relationships/.. */
    KL_FIND_EMAIL,     /* GET /profiles?filter=equals(external_id,..) */
    KL_PHASE_MASK = 0xff,
    KL_RELOOKED = 0x100,
    KL_NO_EXTERNAL_ID = 0x200   /* upsert: import without external_id */
};

/* x->scratch: the list id, the profile id; find_email: the email */
#define KL_LIST(x)     ((x)->scratch)
#define KL_PROFILE(x)  ((x)->scratch + 128)
#define KL_SLOT        128

extern const provider_ops  provider_klaviyo_ops;

typedef struct {
    char         base[HTTP_URL_MAX / 2];
    name_cache  *lists;       /* name -> id */
    name_cache  *profiles;    /* lowercased email -> profile id */
} kl_state;


static provider *
kl_create(const ss_config *c, char *err, size_t errlen)
{
    provider    *p;
    kl_state    *k;
    const char  *base;
    size_t       len;

    if (c->provider_api_key == NULL || c->provider_api_key[0] == '\0') {
        snprintf(err, errlen, "klaviyo provider needs provider.api_key_file "
                 "(a private API key)");
        return NULL;
    }

    base = c->provider_api_base != NULL && c->provider_api_base[0] != '\0'
           ? c->provider_api_base : KL_DEFAULT_BASE;

    len = strlen(base);
    while (len > 0 && base[len - 1] == '/') {
        len--;
    }

    if (len == 0 || len >= sizeof(((kl_state *) 0)->base)) {
        snprintf(err, errlen, "klaviyo provider.api_base \"%.200s\" is "
                 "empty or too long", base);
        return NULL;
    }

    p = calloc(1, sizeof(provider));
    k = calloc(1, sizeof(kl_state));
    if (p == NULL || k == NULL) {
        goto nomem;
    }

    memcpy(k->base, base, len);
    k->base[len] = '\0';

    k->lists = name_cache_create(KL_CACHE_MAX);
    k->profiles = name_cache_create(KL_CACHE_MAX);
    if (k->lists == NULL || k->profiles == NULL) {
        goto nomem;
    }

    p->ops = &provider_klaviyo_ops;
    p->config = c;
    p->data = k;
    return p;

nomem:

    if (k != NULL) {
        name_cache_free(k->lists);
        name_cache_free(k->profiles);
    }

    free(k);
    free(p);
    snprintf(err, errlen, "klaviyo provider: out of memory");
    return NULL;
}


static void
kl_destroy(provider *p)
{
    kl_state  *k;

    if (p == NULL) {
        return;
    }

    k = p->data;
    if (k != NULL) {
        name_cache_free(k->lists);
        name_cache_free(k->profiles);
        free(k);
    }

    free(p);
}


static int
kl_supports(const provider *p, op_kind kind)
{
    (void) p;

    switch (kind) {
    case OP_UPSERT:
    case OP_LIST:
    case OP_FIELDS:
    case OP_PURCHASE:
    case OP_TRACK:
    case OP_FIND_EMAIL:
        return 1;
    default:
        /* Klaviyo has no tags on profiles, no sequences, no forms to join:
           segments and flows do that work there */
        return 0;
    }
}


static const char *
kl_name(const provider *p, const op_exec *x)
{
    if (x->op->name != NULL && x->op->name[0] != '\0') {
        return x->op->name;
    }

    if (x->op->kind == OP_LIST) {
        return p->config->provider_list;
    }

    if (x->op->kind == OP_PURCHASE) {
        return KL_ORDER_METRIC;
    }

    return NULL;
}


static void
kl_email_key(const char *email, char *buf, size_t len)
{
    size_t  i;

    for (i = 0; email != NULL && email[i] != '\0' && i + 1 < len; i++) {
        buf[i] = (char) tolower((unsigned char) email[i]);
    }

    buf[i] = '\0';
}


static const char *
kl_step_label(const op_exec *x)
{
    switch (x->state & KL_PHASE_MASK) {
    case KL_PROBE:      return "GET /accounts";
    case KL_IMPORT:     return "POST /profile-import";
    case KL_LIST_FIND:  return "GET /lists";
    case KL_FIND_EMAIL: return "GET /profiles";
    case KL_ACT:
        return x->op->kind == OP_LIST
               ? "POST /lists/{id}/relationships/profiles" : "POST /events";
    default:
        return "(no request)";
    }
}


static void
kl_what(const provider *p, const op_exec *x, char *buf, size_t len)
{
    const char  *name;

    name = kl_name(p, x);
    if (name != NULL) {
        snprintf(buf, len, "Klaviyo %s \"%.100s\": %s",
                 op_kind_name(x->op->kind), name, kl_step_label(x));
    } else {
        snprintf(buf, len, "Klaviyo %s: %s", op_kind_name(x->op->kind),
                 kl_step_label(x));
    }
}


static step_status
kl_fail(op_exec *x, http_request *req, step_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static step_status
kl_fail(op_exec *x, http_request *req, step_status s, const char *fmt, ...)
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


/* a record value that is a plain integer, as a JSON integer */
static void
kl_lookup_integer(json_writer *w, const job *j, const char *path,
    const char *key)
{
    char        buf[32], *end;
    long long   n;

    if (job_lookup(j, path, buf, sizeof(buf)) != 0 || buf[0] == '\0') {
        return;
    }

    n = strtoll(buf, &end, 10);
    if (*end != '\0') {
        return;
    }

    json_writer_pair_integer(w, key, n);
}


/*
 * {"data": {"type": "profile", "attributes": {"email", "first_name",
 * "last_name", "properties": {..}}}}; the upsert's properties are its
 * fields, the Stripe customer id and the card's expiry.
 */
static int
kl_profile_body(const op_exec *x, http_request *req)
{
    json_writer     w;
    const job      *j = x->job;
    const plan_op  *op = x->op;
    size_t          i;
    int             props;
    char            month[8];

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "data");
    json_writer_map_open(&w);
    json_writer_pair(&w, "type", "profile");
    json_writer_key(&w, "attributes");
    json_writer_map_open(&w);

    json_writer_pair(&w, "email", j->email);

    /* what find_email looks for when a later event has no email */
    if (op->kind == OP_UPSERT && j->customer_id != NULL
        && !(x->state & KL_NO_EXTERNAL_ID))
    {
        json_writer_pair(&w, "external_id", j->customer_id);
    }

    if (op->kind != OP_FIELDS) {
        if (j->first_name != NULL) {
            json_writer_pair(&w, "first_name", j->first_name);
        }
        if (j->last_name != NULL) {
            json_writer_pair(&w, "last_name", j->last_name);
        }
    }

    props = op->kind == OP_FIELDS
            || (op->kind == OP_UPSERT
                && (op->nfields > 0 || j->customer_id != NULL
                    || job_lookup(j, "card.exp_month", month,
                                  sizeof(month)) == 0));

    if (props) {
        json_writer_key(&w, "properties");
        json_writer_map_open(&w);

        for (i = 0; i < op->nfields; i++) {
            json_writer_pair(&w, op->fields[i].key, op->fields[i].value);
        }

        if (op->kind == OP_UPSERT) {
            if (j->customer_id != NULL) {
                json_writer_pair(&w, "stripe_customer_id", j->customer_id);
            }
            kl_lookup_integer(&w, j, "card.exp_month", "card_exp_month");
            kl_lookup_integer(&w, j, "card.exp_year", "card_exp_year");
        }

        json_writer_map_close(&w);
    }

    json_writer_map_close(&w);
    json_writer_map_close(&w);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* "Items": [{ProductID, ProductName, PriceID, Quantity, ItemPrice,
   RowTotal}], "ItemNames": [..], as Klaviyo's ordered-product events */
static void
kl_order_items(json_writer *w, const job *j)
{
    const job_item  *it;
    const char      *pid, *name;
    char             money[48];
    long long        q;
    size_t           i;

    json_writer_key(w, "Items");
    json_writer_array_open(w);

    for (i = 0; i < j->nitems; i++) {
        it = &j->items[i];
        pid = it->product != NULL ? it->product : it->price;
        name = it->description != NULL ? it->description : pid;
        q = it->quantity > 0 ? it->quantity : 1;

        json_writer_map_open(w);
        if (pid != NULL) {
            json_writer_pair(w, "ProductID", pid);
        }
        if (name != NULL) {
            json_writer_pair(w, "ProductName", name);
        }
        if (it->price != NULL) {
            json_writer_pair(w, "PriceID", it->price);
        }
        json_writer_pair_integer(w, "Quantity", q);

        if (it->amount >= 0
            && money_major_units((it->amount + q / 2) / q, j->currency,
                                 money, sizeof(money)) == 0)
        {
            json_writer_key(w, "ItemPrice");
            json_writer_number(w, money);
        }

        if (it->amount >= 0
            && money_major_units(it->amount, j->currency, money,
                                 sizeof(money)) == 0)
        {
            json_writer_key(w, "RowTotal");
            json_writer_number(w, money);
        }
        json_writer_map_close(w);
    }

    json_writer_array_close(w);

    json_writer_key(w, "ItemNames");
    json_writer_array_open(w);
    for (i = 0; i < j->nitems; i++) {
        it = &j->items[i];
        name = it->description != NULL ? it->description
               : it->product != NULL ? it->product : it->price;
        if (name != NULL) {
            json_writer_string(w, name);
        }
    }
    json_writer_array_close(w);
}


/*
 * {"data": {"type": "event", "attributes": {"properties": {..}, "time",
 * "value", "value_currency", "unique_id", "metric": {"data": {"type":
 * "metric", "attributes": {"name"}}}, "profile": {"data": {"type":
 * "profile", "attributes": {"email"}}}}}}
 */
static int
kl_event_body(provider *p, const op_exec *x, http_request *req)
{
    json_writer     w;
    const job      *j = x->job;
    const plan_op  *op = x->op;
    const char     *uid;
    char            when[32], money[48], cur[16];
    size_t          i;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "data");
    json_writer_map_open(&w);
    json_writer_pair(&w, "type", "event");
    json_writer_key(&w, "attributes");
    json_writer_map_open(&w);

    json_writer_key(&w, "properties");
    json_writer_map_open(&w);
    for (i = 0; i < op->nfields; i++) {
        json_writer_pair(&w, op->fields[i].key, op->fields[i].value);
    }
    if (op->kind == OP_PURCHASE) {
        if (j->object_id != NULL) {
            json_writer_pair(&w, "OrderId", j->object_id);
        }
        kl_order_items(&w, j);
    }
    json_writer_map_close(&w);

    if (iso8601_utc(j->created, when, sizeof(when)) == 0) {
        json_writer_pair(&w, "time", when);
    }

    if (j->amount >= 0
        && money_major_units(j->amount, j->currency, money, sizeof(money))
           == 0)
    {
        json_writer_key(&w, "value");
        json_writer_number(&w, money);

        if (currency_upper(j->currency, cur, sizeof(cur)) == 0) {
            json_writer_pair(&w, "value_currency", cur);
        }
    }

    /* Klaviyo keeps one event per profile, metric and unique_id: a
       purchase is one per Stripe object, a tracked event one per event */
    uid = op->kind == OP_PURCHASE && j->object_id != NULL ? j->object_id
                                                          : j->id;
    json_writer_pair(&w, "unique_id", uid);

    json_writer_key(&w, "metric");
    json_writer_map_open(&w);
    json_writer_key(&w, "data");
    json_writer_map_open(&w);
    json_writer_pair(&w, "type", "metric");
    json_writer_key(&w, "attributes");
    json_writer_map_open(&w);
    json_writer_pair(&w, "name", kl_name(p, x));
    json_writer_map_close(&w);
    json_writer_map_close(&w);
    json_writer_map_close(&w);

    json_writer_key(&w, "profile");
    json_writer_map_open(&w);
    json_writer_key(&w, "data");
    json_writer_map_open(&w);
    json_writer_pair(&w, "type", "profile");
    json_writer_key(&w, "attributes");
    json_writer_map_open(&w);
    json_writer_pair(&w, "email", j->email);
    json_writer_map_close(&w);
    json_writer_map_close(&w);
    json_writer_map_close(&w);

    json_writer_map_close(&w);
    json_writer_map_close(&w);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* {"data": [{"type": "profile", "id": ..}]} */
static int
kl_members_body(const op_exec *x, http_request *req)
{
    json_writer  w;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "data");
    json_writer_array_open(&w);
    json_writer_map_open(&w);
    json_writer_pair(&w, "type", "profile");
    json_writer_pair(&w, "id", KL_PROFILE(x));
    json_writer_map_close(&w);
    json_writer_array_close(&w);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* equals(field,"..") with " and \ escaped, URL-encoded */
static int
kl_equals_filter(const char *field, const char *value, char *out,
    size_t len)
{
    char    filter[600];
    int     n0;
    size_t  n;

    n0 = snprintf(filter, sizeof(filter), "equals(%s,\"", field);
    if (n0 < 0 || (size_t) n0 >= sizeof(filter)) {
        return -1;
    }

    for (n = (size_t) n0; *value != '\0'; value++) {
        if (n + 4 >= sizeof(filter)) {
            return -1;
        }
        if (*value == '"' || *value == '\\') {
            filter[n++] = '\\';
        }
        filter[n++] = *value;
    }

    if (n + 3 >= sizeof(filter)) {
        return -1;
    }

    filter[n++] = '"';
    filter[n++] = ')';
    filter[n] = '\0';

    return http_escape(filter, out, len);
}


/* the next phase given what is known; 0 when over, with *end */
static int
kl_advance(provider *p, op_exec *x, step_status *end)
{
    switch (x->op->kind) {
    case OP_UPSERT:
    case OP_FIELDS:
        if (x->check) {
            if (x->op->kind == OP_UPSERT && !(x->state & KL_PHASE_MASK)) {
                return KL_PROBE;
            }

            *end = STEP_DONE;
            return 0;
        }

        return KL_IMPORT;

    case OP_TRACK:
    case OP_PURCHASE:
        if (x->check) {
            x->err[0] = '\0';
            *end = STEP_DONE;
            return 0;
        }

        return KL_ACT;

    case OP_LIST:
        if (KL_LIST(x)[0] == '\0') {
            return KL_LIST_FIND;
        }

        if (x->check) {
            snprintf(x->err, sizeof(x->err), "exists");
            *end = STEP_DONE;
            return 0;
        }

        return KL_PROFILE(x)[0] == '\0' ? KL_IMPORT : KL_ACT;

    case OP_FIND_EMAIL:
        if (x->check) {
            x->err[0] = '\0';
            *end = STEP_DONE;
            return 0;
        }

        return KL_FIND_EMAIL;

    default:
        (void) p;
        snprintf(x->err, sizeof(x->err), "Klaviyo cannot express %s",
                 op_kind_name(x->op->kind));
        *end = STEP_SKIP;
        return 0;
    }
}


static step_status
kl_continue(provider *p, op_exec *x)
{
    step_status  end;
    int          phase;

    end = STEP_DONE;
    phase = kl_advance(p, x, &end);
    if (phase == 0) {
        return end;
    }

    x->state = (x->state & ~KL_PHASE_MASK) | phase;
    return STEP_REQUEST;
}


static void
kl_begin(provider *p, op_exec *x)
{
    kl_state    *k = p->data;
    const char  *id, *name;
    char         key[320];

    memset(x->scratch, 0, sizeof(x->scratch));
    x->state &= KL_RELOOKED | KL_NO_EXTERNAL_ID;

    name = kl_name(p, x);
    if (x->op->kind == OP_LIST && name != NULL) {
        id = name_cache_get(k->lists, name);
        if (id != NULL) {
            snprintf(KL_LIST(x), KL_SLOT, "%s", id);
        }
    }

    if (x->op->kind == OP_FIND_EMAIL) {
        return;     /* the scratch is for the email found */
    }

    kl_email_key(x->job->email, key, sizeof(key));
    id = name_cache_get(k->profiles, key);
    if (id != NULL) {
        snprintf(KL_PROFILE(x), KL_SLOT, "%s", id);
    }
}


static step_status
kl_next(provider *p, op_exec *x, http_request *req)
{
    kl_state     *k = p->data;
    const char   *name;
    char          esc[2048];
    step_status   s;
    int           rc;

    http_request_init(req, "GET");
    x->retry_after_ms = 0;

    if (!kl_supports(p, x->op->kind)) {
        return kl_fail(x, req, STEP_SKIP, "Klaviyo cannot express %s (no "
                       "tags, sequences or forms: use segments and flows)",
                       op_kind_name(x->op->kind));
    }

    name = kl_name(p, x);
    if (name == NULL && (x->op->kind == OP_LIST || x->op->kind == OP_TRACK))
    {
        return kl_fail(x, req, STEP_FAIL, "Klaviyo %s: no name given",
                       op_kind_name(x->op->kind));
    }

    if (x->op->kind == OP_FIND_EMAIL) {
        if (!x->check && (x->job->customer_id == NULL
                          || x->job->customer_id[0] == '\0'))
        {
            return kl_fail(x, req, STEP_FAIL, "Klaviyo find_email: the job "
                           "has no Stripe customer id");
        }

    } else if (!x->check
               && (x->job->email == NULL || x->job->email[0] == '\0'))
    {
        return kl_fail(x, req, STEP_FAIL, "Klaviyo %s: the job has no email",
                       op_kind_name(x->op->kind));
    }

    if ((x->state & KL_PHASE_MASK) == KL_BEGIN) {
        kl_begin(p, x);
        s = kl_continue(p, x);
        if (s != STEP_REQUEST) {
            return s;
        }
    }

    switch (x->state & KL_PHASE_MASK) {
    case KL_PROBE:
        rc = http_request_url(req, "%s/accounts", k->base);
        break;

    case KL_IMPORT:
        req->method = "POST";
        rc = http_request_url(req, "%s/profile-import", k->base);
        rc |= kl_profile_body(x, req);
        break;

    case KL_LIST_FIND:
        rc = kl_equals_filter("name", name, esc, sizeof(esc));
        rc |= http_request_url(req, "%s/lists?filter=%s", k->base, esc);
        break;

    case KL_FIND_EMAIL:
        rc = kl_equals_filter("external_id", x->job->customer_id, esc,
                              sizeof(esc));
        rc |= http_request_url(req, "%s/profiles?filter=%s", k->base, esc);
        break;

    case KL_ACT:
        req->method = "POST";
        if (x->op->kind == OP_LIST) {
            rc = http_request_url(req, "%s/lists/%s/relationships/profiles",
                                  k->base, KL_LIST(x));
            rc |= kl_members_body(x, req);
        } else {
            rc = http_request_url(req, "%s/events", k->base);
            rc |= kl_event_body(p, x, req);
        }
        break;

    default:
        return kl_fail(x, req, STEP_FAIL, "Klaviyo %s: lost its place "
                       "(state %d)", op_kind_name(x->op->kind), x->state);
    }

    if (rc != 0) {
        return kl_fail(x, req, STEP_FAIL, "Klaviyo %s: the request does not "
                       "fit or cannot be encoded (URL, invalid UTF-8)",
                       op_kind_name(x->op->kind));
    }

    if (http_request_header(req, "Authorization: Klaviyo-API-Key %s",
                            p->config->provider_api_key) != 0
        || http_request_header(req, "revision: " KL_REVISION) != 0
        || http_request_header(req, "accept: " KL_JSON_API) != 0
        || (req->body != NULL
            && http_request_header(req, "Content-Type: " KL_JSON_API) != 0))
    {
        return kl_fail(x, req, STEP_FAIL, "Klaviyo %s: the API key does not "
                       "fit in a header", op_kind_name(x->op->kind));
    }

    return STEP_REQUEST;
}


static step_status
kl_on_import(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    kl_state     *k = p->data;
    yajl_val      v;
    step_status   s;
    char          key[320];

    /* the Stripe customer id is already another profile's (its customer
       changed email): the profile of this email, without the id */
    if (res->status == 409 && x->op->kind == OP_UPSERT
        && x->job->customer_id != NULL && !(x->state & KL_NO_EXTERNAL_ID))
    {
        x->state |= KL_NO_EXTERNAL_ID;
        return STEP_REQUEST;
    }

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    if (json_member_id(json_member(v, "data"), "id", KL_PROFILE(x), KL_SLOT)
        != 0)
    {
        snprintf(x->err, sizeof(x->err), "%s: HTTP %ld: the response has "
                 "no data.id", what, res->status);
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    yajl_tree_free(v);

    kl_email_key(x->job->email, key, sizeof(key));
    name_cache_put(k->profiles, key, KL_PROFILE(x));

    if (x->op->kind != OP_LIST) {
        x->err[0] = '\0';
        return STEP_DONE;
    }

    return kl_continue(p, x);
}


static step_status
kl_on_list_find(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    kl_state     *k = p->data;
    yajl_val      v, data, item;
    const char   *name, *want;
    char          id[KL_SLOT];
    step_status   s;
    size_t        i;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    data = provider_json_array(x, v, "data", what, res->status);
    if (data == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    want = kl_name(p, x);
    for (i = 0; i < data->u.array.len; i++) {
        item = data->u.array.values[i];
        name = json_member_string(json_member(item, "attributes"), "name");
        if (name != NULL && strcmp(name, want) == 0
            && json_member_id(item, "id", id, sizeof(id)) == 0)
        {
            name_cache_put(k->lists, name, id);
            snprintf(KL_LIST(x), KL_SLOT, "%s", id);
            break;
        }
    }

    yajl_tree_free(v);

    if (KL_LIST(x)[0] == '\0') {
        snprintf(x->err, sizeof(x->err), "Klaviyo list \"%.100s\" not found",
                 want);
        return STEP_FAIL;
    }

    return kl_continue(p, x);
}


/* the email of the profile whose external_id is the Stripe customer id */
static step_status
kl_on_find_email(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    kl_state     *k = p->data;
    yajl_val      v, data, item, attr;
    const char   *ext, *email;
    char          id[KL_SLOT], key[320];
    step_status   s;
    size_t        i;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    data = provider_json_array(x, v, "data", what, res->status);
    if (data == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    memset(x->scratch, 0, sizeof(x->scratch));

    /* the filter is trusted only as far as the answer repeats it */
    for (i = 0; i < data->u.array.len; i++) {
        item = data->u.array.values[i];
        attr = json_member(item, "attributes");
        ext = json_member_string(attr, "external_id");
        email = json_member_string(attr, "email");

        if (ext == NULL || strcmp(ext, x->job->customer_id) != 0
            || email == NULL || email[0] == '\0'
            || strlen(email) >= sizeof(x->scratch))
        {
            continue;
        }

        memcpy(x->scratch, email, strlen(email) + 1);

        if (json_member_id(item, "id", id, sizeof(id)) == 0) {
            kl_email_key(email, key, sizeof(key));
            name_cache_put(k->profiles, key, id);
        }
        break;
    }

    yajl_tree_free(v);

    if (x->scratch[0] == '\0') {
        snprintf(x->err, sizeof(x->err), "no Klaviyo profile has "
                 "external_id \"%.100s\"", x->job->customer_id);
    } else {
        x->err[0] = '\0';
    }

    return STEP_DONE;
}


static step_status
kl_on_act(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    kl_state  *k = p->data;
    char       key[320];

    /* a cached list or profile deleted since: look them up once more */
    if (res->status == 404 && x->op->kind == OP_LIST
        && !(x->state & KL_RELOOKED))
    {
        name_cache_remove(k->lists, kl_name(p, x));
        kl_email_key(x->job->email, key, sizeof(key));
        name_cache_remove(k->profiles, key);
        x->state = KL_BEGIN | KL_RELOOKED;
        return STEP_REQUEST;
    }

    return provider_json_classify(x, res, what);
}


static step_status
kl_response(provider *p, op_exec *x, const http_response *res)
{
    char          what[320];
    step_status   s;

    kl_what(p, x, what, sizeof(what));
    x->retry_after_ms = 0;

    switch (x->state & KL_PHASE_MASK) {
    case KL_PROBE:
        s = provider_json_classify(x, res, what);
        if (s == STEP_DONE) {
            snprintf(x->err, sizeof(x->err), "credentials accepted");
        }
        break;
    case KL_IMPORT:
        s = kl_on_import(p, x, res, what);
        break;
    case KL_LIST_FIND:
        s = kl_on_list_find(p, x, res, what);
        break;
    case KL_ACT:
        s = kl_on_act(p, x, res, what);
        break;
    case KL_FIND_EMAIL:
        s = kl_on_find_email(p, x, res, what);
        break;
    default:
        snprintf(x->err, sizeof(x->err), "%s: response in no known phase "
                 "(state %d)", what, x->state);
        s = STEP_FAIL;
        break;
    }

    provider_redact(x->err, sizeof(x->err), p->config->provider_api_key);
    return s;
}


const provider_ops  provider_klaviyo_ops = {
    "klaviyo",
    50.0,
    50,
    KL_DEFAULT_BASE,
    kl_create,
    kl_destroy,
    kl_supports,
    kl_next,
    kl_response
};
