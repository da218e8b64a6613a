/*
 * Unit tests of rules.c and plan.c: each preset on real records (Stripe
 * fixtures through action_from_event()), every match condition, templates,
 * what enrichment a job needs, and how a plan is put together (upsert
 * first, rule order, operation order, de-duplication), then plan_to_json().
 *
 * User rules are written in the config syntax and loaded with
 * config_load(), as the consumer would.
 */

#include <stdlib.h>
#include <unistd.h>

#include "action_test.h"
#include "config.h"
#include "job.h"
#include "plan.h"
#include "rules.h"

#define EVENT_DATA  FIXTURES "/event-data/"

static job  J;                  /* the job under test */


/* ---- building jobs ---- */

/* text with the first "from" replaced by "to" (malloc'd) */
static char *
replace(char *text, const char *from, const char *to)
{
    char  *p, *out;

    if (from == NULL) {
        return text;
    }

    p = strstr(text, from);
    if (p == NULL) {
        diag("fixture has no %s", from);
        exit(1);
    }

    out = format("%.*s%s%s", (int) (p - text), text, to, p + strlen(from));
    free(text);
    return out;
}


/*
 * J = the record a Stripe event of this type makes from a fixture's data,
 * with up to two edits to the data first.
 */
static void
from_fixture(const char *type, const char *file, int live, const char *f1,
    const char *t1, const char *f2, const char *t2)
{
    char  *data, *body, err[256];

    data = read_file(file, NULL);
    data = replace(data, f1, t1);
    data = replace(data, f2, t2);

    body = format("{\"id\":\"evt_rules\",\"object\":\"event\","
                  "\"api_version\":\"2025-03-31.basil\","
                  "\"created\":1745433906,\"livemode\":%s,"
                  "\"type\":\"%s\",\"data\":%s}",
                  live ? "true" : "false", type, data);

    if (run(body) != ACTION_OK) {
        diag("%s: %s", type, A.reason);
        exit(1);
    }

    free(body);
    free(data);

    job_free(&J);
    if (job_parse(&J, A.record, A.record_len, err, sizeof(err)) != 0) {
        diag("record does not parse: %s", err);
        exit(1);
    }
}


/* J from a record written out */
static void
from_record(const char *record)
{
    char  err[256];

    job_free(&J);
    if (job_parse(&J, record, strlen(record), err, sizeof(err)) != 0) {
        diag("record does not parse: %s", err);
        exit(1);
    }
}


/* Checkout in payment mode, paid: a purchase (line items to fetch) */
#define CHECKOUT_PURCHASE(live)                                               \
    from_fixture("checkout.session.completed",                                \
                 EVENT_DATA "checkout.session.completed.data.json", live,     \
                 "\"mode\": \"subscription\"", "\"mode\": \"payment\"",       \
                 NULL, NULL)

/* the basil invoice fixture, as another invoice event */
#define INVOICE(type, live, f1, t1, f2, t2)                                   \
    from_fixture(type, EVENT_DATA "invoice.payment_failed.data.json", live,   \
                 f1, t1, f2, t2)

#define RENEWAL(live)                                                         \
    INVOICE("invoice.paid", live, "\"amount_paid\": 0",                       \
            "\"amount_paid\": 24900", NULL, NULL)

#define FIRST_INVOICE(live)                                                   \
    INVOICE("invoice.paid", live, "\"amount_paid\": 0",                       \
            "\"amount_paid\": 24900", "\"billing_reason\": "                  \
            "\"subscription_cycle\"", "\"billing_reason\": "                  \
            "\"subscription_create\"")


/* ---- configs ---- */

static char  warnings[4096];

static void
collect_warning(const char *msg)
{
    size_t  n = strlen(warnings);

    snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
}


/* loads config text; exits on an error: these configs are all valid */
static void
load(ss_config *c, const char *text)
{
    char   path[] = "/tmp/stripe-sync-rules-XXXXXX";
    char   err[CONFIG_ERR_MAX];
    FILE  *f;
    int    fd;

    fd = mkstemp(path);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);

    warnings[0] = '\0';
    if (config_load(c, path, err, sizeof(err), collect_warning) != 0) {
        diag("config does not load: %s", err);
        exit(1);
    }

    unlink(path);
}


static void
preset(ss_config *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    c->preset = (char *) name;
}


/* ---- reading plans ---- */

