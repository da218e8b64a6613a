/*
 * event_gen.c - unit tests for the events "stripe-sync send" makes
 * (src/event_gen.c): every generated type goes through the module's own
 * normalizer and comes out as the action docs/events.md promises, with
 * the email, price and amount asked for; files become events.
 */

#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "event_gen.h"
#include "json_tree.h"
#include "tap.h"


typedef struct {
    const char  *type;
    const char  *action;
    int          has_email;     /* the payload carries the email */
    int          has_price;     /* the record has items[0].price */
} expect;

static const expect  expects[] = {
    { "checkout.session.completed", "purchase", 1, 0 },
    { "checkout.session.async_payment_succeeded", "purchase", 1, 0 },
    { "checkout.session.async_payment_failed", "payment_failed", 1, 0 },
    { "invoice.paid", "purchase", 1, 1 },
    { "invoice.payment_succeeded", "purchase", 1, 1 },
    { "invoice.payment_failed", "payment_failed", 1, 1 },
    { "invoice.payment_action_required", "payment_action_required", 1, 1 },
    { "invoice.finalized", "invoice_issued", 1, 1 },
    { "invoice.created", "invoice_created", 1, 1 },
    { "invoice.updated", "invoice_updated", 1, 1 },
    { "charge.succeeded", "charge_succeeded", 1, 0 },
    { "charge.failed", "charge_failed", 1, 0 },
    { "charge.refunded", "refund", 1, 0 },
    { "payment_intent.succeeded", "payment_succeeded", 1, 0 },
    { "payment_intent.payment_failed", "charge_failed", 1, 0 },
    { "customer.created", "customer_created", 1, 0 },
    { "customer.updated", "customer_updated", 1, 0 },
    { "customer.deleted", "customer_deleted", 1, 0 },
    { "customer.subscription.created", "subscription_started", 0, 1 },
    { "customer.subscription.updated", "subscription_cancel_scheduled", 0,
      1 },
    { "customer.subscription.deleted", "subscription_cancelled", 0, 1 },
    { "customer.subscription.paused", "subscription_paused", 0, 1 },
    { "customer.subscription.resumed", "subscription_resumed", 0, 1 },
    { "customer.subscription.trial_will_end", "trial_ending", 0, 1 },
    { NULL, NULL, 0, 0 }
};


static const char *
str_at(const json_node *n)
{
    return n != NULL && n->type == JSON_STRING ? n->u.str.s : NULL;
}


static long long
int_at(const json_node *n)
{
    return n != NULL && n->type == JSON_INT ? n->u.i : -1;
}


/* normalizes body; returns the action's name (static) or NULL */
static int
normalize(const char *body, size_t len, action *a)
{
    char  *copy;
    int    st;

    copy = malloc(len + 1);
    memcpy(copy, body, len);
    copy[len] = '\0';
    st = action_from_event(copy, len, a);
    free(copy);

    return st;
}


