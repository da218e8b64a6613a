/*
 * provider_activecampaign.c - ActiveCampaign API v3.
 *
 *   upsert    [GET /fields pages] POST /contact/sync
 *             {contact: {email, firstName, lastName, fieldValues}}
 *   fields    the same, with the fields only
 *   tag       [GET /tags?search=, POST /tags] [GET /contacts?email=,
 *             POST /contact/sync] POST /contactTags {contactTag}
 *   untag     [GET /tags?search=] GET /contacts?email=
 *             GET /contacts/{id}/contactTags, DELETE /contactTags/{id}
 *   sequence  [GET /automations pages] [contact] POST /contactAutomations
 *             (resent: GET /contacts/{id}/contactAutomations first: a
 *             contact can enter an automation twice)
 *   list      [GET /lists?filters[name]=] [contact] POST /contactLists
 *   purchase  [GET /connections, POST /connections] [GET /ecomCustomers,
 *             POST /ecomCustomers] POST /ecomOrders {ecomOrder}
 *   find_email
 *             GET /ecomCustomers?filters[externalid]=<Stripe customer id>
 *             (our orders' e-commerce customers carry that id)
 *   check     GET /users/me; names looked up, never created
 *
 * Each operation runs as "what is still unknown, in order": a step looks
 * up or creates one missing id, then ac_continue() picks the next. Ids are
 * cached: tags, lists, automations and fields by name, contacts and
 * e-commerce customers by email, the connection once.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "name_cache.h"
#include "provider_json.h"

#define AC_PAGE_SIZE   100
#define AC_PAGES_MAX   1000
#define AC_CACHE_MAX   20000
#define AC_SERVICE     "stripe-sync"   /* our Deep Data connection */

/* x->state: phase (bits 0-7), flags (8-19), listing page (20-30) */
enum {
    AC_BEGIN = 0,
    AC_PROBE,            /* GET /users/me */
    AC_FIELDS_LIST,      /* GET /fields */
    AC_SYNC,             /* POST /contact/sync */
    AC_FIND_CONTACT,     /* GET /contacts?email= */
    AC_TAG_SEARCH,       /* GET /tags?search= */
    AC_TAG_CREATE,       /* POST /tags */
    AC_CONTACT_TAGS,     /* GET /contacts/{id}/contactTags */
    AC_AUTOMATIONS,      /* GET /automations */
    AC_LIST_FIND,        /* GET /lists?filters[name]= */
    AC_CONN_FIND,        /* GET /connections */
    AC_CONN_CREATE,      /* POST /connections */
    AC_CUST_FIND,        /* GET /ecomCustomers */
    AC_CUST_CREATE,      /* POST /ecomCustomers */
    AC_ACT,              /* the operation's own request */
    AC_FIND_EMAIL,       /* GET /ecomCustomers?filters[externalid]= */
    AC_CONTACT_AUTOS,    /* GET /contacts/{id}/contactAutomations */
    AC_PHASE_MASK = 0xff
};

enum {
    AC_PROBED         = 0x100,
    AC_FIELDS_LISTED  = 0x200,
    AC_NO_CONTACT     = 0x400,    /* no contact has the email yet */
    AC_TARGET_MISSING = 0x800,    /* the tag/list/automation is not there */
    AC_CONN_MISSING   = 0x1000,
    AC_CUST_MISSING   = 0x2000,
    AC_TAGS_READ      = 0x4000,   /* the contact's tags were listed */
    AC_RELOOKED       = 0x8000,   /* a stale cached id was dropped */
    AC_CUST_BY_ID     = 0x10000,  /* find the customer by Stripe id */
    AC_CONN_RELOOKED  = 0x20000,  /* created meanwhile: looked up again */
    AC_AUTOS_READ     = 0x40000,  /* the contact's automations were listed */
    AC_FLAGS_MASK     = 0xfff00
};

#define AC_CLOCK_SKEW  300       /* s: ours vs AC's clock, for adddate */

#define AC_PAGE_SHIFT  20
#define AC_PAGE(x)     ((x)->state >> AC_PAGE_SHIFT)

/* x->scratch: ids known so far; find_email: the email */
#define AC_SLOT        48
#define AC_CONTACT(x)  ((x)->scratch)                 /* contact id */
#define AC_TARGET(x)   ((x)->scratch + AC_SLOT)       /* tag/list/automation */
#define AC_EXTRA(x)    ((x)->scratch + 2 * AC_SLOT)   /* contactTag/customer */
#define AC_CONN(x)     ((x)->scratch + 3 * AC_SLOT)   /* connection id */

extern const provider_ops  provider_activecampaign_ops;

typedef struct {
    char         base[HTTP_URL_MAX / 2];   /* ".../api/3" */
    name_cache  *tags;          /* name -> id */
    name_cache  *lists;
    name_cache  *automations;
    name_cache  *fields;        /* title, and "%PERSTAG%", -> id */
    name_cache  *contacts;      /* lowercased email -> contact id */
    name_cache  *customers;     /* "<connection>:<email>" -> customer id */
    char         connection[AC_SLOT];
} ac_state;


static provider *
ac_create(const ss_config *c, char *err, size_t errlen)
{
    provider   *p;
    ac_state   *a;
    const char *base;
    size_t      len;
    int         n;

    if (c->provider_api_key == NULL || c->provider_api_key[0] == '\0') {
        snprintf(err, errlen, "activecampaign provider needs "
                 "provider.api_key_file");
        return NULL;
    }

    base = c->provider_api_base;
    if (base == NULL || base[0] == '\0') {
        snprintf(err, errlen, "activecampaign provider needs "
                 "provider.api_base: your account's API URL, e.g. "
                 "\"https://youraccount.api-us1.com\"");
        return NULL;
    }

    if (strncmp(base, "https://", 8) != 0 && strncmp(base, "http://", 7) != 0)
    {
        snprintf(err, errlen, "activecampaign provider.api_base \"%.200s\" "
                 "is not an http(s) URL", base);
        return NULL;
    }

    len = strlen(base);
    while (len > 0 && base[len - 1] == '/') {
        len--;
    }

    p = calloc(1, sizeof(provider));
    a = calloc(1, sizeof(ac_state));
    if (p == NULL || a == NULL) {
        goto nomem;
    }

    /* the account URL, or the API URL already: /api/3 once */
    if (len >= 6 && strncmp(base + len - 6, "/api/3", 6) == 0) {
        n = snprintf(a->base, sizeof(a->base), "%.*s", (int) len, base);
    } else {
        n = snprintf(a->base, sizeof(a->base), "%.*s/api/3", (int) len,
                     base);
    }

    if (n < 0 || (size_t) n >= sizeof(a->base)) {
        free(a);
        free(p);
        snprintf(err, errlen, "activecampaign provider.api_base is too "
                 "long");
        return NULL;
    }

    a->tags = name_cache_create(AC_CACHE_MAX);
    a->lists = name_cache_create(AC_CACHE_MAX);
    a->automations = name_cache_create(AC_CACHE_MAX);
    a->fields = name_cache_create(AC_CACHE_MAX);
    a->contacts = name_cache_create(AC_CACHE_MAX);
    a->customers = name_cache_create(AC_CACHE_MAX);
    if (a->tags == NULL || a->lists == NULL || a->automations == NULL
        || a->fields == NULL || a->contacts == NULL || a->customers == NULL)
    {
        goto nomem;
    }

    p->ops = &provider_activecampaign_ops;
    p->config = c;
    p->data = a;
    return p;

nomem:

    if (a != NULL) {
        name_cache_free(a->tags);
        name_cache_free(a->lists);
        name_cache_free(a->automations);
        name_cache_free(a->fields);
        name_cache_free(a->contacts);
        name_cache_free(a->customers);
    }

    free(a);
    free(p);
    snprintf(err, errlen, "activecampaign provider: out of memory");
    return NULL;
}