/*
 * A plan as one line: "upsert{k=v} | tag:X | track:M{k=v}", "(empty)".
 * The rule index of each op is appended as "@N" when with_rules is set.
 */
static const char *
describe(const plan *p, int with_rules)
{
    static char  buf[8192];
    size_t       i, k, n;

    if (p->nops == 0) {
        return "(empty)";
    }

    n = 0;
    buf[0] = '\0';

    for (i = 0; i < p->nops && n < sizeof(buf); i++) {
        n += snprintf(buf + n, sizeof(buf) - n, "%s%s%s%s", i ? " | " : "",
                      op_kind_name(p->ops[i].kind),
                      p->ops[i].name ? ":" : "",
                      p->ops[i].name ? p->ops[i].name : "");

        for (k = 0; k < p->ops[i].nfields && n < sizeof(buf); k++) {
            n += snprintf(buf + n, sizeof(buf) - n, "%s%s=%s",
                          k ? "," : "{", p->ops[i].fields[k].key,
                          p->ops[i].fields[k].value);
        }

        if (p->ops[i].nfields > 0 && n < sizeof(buf)) {
            n += snprintf(buf + n, sizeof(buf) - n, "}");
        }

        if (with_rules && n < sizeof(buf)) {
            n += snprintf(buf + n, sizeof(buf) - n, "@%d", p->ops[i].rule);
        }
    }

    return buf;
}


static const char *
plan_of(const ss_config *c, int with_rules)
{
    static char  out[8192];
    plan         p;
    char         err[256];

    if (rules_plan(c, &J, &p, err, sizeof(err)) != 0) {
        snprintf(out, sizeof(out), "error: %s", err);
        return out;
    }

    snprintf(out, sizeof(out), "%s", describe(&p, with_rules));
    plan_free(&p);
    return out;
}

#define plan_is(c, want, ...)   is_str(plan_of((c), 0), (want), __VA_ARGS__)
#define plan_at(c, want, ...)   is_str(plan_of((c), 1), (want), __VA_ARGS__)


/* ---- presets ---- */

static void
test_preset_lookup(void)
{
    size_t  n;

    n = 99;
    ok(preset_rules("nope", &n) == NULL && n == 0, "unknown preset: NULL");
    n = 99;
    ok(preset_rules(NULL, &n) == NULL && n == 0, "no preset: NULL");
    ok(preset_rules("convertkit", &n) != NULL && n == 1, "convertkit");
    ok(preset_rules("activecampaign", &n) != NULL && n == 2,
       "activecampaign");
    ok(preset_rules("klaviyo", &n) != NULL && n == 5, "klaviyo");
    ok(preset_rules("customerhub", &n) != NULL && n == 4, "customerhub");
}


static void
test_convertkit(void)
{
    ss_config  c;

    preset(&c, "convertkit");

    CHECKOUT_PURCHASE(1);
    is_str(J.action, "purchase", "fixture: a Checkout purchase");
    plan_is(&c, "upsert | purchase", "convertkit: Checkout purchase");

    FIRST_INVOICE(0);
    is_str(J.action, "purchase", "fixture: a subscription's first invoice");
    plan_is(&c, "upsert | purchase", "convertkit: first invoice, test mode "
            "too");

    RENEWAL(1);
    is_str(J.action, "renewal", "fixture: a renewal");
    plan_is(&c, "upsert | purchase", "convertkit: renewal");

    INVOICE("invoice.paid", 1, "\"attempt_count\": 1", "\"attempt_count\": 3",
            NULL, NULL);
    is_str(J.action, "payment_recovered", "fixture: a recovery");
    plan_is(&c, "upsert | purchase", "convertkit: recovered payment");

    INVOICE("invoice.paid", 1, "\"billing_reason\": \"subscription_cycle\"",
            "\"billing_reason\": \"manual\"", NULL, NULL);
    is_str(J.action, "invoice_paid", "fixture: a manual invoice paid");
    plan_is(&c, "upsert | purchase", "convertkit: invoice paid");

    from_fixture("checkout.session.completed",
                 EVENT_DATA "checkout.session.completed.data.json", 1,
                 NULL, NULL, NULL, NULL);
    is_str(J.action, "subscription_checkout", "fixture: subscription "
           "Checkout");
    plan_is(&c, "(empty)", "convertkit: subscription Checkout: its invoice "
            "is the purchase");

    INVOICE("invoice.payment_failed", 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "(empty)", "convertkit: payment_failed is discarded");

    from_fixture("charge.refunded", EVENT_DATA "charge.refunded.data.json",
                 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "(empty)", "convertkit: refund is discarded");

    from_fixture("customer.subscription.deleted",
                 EVENT_DATA "subscription.deleted.data.json", 1, NULL, NULL,
                 NULL, NULL);
    plan_is(&c, "(empty)", "convertkit: cancellation is discarded");
}


