/*
 * event_gen.c - Stripe events for "stripe-sync send" (event_gen.h).
 *
 * The generated objects follow what Stripe sends at API version
 * 2025-03-31.basil: invoice line prices under pricing.price_details, the
 * subscription under parent.subscription_details, the period on the
 * subscription items, no refunds list on charges. Members that carry
 * nothing here are written as Stripe writes them (null, [], {}), so a
 * receiver that reads them finds them.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <yajl/yajl_tree.h>

#include "dead_letter.h"
#include "event_gen.h"
#include "provider_json.h"


#define GEN_DAY            86400LL
#define GEN_ID_LEN         64

typedef enum {
    K_SESSION,
    K_INVOICE,
    K_CHARGE,
    K_INTENT,
    K_CUSTOMER,
    K_SUBSCRIPTION
} gen_kind;

typedef enum {
    V_PAID,
    V_UNPAID,
    V_FAILED,
    V_ACTION,           /* invoice.payment_action_required */
    V_OPEN,
    V_DRAFT,
    V_SUCCEEDED,
    V_REFUNDED,
    V_CREATED,
    V_UPDATED,
    V_DELETED,
    V_PAUSED,
    V_RESUMED,
    V_TRIAL
} gen_variant;

typedef struct {
    const char   *type;
    gen_kind      kind;
    gen_variant   variant;
} gen_type;

static const gen_type  gen_types[] = {
    { "checkout.session.completed", K_SESSION, V_PAID },
    { "checkout.session.async_payment_succeeded", K_SESSION, V_PAID },
    { "checkout.session.async_payment_failed", K_SESSION, V_UNPAID },
    { "invoice.paid", K_INVOICE, V_PAID },
    { "invoice.payment_succeeded", K_INVOICE, V_PAID },
    { "invoice.payment_failed", K_INVOICE, V_FAILED },
    { "invoice.payment_action_required", K_INVOICE, V_ACTION },
    { "invoice.finalized", K_INVOICE, V_OPEN },
    { "invoice.created", K_INVOICE, V_DRAFT },
    { "invoice.updated", K_INVOICE, V_OPEN },
    { "charge.succeeded", K_CHARGE, V_SUCCEEDED },
    { "charge.failed", K_CHARGE, V_FAILED },
    { "charge.refunded", K_CHARGE, V_REFUNDED },
    { "payment_intent.succeeded", K_INTENT, V_SUCCEEDED },
    { "payment_intent.payment_failed", K_INTENT, V_FAILED },
    { "customer.created", K_CUSTOMER, V_CREATED },
    { "customer.updated", K_CUSTOMER, V_UPDATED },
    { "customer.deleted", K_CUSTOMER, V_DELETED },
    { "customer.subscription.created", K_SUBSCRIPTION, V_CREATED },
    { "customer.subscription.updated", K_SUBSCRIPTION, V_UPDATED },
    { "customer.subscription.deleted", K_SUBSCRIPTION, V_DELETED },
    { "customer.subscription.paused", K_SUBSCRIPTION, V_PAUSED },
    { "customer.subscription.resumed", K_SUBSCRIPTION, V_RESUMED },
    { "customer.subscription.trial_will_end", K_SUBSCRIPTION, V_TRIAL },
};

#define GEN_NTYPES  (sizeof(gen_types) / sizeof(gen_types[0]))

/* one event being written */
typedef struct {
    json_writer         w;
    const event_spec   *s;
    gen_variant         v;
    long long           t;
    long long           amount;
    const char         *cur;
    const char         *email;
    const char         *name;
    const char         *price;
    const char         *product;
    int                 live;
    int                 sub_mode;          /* Checkout in subscription mode */

    char                object_id[EVENT_GEN_ID_MAX];
    char                customer[EVENT_GEN_ID_MAX];
    char                sub[GEN_ID_LEN];
    char                si[GEN_ID_LEN];
    char                invoice[GEN_ID_LEN];
    char                line[GEN_ID_LEN];
    char                intent[GEN_ID_LEN];
    char                charge[GEN_ID_LEN];
    char                pm[GEN_ID_LEN];
    char                txn[GEN_ID_LEN];
    char                req[GEN_ID_LEN];
    char                number[GEN_ID_LEN];
    int                 failed;            /* an id could not be made */
} gen;


void
event_spec_init(event_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->amount = -1;
    s->attempt_count = -1;
}


const char *const *
event_gen_types(void)
{
    static const char  *names[GEN_NTYPES + 1];
    size_t              i;

    if (names[0] == NULL) {
        for (i = 0; i < GEN_NTYPES; i++) {
            names[i] = gen_types[i].type;
        }
        names[GEN_NTYPES] = NULL;
    }

    return names;
}


static const gen_type *
gen_find(const char *type)
{
    size_t  i;

    for (i = 0; type != NULL && i < GEN_NTYPES; i++) {
        if (strcmp(gen_types[i].type, type) == 0) {
            return &gen_types[i];
        }
    }

    return NULL;
}


int
event_gen_supported(const char *type)
{
    return gen_find(type) != NULL;
}