static void
ac_destroy(provider *p)
{
    ac_state  *a;

    if (p == NULL) {
        return;
    }

    a = p->data;
    if (a != NULL) {
        name_cache_free(a->tags);
        name_cache_free(a->lists);
        name_cache_free(a->automations);
        name_cache_free(a->fields);
        name_cache_free(a->contacts);
        name_cache_free(a->customers);
        free(a);
    }

    free(p);
}


static int
ac_supports(const provider *p, op_kind kind)
{
    (void) p;

    switch (kind) {
    case OP_UPSERT:
    case OP_TAG:
    case OP_UNTAG:
    case OP_SEQUENCE:
    case OP_LIST:
    case OP_FIELDS:
    case OP_PURCHASE:
    case OP_FIND_EMAIL:
        return 1;
    default:
        /* forms are Kit's; custom events need AC's separate tracking key */
        return 0;
    }
}


/* the op's name: a list op without one uses provider.list */
static const char *
ac_name(const provider *p, const op_exec *x)
{
    if (x->op->name != NULL && x->op->name[0] != '\0') {
        return x->op->name;
    }

    if (x->op->kind == OP_LIST) {
        return p->config->provider_list;
    }

    return NULL;
}


static name_cache *
ac_target_cache(ac_state *a, op_kind kind)
{
    switch (kind) {
    case OP_TAG:
    case OP_UNTAG:
        return a->tags;
    case OP_LIST:
        return a->lists;
    case OP_SEQUENCE:
        return a->automations;
    default:
        return NULL;
    }
}


static void
ac_email_key(const char *email, char *buf, size_t len)
{
    size_t  i;

    for (i = 0; email != NULL && email[i] != '\0' && i + 1 < len; i++) {
        buf[i] = (char) tolower((unsigned char) email[i]);
    }

    buf[i] = '\0';
}


static void
ac_customer_key(const char *conn, const char *email, char *buf, size_t len)
{
    char  e[320];

    ac_email_key(email, e, sizeof(e));
    snprintf(buf, len, "%s:%s", conn, e);
}


/* "%PERSTAG%" for a field key written "perstag", "PERSTAG" or "%PERSTAG%" */
static void
ac_perstag_key(const char *key, char *buf, size_t len)
{
    size_t  n;

    n = 0;
    if (len < 3) {
        buf[0] = '\0';
        return;
    }

    buf[n++] = '%';
    for (; *key != '\0' && n + 2 < len; key++) {
        if (*key != '%') {
            buf[n++] = (char) toupper((unsigned char) *key);
        }
    }

    buf[n++] = '%';
    buf[n] = '\0';
}


/* the id of a custom field named by title or personalization tag */
static const char *
ac_field_id(ac_state *a, const char *key)
{
    const char  *id;
    char         tag[256];

    id = name_cache_get(a->fields, key);
    if (id != NULL) {
        return id;
    }

    ac_perstag_key(key, tag, sizeof(tag));
    return name_cache_get(a->fields, tag);
}


/* the first of the op's fields whose id is not known, or NULL */
static const char *
ac_field_unresolved(ac_state *a, const plan_op *op)
{
    size_t  i;

    for (i = 0; i < op->nfields; i++) {
        if (ac_field_id(a, op->fields[i].key) == NULL) {
            return op->fields[i].key;
        }
    }

    return NULL;
}


static const char *
ac_step_label(const op_exec *x)
{
    switch (x->state & AC_PHASE_MASK) {
    case AC_PROBE:         return "GET /users/me";
    case AC_FIELDS_LIST:   return "GET /fields";
    case AC_SYNC:          return "POST /contact/sync";
    case AC_FIND_CONTACT:  return "GET /contacts";
    case AC_TAG_SEARCH:    return "GET /tags";
    case AC_TAG_CREATE:    return "POST /tags";
    case AC_CONTACT_TAGS:  return "GET /contacts/{id}/contactTags";
    case AC_CONTACT_AUTOS: return "GET /contacts/{id}/contactAutomations";
    case AC_AUTOMATIONS:   return "GET /automations";
    case AC_LIST_FIND:     return "GET /lists";
    case AC_CONN_FIND:     return "GET /connections";
    case AC_CONN_CREATE:   return "POST /connections";
    case AC_CUST_FIND:     return "GET /ecomCustomers";
    case AC_CUST_CREATE:   return "POST /ecomCustomers";
    case AC_FIND_EMAIL:    return "GET /ecomCustomers";
    case AC_ACT:
        switch (x->op->kind) {
        case OP_TAG:       return "POST /contactTags";
        case OP_UNTAG:     return "DELETE /contactTags/{id}";
        case OP_SEQUENCE:  return "POST /contactAutomations";
        case OP_LIST:      return "POST /contactLists";
        case OP_PURCHASE:  return "POST /ecomOrders";
        default:           return "POST /contact/sync";
        }
    default:
        return "(no request)";
    }
}


/* "ActiveCampaign tag \"Buyer\": POST /contactTags" */
static void
ac_what(const provider *p, const op_exec *x, char *buf, size_t len)
{
    const char  *name;

    name = ac_name(p, x);
    if (name != NULL) {
        snprintf(buf, len, "ActiveCampaign %s \"%.100s\": %s",
                 op_kind_name(x->op->kind), name, ac_step_label(x));
    } else {
        snprintf(buf, len, "ActiveCampaign %s: %s",
                 op_kind_name(x->op->kind), ac_step_label(x));
    }
}


static step_status
ac_fail(op_exec *x, http_request *req, step_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static step_status
ac_fail(op_exec *x, http_request *req, step_status s, const char *fmt, ...)
{
    va_list  ap;

    if (req != NULL) {
        free(req->body);
        req->body = NULL;
        req->body_len = 0;
    }

    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);

    return s;
}