static void
test_activecampaign(void)
{
    ss_config  c;

    preset(&c, "activecampaign");

    CHECKOUT_PURCHASE(1);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-purchase | purchase",
            "activecampaign: purchase tags and orders");

    RENEWAL(0);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-renewal",
            "activecampaign: renewal tags, no order, test mode too");

    INVOICE("invoice.payment_failed", 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-payment_failed",
            "activecampaign: invoice event");

    INVOICE("invoice.finalized", 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-invoice_issued",
            "activecampaign: invoice issued");

    from_fixture("charge.succeeded", EVENT_DATA "charge.succeeded.data.json",
                 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-charge_succeeded",
            "activecampaign: charge event");

    from_fixture("customer.updated", EVENT_DATA "customer.updated.data.json",
                 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-customer_updated",
            "activecampaign: customer event");

    from_fixture("checkout.session.completed",
                 EVENT_DATA "checkout.session.completed.data.json", 1,
                 NULL, NULL, NULL, NULL);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-subscription_checkout",
            "activecampaign: Checkout event");

    from_fixture("customer.subscription.updated",
                 EVENT_DATA "subscription.updated.data.json", 1, NULL, NULL,
                 NULL, NULL);
    plan_is(&c, "upsert | tag:stripe-integration | "
            "tag:stripe-integration-plan_changed",
            "activecampaign: subscription event");

    from_record("{\"v\":1,\"id\":\"evt_pi\",\"type\":"
                "\"payment_intent.succeeded\",\"action\":"
                "\"payment_succeeded\",\"amount\":100}");
    plan_is(&c, "(empty)", "activecampaign: payment intents are left to "
            "their charges");
}


static void
test_klaviyo(void)
{
    ss_config  c;

    preset(&c, "klaviyo");

    INVOICE("invoice.finalized", 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "upsert | track:Issued Invoice{Amount=24900,Currency=usd,"
            "Invoice=in_1234,Item=1 × Example (at $249.00 / year),"
            "Product=prod_1234,Price=price_1234}",
            "klaviyo: Issued Invoice with the invoice's facts");

    RENEWAL(1);
    plan_is(&c, "upsert | track:Successfully Paid{Amount=24900,"
            "Currency=usd,Invoice=in_1234,Item=1 × Example (at $249.00 / "
            "year),Product=prod_1234,Price=price_1234}",
            "klaviyo: renewal is Successfully Paid");

    CHECKOUT_PURCHASE(1);
    plan_is(&c, "upsert | track:Successfully Paid{Amount=1900,Currency=usd}",
            "klaviyo: Checkout purchase, absent facts left out");

    INVOICE("invoice.payment_failed", 1, "\"attempt_count\": 1",
            "\"attempt_count\": 2", NULL, NULL);
    plan_is(&c, "upsert | track:Failed Payment{Amount=24900,AttemptCount=2,"
            "Currency=usd,Invoice=in_1234}",
            "klaviyo: Failed Payment (no reason in an invoice webhook)");

    from_record("{\"v\":1,\"id\":\"evt_f\",\"type\":\"invoice.payment_failed"
                "\",\"action\":\"payment_failed\",\"livemode\":true,"
                "\"amount\":500,\"currency\":\"eur\",\"invoice\":\"in_9\","
                "\"attempt_count\":3,\"reason\":\"Your card was declined.\","
                "\"card\":{\"exp_month\":12,\"exp_year\":2030}}");
    plan_is(&c, "upsert{card_exp_month=12,card_exp_year=2030} | "
            "track:Failed Payment{Amount=500,AttemptCount=3,Currency=eur,"
            "Invoice=in_9,Reason=Your card was declined.}",
            "klaviyo: Failed Payment with its reason, card expiry on the "
            "profile");

    from_fixture("charge.refunded", EVENT_DATA "charge.refunded.data.json",
                 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "upsert{card_exp_month=1,card_exp_year=2015} | "
            "track:Refunded Payment{Amount=500,Currency=usd}",
            "klaviyo: Refunded Payment, card expiry from the charge");

    from_fixture("charge.refunded", EVENT_DATA "charge.refunded.data.json",
                 0, NULL, NULL, NULL, NULL);
    plan_is(&c, "(empty)", "klaviyo: test-mode data is skipped");

    RENEWAL(0);
    plan_is(&c, "(empty)", "klaviyo: test-mode renewal skipped");

    from_fixture("customer.subscription.deleted",
                 EVENT_DATA "subscription.deleted.data.json", 1, NULL, NULL,
                 NULL, NULL);
    plan_is(&c, "(empty)", "klaviyo: cancellations are not a metric");
}


