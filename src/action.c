/*
 * action.c - a Stripe event turned into the action record of SPEC 5.
 *
 * Three stages:
 *
 *   parse      json_tree.c: the body as a tree in an arena, refusing
 *              nesting deeper than ACTION_DEPTH_MAX and strings that are
 *              not UTF-8;
 *   normalize  the catalogue maps the event type to the kind of object it
 *              carries and to an action; the kind's reader collects the facts
 *              the payload holds into a struct facts;
 *   encode     a JSON writer of our own (the bytes yajl_gen wrote, at a
 *              fraction of its cost) writes the facts as the record, leaving
 *              out items and metadata that would take it past
 *              ACTION_RECORD_MAX.
 *
 * Nothing is invented: a fact the payload does not hold, or holds in a shape
 * Stripe never sends (an amount as a string, an id of 300 bytes), is left out
 * of the record. docs/events.md documents every field and every choice.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "json_tree.h"


/* Bounds on what one record carries (docs/events.md, "Limits"). */
#define ID_MAX              255     /* Stripe ids are far shorter */
#define EMAIL_MAX           254     /* RFC 5321 */
#define PERSON_NAME_MAX     256     /* names: cut beyond, at a character */
#define TEXT_MAX            500     /* descriptions, failure messages */
#define SHORT_MAX           32      /* card brand */
#define ITEMS_MAX           100
#define PREVIOUS_ITEMS_MAX  10
#define META_PAIRS_MAX      50      /* Stripe's own metadata limits */
#define META_KEY_MAX        40
#define META_VALUE_MAX      500
#define META_RESERVE        (28 * 1024)  /* room kept for metadata */
#define WORK_CHUNK          (16 * 1024)  /* the tree: about 3x the body */
#define RESULT_CHUNK        2048         /* what the caller keeps */

_Static_assert(ACTION_DEPTH_MAX == JSON_DEPTH_MAX,
               "action.h promises the parser's depth limit");



/* ---- values: what a node holds, checked for the use made of it ---- */

typedef struct {
    const char     *s;          /* NULL when absent */
    size_t          len;
} text;

typedef struct {
    long long       v;
    int             set;
} opt_int;

static const text  no_text = { NULL, 0 };


static text
text_of(const char *s)
{
    text  t;

    t.s = s;
    t.len = s != NULL ? strlen(s) : 0;

    return t;
}


static int
node_int(const json_node *n, opt_int *v)
{
    if (n == NULL || n->type != JSON_INT) {
        return 0;
    }

    v->v = n->u.i;
    v->set = 1;

    return 1;
}


static opt_int
int_at(const json_node *n)
{
    opt_int  v = { 0, 0 };

    node_int(n, &v);

    return v;
}


/* 1 true, 0 false, -1 absent or not a boolean. */
static int
node_bool(const json_node *n)
{
    if (n == NULL) {
        return -1;
    }

    return n->type == JSON_TRUE ? 1 : n->type == JSON_FALSE ? 0 : -1;
}


static int
node_is(const json_node *n, const char *s)
{
    return n != NULL && n->type == JSON_STRING && n->u.str.len == strlen(s)
           && memcmp(n->u.str.s, s, n->u.str.len) == 0;
}


/* An id: 1 to ID_MAX printable ASCII characters. */
static text
node_id_string(const json_node *n)
{
    text    t = no_text;
    size_t  i;

    if (n == NULL || n->type != JSON_STRING || n->u.str.len == 0
        || n->u.str.len > ID_MAX)
    {
        return t;
    }

    for (i = 0; i < n->u.str.len; i++) {
        if (n->u.str.s[i] < 0x20 || n->u.str.s[i] > 0x7e) {
            return t;
        }
    }

    t.s = n->u.str.s;
    t.len = n->u.str.len;

    return t;
}


/* An expandable field: the id, or the object's "id" when expanded. */
static text
node_id(const json_node *n)
{
    if (n != NULL && n->type == JSON_OBJECT) {
        n = json_get(n, "id");
    }

    return node_id_string(n);
}


/* Free text, cut at max bytes on a character boundary; "" is absent. */
static text
node_text(const json_node *n, size_t max)
{
    text  t = no_text;

    if (n == NULL || n->type != JSON_STRING || n->u.str.len == 0) {
        return t;
    }

    t.s = n->u.str.s;
    t.len = n->u.str.len;

    if (t.len > max) {
        t.len = max;

        while (t.len > 0 && ((unsigned char) t.s[t.len] & 0xc0) == 0x80) {
            t.len--;
        }
    }

    return t;
}


/* An email address: an "@", no space or control character, not cut. */
static text
node_email(const json_node *n)
{
    text    t = no_text;
    size_t  i;

    if (n == NULL || n->type != JSON_STRING || n->u.str.len < 3
        || n->u.str.len > EMAIL_MAX
        || memchr(n->u.str.s, '@', n->u.str.len) == NULL)
    {
        return t;
    }

    for (i = 0; i < n->u.str.len; i++) {
        if ((unsigned char) n->u.str.s[i] <= 0x20 || n->u.str.s[i] == 0x7f) {
            return t;
        }
    }

    t.s = n->u.str.s;
    t.len = n->u.str.len;

    return t;
}


/* The card's last4: exactly four digits. */
static text
node_last4(const json_node *n)
{
    text    t = no_text;
    size_t  i;

    if (n == NULL || n->type != JSON_STRING || n->u.str.len != 4) {
        return t;
    }

    for (i = 0; i < 4; i++) {
        if (n->u.str.s[i] < '0' || n->u.str.s[i] > '9') {
            return t;
        }
    }

    t.s = n->u.str.s;
    t.len = 4;

    return t;
}


/* ---- normalize: the catalogue and the facts of each kind of object ---- */

typedef enum {
    KIND_CHECKOUT_SESSION,
    KIND_INVOICE,
    KIND_CHARGE,
    KIND_PAYMENT_INTENT,
    KIND_CUSTOMER,
    KIND_SUBSCRIPTION
} object_kind;

static const char  *kind_names[] = {
    "checkout.session",
    "invoice",
    "charge",
    "payment_intent",
    "customer",
    "subscription"
};

typedef struct {
    text            price;
    text            product;
    opt_int         quantity;
    opt_int         amount;
    text            description;
} item;

typedef struct {
    opt_int         exp_month;
    opt_int         exp_year;
    text            brand;
    text            last4;
} card;

typedef struct event_entry  event_entry;