static void
test_types(void)
{
    const expect  *e;
    event_spec     s;
    json_arena     ar;
    action         a;
    const json_node  *rec;
    char          *body, err[256], reason[256];
    size_t         len, ntypes;
    int            st;

    for (ntypes = 0; event_gen_types()[ntypes] != NULL; ntypes++) {
        /* count */
    }
    is_int(ntypes, sizeof(expects) / sizeof(expects[0]) - 1,
           "every generated type is tested");

    for (e = expects; e->type != NULL; e++) {
        ok(event_gen_supported(e->type), "%s is supported", e->type);

        event_spec_init(&s);
        s.type = e->type;
        s.email = "ada@example.org";
        s.name = "Ada Lovelace";
        s.price = "price_COURSE";
        s.product = "prod_COURSE";
        s.customer = "cus_ADA";
        s.amount = 4900;

        body = event_gen_build(&s, "evt_1TEST", 1745437580, &len, err,
                               sizeof(err));
        if (!ok(body != NULL, "%s: built", e->type)) {
            diag("%s", err);
            continue;
        }

        ok(strlen(body) == len, "%s: length", e->type);

        st = normalize(body, len, &a);
        is_int(st, ACTION_OK, "%s: the normalizer takes it (%s)", e->type,
               a.reason);
        is_str(a.name, e->action, "%s: action %s", e->type, e->action);
        is_str(a.id, "evt_1TEST", "%s: event id", e->type);
        is_str(a.type, e->type, "%s: type", e->type);
        is_str(a.customer_id, "cus_ADA", "%s: customer", e->type);
        is_int(a.livemode, 0, "%s: test mode", e->type);

        ar.head = NULL;
        ar.chunk = 16384;
        rec = a.record ? json_parse(&ar, a.record, a.record_len, reason,
                                    sizeof(reason)) : NULL;
        ok(rec != NULL, "%s: the record is JSON", e->type);

        is_int(int_at(json_get(rec, "created")), 1745437580,
               "%s: created", e->type);
        is_str(str_at(json_at(rec, "api_version", NULL)),
               EVENT_GEN_API_VERSION, "%s: basil", e->type);

        if (e->has_email) {
            is_str(str_at(json_at(rec, "customer", "email", NULL)),
                   "ada@example.org", "%s: email", e->type);
        } else {
            ok(json_at(rec, "customer", "email", NULL) == NULL
               && a.customer_json == NULL,
               "%s: no email in the payload (as Stripe: the subscription "
               "carries only the customer id)", e->type);
        }

        if (e->has_price) {
            is_str(str_at(json_at(json_first(json_get(rec, "items")),
                                  "price", NULL)),
                   "price_COURSE", "%s: price", e->type);
            is_str(str_at(json_at(json_first(json_get(rec, "items")),
                                  "product", NULL)),
                   "prod_COURSE", "%s: product", e->type);
        }

        if (strncmp(e->type, "customer.", 9) != 0
            || strncmp(e->type, "customer.subscription.", 22) == 0)
        {
            is_int(int_at(json_get(rec, "amount")), 4900,
                   "%s: amount", e->type);
            is_str(str_at(json_get(rec, "currency")), "usd",
                   "%s: currency", e->type);
        }

        json_arena_free(ar.head);
        action_free(&a);
        free(body);
    }
}


static void
test_variants(void)
{
    event_spec   s;
    action       a;
    char        *body, err[256];
    size_t       len;

    event_spec_init(&s);
    s.type = "invoice.paid";
    s.billing_reason = "subscription_cycle";
    body = event_gen_build(&s, "evt_1R", 1745437580, &len, err, sizeof(err));
    normalize(body, len, &a);
    is_str(a.name, "renewal", "invoice.paid, subscription_cycle: renewal");
    action_free(&a);
    free(body);

    s.attempt_count = 3;
    body = event_gen_build(&s, "evt_1R", 1745437580, &len, err, sizeof(err));
    normalize(body, len, &a);
    is_str(a.name, "payment_recovered",
           "invoice.paid, attempt_count 3: payment_recovered");
    action_free(&a);
    free(body);

    event_spec_init(&s);
    s.type = "customer.subscription.updated";
    s.previous_price = "price_OLD";
    body = event_gen_build(&s, "evt_1P", 1745437580, &len, err, sizeof(err));
    normalize(body, len, &a);
    is_str(a.name, "plan_changed", "--previous-price: plan_changed");
    ok(a.record && strstr(a.record, "\"previous\":{\"items\":[{\"price\":"
                          "\"price_OLD\"") != NULL,
       "the previous price is in the record");
    action_free(&a);
    free(body);

    event_spec_init(&s);
    s.type = "checkout.session.completed";
    s.mode = "subscription";
    s.livemode = 1;
    body = event_gen_build(&s, "evt_1S", 1745437580, &len, err, sizeof(err));
    normalize(body, len, &a);
    is_str(a.name, "subscription_checkout",
           "Checkout in subscription mode: subscription_checkout");
    is_int(a.livemode, 1, "--livemode");
    ok(strstr(body, "\"id\":\"cs_live_") != NULL, "a live session id");
    action_free(&a);
    free(body);

    event_spec_init(&s);
    s.type = "charge.refunded";
    s.object_id = "ch_FIXED";
    s.amount = 1234;
    body = event_gen_build(&s, "evt_1C", 1745437580, &len, err, sizeof(err));
    normalize(body, len, &a);
    is_str(a.once_key, "refund:ch_FIXED:1234", "--object-id: the fact key");
    action_free(&a);
    free(body);

    /* defaults: fresh customer per event, the documented email */
    event_spec_init(&s);
    s.type = "invoice.paid";
    body = event_gen_build(&s, "evt_1D", 1745437580, &len, err, sizeof(err));
    normalize(body, len, &a);
    ok(a.customer_id && strncmp(a.customer_id, "cus_", 4) == 0
       && strlen(a.customer_id) == 18, "a fresh customer id: %s",
       a.customer_id);
    ok(a.record && strstr(a.record, "jenny.rosen@example.com") != NULL,
       "the default email");
    ok(a.record && strstr(a.record, "\"price\":\"price_example\"") != NULL,
       "the default price");
    ok(a.record && strstr(a.record, "\"amount\":2900") != NULL,
       "the default amount");
    action_free(&a);
    free(body);

    event_spec_init(&s);
    s.type = "invoice.upcoming";
    body = event_gen_build(&s, "evt_1U", 1, &len, err, sizeof(err));
    ok(body == NULL && strstr(err, "invoice.upcoming") != NULL,
       "an unknown type is refused: %s", err);

    event_spec_init(&s);
    s.type = "checkout.session.completed";
    s.mode = "setup";
    body = event_gen_build(&s, "evt_1U", 1, &len, err, sizeof(err));
    ok(body == NULL, "Checkout mode setup is refused: %s", err);
}