static void
ac_set_phase(op_exec *x, int phase)
{
    /* a new phase starts at its first page */
    x->state = (x->state & AC_FLAGS_MASK) | phase;
}


/*
 * The next phase of the operation given what is known, or 0 when the
 * operation is over, *end then saying how.
 */
static int
ac_advance(provider *p, op_exec *x, step_status *end)
{
    ac_state    *a = p->data;
    const char  *name, *field;
    int          f;

    f = x->state & AC_FLAGS_MASK;
    name = ac_name(p, x);

    switch (x->op->kind) {
    case OP_UPSERT:
    case OP_FIELDS:
        if (x->check && x->op->kind == OP_UPSERT && !(f & AC_PROBED)) {
            return AC_PROBE;
        }

        field = ac_field_unresolved(a, x->op);
        if (field != NULL) {
            if (!(f & AC_FIELDS_LISTED)) {
                return AC_FIELDS_LIST;
            }

            snprintf(x->err, sizeof(x->err), "ActiveCampaign custom field "
                     "\"%.100s\" not found (no field has that title or "
                     "personalization tag)", field);
            *end = STEP_FAIL;
            return 0;
        }

        if (x->check) {
            snprintf(x->err, sizeof(x->err), "%s%s",
                     (f & AC_PROBED) ? "credentials accepted" : "",
                     x->op->nfields == 0 ? ""
                     : (f & AC_PROBED) ? "; fields exist" : "fields exist");
            *end = STEP_DONE;
            return 0;
        }

        return AC_SYNC;

    case OP_TAG:
    case OP_UNTAG:
        if (AC_TARGET(x)[0] == '\0') {
            if (!(f & AC_TARGET_MISSING)) {
                return AC_TAG_SEARCH;
            }

            if (x->op->kind == OP_TAG && !x->check) {
                return AC_TAG_CREATE;
            }

            snprintf(x->err, sizeof(x->err), x->op->kind == OP_TAG
                     ? "will be created"
                     : "ActiveCampaign tag \"%.100s\" does not exist: "
                       "nothing to remove", name);
            *end = STEP_DONE;
            return 0;
        }

        if (x->check) {
            snprintf(x->err, sizeof(x->err), "exists");
            *end = STEP_DONE;
            return 0;
        }
        break;

    case OP_SEQUENCE:
    case OP_LIST:
        if (AC_TARGET(x)[0] == '\0') {
            if (!(f & AC_TARGET_MISSING)) {
                return x->op->kind == OP_LIST ? AC_LIST_FIND
                                              : AC_AUTOMATIONS;
            }

            snprintf(x->err, sizeof(x->err), "ActiveCampaign %s \"%.100s\" "
                     "not found", x->op->kind == OP_LIST ? "list"
                                                         : "automation",
                     name);
            *end = STEP_FAIL;
            return 0;
        }

        if (x->check) {
            snprintf(x->err, sizeof(x->err), "exists");
            *end = STEP_DONE;
            return 0;
        }
        break;

    case OP_PURCHASE:
        if (x->check) {
            x->err[0] = '\0';
            *end = STEP_DONE;
            return 0;
        }

        if (AC_CONN(x)[0] == '\0') {
            return (f & AC_CONN_MISSING) ? AC_CONN_CREATE : AC_CONN_FIND;
        }

        if (AC_EXTRA(x)[0] == '\0') {
            return (f & AC_CUST_MISSING) ? AC_CUST_CREATE : AC_CUST_FIND;
        }

        return AC_ACT;

    case OP_FIND_EMAIL:
        if (x->check) {
            x->err[0] = '\0';
            *end = STEP_DONE;
            return 0;
        }

        return AC_FIND_EMAIL;

    default:
        snprintf(x->err, sizeof(x->err), "ActiveCampaign cannot express %s",
                 op_kind_name(x->op->kind));
        *end = STEP_SKIP;
        return 0;
    }

    /* tag, untag, sequence, list: the contact */
    if (AC_CONTACT(x)[0] == '\0') {
        if (!(f & AC_NO_CONTACT)) {
            return AC_FIND_CONTACT;
        }

        if (x->op->kind == OP_UNTAG) {
            snprintf(x->err, sizeof(x->err), "no ActiveCampaign contact has "
                     "this email: nothing to remove");
            *end = STEP_DONE;
            return 0;
        }

        return AC_SYNC;
    }

    if (x->op->kind == OP_UNTAG && AC_EXTRA(x)[0] == '\0') {
        if (!(f & AC_TAGS_READ)) {
            return AC_CONTACT_TAGS;
        }

        snprintf(x->err, sizeof(x->err), "the contact does not have tag "
                 "\"%.100s\": nothing to remove", name);
        *end = STEP_DONE;
        return 0;
    }

    /* an earlier attempt posted it and never learnt the outcome: a
       contact can enter an automation more than once, so look first */
    if (x->op->kind == OP_SEQUENCE && x->resent && !(f & AC_AUTOS_READ)) {
        return AC_CONTACT_AUTOS;
    }

    return AC_ACT;
}


/* moves on to the next phase: REQUEST, or how the operation ended */
static step_status
ac_continue(provider *p, op_exec *x)
{
    step_status  end;
    int          phase;

    end = STEP_DONE;
    phase = ac_advance(p, x, &end);
    if (phase == 0) {
        return end;
    }

    ac_set_phase(x, phase);
    return STEP_REQUEST;
}


/* what the caches already know, into scratch */
static void
ac_begin(provider *p, op_exec *x)
{
    ac_state    *a = p->data;
    name_cache  *cache;
    const char  *id, *name;
    char         key[400];

    memset(x->scratch, 0, sizeof(x->scratch));
    x->state &= AC_FLAGS_MASK & AC_RELOOKED;

    if (x->op->kind == OP_FIND_EMAIL) {
        return;     /* the scratch is for the email found */
    }

    name = ac_name(p, x);
    cache = ac_target_cache(a, x->op->kind);
    if (cache != NULL && name != NULL) {
        id = name_cache_get(cache, name);
        if (id != NULL) {
            snprintf(AC_TARGET(x), AC_SLOT, "%s", id);
        }
    }

    ac_email_key(x->job->email, key, sizeof(key));
    id = name_cache_get(a->contacts, key);
    if (id != NULL) {
        snprintf(AC_CONTACT(x), AC_SLOT, "%s", id);
    }

    if (a->connection[0] != '\0') {
        snprintf(AC_CONN(x), AC_SLOT, "%s", a->connection);

        if (x->op->kind == OP_PURCHASE) {
            ac_customer_key(a->connection, x->job->email, key, sizeof(key));
            id = name_cache_get(a->customers, key);
            if (id != NULL) {
                snprintf(AC_EXTRA(x), AC_SLOT, "%s", id);
            }
        }
    }
}