/*
 * The klaviyo preset written out as rules, as docs/consumer.md prints it:
 * the same plans as the preset on every kind of record.
 */
static const char *klaviyo_written_out =
    "rules = (\n"
    "  { on = [\"invoice_issued\", \"purchase\", \"renewal\","
    " \"payment_recovered\",\n"
    "          \"invoice_paid\", \"payment_failed\", \"refund\"];\n"
    "    livemode = true;\n"
    "    fields = { card_exp_month = \"{card.exp_month}\";\n"
    "               card_exp_year = \"{card.exp_year}\"; }; },\n"
    "  { on = \"invoice_issued\"; livemode = true; track = \"Issued"
    " Invoice\";\n"
    "    properties = { Amount = \"{amount}\"; Currency = \"{currency}\";\n"
    "                   Invoice = \"{invoice}\"; Item ="
    " \"{items.0.description}\";\n"
    "                   Product = \"{items.0.product}\"; Price ="
    " \"{items.0.price}\"; }; },\n"
    "  { on = [\"purchase\", \"renewal\", \"payment_recovered\","
    " \"invoice_paid\"];\n"
    "    livemode = true; track = \"Successfully Paid\";\n"
    "    properties = { Amount = \"{amount}\"; Currency = \"{currency}\";\n"
    "                   Invoice = \"{invoice}\"; Item ="
    " \"{items.0.description}\";\n"
    "                   Product = \"{items.0.product}\"; Price ="
    " \"{items.0.price}\"; }; },\n"
    "  { on = \"payment_failed\"; livemode = true; track = \"Failed"
    " Payment\";\n"
    "    properties = { Amount = \"{amount}\"; AttemptCount ="
    " \"{attempt_count}\";\n"
    "                   Currency = \"{currency}\"; Invoice ="
    " \"{invoice}\";\n"
    "                   Reason = \"{reason}\"; }; },\n"
    "  { on = \"refund\"; livemode = true; track = \"Refunded Payment\";\n"
    "    properties = { Amount = \"{amount}\"; Currency = \"{currency}\";"
    " }; }\n"
    ");\n";


static void
same_plan(const ss_config *a, const ss_config *b, const char *what)
{
    char  pa[8192];

    snprintf(pa, sizeof(pa), "%s", plan_of(a, 0));
    is_str(plan_of(b, 0), pa, "written-out klaviyo = preset: %s", what);
}


static void
test_klaviyo_written_out(void)
{
    ss_config  c, w;

    preset(&c, "klaviyo");
    load(&w, klaviyo_written_out);

    INVOICE("invoice.finalized", 1, NULL, NULL, NULL, NULL);
    same_plan(&c, &w, "invoice issued");
    RENEWAL(1);
    same_plan(&c, &w, "renewal");
    RENEWAL(0);
    same_plan(&c, &w, "test-mode renewal");
    CHECKOUT_PURCHASE(1);
    same_plan(&c, &w, "Checkout purchase");
    INVOICE("invoice.payment_failed", 1, NULL, NULL, NULL, NULL);
    same_plan(&c, &w, "payment failed");
    from_fixture("charge.refunded", EVENT_DATA "charge.refunded.data.json",
                 1, NULL, NULL, NULL, NULL);
    same_plan(&c, &w, "refund");
    from_fixture("customer.subscription.deleted",
                 EVENT_DATA "subscription.deleted.data.json", 1, NULL, NULL,
                 NULL, NULL);
    same_plan(&c, &w, "cancellation");

    config_free(&w);
}


