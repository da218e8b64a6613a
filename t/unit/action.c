/*
 * Unit tests of action_from_event() on the Stripe fixtures: every fixture in
 * t/fixtures/stripe/ wrapped in an event, the record checked field by field
 * against what the JSON says, plus every row of the catalogue (SPEC 5) and
 * the pre-2025 invoice shape built from the basil one.
 *
 * Edge cases (bad input, bounds, odd values) are in action_edge.c.
 */

#include <stdarg.h>

#include "action_test.h"

#define EVENT_DATA  FIXTURES "/event-data/"
#define OBJECTS     FIXTURES "/objects/"


/* ---- the pre-2025 invoice, made from a basil one ---- */

static void emit(yajl_gen g, yajl_val v, int role);

enum { PLAIN, INVOICE, LINES, LINE };


static yajl_val
get(yajl_val v, const char *a, const char *b, const char *c)
{
    const char  *path[4] = { a, b, c, NULL };

    return yajl_tree_get(v, path, yajl_t_any);
}


static void
emit_key(yajl_gen g, const char *key)
{
    yajl_gen_string(g, (const unsigned char *) key, strlen(key));
}


/*
 * Before 2025-03-31 a line had price {id, product} where basil has
 * pricing.price_details {price, product}, and the invoice and its lines had
 * "subscription" where basil has parent.*_details.subscription.
 */
static void
emit_object(yajl_gen g, yajl_val v, int role)
{
    yajl_val     sub, pd;
    const char  *key;
    size_t       i;

    yajl_gen_map_open(g);

    for (i = 0; i < v->u.object.len; i++) {
        key = v->u.object.keys[i];

        if ((role == INVOICE || role == LINE)
            && (strcmp(key, "parent") == 0 || strcmp(key, "pricing") == 0
                || strcmp(key, "subscription") == 0))
        {
            continue;
        }

        emit_key(g, key);
        emit(g, v->u.object.values[i],
             role == INVOICE && strcmp(key, "lines") == 0 ? LINES
             : role == LINES && strcmp(key, "data") == 0 ? LINE : PLAIN);
    }

    if (role == INVOICE) {
        sub = get(v, "parent", "subscription_details", "subscription");
        emit_key(g, "subscription");
        emit(g, sub, PLAIN);
    }

    if (role == LINE) {
        pd = get(v, "pricing", "price_details", NULL);
        emit_key(g, "price");
        yajl_gen_map_open(g);
        emit_key(g, "id");
        emit(g, get(pd, "price", NULL, NULL), PLAIN);
        emit_key(g, "object");
        yajl_gen_string(g, (const unsigned char *) "price", 5);
        emit_key(g, "product");
        emit(g, get(pd, "product", NULL, NULL), PLAIN);
        yajl_gen_map_close(g);

        sub = get(v, "parent", "subscription_item_details", "subscription");
        emit_key(g, "subscription");
        emit(g, sub, PLAIN);
    }

    yajl_gen_map_close(g);
}


static void
emit(yajl_gen g, yajl_val v, int role)
{
    size_t  i;

    if (v == NULL || YAJL_IS_NULL(v)) {
        yajl_gen_null(g);

    } else if (YAJL_IS_OBJECT(v)) {
        emit_object(g, v, role);

    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (i = 0; i < v->u.array.len; i++) {
            emit(g, v->u.array.values[i], role);
        }
        yajl_gen_array_close(g);

    } else if (YAJL_IS_STRING(v)) {
        yajl_gen_string(g, (const unsigned char *) v->u.string,
                        strlen(v->u.string));

    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));

    } else {
        yajl_gen_bool(g, YAJL_IS_TRUE(v));
    }
}


/* The data member of a basil invoice event, in the pre-2025 shape. */
static char *
pre_basil_invoice(const char *path)
{
    yajl_val              data;
    yajl_gen              g;
    const unsigned char  *buf;
    size_t                len;
    char                 *json, *out, err[256];

    json = read_file(path, NULL);
    data = yajl_tree_parse(json, err, sizeof(err));
    free(json);

    if (data == NULL) {
        diag("%s: %s", path, err);
        exit(1);
    }

    g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    emit_key(g, "object");
    emit(g, get(data, "object", NULL, NULL), INVOICE);
    yajl_gen_map_close(g);

    yajl_gen_get_buf(g, &buf, &len);
    out = strndup((const char *) buf, len);

    yajl_gen_free(g);
    yajl_tree_free(data);

    return out;
}


/* ---- checks shared by several fixtures ---- */

static void
envelope_is(const char *type, const char *action)
{
    is_int(S, ACTION_OK, "%s: normalized", type);
    is_str(A.id, "evt_test", "%s: a->id", type);
    is_str(A.type, type, "%s: a->type", type);
    is_str(A.name, action, "%s: a->name", type);
    is_int(A.livemode, 0, "%s: a->livemode", type);
    is_int(A.record_len, A.record ? strlen(A.record) : 0,
           "%s: record_len", type);
    ok(R != NULL, "%s: the record is JSON", type);
    is_int(int_at_path("v"), 1, "%s: v", type);
    is_str(str_at("id"), "evt_test", "%s: id", type);
    is_str(str_at("type"), type, "%s: type", type);
    is_str(str_at("action"), action, "%s: action", type);
    is_int(int_at_path("created"), 1745433906, "%s: created", type);
    is_int(bool_at("livemode"), 0, "%s: livemode", type);
    is_str(str_at("api_version"), "2025-03-31.basil", "%s: api_version",
           type);
}