static void
test_ids(void)
{
    char  a[64], b[64];
    int   i, alnum;

    ok(event_gen_event_id(a, sizeof(a)) == 0, "event id");
    ok(strncmp(a, "evt_1", 5) == 0 && strlen(a) == 28, "evt_1 + 23: %s", a);
    event_gen_event_id(b, sizeof(b));
    ok(strcmp(a, b) != 0, "two ids differ");

    alnum = 1;
    for (i = 5; a[i]; i++) {
        if (!((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'z')
              || (a[i] >= 'A' && a[i] <= 'Z')))
        {
            alnum = 0;
        }
    }
    ok(alnum, "letters and digits only");

    ok(event_gen_random_id("cus_", 14, a, 18) == -1, "too small a buffer");
    ok(event_gen_random_id("cus_", 14, a, 19) == 0 && strlen(a) == 18,
       "exactly enough");
}


static char *
body_of(event_template *t, const char *id)
{
    size_t  len;

    return event_template_body(t, id, &len);
}


static void
test_templates(void)
{
    event_template  t;
    action          a;
    char           *b, err[256];
    const char     *s;

    /* a complete event: as it is, or with a new id */
    s = "{\"id\":\"evt_FILE\",\"object\":\"event\",\"created\":5,"
        "\"type\":\"customer.created\",\"data\":{\"object\":"
        "{\"id\":\"cus_F\",\"object\":\"customer\",\"email\":\"f@x.org\"}}}\n";
    ok(event_template_load(&t, s, strlen(s), "x.json", NULL, 99, NULL, -1,
                           err, sizeof(err)) == 0, "complete event: %s",
       err);
    is_str(t.id, "evt_FILE", "its id");
    is_str(t.type, "customer.created", "its type");
    b = body_of(&t, NULL);
    is_str(b, s, "sent byte for byte");
    free(b);
    b = body_of(&t, "evt_NEW");
    is_str(b, "{\"id\":\"evt_NEW\",\"object\":\"event\",\"created\":5,"
           "\"type\":\"customer.created\",\"data\":{\"object\":{\"id\":"
           "\"cus_F\",\"object\":\"customer\",\"email\":\"f@x.org\"}}}",
           "a new id, the rest kept");
    free(b);
    event_template_free(&t);

    /* an event without id and created */
    s = "{\"type\":\"customer.created\",\"data\":{\"object\":{\"id\":\"c\"}}}";
    ok(event_template_load(&t, s, strlen(s), NULL, NULL, 1234, NULL, -1,
                           err, sizeof(err)) == 0, "event without an id");
    is_str(t.id, "", "no id of its own");
    ok(body_of(&t, NULL) == NULL, "so none to send without one");
    b = body_of(&t, "evt_G");
    is_str(b, "{\"id\":\"evt_G\",\"created\":1234,\"type\":"
           "\"customer.created\",\"data\":{\"object\":{\"id\":\"c\"}}}",
           "id and created added");
    free(b);
    event_template_free(&t);

    ok(event_template_load(&t, s, strlen(s), NULL, "invoice.paid", 1, NULL,
                           -1, err, sizeof(err)) == -1
       && strstr(err, "customer.created") != NULL,
       "--type against the file's type: %s", err);

    /* event data, type from the fixture's name */
    s = "{\"object\":{\"id\":\"sub_1\",\"object\":\"subscription\","
        "\"customer\":\"cus_1\",\"status\":\"canceled\",\"livemode\":true},"
        "\"previous_attributes\":{\"status\":\"active\"}}";
    ok(event_template_load(&t, s, strlen(s),
                           "t/fixtures/stripe/event-data/subscription."
                           "deleted.data.json", NULL, 77, NULL, -1, err,
                           sizeof(err)) == 0, "event data: %s", err);
    is_str(t.type, "customer.subscription.deleted",
           "type from the file name, subscription.* read as "
           "customer.subscription.*");
    b = body_of(&t, "evt_D");
    ok(normalize(b, strlen(b), &a) == ACTION_OK, "normalized");
    is_str(a.name, "subscription_cancelled", "the action");
    is_int(a.livemode, 1, "livemode from the object");
    action_free(&a);
    ok(strstr(b, "\"previous_attributes\":{\"status\":\"active\"}") != NULL,
       "previous_attributes kept in data");
    ok(strstr(b, "\"api_version\":\"" EVENT_GEN_API_VERSION "\"") != NULL,
       "the default API version");
    free(b);
    event_template_free(&t);

    /* a bare object */
    s = "{\"id\":\"cus_B\",\"object\":\"customer\",\"email\":\"b@x.org\"}";
    ok(event_template_load(&t, s, strlen(s), "resource.customer.json", NULL,
                           77, "2024-06-20", 0, err, sizeof(err)) == -1,
       "a bare object with no type: %s", err);
    ok(strstr(err, "--type") != NULL, "the error says --type");
    ok(event_template_load(&t, s, strlen(s), "resource.customer.json",
                           "customer.updated", 77, "2024-06-20", 0, err,
                           sizeof(err)) == 0, "with --type");
    b = body_of(&t, "evt_B");
    is_str(b, "{\"id\":\"evt_B\",\"object\":\"event\",\"api_version\":"
           "\"2024-06-20\",\"created\":77,\"data\":{\"object\":{\"id\":"
           "\"cus_B\",\"object\":\"customer\",\"email\":\"b@x.org\"}},"
           "\"livemode\":false,\"pending_webhooks\":1,\"request\":{\"id\":"
           "null,\"idempotency_key\":null},\"type\":\"customer.updated\"}",
           "wrapped");
    free(b);
    event_template_free(&t);

    /* numbers as written */
    s = "{\"id\":\"evt_N\",\"type\":\"x\",\"data\":{\"object\":{\"f\":1.50,"
        "\"e\":1e3}}}";
    ok(event_template_load(&t, s, strlen(s), NULL, NULL, 1, NULL, -1, err,
                           sizeof(err)) == 0, "numbers");
    b = body_of(&t, "evt_M");
    ok(b && strstr(b, "\"f\":1.50,\"e\":1e3") != NULL, "kept as written: %s",
       b);
    free(b);
    event_template_free(&t);

    s = "{\"id\":";
    ok(event_template_load(&t, s, strlen(s), NULL, NULL, 1, NULL, -1, err,
                           sizeof(err)) == -1
       && strncmp(err, "not JSON", 8) == 0, "not JSON: %s", err);
    s = "[1]";
    ok(event_template_load(&t, s, strlen(s), NULL, NULL, 1, NULL, -1, err,
                           sizeof(err)) == -1, "not an object: %s", err);
    ok(event_template_load(&t, "{\"a\":\"\0\"}", 9, NULL, NULL, 1, NULL, -1,
                           err, sizeof(err)) == -1, "a NUL byte: %s", err);
    s = "{\"id\":7,\"type\":\"x\",\"data\":{}}";
    ok(event_template_load(&t, s, strlen(s), NULL, NULL, 1, NULL, -1, err,
                           sizeof(err)) == -1, "a numeric id: %s", err);
}


int
main(void)
{
    test_types();
    test_variants();
    test_ids();
    test_templates();

    return tap_done();
}