/* {"contact": {"email", "firstName", "lastName", "fieldValues": [..]}} */
static int
ac_sync_body(provider *p, op_exec *x, http_request *req)
{
    ac_state      *a = p->data;
    json_writer    w;
    const job     *j = x->job;
    const plan_op *op = x->op;
    size_t         i;
    int            with_fields;

    /* the contact a tag/list/automation needs: email and names only */
    with_fields = op->kind == OP_UPSERT || op->kind == OP_FIELDS;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "contact");
    json_writer_map_open(&w);

    json_writer_pair(&w, "email", j->email);
    if (op->kind != OP_FIELDS) {
        if (j->first_name != NULL) {
            json_writer_pair(&w, "firstName", j->first_name);
        }
        if (j->last_name != NULL) {
            json_writer_pair(&w, "lastName", j->last_name);
        }
    }

    if (with_fields && op->nfields > 0) {
        json_writer_key(&w, "fieldValues");
        json_writer_array_open(&w);
        for (i = 0; i < op->nfields; i++) {
            json_writer_map_open(&w);
            json_writer_pair(&w, "field", ac_field_id(a, op->fields[i].key));
            json_writer_pair(&w, "value", op->fields[i].value);
            json_writer_map_close(&w);
        }
        json_writer_array_close(&w);
    }

    json_writer_map_close(&w);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* an id as a JSON integer, as the spec types contact/tag/automation */
static void
ac_id_number(json_writer *w, const char *key, const char *id)
{
    const char  *s;

    for (s = id; *s != '\0' && isdigit((unsigned char) *s); s++) {
        /* digits only */
    }

    json_writer_key(w, key);
    if (*id != '\0' && *s == '\0' && strlen(id) < 19) {
        json_writer_number(w, id);
    } else {
        json_writer_string(w, id);
    }
}


static int
ac_tag_create_body(const char *name, http_request *req)
{
    json_writer  w;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "tag");
    json_writer_map_open(&w);
    json_writer_pair(&w, "tag", name);
    json_writer_pair(&w, "tagType", "contact");
    json_writer_pair(&w, "description", "");
    json_writer_map_close(&w);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


static int
ac_connection_body(http_request *req)
{
    json_writer  w;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "connection");
    json_writer_map_open(&w);
    json_writer_pair(&w, "service", AC_SERVICE);
    json_writer_pair(&w, "externalid", AC_SERVICE);
    json_writer_pair(&w, "name", AC_SERVICE);
    json_writer_pair(&w, "logoUrl", "");
    json_writer_pair(&w, "linkUrl", "");
    json_writer_map_close(&w);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* the e-commerce customer's id at our connection: the Stripe customer */
static const char *
ac_customer_externalid(const job *j)
{
    return j->customer_id != NULL ? j->customer_id : j->email;
}


static int
ac_customer_body(const op_exec *x, http_request *req)
{
    json_writer  w;
    const job   *j = x->job;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "ecomCustomer");
    json_writer_map_open(&w);
    json_writer_pair(&w, "connectionid", AC_CONN(x));
    json_writer_pair(&w, "externalid", ac_customer_externalid(j));
    json_writer_pair(&w, "email", j->email);
    json_writer_map_close(&w);
    json_writer_map_close(&w);

    return json_writer_finish(&w, req);
}


/* the order's total in minor units: the record's amount, else the sum of
   its items; -1 when unknown */
static long long
ac_order_total(const job *j)
{
    long long  total;
    size_t     i;

    if (j->amount >= 0 || j->nitems == 0) {
        return j->amount;
    }

    total = 0;
    for (i = 0; i < j->nitems; i++) {
        if (j->items[i].amount < 0) {
            return -1;
        }
        total += j->items[i].amount;
    }

    return total;
}


/*
 * {"ecomOrder": {"externalid", "source": 1, "email", "orderProducts":
 * [{externalid, name, price, quantity}], "totalPrice", "currency",
 * "connectionid", "customerid", "externalCreatedDate"}}: cents, as AC
 * counts money.
 */
static int
ac_order_body(op_exec *x, http_request *req)
{
    json_writer      w;
    const job       *j = x->job;
    const job_item  *it;
    const char      *oid, *pid;
    char             cur[16], when[32];
    long long        total, q, unit;
    size_t           i;

    if (currency_upper(j->currency, cur, sizeof(cur)) != 0) {
        snprintf(x->err, sizeof(x->err), "ActiveCampaign purchase: the "
                 "record has no currency");
        return -1;
    }

    total = ac_order_total(j);
    if (total < 0) {
        snprintf(x->err, sizeof(x->err), "ActiveCampaign purchase: the "
                 "record has no amount");
        return -1;
    }

    if (iso8601_utc(j->created >= 0 ? j->created : (long long) time(NULL),
                    when, sizeof(when)) != 0)
    {
        when[0] = '\0';
    }

    oid = j->object_id != NULL ? j->object_id : j->id;

    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_key(&w, "ecomOrder");
    json_writer_map_open(&w);

    json_writer_pair(&w, "externalid", oid);
    json_writer_pair_integer(&w, "source", 1);
    json_writer_pair(&w, "email", j->email);

    json_writer_key(&w, "orderProducts");
    json_writer_array_open(&w);

    if (j->nitems == 0) {
        json_writer_map_open(&w);
        json_writer_pair(&w, "externalid", oid);
        json_writer_pair(&w, "name", j->object_type != NULL
                                     ? j->object_type : "payment");
        json_writer_pair_integer(&w, "price", total);
        json_writer_pair_integer(&w, "quantity", 1);
        json_writer_map_close(&w);
    }

    for (i = 0; i < j->nitems; i++) {
        it = &j->items[i];
        pid = it->product != NULL ? it->product
              : it->price != NULL ? it->price : oid;
        q = it->quantity > 0 ? it->quantity : 1;
        unit = it->amount >= 0 ? (it->amount + q / 2) / q : 0;

        json_writer_map_open(&w);
        json_writer_pair(&w, "externalid", pid);
        json_writer_pair(&w, "name", it->description != NULL
                                     ? it->description : pid);
        json_writer_pair_integer(&w, "price", unit);
        json_writer_pair_integer(&w, "quantity", q);
        json_writer_map_close(&w);
    }

    json_writer_array_close(&w);

    json_writer_pair_integer(&w, "totalPrice", total);
    json_writer_pair(&w, "currency", cur);
    ac_id_number(&w, "connectionid", AC_CONN(x));
    ac_id_number(&w, "customerid", AC_EXTRA(x));
    json_writer_pair(&w, "externalCreatedDate", when);

    json_writer_map_close(&w);
    json_writer_map_close(&w);

    if (json_writer_finish(&w, req) != 0) {
        snprintf(x->err, sizeof(x->err), "ActiveCampaign purchase: cannot "
                 "encode the body (invalid UTF-8?)");
        return -1;
    }

    return 0;
}