/* ---- event-data fixtures: real webhook data members ---- */

static void
test_invoice_payment_failed(void)
{
    run_file("invoice.payment_failed",
             EVENT_DATA "invoice.payment_failed.data.json");

    envelope_is("invoice.payment_failed", "payment_failed");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,amount,currency,items,subscription,invoice,"
           "attempt_count,billing_reason,status,metadata",
           "invoice.payment_failed: exactly these members, in this order");
    is_str(str_at("object.type"), "invoice", "object.type");
    is_str(str_at("object.id"), "in_1234", "object.id");
    is_str(keys_at("customer"), "id,email,name", "customer members");
    is_str(str_at("customer.id"), "cus_1234", "customer.id");
    is_str(str_at("customer.email"), "customer@example.org",
           "customer.email from customer_email");
    is_str(str_at("customer.name"), "Example Customer",
           "customer.name from customer_name");
    is_int(int_at_path("amount"), 24900, "amount is amount_due");
    is_str(str_at("currency"), "usd", "currency");
    is_int(len_at("items"), 1, "one item");
    is_str(keys_at("items.0"), "price,product,quantity,amount,description",
           "item members");
    is_str(str_at("items.0.price"), "price_1234",
           "item price from pricing.price_details");
    is_str(str_at("items.0.product"), "prod_1234",
           "item product from pricing.price_details");
    is_int(int_at_path("items.0.quantity"), 1, "item quantity");
    is_int(int_at_path("items.0.amount"), 24900, "item amount");
    is_str(str_at("items.0.description"),
           "1 \xc3\x97 Example (at $249.00 / year)",
           "item description, \\u00d7 decoded");
    is_str(str_at("subscription"), "sub_1234",
           "subscription from parent.subscription_details");
    is_str(str_at("invoice"), "in_1234", "invoice");
    is_int(int_at_path("attempt_count"), 1, "attempt_count");
    is_str(str_at("billing_reason"), "subscription_cycle", "billing_reason");
    is_str(str_at("status"), "open", "status");
    is_int(len_at("metadata"), 0, "metadata {}");
    ok(!has("enrich"), "no enrich: the email is known");
    ok(!has("reason"), "no reason: the charge is not in the payload");

    is_str(A.customer_id, "cus_1234", "a->customer_id");
    is_str(A.customer_json,
           "{\"email\":\"customer@example.org\",\"name\":\"Example Customer\"}",
           "a->customer_json");
    is_str(A.once_key, "payment_failed:in_1234:1", "a->once_key");
}


static void
test_invoice_pre_basil(void)
{
    char  *basil, *old, *data;

    run_file("invoice.payment_failed",
             EVENT_DATA "invoice.payment_failed.data.json");
    basil = strdup(A.record);

    data = pre_basil_invoice(EVENT_DATA "invoice.payment_failed.data.json");
    ok(strstr(data, "\"pricing\"") == NULL
       && strstr(data, "\"parent\"") == NULL,
       "pre-2025 invoice: no pricing, no parent");
    ok(strstr(data, "\"price\":{\"id\":\"price_1234\"") != NULL,
       "pre-2025 invoice: lines.data[].price.id");

    run_event("invoice.payment_failed", data);
    old = strdup(A.record != NULL ? A.record : "");

    is_str(old, basil, "pre-2025 invoice: the same record as basil's");
    is_str(str_at("items.0.price"), "price_1234", "pre-2025: item price");
    is_str(str_at("items.0.product"), "prod_1234", "pre-2025: item product");
    is_str(str_at("subscription"), "sub_1234",
           "pre-2025: top-level subscription");

    free(data);
    free(old);
    free(basil);

    /* invoice.upcoming too: no id, basil shape */
    data = pre_basil_invoice(EVENT_DATA "invoice.upcoming.data.json");
    run_event("invoice.upcoming", data);
    is_str(str_at("items.0.price"), "price_1234",
           "pre-2025 upcoming: item price");
    is_str(str_at("subscription"), "sub_1234",
           "pre-2025 upcoming: subscription");
    free(data);
}


static void
test_invoice_upcoming(void)
{
    run_file("invoice.upcoming", EVENT_DATA "invoice.upcoming.data.json");

    envelope_is("invoice.upcoming", "invoice_upcoming");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,amount,currency,items,subscription,"
           "attempt_count,billing_reason,status,metadata",
           "invoice.upcoming: members (no invoice id: it has none)");
    is_str(keys_at("object"), "type", "object has no id");
    is_str(str_at("customer.id"), "cus_L7lJPQIi3GxrTG", "customer.id");
    is_str(str_at("customer.email"), "customer@example.org",
           "customer.email");
    is_int(int_at_path("amount"), 1900, "amount is amount_due");
    is_str(str_at("items.0.price"), "price_1234", "item price");
    is_str(str_at("items.0.product"), "prod_1234", "item product");
    is_int(int_at_path("items.0.quantity"), 1, "item quantity");
    is_int(int_at_path("items.0.amount"), 1900, "item amount");
    is_str(str_at("items.0.description"),
           "1 \xc3\x97 Subscription (at $19.00 / month)", "item description");
    is_str(str_at("subscription"), "sub_1234", "subscription");
    is_int(int_at_path("attempt_count"), 0, "attempt_count 0");
    is_str(str_at("billing_reason"), "upcoming", "billing_reason");
    is_str(str_at("status"), "draft", "status");
    ok(A.once_key == NULL, "no once_key");
}