static void
test_customerhub(void)
{
    ss_config  c;

    preset(&c, "customerhub");

    CHECKOUT_PURCHASE(0);
    plan_is(&c, "upsert | tag:customer | track:Product Purchased{"
            "amount=1900,currency=usd,subscription=sub_1LNkeSKXBGcbgpbZ7jMq"
            "OPSi}", "customerhub: purchase grants access, default "
            "properties");

    from_fixture("customer.subscription.created",
                 EVENT_DATA "subscription.created.data.json", 1, NULL, NULL,
                 NULL, NULL);
    plan_is(&c, "upsert | track:Subscription Started{amount=600,"
            "currency=usd,subscription=sub_00000000000000,"
            "product=prod_00000000000000,price=FFBEGINNER_00000000000000}",
            "customerhub: subscription started");

    RENEWAL(1);
    plan_is(&c, "upsert | tag:customer", "customerhub: renewal keeps access");

    from_fixture("customer.subscription.deleted",
                 EVENT_DATA "subscription.deleted.data.json", 1, NULL, NULL,
                 NULL, NULL);
    plan_is(&c, "upsert | untag:customer | track:Subscription Cancelled{"
            "amount=300,currency=usd,subscription=sub_00000000000000,"
            "product=prod_00000000000000,price=FFBEGINNER_00000000000000}",
            "customerhub: cancellation removes access");

    INVOICE("invoice.payment_failed", 1, NULL, NULL, NULL, NULL);
    plan_is(&c, "(empty)", "customerhub: a failed payment changes nothing");
}


/* ---- conditions ---- */

#define REC_BASE                                                              \
    "{\"v\":1,\"id\":\"evt_c\",\"type\":\"invoice.paid\","                    \
    "\"action\":\"renewal\",\"created\":1745433906,\"livemode\":true,"        \
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"a@example.org\","             \
    "\"name\":\"Ada Lovelace\"},\"amount\":2500,\"currency\":\"usd\","        \
    "\"items\":[{\"price\":\"price_A\",\"product\":\"prod_A\"},"              \
    "{\"price\":\"price_B\",\"product\":\"prod_B\"}],"                        \
    "\"subscription\":\"sub_1\","                                             \
    "\"metadata\":{\"plan\":\"pro\",\"source\":\"ads\"}}"


/* one rule, tagging "hit", against J */
static int
matches(const char *conditions)
{
    ss_config  c;
    char      *text;
    int        m;

    text = format("rules = ( { %s tag = \"hit\"; } );", conditions);
    load(&c, text);
    free(text);

    m = rule_matches(&c.rules[0], &J);
    config_free(&c);
    return m;
}

#define match_ok(cond, ...)   is_int(matches(cond), 1, __VA_ARGS__)
#define match_no(cond, ...)   is_int(matches(cond), 0, __VA_ARGS__)


static void
test_conditions(void)
{
    job_item  items[1];

    from_record(REC_BASE);

    match_ok("", "no condition matches anything");
    match_ok("on = \"renewal\";", "on: the action");
    match_ok("on = [\"purchase\", \"renewal\"];", "on: any of a list");
    match_no("on = \"purchase\";", "on: another action");
    match_ok("type = \"invoice.paid\";", "type: the raw Stripe type");
    match_no("type = [\"invoice.payment_succeeded\"];", "type: another");
    match_ok("product = \"prod_B\";", "product: any item's");
    match_no("product = \"prod_C\";", "product: none");
    match_ok("price = [\"price_X\", \"price_A\"];", "price: any item's");
    match_no("price = \"prod_A\";", "price is not product");
    match_ok("product = \"prod_A\"; price = \"price_B\";",
             "product and price each on any item");
    match_ok("livemode = true;", "livemode true on live");
    match_no("livemode = false;", "livemode false on live");
    match_ok("currency = \"usd\";", "currency");
    match_ok("currency = \"USD\";", "currency: case does not matter");
    match_no("currency = [\"eur\", \"gbp\"];", "currency: another");
    match_ok("min_amount = 2500;", "min_amount: equal passes");
    match_no("min_amount = 2501;", "min_amount: above");
    match_ok("max_amount = 2500;", "max_amount: equal passes");
    match_no("max_amount = 2499;", "max_amount: below");
    match_ok("min_amount = 1000; max_amount = 5000;", "amount in a range");
    match_ok("metadata = \"plan=pro\";", "metadata key=value");
    match_ok("metadata = [\"plan=pro\", \"source=ads\"];",
             "metadata: all pairs");
    match_no("metadata = [\"plan=pro\", \"source=seo\"];",
             "metadata: one pair differs");
    match_no("metadata = \"plan=Pro\";", "metadata: values are exact");
    match_no("metadata = \"tier=pro\";", "metadata: absent key");
    match_ok("metadata = { plan = \"pro\"; };", "metadata as a group");
    match_no("on = \"renewal\"; currency = \"eur\";",
             "every condition must hold");

    /* tenure: unknown until enrichment sets the start */
    match_no("min_tenure_days = 0;", "tenure unknown: no match");
    J.subscription_start = J.created - 30 * 86400;
    match_ok("min_tenure_days = 30;", "tenure 30 days: 30");
    match_no("min_tenure_days = 31;", "tenure 30 days: not 31");
    J.subscription_start = J.created - 365 * 86400 - 1;
    match_ok("min_tenure_days = 365;", "tenure a year");

    from_record("{\"v\":1,\"id\":\"evt_d\",\"action\":\"renewal\","
                "\"livemode\":false}");
    match_no("livemode = true;", "livemode true on test");
    match_ok("livemode = false;", "livemode false on test");
    match_no("min_amount = 0;", "an unknown amount meets no min_amount");
    match_no("max_amount = 100;", "an unknown amount meets no max_amount");
    match_no("currency = \"usd\";", "no currency: no match");
    match_no("product = \"prod_A\";", "no items: no product match");
    match_no("metadata = \"plan=pro\";", "no metadata: no match");
    match_no("type = \"invoice.paid\";", "no type: no match");

    /* Checkout: the product is known only once line items are fetched */
    CHECKOUT_PURCHASE(1);
    match_no("product = \"prod_COURSE\";", "Checkout: no items yet");
    memset(items, 0, sizeof(items));
    items[0].price = "price_COURSE";
    items[0].product = "prod_COURSE";
    items[0].quantity = 1;
    items[0].amount = 1900;
    job_set_items(&J, items, 1);
    match_ok("product = \"prod_COURSE\";", "Checkout: enriched items match");
    match_ok("price = \"price_COURSE\";", "Checkout: enriched price");
}