/* the operation's own request */
static int
ac_act_request(provider *p, op_exec *x, http_request *req)
{
    ac_state     *a = p->data;
    json_writer   w;
    int           rc;

    switch (x->op->kind) {
    case OP_TAG:
    case OP_SEQUENCE:
        req->method = "POST";
        rc = http_request_url(req, "%s/%s", a->base,
                              x->op->kind == OP_TAG ? "contactTags"
                                                    : "contactAutomations");
        json_writer_init(&w);
        json_writer_map_open(&w);
        json_writer_key(&w, x->op->kind == OP_TAG ? "contactTag"
                                                  : "contactAutomation");
        req->once = x->op->kind == OP_SEQUENCE;
        json_writer_map_open(&w);
        ac_id_number(&w, "contact", AC_CONTACT(x));
        ac_id_number(&w, x->op->kind == OP_TAG ? "tag" : "automation",
                     AC_TARGET(x));
        json_writer_map_close(&w);
        json_writer_map_close(&w);
        return rc | json_writer_finish(&w, req);

    case OP_LIST:
        req->method = "POST";
        rc = http_request_url(req, "%s/contactLists", a->base);
        json_writer_init(&w);
        json_writer_map_open(&w);
        json_writer_key(&w, "contactList");
        json_writer_map_open(&w);
        /* strings here: the spec types contactList's members so */
        json_writer_pair(&w, "list", AC_TARGET(x));
        json_writer_pair(&w, "contact", AC_CONTACT(x));
        json_writer_pair(&w, "status", "1");
        json_writer_map_close(&w);
        json_writer_map_close(&w);
        return rc | json_writer_finish(&w, req);

    case OP_UNTAG:
        req->method = "DELETE";
        return http_request_url(req, "%s/contactTags/%s", a->base,
                                AC_EXTRA(x));

    case OP_PURCHASE:
        req->method = "POST";
        if (ac_order_body(x, req) != 0) {
            return -2;
        }
        return http_request_url(req, "%s/ecomOrders", a->base);

    default:
        return -1;
    }
}


static step_status
ac_next(provider *p, op_exec *x, http_request *req)
{
    ac_state     *a = p->data;
    const char   *name;
    char          esc[1024], esc2[64];
    step_status   s;
    int           rc, page;

    http_request_init(req, "GET");
    x->retry_after_ms = 0;

    if (!ac_supports(p, x->op->kind)) {
        return ac_fail(x, req, STEP_SKIP, "ActiveCampaign cannot express "
                       "%s", op_kind_name(x->op->kind));
    }

    name = ac_name(p, x);
    if (name == NULL && x->op->kind != OP_UPSERT && x->op->kind != OP_FIELDS
        && x->op->kind != OP_PURCHASE && x->op->kind != OP_FIND_EMAIL)
    {
        return ac_fail(x, req, STEP_FAIL, "ActiveCampaign %s: no name "
                       "given", op_kind_name(x->op->kind));
    }

    if (x->op->kind == OP_FIND_EMAIL) {
        if (!x->check && (x->job->customer_id == NULL
                          || x->job->customer_id[0] == '\0'))
        {
            return ac_fail(x, req, STEP_FAIL, "ActiveCampaign find_email: "
                           "the job has no Stripe customer id");
        }

    } else if (!x->check
               && (x->job->email == NULL || x->job->email[0] == '\0'))
    {
        return ac_fail(x, req, STEP_FAIL, "ActiveCampaign %s: the job has "
                       "no email", op_kind_name(x->op->kind));
    }

    /* an order that cannot be made needs no connection nor customer */
    if (!x->check && x->op->kind == OP_PURCHASE
        && (x->job->currency == NULL || x->job->currency[0] == '\0'))
    {
        return ac_fail(x, req, STEP_FAIL, "ActiveCampaign purchase: the "
                       "record has no currency");
    }

    if (!x->check && x->op->kind == OP_PURCHASE
        && ac_order_total(x->job) < 0)
    {
        return ac_fail(x, req, STEP_FAIL, "ActiveCampaign purchase: the "
                       "record has no amount");
    }

    if ((x->state & AC_PHASE_MASK) == AC_BEGIN) {
        ac_begin(p, x);
        s = ac_continue(p, x);
        if (s != STEP_REQUEST) {
            return s;
        }
    }

    page = AC_PAGE(x);
    rc = 0;

    switch (x->state & AC_PHASE_MASK) {
    case AC_PROBE:
        rc = http_request_url(req, "%s/users/me", a->base);
        break;

    case AC_FIELDS_LIST:
        rc = http_request_url(req, "%s/fields?limit=%d&offset=%d", a->base,
                              AC_PAGE_SIZE, page * AC_PAGE_SIZE);
        break;

    case AC_SYNC:
        req->method = "POST";
        rc = http_request_url(req, "%s/contact/sync", a->base);
        rc |= ac_sync_body(p, x, req);
        break;

    case AC_FIND_CONTACT:
        rc = http_escape(x->job->email, esc, sizeof(esc));
        rc |= http_request_url(req, "%s/contacts?email=%s", a->base, esc);
        break;

    case AC_TAG_SEARCH:
        rc = http_escape(name, esc, sizeof(esc));
        rc |= http_request_url(req, "%s/tags?search=%s&limit=%d&offset=%d",
                               a->base, esc, AC_PAGE_SIZE,
                               page * AC_PAGE_SIZE);
        break;

    case AC_TAG_CREATE:
        req->method = "POST";
        rc = http_request_url(req, "%s/tags", a->base);
        rc |= ac_tag_create_body(name, req);
        break;

    case AC_CONTACT_TAGS:
        rc = http_request_url(req, "%s/contacts/%s/contactTags", a->base,
                              AC_CONTACT(x));
        break;

    case AC_CONTACT_AUTOS:
        rc = http_request_url(req, "%s/contacts/%s/contactAutomations",
                              a->base, AC_CONTACT(x));
        break;

    case AC_AUTOMATIONS:
        rc = http_request_url(req, "%s/automations?limit=%d&offset=%d",
                              a->base, AC_PAGE_SIZE, page * AC_PAGE_SIZE);
        break;

    case AC_LIST_FIND:
        rc = http_escape(name, esc, sizeof(esc));
        rc |= http_request_url(req, "%s/lists?filters[name]=%s&limit=%d"
                               "&offset=%d", a->base, esc, AC_PAGE_SIZE,
                               page * AC_PAGE_SIZE);
        break;

    case AC_CONN_FIND:
        rc = http_request_url(req, "%s/connections?filters[service]=%s"
                              "&filters[externalid]=%s", a->base,
                              AC_SERVICE, AC_SERVICE);
        break;

    case AC_CONN_CREATE:
        req->method = "POST";
        rc = http_request_url(req, "%s/connections", a->base);
        rc |= ac_connection_body(req);
        break;

    case AC_CUST_FIND:
        rc = http_escape(AC_CONN(x), esc2, sizeof(esc2));
        if (x->state & AC_CUST_BY_ID) {
            rc |= http_escape(ac_customer_externalid(x->job), esc,
                              sizeof(esc));
            rc |= http_request_url(req, "%s/ecomCustomers?filters"
                                   "[externalid]=%s&filters[connectionid]=%s",
                                   a->base, esc, esc2);
        } else {
            rc |= http_escape(x->job->email, esc, sizeof(esc));
            rc |= http_request_url(req, "%s/ecomCustomers?filters[email]=%s"
                                   "&filters[connectionid]=%s", a->base, esc,
                                   esc2);
        }
        break;

    case AC_CUST_CREATE:
        req->method = "POST";
        rc = http_request_url(req, "%s/ecomCustomers", a->base);
        rc |= ac_customer_body(x, req);
        break;

    case AC_FIND_EMAIL:
        rc = http_escape(x->job->customer_id, esc, sizeof(esc));
        rc |= http_request_url(req, "%s/ecomCustomers?filters[externalid]=%s",
                               a->base, esc);
        break;

    case AC_ACT:
        rc = ac_act_request(p, x, req);
        if (rc == -2) {
            free(req->body);            /* err says what is missing */
            req->body = NULL;
            req->body_len = 0;
            return STEP_FAIL;
        }
        break;

    default:
        return ac_fail(x, req, STEP_FAIL, "ActiveCampaign %s: lost its "
                       "place (state %d)", op_kind_name(x->op->kind),
                       x->state);
    }

    if (rc != 0) {
        return ac_fail(x, req, STEP_FAIL, "ActiveCampaign %s: the request "
                       "does not fit (URL or body)",
                       op_kind_name(x->op->kind));
    }

    if (http_request_header(req, "Api-Token: %s",
                            p->config->provider_api_key) != 0
        || http_request_header(req, "Accept: application/json") != 0
        || (req->body != NULL
            && http_request_header(req, "Content-Type: application/json")
               != 0))
    {
        return ac_fail(x, req, STEP_FAIL, "ActiveCampaign %s: the API key "
                       "does not fit in a header",
                       op_kind_name(x->op->kind));
    }

    return STEP_REQUEST;
}