static void
test_invoice_payment_action_required(void)
{
    const char  *f = EVENT_DATA "invoice.payment_action_required.data.json";

    run_file("invoice.payment_action_required", f);

    envelope_is("invoice.payment_action_required", "payment_action_required");
    is_str(str_at("object.id"), "in_1234", "object.id");
    is_str(str_at("customer.id"), "cus_1234", "customer.id");
    is_str(str_at("customer.email"), "customer@example.org",
           "customer.email");
    is_str(str_at("customer.name"), "Example Customer", "customer.name");
    is_int(int_at_path("amount"), 9184, "amount is amount_due");
    is_int(len_at("items"), 1, "one item");
    is_str(str_at("items.0.price"), "price_1234", "item price");
    is_str(str_at("items.0.product"), "prod_1234", "item product");
    is_int(int_at_path("items.0.quantity"), 24104515, "metered quantity");
    is_int(int_at_path("items.0.amount"), 9184, "item amount");
    is_str(str_at("items.0.description"),
           "1 \xc3\x97 Standard (at $0.00000381 / month)", "description");
    is_str(str_at("subscription"), "sub_1234", "top-level subscription");
    is_int(int_at_path("attempt_count"), 0, "attempt_count");
    is_str(str_at("billing_reason"), "subscription_cycle", "billing_reason");
    is_str(str_at("status"), "open", "status");
    ok(A.once_key == NULL, "no once_key");

    /* The same invoice, paid: both paid events give one fact. */
    run_file("invoice.paid", f);
    is_str(A.name, "renewal", "invoice.paid, subscription_cycle: renewal");
    is_int(int_at_path("amount"), 0, "renewal: amount is amount_paid (0)");
    is_str(A.once_key, "renewal:in_1234", "renewal: once_key");

    run_file("invoice.payment_succeeded", f);
    is_str(A.name, "renewal", "invoice.payment_succeeded: renewal");
    is_str(A.once_key, "renewal:in_1234", "payment_succeeded: same once_key");

    run_file("invoice.finalized", f);
    is_str(A.name, "invoice_issued", "invoice.finalized: invoice_issued");
    is_int(int_at_path("amount"), 9184, "invoice_issued: amount_due");
}


static void
test_charges(void)
{
    run_file("charge.refunded", EVENT_DATA "charge.refunded.data.json");

    envelope_is("charge.refunded", "refund");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,amount,currency,reason_code,status,card,"
           "metadata,enrich", "charge.refunded: members");
    is_str(str_at("object.type"), "charge",
           "object.type from the event type (the object has no \"object\")");
    is_str(str_at("object.id"), "ch_chargeid", "object.id");
    is_str(keys_at("customer"), "id", "customer: id only");
    is_str(str_at("customer.id"), "cus_0dUMWLtzCTagWs", "customer.id");
    is_int(int_at_path("amount"), 500, "amount is amount_refunded");
    is_str(str_at("currency"), "usd", "currency");
    is_str(str_at("reason_code"), "requested_by_customer",
           "reason_code: the refund's reason");
    is_str(str_at("status"), "succeeded", "status");
    is_str(keys_at("card"), "exp_month,exp_year,brand,last4", "card members");
    is_int(int_at_path("card.exp_month"), 1, "card.exp_month");
    is_int(int_at_path("card.exp_year"), 2015, "card.exp_year");
    is_str(str_at("card.brand"), "visa", "card.brand");
    is_str(str_at("card.last4"), "4242", "card.last4");
    is_int(len_at("enrich"), 1, "enrich: one entry");
    is_str(str_at("enrich.0"), "email", "enrich email: no email anywhere");
    ok(A.customer_json == NULL, "no customer_json without an email");
    is_str(A.once_key, "refund:ch_chargeid:500", "once_key with the amount");

    run_file("charge.succeeded", EVENT_DATA "charge.succeeded.data.json");
    envelope_is("charge.succeeded", "charge_succeeded");
    is_int(int_at_path("amount"), 500, "charge_succeeded: amount");
    is_int(int_at_path("card.exp_year"), 2019, "card.exp_year");
    is_str(str_at("enrich.0"), "email", "enrich email");
    ok(!has("reason"), "no reason on success");
    ok(A.once_key == NULL, "charge_succeeded: no once_key");

    /* charge.updated is not handled; its data, as charge.succeeded, is. */
    run_file("charge.updated", EVENT_DATA "charge.updated.data.json");
    is_int(S, ACTION_IGNORED, "charge.updated: ignored");
    is_str(A.reason, "event type \"charge.updated\" is not handled",
           "charge.updated: reason");
    is_str(A.id, "evt_test", "ignored: a->id set");
    is_str(A.type, "charge.updated", "ignored: a->type set");
    ok(A.name == NULL && A.record == NULL, "ignored: no action, no record");

    run_file("charge.succeeded", EVENT_DATA "charge.updated.data.json");
    is_str(str_at("object.id"), "ch_1234", "object.id");
    is_str(str_at("customer.id"), "cus_1234", "customer.id");
    is_str(str_at("customer.email"), "customer@example.org",
           "customer.email from billing_details");
    is_str(str_at("customer.name"), "Example Customer",
           "customer.name from billing_details");
    is_int(int_at_path("amount"), 24900, "amount");
    is_int(int_at_path("card.exp_month"), 1, "card.exp_month");
    is_int(int_at_path("card.exp_year"), 2025, "card.exp_year");
    is_str(str_at("card.last4"), "1234", "card.last4");
    ok(!has("card.fingerprint") && !has("card.funding"),
       "card: nothing but expiry, brand, last4");
    ok(!has("enrich"), "no enrich");
    ok(!has("previous"), "no previous for charges");
}