typedef struct {
    const event_entry  *entry;
    const char         *action;
    const json_node    *object;
    const json_node    *previous;   /* data.previous_attributes */

    text                id;
    text                type;
    text                api_version;
    opt_int             created;
    int                 livemode;   /* -1 absent */

    text                object_id;
    text                customer_id;
    text                email;
    text                name;
    opt_int             amount;
    text                currency;

    int                 has_items;  /* the payload has an item list */
    int                 items_incomplete;   /* the list said has_more */
    size_t              items_total;
    size_t              nitems;     /* kept, at most ITEMS_MAX */

    text                subscription;
    text                invoice;
    opt_int             attempt_count;
    text                billing_reason;
    text                reason;
    text                reason_code;
    text                status;
    int                 cancel_at_period_end;   /* -1 absent */
    opt_int             cancel_at;
    opt_int             current_period_end;
    opt_int             trial_end;
    card                card;

    text                previous_status;
    int                 previous_cancel_at_period_end;
    text                previous_email;
    text                previous_name;
    size_t              nprevious_items;

    int                 has_metadata;
    int                 metadata_dropped;
    size_t              nmeta;

    int                 enrich_email;
    int                 enrich_line_items;

    /* the arrays last: filled up to their counts, never zeroed (10 KB) */
    item                items[ITEMS_MAX];
    item                previous_items[PREVIOUS_ITEMS_MAX];
    text                meta_key[META_PAIRS_MAX];
    text                meta_value[META_PAIRS_MAX];
} facts;

typedef void (*item_reader)(const json_node *n, item *it);

/*
 * Picks the action from the object (and data.previous_attributes); NULL
 * means the event is ignored, *why says why.
 */
typedef const char *(*action_decider)(const json_node *object,
    const json_node *previous, const char **why);

#define ENTRY_FAILURE  0x01     /* a failed payment: read its reason */
#define ENTRY_REFUND   0x02     /* read the refund's reason */

struct event_entry {
    const char         *type;
    object_kind         kind;
    const char         *action;     /* NULL: decide() picks it */
    action_decider      decide;
    const char         *amount;     /* the member holding the amount */
    unsigned            flags;
};


static const char *
decide_checkout_completed(const json_node *o, const json_node *prev,
    const char **why)
{
    const json_node  *mode, *paid;

    (void) prev;

    mode = json_get(o, "mode");
    paid = json_get(o, "payment_status");

    if (node_is(mode, "subscription")) {
        return "subscription_checkout";
    }

    if (node_is(paid, "unpaid")) {
        return "checkout_pending";
    }

    if (node_is(mode, "payment")) {
        return node_is(paid, "paid") || node_is(paid, "no_payment_required")
               ? "purchase" : "checkout_pending";
    }

    *why = node_is(mode, "setup")
           ? "checkout session in setup mode is not handled"
           : "checkout session has no known mode";

    return NULL;
}


static const char *
decide_checkout_async_paid(const json_node *o, const json_node *prev,
    const char **why)
{
    (void) prev;
    (void) why;

    /* In subscription mode the first invoice is the purchase. */
    return node_is(json_get(o, "mode"), "subscription")
           ? "subscription_checkout" : "purchase";
}


static const char *
decide_invoice_paid(const json_node *o, const json_node *prev,
    const char **why)
{
    opt_int           attempts;
    const json_node  *reason;

    (void) prev;
    (void) why;

    attempts = int_at(json_get(o, "attempt_count"));
    reason = json_get(o, "billing_reason");

    if (attempts.set && attempts.v > 1) {
        return "payment_recovered";
    }

    if (node_is(reason, "subscription_create")) {
        return "purchase";
    }

    if (node_is(reason, "subscription_cycle")) {
        return "renewal";
    }

    return "invoice_paid";
}


static const char *
decide_subscription_updated(const json_node *o, const json_node *prev,
    const char **why)
{
    const json_node  *was;

    (void) why;

    if (json_get(prev, "items") != NULL || json_get(prev, "plan") != NULL
        || json_get(prev, "price") != NULL
        || json_get(prev, "quantity") != NULL)
    {
        return "plan_changed";
    }

    if (node_bool(json_get(prev, "cancel_at_period_end")) == 0
        && node_bool(json_get(o, "cancel_at_period_end")) == 1)
    {
        return "subscription_cancel_scheduled";
    }

    was = json_get(prev, "cancel_at");

    if (was != NULL && was->type == JSON_NULL
        && int_at(json_get(o, "cancel_at")).set)
    {
        return "subscription_cancel_scheduled";
    }

    return "subscription_updated";
}


static const event_entry  catalogue[] = {
    { "checkout.session.completed", KIND_CHECKOUT_SESSION, NULL,
      decide_checkout_completed, "amount_total", 0 },
    { "checkout.session.async_payment_succeeded", KIND_CHECKOUT_SESSION,
      NULL, decide_checkout_async_paid, "amount_total", 0 },
    { "checkout.session.async_payment_failed", KIND_CHECKOUT_SESSION,
      "payment_failed", NULL, "amount_total", ENTRY_FAILURE },

    { "invoice.paid", KIND_INVOICE, NULL, decide_invoice_paid,
      "amount_paid", 0 },
    { "invoice.payment_succeeded", KIND_INVOICE, NULL, decide_invoice_paid,
      "amount_paid", 0 },
    { "invoice.payment_failed", KIND_INVOICE, "payment_failed", NULL,
      "amount_due", ENTRY_FAILURE },
    { "invoice.payment_action_required", KIND_INVOICE,
      "payment_action_required", NULL, "amount_due", ENTRY_FAILURE },
    { "invoice.finalized", KIND_INVOICE, "invoice_issued", NULL,
      "amount_due", 0 },
    { "invoice.upcoming", KIND_INVOICE, "invoice_upcoming", NULL,
      "amount_due", 0 },
    { "invoice.created", KIND_INVOICE, "invoice_created", NULL,
      "amount_due", 0 },
    { "invoice.updated", KIND_INVOICE, "invoice_updated", NULL,
      "amount_due", 0 },

    { "charge.succeeded", KIND_CHARGE, "charge_succeeded", NULL,
      "amount", 0 },
    { "charge.failed", KIND_CHARGE, "charge_failed", NULL,
      "amount", ENTRY_FAILURE },
    { "charge.refunded", KIND_CHARGE, "refund", NULL,
      "amount_refunded", ENTRY_REFUND },

    { "payment_intent.succeeded", KIND_PAYMENT_INTENT, "payment_succeeded",
      NULL, "amount_received", 0 },
    { "payment_intent.payment_failed", KIND_PAYMENT_INTENT, "charge_failed",
      NULL, "amount", ENTRY_FAILURE },

    { "customer.created", KIND_CUSTOMER, "customer_created", NULL, NULL, 0 },
    { "customer.updated", KIND_CUSTOMER, "customer_updated", NULL, NULL, 0 },
    { "customer.deleted", KIND_CUSTOMER, "customer_deleted", NULL, NULL, 0 },

    { "customer.subscription.created", KIND_SUBSCRIPTION,
      "subscription_started", NULL, NULL, 0 },
    { "customer.subscription.updated", KIND_SUBSCRIPTION, NULL,
      decide_subscription_updated, NULL, 0 },
    { "customer.subscription.deleted", KIND_SUBSCRIPTION,
      "subscription_cancelled", NULL, NULL, 0 },
    { "customer.subscription.paused", KIND_SUBSCRIPTION,
      "subscription_paused", NULL, NULL, 0 },
    { "customer.subscription.resumed", KIND_SUBSCRIPTION,
      "subscription_resumed", NULL, NULL, 0 },
    { "customer.subscription.trial_will_end", KIND_SUBSCRIPTION,
      "trial_ending", NULL, NULL, 0 }
};