/* a page of a listing, by name */
typedef struct {
    const char  *array;       /* member holding the items: "tags" */
    const char  *name_key;    /* the item's name: "tag", "name", "title" */
    name_cache  *cache;
} ac_listing;


static ac_listing
ac_listing_for(ac_state *a, int phase)
{
    ac_listing  l;

    switch (phase) {
    case AC_TAG_SEARCH:
        l.array = "tags";
        l.name_key = "tag";
        l.cache = a->tags;
        break;
    case AC_AUTOMATIONS:
        l.array = "automations";
        l.name_key = "name";
        l.cache = a->automations;
        break;
    case AC_LIST_FIND:
        l.array = "lists";
        l.name_key = "name";
        l.cache = a->lists;
        break;
    default:
        l.array = "fields";
        l.name_key = "title";
        l.cache = a->fields;
        break;
    }

    return l;
}


/* the "id" of the first entry of list whose key equals want; -1 if none */
static int
ac_find_id(yajl_val list, const char *key, const char *want, char *id,
    size_t len)
{
    char    val[AC_SLOT];
    size_t  i;

    for (i = 0; i < list->u.array.len; i++) {
        if (json_member_id(list->u.array.values[i], key, val, sizeof(val))
            == 0
            && strcmp(val, want) == 0
            && json_member_id(list->u.array.values[i], "id", id, len) == 0)
        {
            return 0;
        }
    }

    return -1;
}


/* 1 when the listing has a page after this one */
static int
ac_more_pages(const op_exec *x, yajl_val v, size_t count)
{
    yajl_val     meta, total;
    long long    n;
    const char  *s;

    meta = json_member(v, "meta");
    total = json_member(meta, "total");
    n = -1;

    if (YAJL_IS_INTEGER(total)) {
        n = YAJL_GET_INTEGER(total);

    } else if (YAJL_IS_STRING(total)) {
        s = YAJL_GET_STRING(total);
        n = strtoll(s, NULL, 10);
    }

    if (n >= 0) {
        return (long long) (AC_PAGE(x) + 1) * AC_PAGE_SIZE < n;
    }

    return count >= AC_PAGE_SIZE;
}