static void
test_checkout_completed(void)
{
    const char  *cs = "cs_test_a1UejXx8ebIdTzFolicVypUAZpOBVkoQKDbaarXoPlPVtj8"
                      "p0zujPEEhjT";

    run_file("checkout.session.completed",
             EVENT_DATA "checkout.session.completed.data.json");

    envelope_is("checkout.session.completed", "subscription_checkout");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,amount,currency,subscription,status,metadata,"
           "enrich", "checkout.session.completed: members");
    is_str(str_at("object.type"), "checkout.session", "object.type");
    is_str(str_at("object.id"), cs, "object.id");
    is_str(str_at("customer.id"), "cus_M5wW9RPFk9xNZ5", "customer.id");
    is_str(str_at("customer.email"), "chris@gorails.com",
           "customer_email null, customer_details.email taken");
    is_str(str_at("customer.name"), "Chris Oliver", "customer.name");
    is_int(int_at_path("amount"), 1900, "amount is amount_total");
    is_str(str_at("currency"), "usd", "currency");
    is_str(str_at("subscription"), "sub_1LNkeSKXBGcbgpbZ7jMqOPSi",
           "subscription");
    is_str(str_at("status"), "complete", "status");
    is_int(len_at("enrich"), 1, "enrich: one entry");
    is_str(str_at("enrich.0"), "line_items", "enrich line_items");
    ok(A.once_key == NULL, "subscription_checkout: no once_key");
    is_str(A.customer_json,
           "{\"email\":\"chris@gorails.com\",\"name\":\"Chris Oliver\"}",
           "a->customer_json");
}


static void
test_customers(void)
{
    run_file("customer.deleted", EVENT_DATA "customer.deleted.data.json");

    envelope_is("customer.deleted", "customer_deleted");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,metadata,enrich", "customer.deleted: members");
    is_str(str_at("object.type"), "customer", "object.type");
    is_str(str_at("object.id"), "cus_EGxrcooteA3WAb", "object.id");
    is_str(keys_at("customer"), "id", "customer: id (email is null)");
    is_str(str_at("customer.id"), "cus_EGxrcooteA3WAb", "customer.id");
    is_str(A.customer_id, "cus_EGxrcooteA3WAb", "a->customer_id");
    is_str(str_at("enrich.0"), "email", "enrich email");
    ok(A.once_key == NULL, "no once_key");

    run_file("customer.updated", EVENT_DATA "customer.updated.data.json");
    envelope_is("customer.updated", "customer_updated");
    is_str(str_at("customer.id"), "cus_1234", "customer.id");
    ok(!has("previous"),
       "previous_attributes changed nothing the record carries");
}


static void
subscription_common(const char *type)
{
    is_str(str_at("object.type"), "subscription", "%s: object.type", type);
    is_str(str_at("object.id"), "sub_00000000000000", "%s: object.id", type);
    is_str(keys_at("customer"), "id", "%s: customer id only", type);
    is_str(str_at("customer.id"), "cus_00000000000000", "%s: customer.id",
           type);
    is_str(str_at("currency"), "usd", "%s: currency from the price", type);
    is_str(str_at("items.0.price"), "FFBEGINNER_00000000000000",
           "%s: item price", type);
    is_str(str_at("items.0.product"), "prod_00000000000000",
           "%s: item product", type);
    ok(!has("items.0.description"), "%s: no item description", type);
    is_str(str_at("subscription"), "sub_00000000000000", "%s: subscription",
           type);
    is_int(bool_at("cancel_at_period_end"), 0, "%s: cancel_at_period_end",
           type);
    is_str(str_at("enrich.0"), "email", "%s: enrich email", type);
    ok(A.customer_json == NULL, "%s: no customer_json", type);
}