static const event_entry *
catalogue_find(text type)
{
    size_t  i;

    for (i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
        if (strlen(catalogue[i].type) == type.len
            && memcmp(catalogue[i].type, type.s, type.len) == 0)
        {
            return &catalogue[i];
        }
    }

    return NULL;
}


/* Actions effective once per fact (SPEC 5): see once_key(). */
static const struct {
    const char  *action;
    int          counted;   /* key suffix: 1 attempt_count, 2 amount */
} once_actions[] = {
    { "purchase", 0 },
    { "renewal", 0 },
    { "payment_recovered", 0 },
    { "invoice_paid", 0 },
    { "subscription_started", 0 },
    { "subscription_cancelled", 0 },
    { "refund", 2 },
    { "payment_failed", 1 }
};


static void
take_email(facts *f, const json_node *n)
{
    if (f->email.s == NULL) {
        f->email = node_email(n);
    }
}


static void
take_name(facts *f, const json_node *n)
{
    if (f->name.s == NULL) {
        f->name = node_text(n, PERSON_NAME_MAX);
    }
}


static void
take_text(text *t, const json_node *n, size_t max)
{
    if (t->s == NULL) {
        *t = node_text(n, max);
    }
}


/* A card-shaped object: an expiry at least, else nothing is taken. */
static void
take_card(facts *f, const json_node *c)
{
    opt_int  month, year;

    if (f->card.exp_month.set
        || !node_int(json_get(c, "exp_month"), &month)
        || !node_int(json_get(c, "exp_year"), &year)
        || month.v < 1 || month.v > 12 || year.v < 0 || year.v > 9999)
    {
        return;
    }

    f->card.exp_month = month;
    f->card.exp_year = year;
    f->card.brand = node_text(json_get(c, "brand"), SHORT_MAX);
    f->card.last4 = node_last4(json_get(c, "last4"));
}


static void
take_card_of_charge(facts *f, const json_node *charge)
{
    take_card(f, json_at(charge, "payment_method_details", "card", NULL));
}


static void
take_card_of_payment_intent(facts *f, const json_node *pi)
{
    take_card(f, json_at(pi, "payment_method", "card", NULL));
    take_card(f, json_at(pi, "last_payment_error", "payment_method", "card",
                         NULL));
    take_card_of_charge(f, json_get(pi, "latest_charge"));
    take_card_of_charge(f, json_first(json_at(pi, "charges", "data", NULL)));
}


/* The customer named by "customer": an id, or the expanded Customer. */
static const json_node *
take_customer(facts *f, const json_node *o)
{
    const json_node  *c;

    c = json_get(o, "customer");
    f->customer_id = node_id(c);

    return c != NULL && c->type == JSON_OBJECT ? c : NULL;
}


static void
item_from_invoice_line(const json_node *line, item *it)
{
    const json_node  *details, *price, *plan;

    details = json_at(line, "pricing", "price_details", NULL);
    price = json_get(line, "price");
    plan = json_get(line, "plan");

    /* basil (2025-03-31) moved them under pricing.price_details */
    it->price = node_id(json_get(details, "price"));
    if (it->price.s == NULL) {
        it->price = node_id(price);
    }
    if (it->price.s == NULL) {
        it->price = node_id(plan);
    }

    it->product = node_id(json_get(details, "product"));
    if (it->product.s == NULL) {
        it->product = node_id(json_get(price, "product"));
    }
    if (it->product.s == NULL) {
        it->product = node_id(json_get(plan, "product"));
    }

    it->quantity = int_at(json_get(line, "quantity"));
    it->amount = int_at(json_get(line, "amount"));
    it->description = node_text(json_get(line, "description"), TEXT_MAX);
}


static void
item_from_subscription_item(const json_node *si, item *it)
{
    const json_node  *price, *plan;
    opt_int           unit;
    long long         total;

    price = json_get(si, "price");
    plan = json_get(si, "plan");

    it->price = node_id(price);
    if (it->price.s == NULL) {
        it->price = node_id(plan);
    }

    it->product = node_id(json_get(price, "product"));
    if (it->product.s == NULL) {
        it->product = node_id(json_get(plan, "product"));
    }

    it->quantity = int_at(json_get(si, "quantity"));

    /* "amount" is the unit amount of plan-shaped (legacy) prices */
    unit = int_at(json_get(price, "unit_amount"));
    if (!unit.set) {
        unit = int_at(json_get(price, "amount"));
    }
    if (!unit.set) {
        unit = int_at(json_get(plan, "amount"));
    }

    if (unit.set && it->quantity.set
        && !__builtin_mul_overflow(unit.v, it->quantity.v, &total))
    {
        it->amount.v = total;
        it->amount.set = 1;
    }
}


static void
item_from_checkout_line(const json_node *line, item *it)
{
    const json_node  *price;

    price = json_get(line, "price");

    it->price = node_id(price);
    it->product = node_id(json_get(price, "product"));
    it->quantity = int_at(json_get(line, "quantity"));
    it->amount = int_at(json_get(line, "amount_total"));
    it->description = node_text(json_get(line, "description"), TEXT_MAX);
}


/*
 * Reads a Stripe list ({"data": [...], "has_more": ...}). Returns the sum of
 * the item amounts when every item has one, for subscriptions.
 */