int
event_gen_random_id(const char *prefix, size_t n, char *buf, size_t len)
{
    static const char  alnum[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char      r[64];
    size_t             plen, got, i;
    ssize_t            k;

    plen = strlen(prefix);
    if (plen + n + 1 > len) {
        return -1;
    }

    memcpy(buf, prefix, plen);
    got = 0;

    while (got < n) {
        k = getrandom(r, sizeof(r), 0);
        if (k <= 0) {
            return -1;
        }

        /* 248 = 4 x 62: the bytes above it would favour some letters */
        for (i = 0; i < (size_t) k && got < n; i++) {
            if (r[i] < 248) {
                buf[plen + got++] = alnum[r[i] % 62];
            }
        }
    }

    buf[plen + n] = '\0';

    return 0;
}


int
event_gen_event_id(char *buf, size_t len)
{
    return event_gen_random_id("evt_1", 23, buf, len);
}


/* ------------------------------------------------------------ writing --- */

static void
ks(gen *g, const char *k, const char *v)
{
    json_writer_key(&g->w, k);
    json_writer_string(&g->w, v);
}


static void
ki(gen *g, const char *k, long long v)
{
    json_writer_key(&g->w, k);
    json_writer_integer(&g->w, v);
}


static void
kb(gen *g, const char *k, int v)
{
    json_writer_key(&g->w, k);
    json_writer_bool(&g->w, v);
}


static void
kn(gen *g, const char *k)
{
    json_writer_key(&g->w, k);
    json_writer_null(&g->w);
}


static void
kobj(gen *g, const char *k)
{
    json_writer_key(&g->w, k);
    json_writer_map_open(&g->w);
}


static void
kend(gen *g)
{
    json_writer_map_close(&g->w);
}


static void
karr(gen *g, const char *k)
{
    json_writer_key(&g->w, k);
    json_writer_array_open(&g->w);
}


static void
karr_end(gen *g)
{
    json_writer_array_close(&g->w);
}


static void
kempty_obj(gen *g, const char *k)
{
    kobj(g, k);
    kend(g);
}


static void
kempty_arr(gen *g, const char *k)
{
    karr(g, k);
    karr_end(g);
}


static void
gen_id(gen *g, char *buf, const char *prefix, size_t n)
{
    if (event_gen_random_id(prefix, n, buf, GEN_ID_LEN) != 0) {
        g->failed = 1;
        buf[0] = '\0';
    }
}


static void
gen_address(gen *g, const char *k)
{
    kobj(g, k);
    kn(g, "city");
    ks(g, "country", "US");
    kn(g, "line1");
    kn(g, "line2");
    ks(g, "postal_code", "94103");
    kn(g, "state");
    kend(g);
}


static void
gen_card(gen *g, const char *last4)
{
    ks(g, "brand", "visa");
    ks(g, "country", "US");
    ki(g, "exp_month", 12);
    ki(g, "exp_year", 2030);
    ks(g, "funding", "credit");
    ks(g, "last4", last4);
    ks(g, "network", "visa");
}


static void
gen_price(gen *g)
{
    kobj(g, "price");
    ks(g, "id", g->price);
    ks(g, "object", "price");
    kb(g, "active", 1);
    ks(g, "billing_scheme", "per_unit");
    ki(g, "created", g->t - 365 * GEN_DAY);
    ks(g, "currency", g->cur);
    kb(g, "livemode", g->live);
    kn(g, "lookup_key");
    kempty_obj(g, "metadata");
    kn(g, "nickname");
    ks(g, "product", g->product);
    kobj(g, "recurring");
    ks(g, "interval", "month");
    ki(g, "interval_count", 1);
    kn(g, "meter");
    kn(g, "trial_period_days");
    ks(g, "usage_type", "licensed");
    kend(g);
    ks(g, "tax_behavior", "unspecified");
    ks(g, "type", "recurring");
    ki(g, "unit_amount", g->amount);
    json_writer_key(&g->w, "unit_amount_decimal");
    {
        char  d[32];

        snprintf(d, sizeof(d), "%lld", g->amount);
        json_writer_string(&g->w, d);
    }
    kend(g);
}


/* ------------------------------------------------------------ objects --- */

static void
gen_session(gen *g)
{
    int  paid;

    paid = g->v == V_PAID;

    json_writer_map_open(&g->w);
    ks(g, "id", g->object_id);
    ks(g, "object", "checkout.session");
    kn(g, "after_expiration");
    kn(g, "allow_promotion_codes");
    ki(g, "amount_subtotal", g->amount);
    ki(g, "amount_total", g->amount);
    kobj(g, "automatic_tax");
    kb(g, "enabled", 0);
    kn(g, "liability");
    kn(g, "status");
    kend(g);
    kn(g, "billing_address_collection");
    ks(g, "cancel_url", "https://example.com/cancel");
    kn(g, "client_reference_id");
    kn(g, "consent");
    kn(g, "consent_collection");
    ki(g, "created", g->t - 120);
    ks(g, "currency", g->cur);
    kempty_arr(g, "custom_fields");
    ks(g, "customer", g->customer);
    ks(g, "customer_creation", "always");
    kobj(g, "customer_details");
    gen_address(g, "address");
    ks(g, "email", g->email);
    ks(g, "name", g->name);
    kn(g, "phone");
    ks(g, "tax_exempt", "none");
    kempty_arr(g, "tax_ids");
    kend(g);
    kn(g, "customer_email");
    ki(g, "expires_at", g->t + GEN_DAY);
    ks(g, "invoice", g->sub_mode ? g->invoice : NULL);
    kb(g, "livemode", g->live);
    kn(g, "locale");
    kempty_obj(g, "metadata");
    ks(g, "mode", g->sub_mode ? "subscription" : "payment");
    ks(g, "payment_intent", g->sub_mode ? NULL : g->intent);
    kn(g, "payment_link");
    karr(g, "payment_method_types");
    json_writer_string(&g->w, "card");
    karr_end(g);
    ks(g, "payment_status", paid ? "paid" : "unpaid");
    kn(g, "recovered_from");
    kn(g, "setup_intent");
    kn(g, "shipping_address_collection");
    kempty_arr(g, "shipping_options");
    ks(g, "status", "complete");
    kn(g, "submit_type");
    ks(g, "subscription", g->sub_mode ? g->sub : NULL);
    ks(g, "success_url", "https://example.com/success");
    kobj(g, "total_details");
    ki(g, "amount_discount", 0);
    ki(g, "amount_shipping", 0);
    ki(g, "amount_tax", 0);
    kend(g);
    ks(g, "ui_mode", "hosted");
    kn(g, "url");
    json_writer_map_close(&g->w);
}


static void
gen_invoice_line(gen *g, long long start, long long end)
{
    char  desc[512];

    snprintf(desc, sizeof(desc), "1 \xc3\x97 Example product (%s)",
             g->price);

    json_writer_map_open(&g->w);
    ks(g, "id", g->line);
    ks(g, "object", "line_item");
    ki(g, "amount", g->amount);
    ks(g, "currency", g->cur);
    ks(g, "description", desc);
    kempty_arr(g, "discount_amounts");
    kb(g, "discountable", 1);
    kempty_arr(g, "discounts");
    ks(g, "invoice", g->object_id);
    kb(g, "livemode", g->live);
    kempty_obj(g, "metadata");
    kobj(g, "parent");
    kn(g, "invoice_item_details");
    kobj(g, "subscription_item_details");
    kn(g, "invoice_item");
    kb(g, "proration", 0);
    kobj(g, "proration_details");
    kn(g, "credited_items");
    kend(g);
    ks(g, "subscription", g->sub);
    ks(g, "subscription_item", g->si);
    kend(g);
    ks(g, "type", "subscription_item_details");
    kend(g);
    kobj(g, "period");
    ki(g, "end", end);
    ki(g, "start", start);
    kend(g);
    kempty_arr(g, "pretax_credit_amounts");
    kobj(g, "pricing");
    kobj(g, "price_details");
    ks(g, "price", g->price);
    ks(g, "product", g->product);
    kend(g);
    ks(g, "type", "price_details");
    {
        char  d[32];

        snprintf(d, sizeof(d), "%lld", g->amount);
        ks(g, "unit_amount_decimal", d);
    }
    kend(g);
    ki(g, "quantity", 1);
    kempty_arr(g, "taxes");
    json_writer_map_close(&g->w);
}


static void
gen_invoice(gen *g)
{
    const char  *reason, *status;
    long long    attempts, start, end;
    int          paid, draft;
    char         url[512];

    paid = g->v == V_PAID;
    draft = g->v == V_DRAFT;

    reason = g->s->billing_reason;
    if (reason == NULL) {
        reason = g->v == V_PAID ? "subscription_create" : "subscription_cycle";
    }

    attempts = g->s->attempt_count;
    if (attempts < 0) {
        attempts = draft || g->v == V_OPEN ? 0 : 1;
    }

    status = paid ? "paid" : draft ? "draft" : "open";
    start = g->t - 30 * GEN_DAY;
    end = g->t;

    json_writer_map_open(&g->w);
    ks(g, "id", g->object_id);
    ks(g, "object", "invoice");
    ks(g, "account_country", "US");
    ks(g, "account_name", "Example Creator");
    kn(g, "account_tax_ids");
    ki(g, "amount_due", g->amount);
    ki(g, "amount_overpaid", 0);
    ki(g, "amount_paid", paid ? g->amount : 0);
    ki(g, "amount_remaining", paid ? 0 : g->amount);
    ki(g, "amount_shipping", 0);
    kn(g, "application");
    ki(g, "attempt_count", attempts);
    kb(g, "attempted", attempts > 0 || paid);
    kb(g, "auto_advance", !paid);
    kobj(g, "automatic_tax");
    kn(g, "disabled_reason");
    kb(g, "enabled", 0);
    kn(g, "liability");
    kn(g, "status");
    kend(g);
    kn(g, "automatically_finalizes_at");
    ks(g, "billing_reason", reason);
    ks(g, "collection_method", "charge_automatically");
    ki(g, "created", g->t - 3600);
    ks(g, "currency", g->cur);
    kn(g, "custom_fields");
    ks(g, "customer", g->customer);
    kn(g, "customer_address");
    ks(g, "customer_email", g->email);
    ks(g, "customer_name", g->name);
    kn(g, "customer_phone");
    kn(g, "customer_shipping");
    ks(g, "customer_tax_exempt", "none");
    kempty_arr(g, "customer_tax_ids");
    kn(g, "default_payment_method");
    kn(g, "default_source");
    kempty_arr(g, "default_tax_rates");
    kn(g, "description");
    kempty_arr(g, "discounts");
    kn(g, "due_date");
    if (draft) {
        kn(g, "effective_at");
    } else {
        ki(g, "effective_at", g->t - 3600);
    }
    ki(g, "ending_balance", 0);
    kn(g, "footer");
    kn(g, "from_invoice");
    snprintf(url, sizeof(url), "https://invoice.stripe.com/i/acct_1Example"
             "/test_%s", g->object_id);
    ks(g, "hosted_invoice_url", draft ? NULL : url);
    snprintf(url, sizeof(url), "https://pay.stripe.com/invoice/acct_1Example"
             "/test_%s/pdf", g->object_id);
    ks(g, "invoice_pdf", draft ? NULL : url);
    kobj(g, "issuer");
    ks(g, "type", "self");
    kend(g);
    kn(g, "last_finalization_error");
    kn(g, "latest_revision");
    kobj(g, "lines");
    ks(g, "object", "list");
    karr(g, "data");
    gen_invoice_line(g, start, end);
    karr_end(g);
    kb(g, "has_more", 0);
    ki(g, "total_count", 1);
    snprintf(url, sizeof(url), "/v1/invoices/%s/lines", g->object_id);
    ks(g, "url", url);
    kend(g);
    kb(g, "livemode", g->live);
    kempty_obj(g, "metadata");
    if (g->v == V_FAILED) {
        ki(g, "next_payment_attempt", g->t + 3 * GEN_DAY);
    } else {
        kn(g, "next_payment_attempt");
    }
    ks(g, "number", draft ? NULL : g->number);
    kn(g, "on_behalf_of");
    kobj(g, "parent");
    kn(g, "quote_details");
    kobj(g, "subscription_details");
    kempty_obj(g, "metadata");
    ks(g, "subscription", g->sub);
    kend(g);
    ks(g, "type", "subscription_details");
    kend(g);
    ki(g, "period_end", end);
    ki(g, "period_start", start);
    ki(g, "post_payment_credit_notes_amount", 0);
    ki(g, "pre_payment_credit_notes_amount", 0);
    kn(g, "receipt_number");
    kn(g, "rendering");
    kn(g, "shipping_cost");
    kn(g, "shipping_details");
    ki(g, "starting_balance", 0);
    kn(g, "statement_descriptor");
    ks(g, "status", status);
    kobj(g, "status_transitions");
    if (draft) {
        kn(g, "finalized_at");
    } else {
        ki(g, "finalized_at", g->t - 3600);
    }
    kn(g, "marked_uncollectible_at");
    if (paid) {
        ki(g, "paid_at", g->t);
    } else {
        kn(g, "paid_at");
    }
    kn(g, "voided_at");
    kend(g);
    ki(g, "subtotal", g->amount);
    ki(g, "subtotal_excluding_tax", g->amount);
    kn(g, "test_clock");
    ki(g, "total", g->amount);
    kempty_arr(g, "total_discount_amounts");
    ki(g, "total_excluding_tax", g->amount);
    kempty_arr(g, "total_pretax_credit_amounts");
    kempty_arr(g, "total_taxes");
    kn(g, "webhooks_delivered_at");
    json_writer_map_close(&g->w);
}


static void
gen_billing_details(gen *g)
{
    kobj(g, "billing_details");
    gen_address(g, "address");
    ks(g, "email", g->email);
    ks(g, "name", g->name);
    kn(g, "phone");
    kn(g, "tax_id");
    kend(g);
}


static void
gen_charge(gen *g)
{
    int   failed, refunded;
    char  url[512];

    failed = g->v == V_FAILED;
    refunded = g->v == V_REFUNDED;

    json_writer_map_open(&g->w);
    ks(g, "id", g->object_id);
    ks(g, "object", "charge");
    ki(g, "amount", g->amount);
    ki(g, "amount_captured", failed ? 0 : g->amount);
    ki(g, "amount_refunded", refunded ? g->amount : 0);
    kn(g, "application");
    kn(g, "application_fee");
    kn(g, "application_fee_amount");
    ks(g, "balance_transaction", failed ? NULL : g->txn);
    gen_billing_details(g);
    ks(g, "calculated_statement_descriptor", "EXAMPLE CREATOR");
    kb(g, "captured", !failed);
    ki(g, "created", refunded ? g->t - 2 * GEN_DAY : g->t);
    ks(g, "currency", g->cur);
    ks(g, "customer", g->customer);
    ks(g, "description", "Example product");
    kb(g, "disputed", 0);
    kn(g, "failure_balance_transaction");
    ks(g, "failure_code", failed ? "card_declined" : NULL);
    ks(g, "failure_message", failed ? "Your card was declined." : NULL);
    kempty_obj(g, "fraud_details");
    kb(g, "livemode", g->live);
    kempty_obj(g, "metadata");
    kn(g, "on_behalf_of");
    kobj(g, "outcome");
    kn(g, "advice_code");
    kn(g, "network_advice_code");
    kn(g, "network_decline_code");
    ks(g, "network_status", failed ? "declined_by_network"
                                    : "approved_by_network");
    ks(g, "reason", failed ? "generic_decline" : NULL);
    ks(g, "risk_level", "normal");
    ki(g, "risk_score", 32);
    ks(g, "seller_message", failed ? "The bank did not return any further "
                                     "details with this decline."
                                   : "Payment complete.");
    ks(g, "type", failed ? "issuer_declined" : "authorized");
    kend(g);
    kb(g, "paid", !failed);
    ks(g, "payment_intent", g->intent);
    ks(g, "payment_method", g->pm);
    kobj(g, "payment_method_details");
    kobj(g, "card");
    ki(g, "amount_authorized", failed ? 0 : g->amount);
    gen_card(g, failed ? "0002" : "4242");
    kend(g);
    ks(g, "type", "card");
    kend(g);
    ks(g, "receipt_email", g->email);
    kn(g, "receipt_number");
    snprintf(url, sizeof(url), "https://pay.stripe.com/receipts/payment/"
             "%s", g->object_id);
    ks(g, "receipt_url", failed ? NULL : url);
    kb(g, "refunded", refunded);
    kn(g, "review");
    kn(g, "shipping");
    kn(g, "source_transfer");
    kn(g, "statement_descriptor");
    kn(g, "statement_descriptor_suffix");
    ks(g, "status", failed ? "failed" : "succeeded");
    kn(g, "transfer_data");
    kn(g, "transfer_group");
    json_writer_map_close(&g->w);
}


static void
gen_intent(gen *g)
{
    int   failed;
    char  secret[EVENT_GEN_ID_MAX + 32];

    failed = g->v == V_FAILED;

    json_writer_map_open(&g->w);
    ks(g, "id", g->object_id);
    ks(g, "object", "payment_intent");
    ki(g, "amount", g->amount);
    ki(g, "amount_capturable", 0);
    ki(g, "amount_received", failed ? 0 : g->amount);
    kn(g, "application");
    kn(g, "application_fee_amount");
    kobj(g, "automatic_payment_methods");
    ks(g, "allow_redirects", "always");
    kb(g, "enabled", 1);
    kend(g);
    kn(g, "canceled_at");
    kn(g, "cancellation_reason");
    ks(g, "capture_method", "automatic_async");
    snprintf(secret, sizeof(secret), "%s_secret_example", g->object_id);
    ks(g, "client_secret", secret);
    ks(g, "confirmation_method", "automatic");
    ki(g, "created", g->t - 5);
    ks(g, "currency", g->cur);
    ks(g, "customer", g->customer);
    ks(g, "description", "Example product");

    if (failed) {
        kobj(g, "last_payment_error");
        ks(g, "charge", g->charge);
        ks(g, "code", "card_declined");
        ks(g, "decline_code", "generic_decline");
        ks(g, "doc_url", "https://stripe.com/docs/error-codes/card-declined");
        ks(g, "message", "Your card was declined.");
        kobj(g, "payment_method");
        ks(g, "id", g->pm);
        ks(g, "object", "payment_method");
        gen_billing_details(g);
        kobj(g, "card");
        gen_card(g, "0002");
        kend(g);
        ki(g, "created", g->t - 5);
        ks(g, "customer", g->customer);
        kb(g, "livemode", g->live);
        kempty_obj(g, "metadata");
        ks(g, "type", "card");
        kend(g);
        ks(g, "type", "card_error");
        kend(g);
    } else {
        kn(g, "last_payment_error");
    }

    ks(g, "latest_charge", g->charge);
    kb(g, "livemode", g->live);
    kempty_obj(g, "metadata");
    kn(g, "next_action");
    kn(g, "on_behalf_of");
    ks(g, "payment_method", failed ? NULL : g->pm);
    karr(g, "payment_method_types");
    json_writer_string(&g->w, "card");
    karr_end(g);
    kn(g, "processing");
    ks(g, "receipt_email", g->email);
    kn(g, "review");
    kn(g, "setup_future_usage");
    kn(g, "shipping");
    kn(g, "source");
    kn(g, "statement_descriptor");
    kn(g, "statement_descriptor_suffix");
    ks(g, "status", failed ? "requires_payment_method" : "succeeded");
    kn(g, "transfer_data");
    kn(g, "transfer_group");
    json_writer_map_close(&g->w);
}


static void
gen_customer(gen *g)
{
    json_writer_map_open(&g->w);
    ks(g, "id", g->customer);
    ks(g, "object", "customer");
    kn(g, "address");
    ki(g, "balance", 0);
    ki(g, "created", g->v == V_CREATED ? g->t : g->t - 90 * GEN_DAY);
    kn(g, "currency");
    kn(g, "default_source");
    kb(g, "delinquent", 0);
    kn(g, "description");
    kn(g, "discount");
    ks(g, "email", g->email);
    ks(g, "invoice_prefix", "4F2A9C1B");
    kobj(g, "invoice_settings");
    kn(g, "custom_fields");
    kn(g, "default_payment_method");
    kn(g, "footer");
    kn(g, "rendering_options");
    kend(g);
    kb(g, "livemode", g->live);
    kempty_obj(g, "metadata");
    ks(g, "name", g->name);
    ki(g, "next_invoice_sequence", 1);
    kn(g, "phone");
    kempty_arr(g, "preferred_locales");
    kn(g, "shipping");
    ks(g, "tax_exempt", "none");
    kn(g, "test_clock");
    json_writer_map_close(&g->w);
}


static void
gen_subscription(gen *g)
{
    const char  *status;
    long long    start, period_start, period_end;
    int          cancel_scheduled;
    char         url[512];

    switch (g->v) {
    case V_DELETED:
        status = "canceled";
        break;
    case V_PAUSED:
        status = "paused";
        break;
    case V_TRIAL:
        status = "trialing";
        break;
    default:
        status = "active";
    }

    cancel_scheduled = g->v == V_UPDATED && g->s->previous_price == NULL;
    start = g->v == V_CREATED ? g->t : g->t - 60 * GEN_DAY;
    period_start = g->v == V_CREATED ? g->t : g->t - 10 * GEN_DAY;
    period_end = period_start + 30 * GEN_DAY;

    json_writer_map_open(&g->w);
    ks(g, "id", g->object_id);
    ks(g, "object", "subscription");
    kn(g, "application");
    kn(g, "application_fee_percent");
    kobj(g, "automatic_tax");
    kn(g, "disabled_reason");
    kb(g, "enabled", 0);
    kn(g, "liability");
    kend(g);
    ki(g, "billing_cycle_anchor", start);
    kn(g, "billing_cycle_anchor_config");
    kn(g, "billing_thresholds");
    if (cancel_scheduled) {
        ki(g, "cancel_at", period_end);
    } else {
        kn(g, "cancel_at");
    }
    kb(g, "cancel_at_period_end", cancel_scheduled);
    if (g->v == V_DELETED || cancel_scheduled) {
        ki(g, "canceled_at", g->t);
    } else {
        kn(g, "canceled_at");
    }
    kobj(g, "cancellation_details");
    kn(g, "comment");
    kn(g, "feedback");
    ks(g, "reason", g->v == V_DELETED || cancel_scheduled
                    ? "cancellation_requested" : NULL);
    kend(g);
    ks(g, "collection_method", "charge_automatically");
    ki(g, "created", start);
    ks(g, "currency", g->cur);
    ks(g, "customer", g->customer);
    kn(g, "days_until_due");
    ks(g, "default_payment_method", g->pm);
    kn(g, "default_source");
    kempty_arr(g, "default_tax_rates");
    kn(g, "description");
    kempty_arr(g, "discounts");
    if (g->v == V_DELETED) {
        ki(g, "ended_at", g->t);
    } else {
        kn(g, "ended_at");
    }
    kobj(g, "invoice_settings");
    kn(g, "account_tax_ids");
    kobj(g, "issuer");
    ks(g, "type", "self");
    kend(g);
    kend(g);
    kobj(g, "items");
    ks(g, "object", "list");
    karr(g, "data");
    json_writer_map_open(&g->w);
    ks(g, "id", g->si);
    ks(g, "object", "subscription_item");
    kn(g, "billing_thresholds");
    ki(g, "created", start);
    ki(g, "current_period_end", period_end);
    ki(g, "current_period_start", period_start);
    kempty_arr(g, "discounts");
    kempty_obj(g, "metadata");
    gen_price(g);
    ki(g, "quantity", 1);
    ks(g, "subscription", g->object_id);
    kempty_arr(g, "tax_rates");
    json_writer_map_close(&g->w);
    karr_end(g);
    kb(g, "has_more", 0);
    ki(g, "total_count", 1);
    snprintf(url, sizeof(url), "/v1/subscription_items?subscription=%s",
             g->object_id);
    ks(g, "url", url);
    kend(g);
    ks(g, "latest_invoice", g->invoice);
    kb(g, "livemode", g->live);
    kempty_obj(g, "metadata");
    kn(g, "next_pending_invoice_item_invoice");
    kn(g, "on_behalf_of");
    if (g->v == V_PAUSED) {
        kobj(g, "pause_collection");
        ks(g, "behavior", "void");
        kn(g, "resumes_at");
        kend(g);
    } else {
        kn(g, "pause_collection");
    }
    kn(g, "pending_invoice_item_interval");
    kn(g, "pending_setup_intent");
    kn(g, "pending_update");
    kn(g, "schedule");
    ki(g, "start_date", start);
    ks(g, "status", status);
    kn(g, "test_clock");
    kn(g, "transfer_data");
    if (g->v == V_TRIAL) {
        ki(g, "trial_end", g->t + 3 * GEN_DAY);
        ki(g, "trial_start", g->t - 11 * GEN_DAY);
    } else {
        kn(g, "trial_end");
        kn(g, "trial_start");
    }
    json_writer_map_close(&g->w);
}


/* data.previous_attributes of the "updated" events */
static void
gen_previous(gen *g, gen_kind kind)
{
    char  old[EVENT_GEN_ID_MAX + 16];

    if (kind == K_CUSTOMER) {
        kobj(g, "previous_attributes");
        snprintf(old, sizeof(old), "previous.%s", g->email);
        ks(g, "email", old);
        kend(g);
        return;
    }

    if (kind != K_SUBSCRIPTION) {
        return;
    }

    kobj(g, "previous_attributes");

    if (g->s->previous_price == NULL) {
        kn(g, "cancel_at");
        kb(g, "cancel_at_period_end", 0);
        kn(g, "canceled_at");
        kend(g);
        return;
    }

    kobj(g, "items");
    karr(g, "data");
    json_writer_map_open(&g->w);
    ks(g, "id", g->si);
    ks(g, "object", "subscription_item");
    kobj(g, "price");
    ks(g, "id", g->s->previous_price);
    ks(g, "object", "price");
    ks(g, "product", g->product);
    ks(g, "type", "recurring");
    kend(g);
    ki(g, "quantity", 1);
    json_writer_map_close(&g->w);
    karr_end(g);
    kend(g);
    kend(g);
}


static int
gen_ids(gen *g, const gen_type *gt)
{
    const event_spec  *s;
    const char        *mode;
    char               prefix[16], *p;

    s = g->s;
    mode = g->live ? "live" : "test";

    gen_id(g, g->sub, "sub_1", 23);
    gen_id(g, g->si, "si_", 14);
    gen_id(g, g->invoice, "in_1", 23);
    gen_id(g, g->line, "il_1", 23);
    gen_id(g, g->intent, "pi_3", 23);
    gen_id(g, g->charge, "ch_3", 23);
    gen_id(g, g->pm, "pm_1", 23);
    gen_id(g, g->txn, "txn_3", 23);
    gen_id(g, g->req, "req_", 14);
    gen_id(g, g->number, "", 8);
    if (!g->failed) {
        /* invoice numbers: "<prefix>-0001", upper case */
        snprintf(g->number + 8, GEN_ID_LEN - 8, "-0001");
        for (p = g->number; *p; p++) {
            *p = (char) toupper((unsigned char) *p);
        }
    }

    if (s->customer != NULL) {
        snprintf(g->customer, sizeof(g->customer), "%s", s->customer);
    } else if (event_gen_random_id("cus_", 14, g->customer,
                                   sizeof(g->customer)) != 0)
    {
        return -1;
    }

    if (s->object_id != NULL) {
        snprintf(g->object_id, sizeof(g->object_id), "%s", s->object_id);

    } else {
        switch (gt->kind) {
        case K_SESSION:
            snprintf(prefix, sizeof(prefix), "cs_%s_a1", mode);
            if (event_gen_random_id(prefix, 48, g->object_id,
                                    sizeof(g->object_id)) != 0)
            {
                return -1;
            }
            break;
        case K_INVOICE:
            snprintf(g->object_id, sizeof(g->object_id), "%s", g->invoice);
            break;
        case K_CHARGE:
            snprintf(g->object_id, sizeof(g->object_id), "%s", g->charge);
            break;
        case K_INTENT:
            snprintf(g->object_id, sizeof(g->object_id), "%s", g->intent);
            break;
        case K_CUSTOMER:
            snprintf(g->object_id, sizeof(g->object_id), "%s",
                     g->customer);
            break;
        case K_SUBSCRIPTION:
            snprintf(g->object_id, sizeof(g->object_id), "%s", g->sub);
            break;
        }
    }

    /* the customer's own events are about that customer */
    if (gt->kind == K_CUSTOMER) {
        snprintf(g->customer, sizeof(g->customer), "%s", g->object_id);
    }

    /* one id, one object: an invoice's own id is the one in its lines */
    if (gt->kind == K_INVOICE) {
        snprintf(g->invoice, sizeof(g->invoice), "%.*s", GEN_ID_LEN - 1,
                 g->object_id);
    } else if (gt->kind == K_CHARGE) {
        snprintf(g->charge, sizeof(g->charge), "%.*s", GEN_ID_LEN - 1,
                 g->object_id);
    } else if (gt->kind == K_INTENT) {
        snprintf(g->intent, sizeof(g->intent), "%.*s", GEN_ID_LEN - 1,
                 g->object_id);
    } else if (gt->kind == K_SUBSCRIPTION) {
        snprintf(g->sub, sizeof(g->sub), "%.*s", GEN_ID_LEN - 1,
                 g->object_id);
    }

    return g->failed ? -1 : 0;
}


char *
event_gen_build(const event_spec *s, const char *event_id,
    long long created, size_t *len, char *err, size_t errlen)
{
    const gen_type  *gt;
    http_request     out;
    gen             *g;
    char            *body;

    gt = gen_find(s->type);
    if (gt == NULL) {
        snprintf(err, errlen, "cannot generate events of type \"%s\"",
                 s->type ? s->type : "");
        return NULL;
    }

    if (s->mode != NULL && strcmp(s->mode, "payment") != 0
        && strcmp(s->mode, "subscription") != 0)
    {
        snprintf(err, errlen, "Checkout mode \"%s\" is not payment or "
                 "subscription", s->mode);
        return NULL;
    }

    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    g->s = s;
    g->v = gt->variant;
    g->t = created;
    g->amount = s->amount >= 0 ? s->amount : 2900;
    g->cur = s->currency ? s->currency : "usd";
    g->email = s->email ? s->email : "jenny.rosen@example.com";
    g->name = s->name ? s->name : "Jenny Rosen";
    g->price = s->price ? s->price : "price_example";
    g->product = s->product ? s->product : "prod_example";
    g->live = s->livemode != 0;
    g->sub_mode = s->mode != NULL && strcmp(s->mode, "subscription") == 0;

    if (gen_ids(g, gt) != 0) {
        snprintf(err, errlen, "no randomness for the ids");
        free(g);
        return NULL;
    }

    if (json_writer_init(&g->w) != 0) {
        snprintf(err, errlen, "out of memory");
        free(g);
        return NULL;
    }

    json_writer_map_open(&g->w);
    ks(g, "id", event_id);
    ks(g, "object", "event");
    ks(g, "api_version", s->api_version ? s->api_version
                                        : EVENT_GEN_API_VERSION);
    ki(g, "created", created);
    kobj(g, "data");
    json_writer_key(&g->w, "object");

    switch (gt->kind) {
    case K_SESSION:
        gen_session(g);
        break;
    case K_INVOICE:
        gen_invoice(g);
        break;
    case K_CHARGE:
        gen_charge(g);
        break;
    case K_INTENT:
        gen_intent(g);
        break;
    case K_CUSTOMER:
        gen_customer(g);
        break;
    case K_SUBSCRIPTION:
        gen_subscription(g);
        break;
    }

    if (gt->variant == V_UPDATED) {
        gen_previous(g, gt->kind);
    }

    kend(g);
    kb(g, "livemode", g->live);
    ki(g, "pending_webhooks", 1);
    kobj(g, "request");
    /* API-made changes carry a request id; automatic ones (renewals,
       retries) none */
    ks(g, "id", gt->kind == K_CUSTOMER || gt->variant == V_REFUNDED
                ? g->req : NULL);
    kn(g, "idempotency_key");
    kend(g);
    ks(g, "type", gt->type);
    json_writer_map_close(&g->w);

    memset(&out, 0, sizeof(out));

    if (json_writer_finish(&g->w, &out) != 0) {
        snprintf(err, errlen, "cannot write the event: a value is not "
                 "UTF-8, or out of memory");
        free(g);
        return NULL;
    }

    free(g);

    body = out.body;
    *len = out.body_len;

    return body;
}


/* ----------------------------------------------------------- templates --- */

/* "<type>.data.json" or "<type>.json" naming a type we know, else "" */
static void
template_type_from_name(const char *file_name, char *type, size_t len)
{
    const char  *base;
    char         name[EVENT_GEN_ID_MAX];
    size_t       n;

    type[0] = '\0';

    if (file_name == NULL) {
        return;
    }

    base = strrchr(file_name, '/');
    base = base ? base + 1 : file_name;

    n = strlen(base);
    if (n >= sizeof(name)) {
        return;
    }
    memcpy(name, base, n + 1);

    if (n > 5 && strcmp(name + n - 5, ".json") == 0) {
        name[n -= 5] = '\0';
    }
    if (n > 5 && strcmp(name + n - 5, ".data") == 0) {
        name[n -= 5] = '\0';
    }

    if (strncmp(name, "subscription.", 13) == 0) {
        snprintf(type, len, "customer.%.200s", name);   /* known types are short */
    } else {
        snprintf(type, len, "%s", name);
    }

    if (!event_gen_supported(type)) {
        type[0] = '\0';
    }
}


static yajl_val
tree_member(yajl_val obj, const char *key)
{
    size_t  i;

    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


/* t->rest from the members of the finished writer text "{...}" */
static int
template_set_rest(event_template *t, const char *text, size_t len)
{
    /* text is "{}" or "{"k":...}": rest is "}" or ","k":...}" */
    if (len < 2) {
        return -1;
    }

    if (len == 2) {
        t->rest = strdup("}");
        t->rest_len = 1;
        return t->rest != NULL ? 0 : -1;
    }

    t->rest = malloc(len + 1);
    if (t->rest == NULL) {
        return -1;
    }

    t->rest[0] = ',';
    memcpy(t->rest + 1, text + 1, len - 1);
    t->rest_len = len;
    t->rest[len] = '\0';

    return 0;
}


int
event_template_load(event_template *t, const char *text, size_t len,
    const char *file_name, const char *type, long long created,
    const char *api_version, int livemode, char *err, size_t errlen)
{
    yajl_val      root, v, data, obj, live;
    json_writer   w;
    http_request  out;
    char         *copy, perr[256];
    const char   *ftype;
    size_t        i;
    int           envelope, has_created;

    memset(t, 0, sizeof(*t));

    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "the file holds a NUL byte: not JSON");
        return -1;
    }

    copy = strndup(text, len);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    perr[0] = '\0';
    root = yajl_tree_parse(copy, perr, sizeof(perr));
    free(copy);

    if (root == NULL) {
        perr[strcspn(perr, "\r\n")] = '\0';
        snprintf(err, errlen, "not JSON: %s", perr[0] ? perr : "parse error");
        return -1;
    }

    if (!YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto failed;
    }

    v = tree_member(root, "type");
    data = tree_member(root, "data");
    envelope = v != NULL && YAJL_IS_STRING(v) && data != NULL
               && YAJL_IS_OBJECT(data);

    if (envelope) {
        ftype = YAJL_GET_STRING(v);

        if (type != NULL && strcmp(type, ftype) != 0) {
            snprintf(err, errlen, "--type %s, but the file is a \"%s\" "
                     "event", type, ftype);
            goto failed;
        }

        snprintf(t->type, sizeof(t->type), "%s", ftype);

        v = tree_member(root, "id");
        if (v != NULL) {
            ftype = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;

            if (ftype == NULL || ftype[0] == '\0'
                || strlen(ftype) >= sizeof(t->id))
            {
                snprintf(err, errlen, "the event's \"id\" is not a string "
                         "of 1 to %d bytes", EVENT_GEN_ID_MAX - 1);
                goto failed;
            }
            snprintf(t->id, sizeof(t->id), "%s", ftype);
        }

        has_created = tree_member(root, "created") != NULL;

        if (t->id[0] != '\0' && has_created) {
            t->verbatim = strndup(text, len);
            if (t->verbatim == NULL) {
                snprintf(err, errlen, "out of memory");
                goto failed;
            }
            t->verbatim_len = len;
        }

        /* the members but "id", plus "created" when it has none */
        if (json_writer_init(&w) != 0) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        json_writer_map_open(&w);

        if (!has_created) {
            json_writer_pair_integer(&w, "created", created);
        }

        for (i = 0; i < root->u.object.len; i++) {
            if (strcmp(root->u.object.keys[i], "id") == 0) {
                continue;
            }
            json_writer_key(&w, root->u.object.keys[i]);
            json_writer_value(&w, root->u.object.values[i]);
        }

        json_writer_map_close(&w);

    } else {
        /* event data ({"object": {...}}) or a bare object */
        obj = tree_member(root, "object");
        data = obj != NULL && YAJL_IS_OBJECT(obj) ? root : NULL;
        obj = data != NULL ? obj : root;

        if (type != NULL) {
            snprintf(t->type, sizeof(t->type), "%s", type);
        } else {
            template_type_from_name(file_name, t->type, sizeof(t->type));
        }

        if (t->type[0] == '\0') {
            snprintf(err, errlen, "the file is %s, not an event: give its "
                     "event type with --type", data ? "the data of an "
                     "event" : "a bare object");
            goto failed;
        }

        live = tree_member(obj, "livemode");
        if (livemode < 0) {
            livemode = live != NULL && YAJL_IS_TRUE(live);
        }

        if (json_writer_init(&w) != 0) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        json_writer_map_open(&w);
        json_writer_pair(&w, "object", "event");
        json_writer_pair(&w, "api_version", api_version ? api_version
                                                        : EVENT_GEN_API_VERSION);
        json_writer_pair_integer(&w, "created", created);
        json_writer_key(&w, "data");

        if (data != NULL) {
            json_writer_value(&w, data);
        } else {
            json_writer_map_open(&w);
            json_writer_key(&w, "object");
            json_writer_value(&w, obj);
            json_writer_map_close(&w);
        }

        json_writer_key(&w, "livemode");
        json_writer_bool(&w, livemode);
        json_writer_pair_integer(&w, "pending_webhooks", 1);
        json_writer_key(&w, "request");
        json_writer_map_open(&w);
        json_writer_key(&w, "id");
        json_writer_null(&w);
        json_writer_key(&w, "idempotency_key");
        json_writer_null(&w);
        json_writer_map_close(&w);
        json_writer_pair(&w, "type", t->type);
        json_writer_map_close(&w);
    }

    memset(&out, 0, sizeof(out));

    if (json_writer_finish(&w, &out) != 0
        || template_set_rest(t, out.body, out.body_len) != 0)
    {
        free(out.body);
        snprintf(err, errlen, "cannot write the event: a string is not "
                 "UTF-8, or out of memory");
        goto failed;
    }

    free(out.body);
    yajl_tree_free(root);

    return 0;

failed:

    yajl_tree_free(root);
    event_template_free(t);

    return -1;
}