/* ---- templates ---- */

static void
expands(const char *tpl, const char *want)
{
    char  out[512];
    int   rc;

    rc = template_expand(tpl, &J, out, sizeof(out));

    if (want == NULL) {
        is_int(rc, -1, "\"%s\" does not expand", tpl);
    } else {
        is_int(rc, 0, "\"%s\" expands", tpl);
        is_str(rc == 0 ? out : NULL, want, "\"%s\"", tpl);
    }
}


static void
test_templates(void)
{
    job_item  items[1];
    char      small[8], err[512];

    RENEWAL(1);

    expands("{amount}", "24900");
    expands("{currency}", "usd");
    expands("{invoice}", "in_1234");
    expands("{attempt_count}", "1");
    expands("{items.0.price}", "price_1234");
    expands("{items.0.product}", "prod_1234");
    expands("{items.0.description}", "1 × Example (at $249.00 / year)");
    expands("{customer.email}", "customer@example.org");
    expands("{first_name} {last_name}", "Example Customer");
    expands("{action} on {object.id}", "renewal on in_1234");
    expands("{ amount }", "24900");
    expands("plain text", "plain text");
    expands("", "");
    expands("{{literal}}", "{literal}");
    expands("a } b", "a } b");
    expands("{{{amount}}}", "{24900}");
    expands("{reason}", NULL);
    expands("{items.1.price}", NULL);
    expands("paid {amount} for {nothing}", NULL);
    expands("{amount", NULL);
    expands("{}", NULL);
    expands("{ }", NULL);
    expands("{a{b}", NULL);

    is_int(template_expand("{items.0.description}", &J, small, sizeof(small)),
           -1, "a result longer than out fails");
    is_int(template_expand("abcdefgh", &J, small, sizeof(small)), -1,
           "a literal longer than out fails");
    is_int(template_expand("abcdefg", &J, small, sizeof(small)), 0,
           "exactly fits");

    /* enrichment's items and email win over the record's */
    memset(items, 0, sizeof(items));
    items[0].price = "price_TIER2";
    items[0].quantity = -1;
    items[0].amount = -1;
    job_set_items(&J, items, 1);
    job_set_email(&J, "new@example.org");
    expands("{items.0.price}", "price_TIER2");
    expands("{items.0.product}", NULL);
    expands("{customer.email}", "new@example.org");

    is_int(template_check("{items.0.price}", err, sizeof(err)), 0,
           "check: a good template");
    is_int(template_check("tier-{{x}}", err, sizeof(err)), 0,
           "check: escaped braces");
    is_int(template_check("{items.0.price", err, sizeof(err)), -1,
           "check: unclosed");
    is_str(err, "template \"{items.0.price\" has a \"{\" without its \"}\", "
           "an empty \"{}\", or a name over 255 bytes (write \"{{\" for a "
           "brace)", "check: the error quotes the template");
    is_int(template_check("{itmes.0.price}", err, sizeof(err)), 1,
           "check: an unknown member is a warning");
    is_str(err, "template \"{itmes.0.price}\" refers to \"itmes\", which no "
           "action record has (see docs/events.md)", "check: names it");
    is_int(template_check("{first_name} {metadata.plan} {card.exp_year}",
                          err, sizeof(err)), 0, "check: overlay names");
}