static opt_int
take_items(facts *f, const json_node *list, item_reader read)
{
    const json_node  *n;
    item              it;
    opt_int           sum = { 0, 1 };

    n = json_get(list, "data");
    if (n == NULL || n->type != JSON_ARRAY) {
        sum.set = 0;
        return sum;
    }

    f->has_items = 1;
    f->items_incomplete = node_bool(json_get(list, "has_more")) == 1;

    for (n = n->u.kids.first; n != NULL; n = n->next) {
        memset(&it, 0, sizeof(item));
        read(n, &it);

        if (!it.amount.set
            || __builtin_add_overflow(sum.v, it.amount.v, &sum.v))
        {
            sum.set = 0;
        }

        if (f->nitems < ITEMS_MAX) {
            f->items[f->nitems++] = it;
        }

        f->items_total++;
    }

    if (f->items_total == 0 || f->items_incomplete) {
        sum.set = 0;
    }

    return sum;
}


static void
read_checkout_session(facts *f, const json_node *o)
{
    const json_node  *cust;

    cust = take_customer(f, o);

    /* customer_email is only what the seller prefilled */
    take_email(f, json_at(o, "customer_details", "email", NULL));
    take_email(f, json_get(o, "customer_email"));
    take_email(f, json_get(cust, "email"));
    take_name(f, json_at(o, "customer_details", "name", NULL));
    take_name(f, json_get(cust, "name"));

    f->subscription = node_id(json_get(o, "subscription"));
    f->invoice = node_id(json_get(o, "invoice"));

    /* Webhooks carry no line items; an expanded session (the tool) does. */
    take_items(f, json_get(o, "line_items"), item_from_checkout_line);
    f->enrich_line_items = !f->has_items;

    take_card_of_payment_intent(f, json_get(o, "payment_intent"));
}


static void
read_invoice(facts *f, const json_node *o)
{
    const json_node  *cust, *charge, *pi;

    cust = take_customer(f, o);

    take_email(f, json_get(o, "customer_email"));
    take_email(f, json_get(cust, "email"));
    take_name(f, json_get(o, "customer_name"));
    take_name(f, json_get(cust, "name"));

    f->invoice = f->object_id;

    /* basil (2025-03-31) moved it under parent */
    f->subscription = node_id(json_at(o, "parent", "subscription_details",
                                      "subscription", NULL));
    if (f->subscription.s == NULL) {
        f->subscription = node_id(json_get(o, "subscription"));
    }

    take_items(f, json_get(o, "lines"), item_from_invoice_line);

    f->attempt_count = int_at(json_get(o, "attempt_count"));
    f->billing_reason = node_id(json_get(o, "billing_reason"));

    /* Expanded only when fetched with expand[]: webhooks carry ids. */
    charge = json_get(o, "charge");
    pi = json_get(o, "payment_intent");

    if (f->entry->flags & ENTRY_FAILURE) {
        take_text(&f->reason, json_get(charge, "failure_message"), TEXT_MAX);
        take_text(&f->reason,
                  json_at(pi, "last_payment_error", "message", NULL),
                  TEXT_MAX);
        f->reason_code = node_id(json_get(charge, "failure_code"));
        if (f->reason_code.s == NULL) {
            f->reason_code = node_id(json_at(pi, "last_payment_error",
                                             "decline_code", NULL));
        }
    }

    take_card_of_charge(f, charge);
    take_card_of_payment_intent(f, pi);
}


static void
read_charge(facts *f, const json_node *o)
{
    const json_node  *cust;

    cust = take_customer(f, o);

    take_email(f, json_at(o, "billing_details", "email", NULL));
    take_email(f, json_get(o, "receipt_email"));
    take_email(f, json_get(cust, "email"));
    take_name(f, json_at(o, "billing_details", "name", NULL));
    take_name(f, json_get(cust, "name"));

    f->invoice = node_id(json_get(o, "invoice"));

    if (f->entry->flags & ENTRY_FAILURE) {
        take_text(&f->reason, json_get(o, "failure_message"), TEXT_MAX);
        take_text(&f->reason, json_at(o, "outcome", "seller_message", NULL),
                  TEXT_MAX);
        f->reason_code = node_id(json_get(o, "failure_code"));
        if (f->reason_code.s == NULL) {
            f->reason_code = node_id(json_at(o, "outcome", "reason", NULL));
        }
    }

    if (f->entry->flags & ENTRY_REFUND) {
        /* Stripe lists refunds newest first */
        f->reason_code = node_id(json_get(json_first(
                             json_at(o, "refunds", "data", NULL)), "reason"));
    }

    take_card_of_charge(f, o);
}


static void
read_payment_intent(facts *f, const json_node *o)
{
    const json_node  *cust, *charge, *latest;

    cust = take_customer(f, o);

    /* charges.data: API versions before 2022-11-15 */
    charge = json_first(json_at(o, "charges", "data", NULL));
    latest = json_get(o, "latest_charge");

    take_email(f, json_get(o, "receipt_email"));
    take_email(f, json_at(charge, "billing_details", "email", NULL));
    take_email(f, json_at(latest, "billing_details", "email", NULL));
    take_email(f, json_get(cust, "email"));
    take_name(f, json_at(charge, "billing_details", "name", NULL));
    take_name(f, json_at(latest, "billing_details", "name", NULL));
    take_name(f, json_get(cust, "name"));

    f->invoice = node_id(json_get(o, "invoice"));

    if (f->entry->flags & ENTRY_FAILURE) {
        take_text(&f->reason,
                  json_at(o, "last_payment_error", "message", NULL), TEXT_MAX);
        f->reason_code = node_id(json_at(o, "last_payment_error",
                                         "decline_code", NULL));
        if (f->reason_code.s == NULL) {
            f->reason_code = node_id(json_at(o, "last_payment_error", "code",
                                             NULL));
        }
    }

    take_card_of_payment_intent(f, o);
}


static void
read_customer(facts *f, const json_node *o)
{
    f->customer_id = f->object_id;

    take_email(f, json_get(o, "email"));
    take_name(f, json_get(o, "name"));

    take_card(f, json_at(o, "invoice_settings", "default_payment_method",
                         "card", NULL));
    take_card(f, json_get(o, "default_source"));

    f->previous_email = node_email(json_get(f->previous, "email"));
    f->previous_name = node_text(json_get(f->previous, "name"),
                                 PERSON_NAME_MAX);
}