static void
test_subscriptions(void)
{
    run_file("customer.subscription.created",
             EVENT_DATA "subscription.created.data.json");

    envelope_is("customer.subscription.created", "subscription_started");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,amount,currency,items,subscription,status,"
           "cancel_at_period_end,current_period_end,trial_end,metadata,"
           "enrich", "customer.subscription.created: members");
    subscription_common("customer.subscription.created");
    is_int(int_at_path("items.0.quantity"), 2, "item quantity");
    is_int(int_at_path("items.0.amount"), 600, "item amount 300 x 2");
    is_int(int_at_path("amount"), 600, "amount: the items' sum");
    is_str(str_at("status"), "active", "status");
    is_int(int_at_path("current_period_end"), 1488987924,
           "current_period_end");
    is_int(int_at_path("trial_end"), 1467992724, "trial_end");
    is_str(A.once_key, "subscription_started:sub_00000000000000",
           "once_key");

    run_file("customer.subscription.deleted",
             EVENT_DATA "subscription.deleted.data.json");
    envelope_is("customer.subscription.deleted", "subscription_cancelled");
    subscription_common("customer.subscription.deleted");
    is_int(int_at_path("items.0.quantity"), 1, "item quantity");
    is_int(int_at_path("amount"), 300, "amount");
    is_str(str_at("status"), "canceled", "status");
    is_str(A.once_key, "subscription_cancelled:sub_00000000000000",
           "once_key");

    run_file("customer.subscription.updated",
             EVENT_DATA "subscription.updated.data.json");
    envelope_is("customer.subscription.updated", "plan_changed");
    subscription_common("customer.subscription.updated");
    is_int(int_at_path("amount"), 600, "amount");
    is_str(keys_at("previous"), "items", "previous: the old plan");
    is_int(len_at("previous.items"), 1, "previous: one item");
    is_str(str_at("previous.items.0.price"), "OLD_00000000000000",
           "previous price from previous_attributes.plan");
    is_str(str_at("previous.items.0.product"), "prod_00000000000000",
           "previous product");
    is_int(int_at_path("current_period_end"), 1488987924,
           "current_period_end from the item (basil)");
    ok(A.once_key == NULL, "plan_changed: no once_key");

    run_file("customer.subscription.trial_will_end",
             EVENT_DATA "subscription.trial_will_end.data.json");
    is_str(A.name, "trial_ending", "trial_will_end: trial_ending");
    is_str(str_at("items.0.price"), "some-plan", "item price");
    is_int(int_at_path("trial_end"), 1668971983, "trial_end");
    is_int(int_at_path("amount"), 600, "amount");
}


/* ---- objects/: one example of each resource, current API shape ---- */

static void
test_object_charge(void)
{
    char  *o = read_file(OBJECTS "resource.charge.json", NULL);

    run_object("charge.succeeded", o);
    envelope_is("charge.succeeded", "charge_succeeded");
    is_str(str_at("object.id"), "ch_1PgafuB7WZ01zgkWXYmPNZs8", "object.id");
    is_str(keys_at("customer"), "name",
           "null customer, no email: the name alone");
    is_str(str_at("customer.name"), "Jenny Rosen", "billing_details.name");
    ok(A.customer_id == NULL, "a->customer_id NULL");
    ok(A.customer_json == NULL, "a->customer_json NULL");
    ok(!has("enrich"), "no enrich email without a customer id");
    is_int(int_at_path("amount"), 100, "amount");
    is_int(int_at_path("card.exp_month"), 8, "card.exp_month");
    is_int(int_at_path("card.exp_year"), 2030, "card.exp_year");
    is_str(str_at("status"), "succeeded", "status");
    ok(!has("invoice"), "invoice null: absent");

    run_object("charge.failed", o);
    is_str(A.name, "charge_failed", "charge.failed: charge_failed");
    ok(!has("reason") && !has("reason_code"),
       "failure_message, outcome.reason null: no reason");
    ok(A.once_key == NULL, "charge_failed: no once_key");

    run_object("charge.refunded", o);
    is_str(A.name, "refund", "charge.refunded: refund");
    is_int(int_at_path("amount"), 0, "amount_refunded 0");
    is_str(A.once_key, "refund:ch_1PgafuB7WZ01zgkWXYmPNZs8:0",
           "refund once_key");

    free(o);
}


static void
test_object_checkout_session(void)
{
    const char  *cs = "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIh"
                      "d6tVY8XB1OLY";
    char        *o, *key;

    o = read_file(OBJECTS "resource.checkout.session.json", NULL);

    run_object("checkout.session.completed", o);
    envelope_is("checkout.session.completed", "checkout_pending");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,status,metadata,enrich",
           "unpaid session: members (amount_total, currency null)");
    is_str(keys_at("customer"), "email", "guest: email, no id");
    is_str(str_at("customer.email"), "example@example.com",
           "customer_details.email");
    ok(A.customer_id == NULL && A.customer_json == NULL,
       "no customer id: nothing for the customer map");
    is_str(str_at("status"), "open", "status");
    is_int(len_at("enrich"), 1, "enrich: line_items only");
    is_str(str_at("enrich.0"), "line_items", "enrich line_items");

    run_object("checkout.session.async_payment_succeeded", o);
    is_str(A.name, "purchase", "async_payment_succeeded: purchase");
    key = format("purchase:%s", cs);
    is_str(A.once_key, key, "purchase once_key");
    free(key);

    run_object("checkout.session.async_payment_failed", o);
    is_str(A.name, "payment_failed", "async_payment_failed: payment_failed");
    key = format("payment_failed:%s:0", cs);
    is_str(A.once_key, key, "payment_failed once_key, attempt 0");
    free(key);

    free(o);
}