/* ---- needs ---- */

static void
test_needs(void)
{
    ss_config  c;
    job_item   items[1];

    load(&c, "rules = ( { on = \"purchase\"; product = \"prod_X\"; "
         "tag = \"x\"; } );");

    CHECKOUT_PURCHASE(1);
    is_int(rules_needs(&c, &J), RULES_NEED_LINE_ITEMS,
           "a product rule on a Checkout purchase needs line items");

    memset(items, 0, sizeof(items));
    items[0].product = "prod_X";
    items[0].quantity = -1;
    items[0].amount = -1;
    job_set_items(&J, items, 1);
    is_int(rules_needs(&c, &J), 0, "not once they are fetched");

    INVOICE("invoice.payment_failed", 1, NULL, NULL, NULL, NULL);
    is_int(rules_needs(&c, &J), 0, "nor for another action");

    RENEWAL(1);
    is_int(rules_needs(&c, &J), 0, "an invoice has its items");
    config_free(&c);

    load(&c, "rules = ( { on = \"purchase\"; fields = { plan = "
         "\"{items.0.price}\"; }; } );");
    CHECKOUT_PURCHASE(1);
    is_int(rules_needs(&c, &J), RULES_NEED_LINE_ITEMS,
           "a template on items needs them too");
    config_free(&c);

    load(&c, "rules = ( { on = \"purchase\"; tag = \"buyer\"; } );");
    is_int(rules_needs(&c, &J), 0, "a rule that cares for no item");
    config_free(&c);

    preset(&c, "customerhub");
    is_int(rules_needs(&c, &J), RULES_NEED_LINE_ITEMS,
           "a track's default properties carry the first item");

    load(&c, "rules = ( { on = \"renewal\"; min_tenure_days = 30; tag = "
         "\"m30\"; } );");
    RENEWAL(1);
    is_int(rules_needs(&c, &J), RULES_NEED_TENURE,
           "a tenure rule on a renewal needs the subscription's start");
    J.subscription_start = J.created - 40 * 86400;
    is_int(rules_needs(&c, &J), 0, "not once it is known");
    plan_is(&c, "upsert | tag:m30", "and then the rule applies");

    from_record("{\"v\":1,\"id\":\"evt_n\",\"action\":\"renewal\"}");
    is_int(rules_needs(&c, &J), 0, "no subscription id: nothing to fetch");
    config_free(&c);
}


/* ---- plans ---- */