static void
read_subscription(facts *f, const json_node *o)
{
    const json_node  *cust, *first, *n, *price;
    opt_int           sum;
    item             *it;

    cust = take_customer(f, o);

    take_email(f, json_get(cust, "email"));
    take_name(f, json_get(cust, "name"));

    f->subscription = f->object_id;

    sum = take_items(f, json_get(o, "items"), item_from_subscription_item);
    if (sum.set) {
        f->amount = sum;
    }

    first = json_first(json_at(o, "items", "data", NULL));

    f->currency = node_id(json_get(o, "currency"));
    if (f->currency.s == NULL) {
        f->currency = node_id(json_at(first, "price", "currency", NULL));
    }
    if (f->currency.s == NULL) {
        f->currency = node_id(json_at(first, "plan", "currency", NULL));
    }

    f->cancel_at_period_end = node_bool(json_get(o, "cancel_at_period_end"));
    f->cancel_at = int_at(json_get(o, "cancel_at"));
    f->trial_end = int_at(json_get(o, "trial_end"));

    /* basil moved the period to the items */
    f->current_period_end = int_at(json_get(o, "current_period_end"));
    if (!f->current_period_end.set) {
        f->current_period_end = int_at(json_get(first, "current_period_end"));
    }

    f->reason_code = node_id(json_at(o, "cancellation_details", "reason",
                                     NULL));

    take_card(f, json_at(o, "default_payment_method", "card", NULL));

    /* What data.previous_attributes says the update changed. */
    f->previous_status = node_id(json_get(f->previous, "status"));
    f->previous_cancel_at_period_end =
        node_bool(json_get(f->previous, "cancel_at_period_end"));

    n = json_first(json_at(f->previous, "items", "data", NULL));

    for ( /* void */ ; n != NULL && f->nprevious_items < PREVIOUS_ITEMS_MAX;
         n = n->next)
    {
        it = &f->previous_items[f->nprevious_items++];
        memset(it, 0, sizeof(item));
        item_from_subscription_item(n, it);
    }

    price = json_get(f->previous, "plan");

    if (f->nprevious_items == 0 && price != NULL
        && price->type == JSON_OBJECT)
    {
        it = &f->previous_items[f->nprevious_items++];
        memset(it, 0, sizeof(item));
        it->price = node_id(price);
        it->product = node_id(json_get(price, "product"));
        it->quantity = int_at(json_get(f->previous, "quantity"));
    }
}


/* Strings only, within Stripe's own limits; of duplicate keys the first. */
static void
take_metadata(facts *f, const json_node *meta)
{
    const json_node  *n;
    size_t            i;

    if (meta == NULL || meta->type != JSON_OBJECT) {
        return;
    }

    f->has_metadata = 1;

    for (n = meta->u.kids.first; n != NULL; n = n->next) {

        if (f->nmeta == META_PAIRS_MAX || n->type != JSON_STRING
            || n->key_len == 0 || n->key_len > META_KEY_MAX
            || n->u.str.len > META_VALUE_MAX)
        {
            f->metadata_dropped = 1;
            continue;
        }

        for (i = 0; i < f->nmeta; i++) {
            if (f->meta_key[i].len == n->key_len
                && memcmp(f->meta_key[i].s, n->key, n->key_len) == 0)
            {
                break;
            }
        }

        if (i < f->nmeta) {
            f->metadata_dropped = 1;
            continue;
        }

        f->meta_key[f->nmeta].s = n->key;
        f->meta_key[f->nmeta].len = n->key_len;
        f->meta_value[f->nmeta].s = n->u.str.s;
        f->meta_value[f->nmeta].len = n->u.str.len;
        f->nmeta++;
    }
}


static void
read_facts(facts *f, const json_node *o)
{
    const event_entry  *e = f->entry;

    f->object_id = node_id(json_get(o, "id"));
    f->status = node_id(json_get(o, "status"));

    if (e->kind != KIND_CUSTOMER) {
        f->currency = node_id(json_get(o, "currency"));
    }

    if (e->amount != NULL) {
        f->amount = int_at(json_get(o, e->amount));
    }

    switch (e->kind) {

    case KIND_CHECKOUT_SESSION:
        read_checkout_session(f, o);
        break;

    case KIND_INVOICE:
        read_invoice(f, o);
        break;

    case KIND_CHARGE:
        read_charge(f, o);
        break;

    case KIND_PAYMENT_INTENT:
        read_payment_intent(f, o);
        break;

    case KIND_CUSTOMER:
        read_customer(f, o);
        break;

    case KIND_SUBSCRIPTION:
        read_subscription(f, o);
        break;
    }

    take_metadata(f, json_get(o, "metadata"));

    f->enrich_email = f->customer_id.s != NULL && f->email.s == NULL;
}


/* ---- encode: the record, within ACTION_RECORD_MAX ---- */

/* Room for the members after the metadata pairs, closing braces included. */
#define RECORD_END_BOUND    128
/* Room for the keys, numbers and booleans after the items. */
#define RECORD_TAIL_FIXED   1024
/* Room for the keys and numbers of one item. */
#define ITEM_FIXED          128
/* The writer's first buffer: a 3 KB event's record takes about 800 bytes. */
#define WRITER_SIZE         2048

#define ONES                0x0101010101010101ULL  /* a byte of 1s, 8 times */
#define HIGHS               0x8080808080808080ULL

/*
 * One writer per event, for the record and then the customer JSON: JSON text
 * in a buffer of the work arena, which goes with the arena once the event is
 * normalized. Byte for byte the text yajl_gen wrote before it (no spaces,
 * '/' and bytes past 0x7e as they are), so records do not change with it.
 */
typedef struct {
    json_arena     *ar;
    char           *buf;
    size_t          len;
    size_t          size;
    int             comma;      /* a value came last: ',' before the next */
    int             failed;     /* out of memory: nothing more is written */
} writer;


/* What follows the backslash for a byte yajl_gen escapes; 'u' is \u00XX. */
static const unsigned char  json_escape[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\'
};


/* A new document, in the buffer the last one grew. */
static void
writer_restart(writer *w)
{
    w->len = 0;
    w->comma = 0;
    w->failed = 0;
}


static int
writer_open(writer *w, json_arena *work)
{
    writer_restart(w);
    w->ar = work;
    w->size = WRITER_SIZE;
    w->buf = json_arena_alloc(work, WRITER_SIZE);

    return w->buf != NULL ? 0 : -1;
}