static void
test_object_checkout_line_items(void)
{
    char  *item, *o;

    /* A session fetched with expand[]=line_items (the tool's backfill). */
    item = read_file(OBJECTS "resource.item.json", NULL);
    o = format("{\"object\":{\"id\":\"cs_1\",\"object\":\"checkout.session\","
               "\"mode\":\"payment\",\"payment_status\":\"paid\","
               "\"amount_total\":1000,\"currency\":\"usd\","
               "\"customer_details\":{\"email\":\"a@example.org\"},"
               "\"line_items\":{\"object\":\"list\",\"data\":[%s],"
               "\"has_more\":false}}}", item);

    run_event("checkout.session.completed", o);
    is_str(A.name, "purchase", "paid payment session: purchase");
    is_int(len_at("items"), 1, "line_items.data: one item");
    is_str(str_at("items.0.price"), "price_1PgafmB7WZ01zgkW02Hf9z6c",
           "item price");
    is_str(str_at("items.0.product"), "prod_QXg1hqf4jFNsqG", "item product");
    is_int(int_at_path("items.0.quantity"), 1, "item quantity");
    is_int(int_at_path("items.0.amount"), 0, "item amount_total 0");
    is_str(str_at("items.0.description"), "T-shirt", "item description");
    ok(!has("enrich"), "line items present: nothing to enrich");
    is_str(A.once_key, "purchase:cs_1", "once_key");

    free(o);
    free(item);
}


static void
test_object_customer(void)
{
    char  *o;

    o = read_file(OBJECTS "resource.customer.json", NULL);
    run_object("customer.created", o);
    envelope_is("customer.created", "customer_created");
    is_str(str_at("object.id"), "cus_QXg1o8vcGmoR32", "object.id");
    is_str(keys_at("customer"), "id", "email and name null");
    is_str(str_at("enrich.0"), "email", "enrich email");
    ok(!has("currency"), "no currency for customers");
    free(o);

    o = read_file(OBJECTS "resource.deleted_customer.json", NULL);
    run_object("customer.deleted", o);
    envelope_is("customer.deleted", "customer_deleted");
    is_str(keys_at(""), "v,id,type,action,created,livemode,api_version,"
           "object,customer,enrich", "deleted customer: members");
    is_str(str_at("customer.id"), "cus_QXg1o8vcGmoR32", "customer.id");
    free(o);
}


static void
test_object_invoice(void)
{
    char  *o;

    o = read_file(OBJECTS "resource.invoice.json", NULL);

    run_object("invoice.paid", o);
    envelope_is("invoice.paid", "invoice_paid");
    is_str(str_at("object.id"), "in_1Pgc6tB7WZ01zgkWu9fdqL6I", "object.id");
    is_int(int_at_path("amount"), 0, "amount_paid 0 is kept");
    is_str(str_at("billing_reason"), "manual", "billing_reason");
    is_str(keys_at("items.0"), "quantity,amount,description",
           "pricing without price_details: no price, no product");
    is_int(int_at_path("items.0.amount"), 1000, "item amount");
    is_str(str_at("subscription"), "subscription",
           "subscription from parent.subscription_details");
    is_str(str_at("status"), "draft", "status");
    is_str(str_at("enrich.0"), "email", "customer_email null: enrich");
    is_str(A.once_key, "invoice_paid:in_1Pgc6tB7WZ01zgkWu9fdqL6I",
           "invoice_paid once_key");

    run_object("invoice.finalized", o);
    is_str(A.name, "invoice_issued", "invoice.finalized: invoice_issued");
    is_int(int_at_path("amount"), 1000, "amount_due");

    run_object("invoice.created", o);
    is_str(A.name, "invoice_created", "invoice.created");
    run_object("invoice.updated", o);
    is_str(A.name, "invoice_updated", "invoice.updated");

    free(o);
}


static void
test_object_invoice_line(void)
{
    char  *line, *o;

    line = read_file(OBJECTS "resource.line_item.json", NULL);
    o = format("{\"object\":{\"id\":\"in_2\",\"object\":\"invoice\","
               "\"customer\":\"cus_2\",\"customer_email\":\"b@example.org\","
               "\"billing_reason\":\"subscription_create\","
               "\"attempt_count\":1,\"amount_paid\":1000,"
               "\"lines\":{\"data\":[%s],\"has_more\":false}}}", line);

    run_event("invoice.paid", o);
    is_str(A.name, "purchase", "subscription_create, first attempt: purchase");
    is_str(A.once_key, "purchase:in_2", "purchase once_key");
    is_int(int_at_path("items.0.amount"), 1000, "line amount");
    is_str(str_at("items.0.description"),
           "My First Invoice Item (created for API docs)", "description");
    ok(!has("items_truncated"), "has_more false: not truncated");

    free(o);
    free(line);
}


static void
test_object_payment_intent(void)
{
    char  *o;

    o = read_file(OBJECTS "resource.payment_intent.json", NULL);

    run_object("payment_intent.succeeded", o);
    envelope_is("payment_intent.succeeded", "payment_succeeded");
    is_str(str_at("object.type"), "payment_intent", "object.type");
    is_str(str_at("object.id"), "pi_1PgafyB7WZ01zgkWSjxsAJo3", "object.id");
    is_int(int_at_path("amount"), 0, "amount_received 0");
    ok(!has("customer"), "no customer, no email: no customer member");
    is_str(str_at("status"), "requires_payment_method", "status");
    ok(A.once_key == NULL, "no once_key");

    run_object("payment_intent.payment_failed", o);
    is_str(A.name, "charge_failed", "payment_intent.payment_failed");
    is_int(int_at_path("amount"), 1099, "amount");
    ok(!has("reason"), "last_payment_error without message: no reason");

    free(o);
}