static void
test_plans(void)
{
    ss_config  c;

    from_record(REC_BASE);

    load(&c,
         "rules = (\n"
         "  { on = \"renewal\"; track = \"Renewed\"; purchase = true;\n"
         "    list = \"Customers\"; form = \"F\"; sequence = \"S\";\n"
         "    untag = \"lapsed\"; tag = [\"member\", \"plan-{metadata.plan}\"];"
         "\n    fields = { plan = \"{items.0.price}\"; email_copy = "
         "\"{customer.email}\"; missing = \"{reason}\"; };\n"
         "    properties = { paid = \"{amount} {currency}\"; }; },\n"
         "  { on = \"purchase\"; tag = \"never\"; },\n"
         "  { tag = [\"member\", \"all\"]; untag = \"member\";\n"
         "    fields = { plan = \"other\"; source = \"{metadata.source}\"; "
         "}; purchase = true; track = \"Renewed\"; },\n"
         "  { on = \"renewal\"; tag = \"x-{reason}\"; sequence = \"S\"; }\n"
         ");\n");

    plan_is(&c, "upsert{plan=price_A,email_copy=a@example.org,source=ads} | "
            "tag:member | tag:plan-pro | untag:lapsed | sequence:S | form:F | "
            "list:Customers | purchase | track:Renewed{paid=2500 usd} | "
            "tag:all | untag:member",
            "upsert first with merged fields (first rule wins), each rule's "
            "ops in order, duplicates dropped, absent templates left out");
    plan_at(&c, "upsert{plan=price_A,email_copy=a@example.org,source=ads}@0 "
            "| tag:member@0 | tag:plan-pro@0 | untag:lapsed@0 | sequence:S@0 "
            "| form:F@0 | list:Customers@0 | purchase@0 | "
            "track:Renewed{paid=2500 usd}@0 | tag:all@2 | untag:member@2",
            "each op names its rule");
    config_free(&c);

    /* a preset's rules come first, marked -1 */
    load(&c, "preset = \"customerhub\";\n"
         "rules = ( { on = \"renewal\"; tag = [\"vip\", \"customer\"]; "
         "sequence = \"Thanks\"; } );");
    plan_at(&c, "upsert@-1 | tag:customer@-1 | tag:vip@0 | sequence:Thanks@0",
            "preset first, then the config's rules");
    config_free(&c);

    load(&c, "rules = ( { on = \"purchase\"; tag = \"buyer\"; } );");
    plan_is(&c, "(empty)", "no rule matches: an empty plan");
    config_free(&c);

    /* only untag: the upsert still comes first (the contact's id) */
    load(&c, "rules = ( { on = \"renewal\"; untag = \"dunning\"; } );");
    plan_at(&c, "upsert@0 | untag:dunning@0", "untag after the upsert");
    config_free(&c);

    /* a rule whose only op names an absent value still upserts */
    load(&c, "rules = ( { on = \"renewal\"; tag = \"{reason}\"; } );");
    plan_is(&c, "upsert", "a tag named by an absent value is left out");
    config_free(&c);
}


static void
test_plan_json(void)
{
    plan        p;
    plan_field  f[2] = { { "plan", "price_\"1\"" }, { "n", "2" } };
    char       *json;

    memset(&p, 0, sizeof(p));
    json = plan_to_json(&p);
    is_str(json, "[]", "an empty plan is []");
    free(json);

    is_int(plan_add(&p, OP_UPSERT, NULL, f, 2, -1), 0, "add upsert");
    is_int(plan_add(&p, OP_TAG, "Course buyer", NULL, 0, 0), 0, "add tag");
    is_int(plan_add(&p, OP_TRACK, "Paid", f + 1, 1, 1), 0, "add track");
    is_int(plan_add(&p, OP_PURCHASE, NULL, NULL, 0, 1), 0, "add purchase");
    ok(p.ops[0].fields[0].key != f[0].key, "fields are copied");
    is_int(p.ops[2].rule, 1, "rule kept");

    json = plan_to_json(&p);
    is_str(json, "[{\"op\":\"upsert\",\"fields\":{\"plan\":\"price_\\\"1\\\"\","
           "\"n\":\"2\"}},{\"op\":\"tag\",\"name\":\"Course buyer\"},"
           "{\"op\":\"track\",\"name\":\"Paid\",\"fields\":{\"n\":\"2\"}},"
           "{\"op\":\"purchase\"}]", "plan_to_json");
    free(json);
    plan_free(&p);
    ok(p.ops == NULL && p.nops == 0, "plan_free empties");

    is_str(op_kind_name(OP_UPSERT), "upsert", "op upsert");
    is_str(op_kind_name(OP_TAG), "tag", "op tag");
    is_str(op_kind_name(OP_UNTAG), "untag", "op untag");
    is_str(op_kind_name(OP_SEQUENCE), "sequence", "op sequence");
    is_str(op_kind_name(OP_FORM), "form", "op form");
    is_str(op_kind_name(OP_LIST), "list", "op list");
    is_str(op_kind_name(OP_FIELDS), "fields", "op fields");
    is_str(op_kind_name(OP_PURCHASE), "purchase", "op purchase");
    is_str(op_kind_name(OP_TRACK), "track", "op track");
    is_str(op_kind_name(OP_KINDS), "unknown", "op out of range");
}


int
main(void)
{
    test_preset_lookup();
    test_convertkit();
    test_activecampaign();
    test_klaviyo();
    test_klaviyo_written_out();
    test_customerhub();
    test_conditions();
    test_templates();
    test_needs();
    test_plans();
    test_plan_json();

    job_free(&J);
    reset();
    return tap_done();
}