/* 0 when n more bytes fit; a bigger buffer from the arena if need be. */
static int
writer_reserve(writer *w, size_t n)
{
    size_t   size;
    char    *buf;

    if (w->failed) {
        return -1;
    }

    if (w->size - w->len >= n) {
        return 0;
    }

    if (n > SIZE_MAX / 4 - w->len) {
        w->failed = 1;
        return -1;
    }

    size = w->size * 2 > w->len + n ? w->size * 2 : w->len + n;

    buf = json_arena_alloc(w->ar, size);
    if (buf == NULL) {
        w->failed = 1;
        return -1;
    }

    memcpy(buf, w->buf, w->len);
    w->buf = buf;
    w->size = size;

    return 0;
}


/*
 * Where a value of at most n bytes goes, after the comma that separates it
 * from the one before; NULL when out of memory.
 */
static char *
writer_begin(writer *w, size_t n)
{
    char  *p;

    if (writer_reserve(w, n + 1) != 0) {
        return NULL;
    }

    p = w->buf + w->len;

    if (w->comma) {
        *p++ = ',';
    }

    return p;
}


/* The bytes up to p written; comma 1 after a value, 0 after a key or '{'. */
static void
writer_end(writer *w, char *p, int comma)
{
    w->len = p - w->buf;
    w->comma = comma;
}


static size_t
writer_len(writer *w)
{
    return w->len;
}


/* 1 if a byte of x is below 0x20, a '"' or a '\\' (exact, per word). */
static inline int
word_needs_escape(uint64_t x)
{
    uint64_t  quote, backslash;

    /* x ^ c keeps each byte's high bit, so ~x stands for ~quote too */
    quote = x ^ (ONES * '"');
    backslash = x ^ (ONES * '\\');

    return (((x - ONES * 0x20) | (quote - ONES) | (backslash - ONES))
            & ~x & HIGHS) != 0;
}


/* 1 if a byte of x is c, a byte below 0x80. */
static inline int
word_has(uint64_t x, unsigned char c)
{
    uint64_t  y;

    y = x ^ (ONES * c);

    return ((y - ONES) & ~y & HIGHS) != 0;
}


/* s escaped as yajl_gen escapes a string, at p: at most 6 * len bytes. */
static char *
escape_string(char *p, const unsigned char *s, size_t len)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             i, end;
    uint64_t           x;
    unsigned char      c, e;

    i = 0;

    while (i < len) {

        /* eight bytes at a time while none needs escaping */
        if (len - i >= 8) {
            memcpy(&x, s + i, 8);
            if (!word_needs_escape(x)) {
                memcpy(p, &x, 8);
                p += 8;
                i += 8;
                continue;
            }

            end = i + 8;

        } else {
            end = len;
        }

        for ( /* void */ ; i < end; i++) {
            c = s[i];
            e = json_escape[c];

            if (e == 0) {
                *p++ = (char) c;
                continue;
            }

            *p++ = '\\';
            *p++ = (char) e;

            if (e == 'u') {
                *p++ = '0';
                *p++ = '0';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            }
        }
    }

    return p;
}


/* t as a JSON string: a value, or a member's name when name is 1. */
static void
put_quoted(writer *w, text t, int name)
{
    char  *p;

    if (t.len > (SIZE_MAX / 4 - 4) / 6) {
        w->failed = 1;
        return;
    }

    p = writer_begin(w, 6 * t.len + 3);
    if (p == NULL) {
        return;
    }

    *p++ = '"';
    p = escape_string(p, (const unsigned char *) t.s, t.len);
    *p++ = '"';

    if (name) {
        *p++ = ':';
    }

    writer_end(w, p, !name);
}


static void
put_string(writer *w, text t)
{
    put_quoted(w, t, 0);
}


static void
put_name(writer *w, text t)
{
    put_quoted(w, t, 1);
}


/* n bytes as they are, after the comma a value needs; comma as in
   writer_end() */
static void
put_raw(writer *w, const char *s, size_t n, int comma)
{
    char  *p;

    p = writer_begin(w, n);
    if (p == NULL) {
        return;
    }

    memcpy(p, s, n);
    writer_end(w, p + n, comma);
}


static void
put_key(writer *w, const char *key)
{
    put_name(w, text_of(key));
}


/* v as printf's "%lld" writes it, as yajl_gen_integer() did. */
static void
put_number(writer *w, long long v)
{
    char                digits[24], *q;
    unsigned long long  u;

    q = digits + sizeof(digits);
    u = v < 0 ? 0 - (unsigned long long) v : (unsigned long long) v;

    do {
        *--q = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);

    if (v < 0) {
        *--q = '-';
    }

    put_raw(w, q, digits + sizeof(digits) - q, 1);
}


/* c: '{' or '[' */
static void
put_begin(writer *w, char c)
{
    put_raw(w, &c, 1, 0);
}


/* c: '}' or ']'; no comma before it */
static void
put_end(writer *w, char c)
{
    if (writer_reserve(w, 1) != 0) {
        return;
    }

    w->buf[w->len++] = c;
    w->comma = 1;
}


static void
put_text(writer *w, const char *key, text t)
{
    if (t.s != NULL) {
        put_key(w, key);
        put_string(w, t);
    }
}


static void
put_int(writer *w, const char *key, opt_int v)
{
    if (v.set) {
        put_key(w, key);
        put_number(w, v.v);
    }
}


static void
put_bool(writer *w, const char *key, int b)
{
    if (b < 0) {
        return;
    }

    put_key(w, key);
    put_raw(w, b ? "true" : "false", b ? 4 : 5, 1);
}


static void
put_open(writer *w, const char *key)
{
    put_key(w, key);
    put_begin(w, '{');
}


static void
put_close(writer *w)
{
    put_end(w, '}');
}


static void
put_item(writer *w, const item *it)
{
    put_begin(w, '{');
    put_text(w, "price", it->price);
    put_text(w, "product", it->product);
    put_int(w, "quantity", it->quantity);
    put_int(w, "amount", it->amount);
    put_text(w, "description", it->description);
    put_close(w);
}


/*
 * At least the bytes t takes once encoded, quotes included. Where items and
 * metadata are cut depends on it: a '/' counts 2, as it always has.
 */
static size_t
json_bound(text t)
{
    size_t          n, i, end;
    uint64_t        x;
    unsigned char   c;

    n = 2;
    i = 0;

    while (i < t.len) {

        /* eight bytes at a time while none counts more than 1 */
        if (t.len - i >= 8) {
            memcpy(&x, t.s + i, 8);
            if (!word_needs_escape(x) && !word_has(x, '/')) {
                n += 8;
                i += 8;
                continue;
            }

            end = i + 8;

        } else {
            end = t.len;
        }

        for ( /* void */ ; i < end; i++) {
            c = (unsigned char) t.s[i];
            n += c < 0x20 ? 6 : (c == '"' || c == '\\' || c == '/') ? 2 : 1;
        }
    }

    return n;
}