static step_status
ac_on_listing(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    ac_state     *a = p->data;
    ac_listing    l;
    yajl_val      v, items, item;
    const char   *name, *target, *type, *tag;
    char          id[AC_SLOT], key[256];
    step_status   s;
    size_t        i;
    int           phase, found, more;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    phase = x->state & AC_PHASE_MASK;
    l = ac_listing_for(a, phase);

    items = provider_json_array(x, v, l.array, what, res->status);
    if (items == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    target = phase == AC_FIELDS_LIST ? NULL : ac_name(p, x);
    found = 0;

    for (i = 0; i < items->u.array.len; i++) {
        item = items->u.array.values[i];
        name = json_member_string(item, l.name_key);
        if (name == NULL || json_member_id(item, "id", id, sizeof(id)) != 0) {
            continue;
        }

        /* "template" tags are for campaigns, not contacts */
        type = json_member_string(item, "tagType");
        if (phase == AC_TAG_SEARCH && type != NULL
            && strcmp(type, "contact") != 0)
        {
            continue;
        }

        name_cache_put(l.cache, name, id);

        if (phase == AC_FIELDS_LIST) {
            tag = json_member_string(item, "perstag");
            if (tag != NULL && tag[0] != '\0') {
                ac_perstag_key(tag, key, sizeof(key));
                name_cache_put(l.cache, key, id);
            }
        }

        /* AC's search matches substrings: the exact name wins; a tag
           differing only in case is kept in case there is none, since AC
           refuses to create it again */
        if (!found && target != NULL && strcmp(name, target) == 0) {
            snprintf(AC_TARGET(x), AC_SLOT, "%s", id);
            found = 1;

        } else if (phase == AC_TAG_SEARCH && target != NULL
                   && AC_EXTRA(x)[0] == '\0'
                   && strcasecmp(name, target) == 0)
        {
            snprintf(AC_EXTRA(x), AC_SLOT, "%s", id);
        }
    }

    more = ac_more_pages(x, v, items->u.array.len);
    yajl_tree_free(v);

    if (found) {
        if (phase == AC_TAG_SEARCH) {
            AC_EXTRA(x)[0] = '\0';
        }
        return ac_continue(p, x);
    }

    if (phase == AC_FIELDS_LIST && ac_field_unresolved(a, x->op) == NULL) {
        return ac_continue(p, x);
    }

    if (more) {
        if (AC_PAGE(x) + 1 >= AC_PAGES_MAX) {
            snprintf(x->err, sizeof(x->err), "%s: more than %d pages",
                     what, AC_PAGES_MAX);
            return STEP_FAIL;
        }

        x->state += 1 << AC_PAGE_SHIFT;
        return STEP_REQUEST;
    }

    if (phase == AC_TAG_SEARCH && AC_EXTRA(x)[0] != '\0') {
        memcpy(AC_TARGET(x), AC_EXTRA(x), AC_SLOT);   /* same size */
        AC_EXTRA(x)[0] = '\0';
        name_cache_put(a->tags, target, AC_TARGET(x));
        return ac_continue(p, x);
    }

    x->state |= phase == AC_FIELDS_LIST ? AC_FIELDS_LISTED
                                        : AC_TARGET_MISSING;
    return ac_continue(p, x);
}


/* the id of obj[member] ({"tag": {"id": ..}}) into slot, or RETRY */
static step_status
ac_on_created(op_exec *x, const http_response *res, const char *what,
    const char *member, char *slot)
{
    yajl_val     v;
    step_status  s;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    if (json_member_id(json_member(v, member), "id", slot, AC_SLOT) != 0) {
        snprintf(x->err, sizeof(x->err), "%s: HTTP %ld: the response has "
                 "no %s id", what, res->status, member);
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    yajl_tree_free(v);
    return STEP_DONE;
}


static step_status
ac_on_sync(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    ac_state     *a = p->data;
    step_status   s;
    char          key[320];

    s = ac_on_created(x, res, what, "contact", AC_CONTACT(x));
    if (s != STEP_DONE) {
        return s;
    }

    ac_email_key(x->job->email, key, sizeof(key));
    name_cache_put(a->contacts, key, AC_CONTACT(x));

    if (x->op->kind == OP_UPSERT || x->op->kind == OP_FIELDS) {
        x->err[0] = '\0';
        return STEP_DONE;
    }

    x->state &= ~AC_NO_CONTACT;
    return ac_continue(p, x);
}


static step_status
ac_on_find_contact(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    ac_state     *a = p->data;
    yajl_val      v, list, c;
    const char   *email;
    char          id[AC_SLOT], key[320];
    step_status   s;
    size_t        i;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    list = provider_json_array(x, v, "contacts", what, res->status);
    if (list == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    for (i = 0; i < list->u.array.len; i++) {
        c = list->u.array.values[i];
        email = json_member_string(c, "email");
        if (email != NULL && strcasecmp(email, x->job->email) == 0
            && json_member_id(c, "id", id, sizeof(id)) == 0)
        {
            snprintf(AC_CONTACT(x), AC_SLOT, "%s", id);
            ac_email_key(x->job->email, key, sizeof(key));
            name_cache_put(a->contacts, key, id);
            break;
        }
    }

    yajl_tree_free(v);

    if (AC_CONTACT(x)[0] == '\0') {
        x->state |= AC_NO_CONTACT;
    }

    return ac_continue(p, x);
}


static step_status
ac_on_contact_tags(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    yajl_val      v, list;
    char          id[AC_SLOT];
    step_status   s;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    list = provider_json_array(x, v, "contactTags", what, res->status);
    if (list == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    if (ac_find_id(list, "tag", AC_TARGET(x), id, sizeof(id)) == 0) {
        snprintf(AC_EXTRA(x), AC_SLOT, "%s", id);
    }

    yajl_tree_free(v);

    x->state |= AC_TAGS_READ;
    return ac_continue(p, x);
}


/* resent: DONE when the contact entered the automation since the event */
static step_status
ac_on_contact_autos(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    yajl_val      v, list, e;
    char          id[AC_SLOT], val[AC_SLOT];
    long long     since, added;
    step_status   s;
    size_t        i;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    list = provider_json_array(x, v, "contactAutomations", what, res->status);
    if (list == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    /* ours: this automation, entered after the event (an older entry is
       an earlier event's: the contact enters again) */
    since = x->job->created >= 0 ? x->job->created - AC_CLOCK_SKEW : -1;

    for (i = 0; i < list->u.array.len; i++) {
        e = list->u.array.values[i];
        added = iso8601_parse(json_member_string(e, "adddate"));

        if (json_member_id(e, "automation", val, sizeof(val)) == 0
            && strcmp(val, AC_TARGET(x)) == 0
            && (since < 0 || added < 0 || added >= since)
            && json_member_id(e, "id", id, sizeof(id)) == 0)
        {
            yajl_tree_free(v);
            snprintf(x->err, sizeof(x->err), "already in the automation by "
                     "an earlier attempt (contactAutomation %s): not added "
                     "again", id);
            return STEP_DONE;
        }
    }

    yajl_tree_free(v);

    x->state |= AC_AUTOS_READ;
    return ac_continue(p, x);
}


static step_status
ac_on_connection(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    ac_state     *a = p->data;
    yajl_val      v, list;
    char          id[AC_SLOT];
    step_status   s;

    /* another job created it meanwhile (two first purchases at once) */
    if ((x->state & AC_PHASE_MASK) == AC_CONN_CREATE && res->status == 422
        && !(x->state & AC_CONN_RELOOKED))
    {
        x->state = (x->state & ~AC_CONN_MISSING) | AC_CONN_RELOOKED;
        ac_set_phase(x, AC_CONN_FIND);
        return STEP_REQUEST;
    }

    if ((x->state & AC_PHASE_MASK) == AC_CONN_CREATE) {
        s = ac_on_created(x, res, what, "connection", AC_CONN(x));
        if (s != STEP_DONE) {
            return s;
        }

        snprintf(a->connection, sizeof(a->connection), "%s", AC_CONN(x));
        return ac_continue(p, x);
    }

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    list = provider_json_array(x, v, "connections", what, res->status);
    if (list == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    if (ac_find_id(list, "service", AC_SERVICE, id, sizeof(id)) == 0) {
        snprintf(AC_CONN(x), AC_SLOT, "%s", id);
        snprintf(a->connection, sizeof(a->connection), "%s", id);
    }

    yajl_tree_free(v);

    if (AC_CONN(x)[0] == '\0') {
        x->state |= AC_CONN_MISSING;
    }

    return ac_continue(p, x);
}


static step_status
ac_on_customer(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    ac_state     *a = p->data;
    yajl_val      v, list;
    char          id[AC_SLOT], key[400];
    step_status   s;

    /* the Stripe customer is there under another email: find it so */
    if ((x->state & AC_PHASE_MASK) == AC_CUST_CREATE && res->status == 422
        && !(x->state & AC_CUST_BY_ID) && res->body != NULL
        && (strcasestr(res->body, "duplicate") != NULL
            || strcasestr(res->body, "already exists") != NULL))
    {
        x->state = (x->state & ~AC_CUST_MISSING) | AC_CUST_BY_ID;
        ac_set_phase(x, AC_CUST_FIND);
        return STEP_REQUEST;
    }

    if ((x->state & AC_PHASE_MASK) == AC_CUST_CREATE) {
        s = ac_on_created(x, res, what, "ecomCustomer", AC_EXTRA(x));
        if (s != STEP_DONE) {
            return s;
        }

    } else {
        v = provider_json_answer(x, res, what, &s);
        if (v == NULL) {
            return s;
        }

        list = provider_json_array(x, v, "ecomCustomers", what, res->status);
        if (list == NULL) {
            yajl_tree_free(v);
            return STEP_RETRY;
        }

        if (ac_find_id(list, "connectionid", AC_CONN(x), id, sizeof(id))
            == 0)
        {
            snprintf(AC_EXTRA(x), AC_SLOT, "%s", id);
        }

        yajl_tree_free(v);

        if (AC_EXTRA(x)[0] == '\0') {
            x->state |= AC_CUST_MISSING;
            return ac_continue(p, x);
        }
    }

    ac_customer_key(AC_CONN(x), x->job->email, key, sizeof(key));
    name_cache_put(a->customers, key, AC_EXTRA(x));
    return ac_continue(p, x);
}


/*
 * The email of an e-commerce customer whose externalid is the Stripe
 * customer id: ours (AC_SERVICE's connection) when we know it, else the
 * first; only entries repeating the id count, whatever the filter did.
 */
static step_status
ac_on_find_email(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    ac_state     *a = p->data;
    yajl_val      v, list, c;
    const char   *email;
    char          ext[256], conn[AC_SLOT];
    step_status   s;
    size_t        i;

    v = provider_json_answer(x, res, what, &s);
    if (v == NULL) {
        return s;
    }

    list = provider_json_array(x, v, "ecomCustomers", what, res->status);
    if (list == NULL) {
        yajl_tree_free(v);
        return STEP_RETRY;
    }

    memset(x->scratch, 0, sizeof(x->scratch));

    for (i = 0; i < list->u.array.len; i++) {
        c = list->u.array.values[i];
        email = json_member_string(c, "email");

        if (json_member_id(c, "externalid", ext, sizeof(ext)) != 0
            || strcmp(ext, x->job->customer_id) != 0
            || email == NULL || email[0] == '\0'
            || strlen(email) >= sizeof(x->scratch))
        {
            continue;
        }

        if (x->scratch[0] == '\0') {
            memcpy(x->scratch, email, strlen(email) + 1);
        }

        if (a->connection[0] != '\0'
            && json_member_id(c, "connectionid", conn, sizeof(conn)) == 0
            && strcmp(conn, a->connection) == 0)
        {
            memcpy(x->scratch, email, strlen(email) + 1);
            break;
        }
    }

    yajl_tree_free(v);

    if (x->scratch[0] == '\0') {
        snprintf(x->err, sizeof(x->err), "no ActiveCampaign e-commerce "
                 "customer has externalid \"%.100s\"",
                 x->job->customer_id);
    } else {
        x->err[0] = '\0';
    }

    return STEP_DONE;
}


/* 1 when a 422 says the order's externalid is already recorded */
static int
ac_duplicate_order(const http_response *res)
{
    if (res->status != 422 || res->body == NULL) {
        return 0;
    }

    return strcasestr(res->body, "duplicate") != NULL
           || strcasestr(res->body, "already exists") != NULL;
}


static step_status
ac_on_act(provider *p, op_exec *x, const http_response *res,
    const char *what)
{
    ac_state     *a = p->data;
    name_cache   *cache;
    char          key[400];

    if (x->op->kind == OP_UNTAG && res->status == 404) {
        snprintf(x->err, sizeof(x->err), "%s: already removed", what);
        return STEP_DONE;
    }

    if (x->op->kind == OP_PURCHASE && ac_duplicate_order(res)) {
        snprintf(x->err, sizeof(x->err), "%s: order already recorded",
                 what);
        return STEP_DONE;
    }

    /* an id cached from before was deleted at AC: forget, look up again */
    if (res->status == 404 && !(x->state & AC_RELOOKED)) {
        ac_email_key(x->job->email, key, sizeof(key));
        name_cache_remove(a->contacts, key);

        cache = ac_target_cache(a, x->op->kind);
        if (cache != NULL && ac_name(p, x) != NULL) {
            name_cache_remove(cache, ac_name(p, x));
        }

        if (x->op->kind == OP_PURCHASE) {
            ac_customer_key(AC_CONN(x), x->job->email, key, sizeof(key));
            name_cache_remove(a->customers, key);
            a->connection[0] = '\0';
        }

        x->state = AC_BEGIN | AC_RELOOKED;
        return STEP_REQUEST;
    }

    return provider_json_classify(x, res, what);
}


static step_status
ac_response(provider *p, op_exec *x, const http_response *res)
{
    char          what[320];
    step_status   s;

    ac_what(p, x, what, sizeof(what));
    x->retry_after_ms = 0;

    switch (x->state & AC_PHASE_MASK) {
    case AC_PROBE:
        s = provider_json_classify(x, res, what);
        if (s == STEP_DONE) {
            x->state |= AC_PROBED;
            s = ac_continue(p, x);
        }
        break;

    case AC_FIELDS_LIST:
    case AC_TAG_SEARCH:
    case AC_AUTOMATIONS:
    case AC_LIST_FIND:
        s = ac_on_listing(p, x, res, what);
        break;

    case AC_SYNC:
        s = ac_on_sync(p, x, res, what);
        break;

    case AC_FIND_CONTACT:
        s = ac_on_find_contact(p, x, res, what);
        break;

    case AC_TAG_CREATE:
        /* another job created it meanwhile: search once more */
        if (res->status == 422 && !(x->state & AC_RELOOKED)) {
            x->state = (x->state & ~AC_TARGET_MISSING) | AC_RELOOKED;
            ac_set_phase(x, AC_TAG_SEARCH);
            s = STEP_REQUEST;
            break;
        }

        s = ac_on_created(x, res, what, "tag", AC_TARGET(x));
        if (s == STEP_DONE) {
            name_cache_put(((ac_state *) p->data)->tags, ac_name(p, x),
                           AC_TARGET(x));
            s = ac_continue(p, x);
        }
        break;

    case AC_CONTACT_TAGS:
        s = ac_on_contact_tags(p, x, res, what);
        break;

    case AC_CONTACT_AUTOS:
        s = ac_on_contact_autos(p, x, res, what);
        break;

    case AC_CONN_FIND:
    case AC_CONN_CREATE:
        s = ac_on_connection(p, x, res, what);
        break;

    case AC_CUST_FIND:
    case AC_CUST_CREATE:
        s = ac_on_customer(p, x, res, what);
        break;

    case AC_ACT:
        s = ac_on_act(p, x, res, what);
        break;

    case AC_FIND_EMAIL:
        s = ac_on_find_email(p, x, res, what);
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


const provider_ops  provider_activecampaign_ops = {
    "activecampaign",
    5.0,
    5,
    NULL,
    ac_create,
    ac_destroy,
    ac_supports,
    ac_next,
    ac_response
};