static void
test_object_subscription(void)
{
    char  *o, *data;

    o = read_file(OBJECTS "resource.subscription.json", NULL);

    run_object("customer.subscription.created", o);
    envelope_is("customer.subscription.created", "subscription_started");
    is_str(str_at("object.id"), "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw", "object.id");
    is_str(str_at("customer.id"), "cus_QXg1o8vcGmoR32", "customer.id");
    is_str(str_at("items.0.price"), "price_1PgafmB7WZ01zgkW6dKueIc5",
           "item price");
    is_str(str_at("items.0.product"), "prod_QXg1hqf4jFNsqG", "item product");
    is_int(int_at_path("items.0.amount"), 2000, "unit_amount x quantity");
    is_int(int_at_path("amount"), 2000, "amount");
    is_str(str_at("currency"), "usd", "top-level currency");
    is_int(bool_at("cancel_at_period_end"), 1, "cancel_at_period_end");
    is_int(int_at_path("cancel_at"), 1234567890, "cancel_at");
    is_int(int_at_path("current_period_end"), 976287773,
           "current_period_end from the item");
    is_int(int_at_path("trial_end"), 1234567890, "trial_end");
    ok(!has("reason_code"), "cancellation_details.reason null");

    data = format("{\"object\":%s,\"previous_attributes\":"
                  "{\"cancel_at_period_end\":false}}", o);
    run_event("customer.subscription.updated", data);
    is_str(A.name, "subscription_cancel_scheduled",
           "cancel_at_period_end false -> true: cancel scheduled");
    is_int(bool_at("previous.cancel_at_period_end"), 0,
           "previous.cancel_at_period_end");
    free(data);

    data = format("{\"object\":%s,\"previous_attributes\":"
                  "{\"cancel_at\":null}}", o);
    run_event("customer.subscription.updated", data);
    is_str(A.name, "subscription_cancel_scheduled", "cancel_at newly set");
    free(data);

    data = format("{\"object\":%s,\"previous_attributes\":"
                  "{\"status\":\"trialing\"}}", o);
    run_event("customer.subscription.updated", data);
    is_str(A.name, "subscription_updated", "status change: updated");
    is_str(str_at("previous.status"), "trialing", "previous.status");
    free(data);

    data = format("{\"object\":%s,\"previous_attributes\":{\"items\":{"
                  "\"data\":[{\"id\":\"si_1\",\"price\":{\"id\":\"price_old\","
                  "\"product\":\"prod_old\",\"unit_amount\":500},"
                  "\"quantity\":3}]},\"cancel_at_period_end\":false}}", o);
    run_event("customer.subscription.updated", data);
    is_str(A.name, "plan_changed", "items changed: plan_changed first");
    is_str(str_at("previous.items.0.price"), "price_old", "previous price");
    is_int(int_at_path("previous.items.0.amount"), 1500, "previous amount");
    free(data);

    run_object("customer.subscription.paused", o);
    is_str(A.name, "subscription_paused", "paused");
    run_object("customer.subscription.resumed", o);
    is_str(A.name, "subscription_resumed", "resumed");
    run_object("customer.subscription.updated", o);
    is_str(A.name, "subscription_updated", "no previous_attributes: updated");

    free(o);
}


static void
test_object_event(void)
{
    char  *event;

    event = read_file(OBJECTS "resource.event.json", NULL);
    run(event);
    free(event);

    is_int(S, ACTION_IGNORED, "resource.event (plan.created): ignored");
    is_str(A.id, "evt_1Pgc76B7WZ01zgkWwyRHS12y", "a->id");
    is_str(A.type, "plan.created", "a->type");
    is_str(A.reason, "event type \"plan.created\" is not handled", "reason");
}


static void
test_objects_not_handled(void)
{
    static const char  *other[][2] = {
        { "invoice_payment.paid", "resource.invoice_payment.json" },
        { "price.created", "resource.price.json" },
        { "product.created", "resource.product.json" },
        { "refund.created", "resource.refund.json" },
        { "checkout.session.expired", "resource.checkout.session.json" },
        { "customer.subscription.pending_update_applied",
          "resource.subscription.json" }
    };
    char    *path, *o;
    size_t   i;

    for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        path = format(OBJECTS "%s", other[i][1]);
        o = read_file(path, NULL);
        run_object(other[i][0], o);
        is_int(S, ACTION_IGNORED, "%s: ignored", other[i][0]);
        is_str(A.type, other[i][0], "%s: a->type kept", other[i][0]);
        free(o);
        free(path);
    }
}


/* ---- the catalogue, one row at a time, on minimal objects ---- */