static size_t
item_bound(const item *it)
{
    return ITEM_FIXED + json_bound(it->price) + json_bound(it->product)
           + json_bound(it->description);
}


/* Bytes the members after the items may take, metadata pairs aside. */
static size_t
tail_bound(const facts *f)
{
    size_t  n, i;

    n = RECORD_TAIL_FIXED + RECORD_END_BOUND
        + json_bound(f->subscription) + json_bound(f->invoice)
        + json_bound(f->billing_reason) + json_bound(f->reason)
        + json_bound(f->reason_code) + json_bound(f->status)
        + json_bound(f->card.brand) + json_bound(f->card.last4)
        + json_bound(f->previous_status) + json_bound(f->previous_email)
        + json_bound(f->previous_name);

    for (i = 0; i < f->nprevious_items; i++) {
        n += item_bound(&f->previous_items[i]);
    }

    return n;
}


static size_t
metadata_bound(const facts *f)
{
    size_t  n, i;

    n = 0;

    for (i = 0; i < f->nmeta; i++) {
        n += json_bound(f->meta_key[i]) + json_bound(f->meta_value[i]) + 2;
    }

    return n;
}


/*
 * Writes the record. With full 0 (the fallback, never needed when the
 * bounds above hold) items, previous items and metadata pairs are left out.
 */
static void
write_record(writer *w, const facts *f, int full)
{
    size_t  i, reserve, meta;
    int     cut;

    put_begin(w, '{');

    put_key(w, "v");
    put_number(w, ACTION_SCHEMA_VERSION);
    put_text(w, "id", f->id);
    put_text(w, "type", f->type);
    put_text(w, "action", text_of(f->action));
    put_int(w, "created", f->created);
    put_bool(w, "livemode", f->livemode);
    put_text(w, "api_version", f->api_version);

    put_open(w, "object");
    put_text(w, "type", text_of(kind_names[f->entry->kind]));
    put_text(w, "id", f->object_id);
    put_close(w);

    if (f->customer_id.s != NULL || f->email.s != NULL || f->name.s != NULL) {
        put_open(w, "customer");
        put_text(w, "id", f->customer_id);
        put_text(w, "email", f->email);
        put_text(w, "name", f->name);
        put_close(w);
    }

    put_int(w, "amount", f->amount);
    put_text(w, "currency", f->currency);

    if (f->has_items) {
        meta = metadata_bound(f);
        reserve = tail_bound(f) + (meta < META_RESERVE ? meta : META_RESERVE);

        put_key(w, "items");
        put_begin(w, '[');

        for (i = 0; full && i < f->nitems; i++) {
            if (writer_len(w) + item_bound(&f->items[i]) + reserve
                > ACTION_RECORD_MAX)
            {
                break;
            }

            put_item(w, &f->items[i]);
        }

        put_end(w, ']');

        cut = i < f->items_total || f->items_incomplete;
        put_bool(w, "items_truncated", cut ? 1 : -1);
    }

    put_text(w, "subscription", f->subscription);
    put_text(w, "invoice", f->invoice);
    put_int(w, "attempt_count", f->attempt_count);
    put_text(w, "billing_reason", f->billing_reason);
    put_text(w, "reason", f->reason);
    put_text(w, "reason_code", f->reason_code);
    put_text(w, "status", f->status);
    put_bool(w, "cancel_at_period_end", f->cancel_at_period_end);
    put_int(w, "cancel_at", f->cancel_at);
    put_int(w, "current_period_end", f->current_period_end);
    put_int(w, "trial_end", f->trial_end);

    if (f->card.exp_month.set) {
        put_open(w, "card");
        put_int(w, "exp_month", f->card.exp_month);
        put_int(w, "exp_year", f->card.exp_year);
        put_text(w, "brand", f->card.brand);
        put_text(w, "last4", f->card.last4);
        put_close(w);
    }

    if (f->previous_status.s != NULL || f->previous_cancel_at_period_end >= 0
        || f->previous_email.s != NULL || f->previous_name.s != NULL
        || f->nprevious_items > 0)
    {
        put_open(w, "previous");
        put_text(w, "status", f->previous_status);
        put_bool(w, "cancel_at_period_end", f->previous_cancel_at_period_end);
        put_text(w, "email", f->previous_email);
        put_text(w, "name", f->previous_name);

        if (f->nprevious_items > 0) {
            put_key(w, "items");
            put_begin(w, '[');

            for (i = 0; full && i < f->nprevious_items; i++) {
                put_item(w, &f->previous_items[i]);
            }

            put_end(w, ']');
        }

        put_close(w);
    }

    if (f->has_metadata) {
        put_open(w, "metadata");

        for (i = 0; full && i < f->nmeta; i++) {
            if (writer_len(w) + json_bound(f->meta_key[i])
                + json_bound(f->meta_value[i]) + 2 + RECORD_END_BOUND
                > ACTION_RECORD_MAX)
            {
                break;
            }

            put_name(w, f->meta_key[i]);
            put_string(w, f->meta_value[i]);
        }

        put_close(w);

        cut = i < f->nmeta || f->metadata_dropped;
        put_bool(w, "metadata_truncated", cut ? 1 : -1);
    }

    if (f->enrich_email || f->enrich_line_items) {
        put_key(w, "enrich");
        put_begin(w, '[');

        if (f->enrich_email) {
            put_string(w, text_of("email"));
        }

        if (f->enrich_line_items) {
            put_string(w, text_of("line_items"));
        }

        put_end(w, ']');
    }

    put_close(w);
}


/* The writer's output, copied into out; NULL when out of memory. */
static char *
writer_finish(writer *w, json_arena *out, size_t *len)
{
    *len = w->len;

    return w->failed ? NULL : json_arena_strndup(out, w->buf, w->len);
}


static char *
encode_record(writer *w, json_arena *out, const facts *f, size_t *len)
{
    char   *record;
    int     full;

    for (full = 1; full >= 0; full--) {
        writer_restart(w);
        write_record(w, f, full);

        record = writer_finish(w, out, len);

        if (record == NULL || *len <= ACTION_RECORD_MAX) {
            return record;
        }
    }

    return NULL;
}


/* The value of the customer map ({P}:customers): {"email":..,"name":..}. */
static char *
encode_customer(writer *w, json_arena *out, const facts *f)
{
    size_t  len;

    writer_restart(w);

    put_begin(w, '{');
    put_text(w, "email", f->email);
    put_text(w, "name", f->name);
    put_close(w);

    return writer_finish(w, out, &len);
}