char *
event_template_body(const event_template *t, const char *id, size_t *len)
{
    dead_letter_buf  b;

    if (id == NULL && t->verbatim != NULL) {
        b.p = malloc(t->verbatim_len + 1);
        if (b.p == NULL) {
            return NULL;
        }
        memcpy(b.p, t->verbatim, t->verbatim_len + 1);
        *len = t->verbatim_len;
        return b.p;
    }

    if (id == NULL) {
        if (t->id[0] == '\0') {
            return NULL;
        }
        id = t->id;
    }

    memset(&b, 0, sizeof(b));
    b.cap = t->rest_len + strlen(id) + 32;
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        return NULL;
    }

    memcpy(b.p, "{\"id\":", 6);
    b.len = 6;

    if (dead_letter_quote(&b, id, strlen(id), EVENT_GEN_ID_MAX) != 0) {
        free(b.p);
        return NULL;
    }

    if (b.len + t->rest_len + 1 > b.cap) {
        char  *p = realloc(b.p, b.len + t->rest_len + 1);

        if (p == NULL) {
            free(b.p);
            return NULL;
        }
        b.p = p;
    }

    memcpy(b.p + b.len, t->rest, t->rest_len);
    b.len += t->rest_len;
    b.p[b.len] = '\0';
    *len = b.len;

    return b.p;
}


void
event_template_free(event_template *t)
{
    free(t->verbatim);
    free(t->rest);
    t->verbatim = NULL;
    t->rest = NULL;
}