static void
test_catalogue(void)
{
    static const char  *rows[][3] = {
        { "checkout.session.completed",
          "{\"id\":\"cs_1\",\"mode\":\"payment\",\"payment_status\":\"paid\"}",
          "purchase" },
        { "checkout.session.completed",
          "{\"id\":\"cs_1\",\"mode\":\"payment\","
          "\"payment_status\":\"no_payment_required\"}", "purchase" },
        { "checkout.session.completed",
          "{\"id\":\"cs_1\",\"mode\":\"payment\","
          "\"payment_status\":\"unpaid\"}", "checkout_pending" },
        { "checkout.session.completed",
          "{\"id\":\"cs_1\",\"mode\":\"subscription\","
          "\"payment_status\":\"unpaid\"}", "subscription_checkout" },
        { "checkout.session.async_payment_succeeded",
          "{\"id\":\"cs_1\",\"mode\":\"subscription\"}",
          "subscription_checkout" },
        { "invoice.paid", "{\"id\":\"in_1\",\"attempt_count\":2,"
          "\"billing_reason\":\"subscription_create\"}",
          "payment_recovered" },
        { "invoice.payment_succeeded", "{\"id\":\"in_1\",\"attempt_count\":1,"
          "\"billing_reason\":\"subscription_create\"}", "purchase" },
        { "invoice.paid", "{\"id\":\"in_1\","
          "\"billing_reason\":\"subscription_cycle\"}", "renewal" },
        { "invoice.paid", "{\"id\":\"in_1\","
          "\"billing_reason\":\"subscription_update\"}", "invoice_paid" },
        { "invoice.paid", "{\"id\":\"in_1\"}", "invoice_paid" },
        { "invoice.payment_failed", "{\"id\":\"in_1\"}", "payment_failed" },
        { "invoice.finalized", "{\"id\":\"in_1\"}", "invoice_issued" },
        { "invoice.upcoming", "{}", "invoice_upcoming" },
        { "invoice.created", "{\"id\":\"in_1\"}", "invoice_created" },
        { "invoice.updated", "{\"id\":\"in_1\"}", "invoice_updated" },
        { "charge.succeeded", "{\"id\":\"ch_1\"}", "charge_succeeded" },
        { "charge.failed", "{\"id\":\"ch_1\"}", "charge_failed" },
        { "charge.refunded", "{\"id\":\"ch_1\"}", "refund" },
        { "payment_intent.succeeded", "{\"id\":\"pi_1\"}",
          "payment_succeeded" },
        { "payment_intent.payment_failed", "{\"id\":\"pi_1\"}",
          "charge_failed" },
        { "customer.created", "{\"id\":\"cus_1\"}", "customer_created" },
        { "customer.updated", "{\"id\":\"cus_1\"}", "customer_updated" },
        { "customer.deleted", "{\"id\":\"cus_1\"}", "customer_deleted" },
        { "customer.subscription.created", "{\"id\":\"sub_1\"}",
          "subscription_started" },
        { "customer.subscription.updated", "{\"id\":\"sub_1\"}",
          "subscription_updated" },
        { "customer.subscription.deleted", "{\"id\":\"sub_1\"}",
          "subscription_cancelled" },
        { "customer.subscription.paused", "{\"id\":\"sub_1\"}",
          "subscription_paused" },
        { "customer.subscription.resumed", "{\"id\":\"sub_1\"}",
          "subscription_resumed" },
        { "customer.subscription.trial_will_end", "{\"id\":\"sub_1\"}",
          "trial_ending" },
        { "invoice.payment_action_required", "{\"id\":\"in_1\"}",
          "payment_action_required" }
    };
    static const char  *once[][2] = {
        { "purchase", "purchase:in_1" },
        { "renewal", "renewal:in_1" },
        { "payment_recovered", "payment_recovered:in_1" },
        { "invoice_paid", "invoice_paid:in_1" },
        { "payment_failed", "payment_failed:in_1:0" },
        { "refund", "refund:ch_1:0" },
        { "subscription_started", "subscription_started:sub_1" },
        { "subscription_cancelled", "subscription_cancelled:sub_1" }
    };
    const char  *want;
    size_t       i, k;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        run_object(rows[i][0], rows[i][1]);
        is_str(A.name, rows[i][2], "%s %s: %s", rows[i][0], rows[i][1],
               rows[i][2]);

        want = NULL;
        for (k = 0; k < sizeof(once) / sizeof(once[0]); k++) {
            if (strcmp(once[k][0], rows[i][2]) == 0
                && strcmp(rows[i][0], "checkout.session.completed") != 0)
            {
                want = once[k][1];
            }
        }

        if (strncmp(rows[i][0], "checkout.", 9) != 0) {
            is_str(A.once_key, want, "%s: once_key", rows[i][2]);
        }
    }

    /* checkout: setup mode and no mode are not actions */
    run_object("checkout.session.completed",
               "{\"id\":\"cs_1\",\"mode\":\"setup\","
               "\"payment_status\":\"no_payment_required\"}");
    is_int(S, ACTION_IGNORED, "setup-mode session: ignored");
    is_str(A.reason, "checkout session in setup mode is not handled",
           "setup-mode session: reason");

    run_object("checkout.session.completed", "{\"id\":\"cs_1\"}");
    is_int(S, ACTION_IGNORED, "session without mode: ignored");
    is_str(A.reason, "checkout session has no known mode", "reason");
}


int
main(void)
{
    test_invoice_payment_failed();
    test_invoice_pre_basil();
    test_invoice_upcoming();
    test_invoice_payment_action_required();
    test_charges();
    test_checkout_completed();
    test_customers();
    test_subscriptions();

    test_object_charge();
    test_object_checkout_session();
    test_object_checkout_line_items();
    test_object_customer();
    test_object_invoice();
    test_object_invoice_line();
    test_object_payment_intent();
    test_object_subscription();
    test_object_event();
    test_objects_not_handled();

    test_catalogue();

    reset();

    return tap_done();
}