/*
 * Sets *key to the fact's dedupe key, or NULL when the action is not
 * once-only (or the object has no id). Returns -1 when out of memory.
 */
static int
once_key(json_arena *out, const facts *f, char **key)
{
    size_t     i, size;
    long long  count;

    *key = NULL;

    for (i = 0; i < sizeof(once_actions) / sizeof(once_actions[0]); i++) {
        if (strcmp(once_actions[i].action, f->action) == 0) {
            break;
        }
    }

    if (i == sizeof(once_actions) / sizeof(once_actions[0])
        || f->object_id.s == NULL)
    {
        return 0;
    }

    size = strlen(f->action) + f->object_id.len + 24;

    *key = json_arena_alloc(out, size);
    if (*key == NULL) {
        return -1;
    }

    if (once_actions[i].counted == 0) {
        snprintf(*key, size, "%s:%.*s", f->action, (int) f->object_id.len,
                 f->object_id.s);
        return 0;
    }

    /* a missing count is 0, so the key is still one per fact */
    count = once_actions[i].counted == 1
            ? (f->attempt_count.set ? f->attempt_count.v : 0)
            : (f->amount.set ? f->amount.v : 0);

    snprintf(*key, size, "%s:%.*s:%lld", f->action, (int) f->object_id.len,
             f->object_id.s, count);

    return 0;
}


/* ---- the entry point ---- */

static action_status
invalid(action *a, const char *reason)
{
    snprintf(a->reason, sizeof(a->reason), "%s", reason);
    return ACTION_INVALID;
}


static action_status
normalize(const char *body, size_t len, json_arena *work, json_arena *out, action *a)
{
    const json_node  *root, *n;
    facts            *f;
    const char       *why;
    writer            w;

    if (memchr(body, '\0', len) != NULL) {
        return invalid(a, "body contains a NUL byte");
    }

    root = json_parse(work, body, len, a->reason, sizeof(a->reason));
    if (root == NULL) {
        return ACTION_INVALID;
    }

    if (root->type != JSON_OBJECT) {
        return invalid(a, "body is not a JSON object");
    }

    f = json_arena_alloc(work, sizeof(facts));
    if (f == NULL) {
        return invalid(a, "out of memory");
    }

    memset(f, 0, offsetof(facts, items));
    f->livemode = -1;
    f->cancel_at_period_end = -1;
    f->previous_cancel_at_period_end = -1;

    n = json_get(root, "id");
    f->id = node_id_string(n);
    if (f->id.s == NULL) {
        return invalid(a, n != NULL && n->type == JSON_STRING
                          ? "event \"id\" is not 1 to 255 printable characters"
                          : "event has no \"id\"");
    }

    n = json_get(root, "type");
    f->type = node_id_string(n);
    if (f->type.s == NULL) {
        return invalid(a, n != NULL && n->type == JSON_STRING
                        ? "event \"type\" is not 1 to 255 printable characters"
                        : "event has no \"type\"");
    }

    a->id = json_arena_strndup(out, f->id.s, f->id.len);
    a->type = json_arena_strndup(out, f->type.s, f->type.len);
    if (a->id == NULL || a->type == NULL) {
        return invalid(a, "out of memory");
    }

    f->livemode = node_bool(json_get(root, "livemode"));
    f->created = int_at(json_get(root, "created"));
    f->api_version = node_id(json_get(root, "api_version"));
    a->livemode = f->livemode;

    f->entry = catalogue_find(f->type);
    if (f->entry == NULL) {
        snprintf(a->reason, sizeof(a->reason),
                 "event type \"%s\" is not handled", a->type);
        return ACTION_IGNORED;
    }

    f->object = json_at(root, "data", "object", NULL);
    if (f->object == NULL || f->object->type != JSON_OBJECT) {
        return invalid(a, "event has no data.object");
    }

    f->previous = json_at(root, "data", "previous_attributes", NULL);
    if (f->previous != NULL && f->previous->type != JSON_OBJECT) {
        f->previous = NULL;
    }

    why = "event is not handled";
    f->action = f->entry->action;
    if (f->action == NULL) {
        f->action = f->entry->decide(f->object, f->previous, &why);
    }

    if (f->action == NULL) {
        snprintf(a->reason, sizeof(a->reason), "%s", why);
        return ACTION_IGNORED;
    }

    read_facts(f, f->object);

    a->name = f->action;

    if (writer_open(&w, work) != 0) {
        return invalid(a, "out of memory");
    }

    a->record = encode_record(&w, out, f, &a->record_len);
    if (a->record == NULL) {
        return invalid(a, "out of memory");
    }

    if (f->customer_id.s != NULL) {
        a->customer_id = json_arena_strndup(out, f->customer_id.s,
                                       f->customer_id.len);
        if (a->customer_id == NULL) {
            return invalid(a, "out of memory");
        }
    }

    /* the consumer's key (job.h): the record's customer id, else email */
    a->order_key = a->customer_id;

    if (a->order_key == NULL && f->email.s != NULL) {
        a->order_key = json_arena_strndup(out, f->email.s, f->email.len);
        if (a->order_key == NULL) {
            return invalid(a, "out of memory");
        }
    }

    /* the customer map is keyed by id: an email alone has no place */
    if (f->customer_id.s != NULL && f->email.s != NULL) {
        a->customer_json = encode_customer(&w, out, f);
        if (a->customer_json == NULL) {
            return invalid(a, "out of memory");
        }
    }

    if (once_key(out, f, &a->once_key) != 0) {
        return invalid(a, "out of memory");
    }

    return ACTION_OK;
}


action_status
action_from_event(const char *body, size_t len, action *a)
{
    json_arena          work, out;
    action_status  status;

    memset(a, 0, sizeof(action));
    a->livemode = -1;

    work.head = NULL;
    work.chunk = WORK_CHUNK;
    out.head = NULL;
    out.chunk = RESULT_CHUNK;

    status = normalize(body, len, &work, &out, a);

    /* The tree goes now; what the caller keeps is in out. */
    json_arena_free(work.head);

    if (status != ACTION_OK) {
        a->name = NULL;
        a->record = NULL;
        a->record_len = 0;
        a->customer_id = NULL;
        a->customer_json = NULL;
        a->once_key = NULL;
        a->order_key = NULL;
    }

    a->mem = out.head;

    return status;
}


void
action_free(action *a)
{
    json_arena_free(a->mem);
    memset(a, 0, sizeof(action));
}
