/*
 * rules.c - presets, rule matching, templates and plans (see rules.h).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules.h"

#define TEMPLATE_VALUE_MAX  8192    /* one expanded field, tag or name */
#define TEMPLATE_PATH_MAX   256

#define TPL_ABSENT    -1            /* a referenced value is absent */
#define TPL_INVALID   -2            /* bad syntax, or the result is too long */


/* ---- presets (SPEC 8: the hosted integrations' defaults) ---- */

#define COUNT(a)   (sizeof(a) / sizeof((a)[0]))
#define STRS(a)    { (a), COUNT(a) }
#define ANY        .livemode = -1, .min_amount = -1, .max_amount = -1,       \
                   .min_tenure_days = -1
#define LIVE       .livemode = 1, .min_amount = -1, .max_amount = -1,        \
                   .min_tenure_days = -1

/*
 * ConvertKit: every payment that is a sale becomes a subscriber with a
 * purchase record; other events do nothing. A subscription's Checkout
 * (subscription_checkout) is left out: its first invoice is the purchase.
 */
static char *ck_paid[] = {
    "purchase", "renewal", "payment_recovered", "invoice_paid"
};

static const cfg_rule preset_convertkit[] = {
    { ANY, .on = STRS(ck_paid), .purchase = 1 },
};

/*
 * ActiveCampaign: a contact for every charge, customer, invoice, Checkout
 * and subscription action, tagged "stripe-integration" and
 * "stripe-integration-<action>"; a Deep Data order for each purchase.
 * payment_succeeded (a PaymentIntent) is left out: its charge_succeeded
 * carries the same payment.
 */
static char *ac_all[] = {
    "charge_succeeded", "charge_failed", "refund",
    "customer_created", "customer_updated", "customer_deleted",
    "purchase", "renewal", "payment_recovered", "invoice_paid",
    "payment_failed", "payment_action_required", "invoice_issued",
    "invoice_upcoming", "invoice_created", "invoice_updated",
    "subscription_checkout", "checkout_pending",
    "subscription_started", "plan_changed", "subscription_cancel_scheduled",
    "subscription_updated", "subscription_cancelled", "subscription_paused",
    "subscription_resumed", "trial_ending"
};
static char *ac_tags[] = {
    "stripe-integration", "stripe-integration-{action}"
};
static char *ac_orders[] = { "purchase" };

static const cfg_rule preset_activecampaign[] = {
    { ANY, .on = STRS(ac_all), .tag = STRS(ac_tags) },
    { ANY, .on = STRS(ac_orders), .purchase = 1 },
};

/*
 * Klaviyo: four metrics, live data only, and the card's expiry on the
 * profile when the record has it (an absent value leaves the field out).
 */
static char *kl_all[] = {
    "invoice_issued", "purchase", "renewal", "payment_recovered",
    "invoice_paid", "payment_failed", "refund"
};
static char *kl_issued[] = { "invoice_issued" };
static char *kl_paid[] = {
    "purchase", "renewal", "payment_recovered", "invoice_paid"
};
static char *kl_failed[] = { "payment_failed" };
static char *kl_refund[] = { "refund" };

static plan_field kl_card[] = {
    { "card_exp_month", "{card.exp_month}" },
    { "card_exp_year", "{card.exp_year}" },
};
static plan_field kl_invoice_props[] = {
    { "Amount", "{amount}" },
    { "Currency", "{currency}" },
    { "Invoice", "{invoice}" },
    { "Item", "{items.0.description}" },
    { "Product", "{items.0.product}" },
    { "Price", "{items.0.price}" },
};
static plan_field kl_failed_props[] = {
    { "Amount", "{amount}" },
    { "AttemptCount", "{attempt_count}" },
    { "Currency", "{currency}" },
    { "Invoice", "{invoice}" },
    { "Reason", "{reason}" },
};
static plan_field kl_refund_props[] = {
    { "Amount", "{amount}" },
    { "Currency", "{currency}" },
};

static const cfg_rule preset_klaviyo[] = {
    { LIVE, .on = STRS(kl_all), .fields = kl_card,
      .nfields = COUNT(kl_card) },
    { LIVE, .on = STRS(kl_issued), .track = "Issued Invoice",
      .properties = kl_invoice_props,
      .nproperties = COUNT(kl_invoice_props) },
    { LIVE, .on = STRS(kl_paid), .track = "Successfully Paid",
      .properties = kl_invoice_props,
      .nproperties = COUNT(kl_invoice_props) },
    { LIVE, .on = STRS(kl_failed), .track = "Failed Payment",
      .properties = kl_failed_props,
      .nproperties = COUNT(kl_failed_props) },
    { LIVE, .on = STRS(kl_refund), .track = "Refunded Payment",
      .properties = kl_refund_props,
      .nproperties = COUNT(kl_refund_props) },
};

/*
 * CustomerHub: the "customer" tag is access: granted on purchase, granted
 * again while the subscription keeps paying, taken away when it ends.
 */
static char *ch_purchase[] = { "purchase" };
static char *ch_started[] = { "subscription_started" };
static char *ch_active[] = {
    "renewal", "payment_recovered", "subscription_resumed"
};
static char *ch_cancelled[] = { "subscription_cancelled" };
static char *ch_tag[] = { "customer" };

static const cfg_rule preset_customerhub[] = {
    { ANY, .on = STRS(ch_purchase), .tag = STRS(ch_tag),
      .track = "Product Purchased" },
    { ANY, .on = STRS(ch_started), .track = "Subscription Started" },
    { ANY, .on = STRS(ch_active), .tag = STRS(ch_tag) },
    { ANY, .on = STRS(ch_cancelled), .untag = STRS(ch_tag),
      .track = "Subscription Cancelled" },
};

static const struct {
    const char      *name;
    const cfg_rule  *rules;
    size_t           n;
} presets[] = {
    { "convertkit", preset_convertkit, COUNT(preset_convertkit) },
    { "activecampaign", preset_activecampaign,
      COUNT(preset_activecampaign) },
    { "klaviyo", preset_klaviyo, COUNT(preset_klaviyo) },
    { "customerhub", preset_customerhub, COUNT(preset_customerhub) },
};

/* a track with no "properties" carries these, each when present */
static plan_field default_properties[] = {
    { "amount", "{amount}" },
    { "currency", "{currency}" },
    { "invoice", "{invoice}" },
    { "subscription", "{subscription}" },
    { "attempt_count", "{attempt_count}" },
    { "reason", "{reason}" },
    { "product", "{items.0.product}" },
    { "price", "{items.0.price}" },
};


const cfg_rule *
preset_rules(const char *name, size_t *n)
{
    size_t  i;

    for (i = 0; name != NULL && i < COUNT(presets); i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *n = presets[i].n;
            return presets[i].rules;
        }
    }

    *n = 0;
    return NULL;
}


/* ---- templates ---- */

/*
 * Expands tpl into out. Returns 0, TPL_ABSENT when a reference has no
 * value, TPL_INVALID on bad syntax or when out is too small. With j NULL
 * it only checks the syntax (references count as empty).
 */
static int
expand(const char *tpl, const job *j, char *out, size_t len)
{
    const char  *p, *close, *s, *e;
    char         path[TEMPLATE_PATH_MAX], value[TEMPLATE_VALUE_MAX];
    size_t       o, n;
    int          absent;

    o = 0;
    absent = 0;

    for (p = tpl; *p != '\0'; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            p++;                              /* a literal brace */
        } else if (p[0] == '{') {
            close = strchr(p + 1, '}');
            if (close == NULL) {
                return TPL_INVALID;
            }

            /* "{ amount }" is "{amount}" */
            s = p + 1;
            e = close;
            while (s < e && (*s == ' ' || *s == '\t')) {
                s++;
            }
            while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
                e--;
            }

            n = e - s;
            if (n == 0 || n >= sizeof(path) || memchr(s, '{', n) != NULL) {
                return TPL_INVALID;
            }

            memcpy(path, s, n);
            path[n] = '\0';
            p = close;

            if (j == NULL) {
                continue;
            }

            if (job_lookup(j, path, value, sizeof(value)) != 0) {
                absent = 1;             /* keep checking the syntax */
                continue;
            }

            n = strlen(value);
            if (o + n >= len) {
                return TPL_INVALID;
            }

            memcpy(out + o, value, n);
            o += n;
            continue;
        }

        if (j == NULL) {
            continue;
        }

        if (o + 1 >= len) {
            return TPL_INVALID;
        }

        out[o++] = *p;
    }

    if (j != NULL) {
        if (len == 0) {
            return TPL_INVALID;
        }

        out[o] = '\0';
    }

    return absent ? TPL_ABSENT : 0;
}


int
template_expand(const char *tpl, const job *j, char *out, size_t len)
{
    if (tpl == NULL || j == NULL || out == NULL || len == 0) {
        return -1;
    }

    return expand(tpl, j, out, len) == 0 ? 0 : -1;
}


/* members a record can have (docs/events.md), and what job.c lays on top */
static const char *record_roots[] = {
    "v", "id", "type", "action", "created", "livemode", "api_version",
    "object", "customer", "amount", "currency", "items", "items_truncated",
    "subscription", "invoice", "attempt_count", "billing_reason", "reason",
    "reason_code", "status", "cancel_at_period_end", "cancel_at",
    "current_period_end", "trial_end", "card", "previous", "metadata",
    "metadata_truncated", "enrich", "subscription_start", "first_name",
    "last_name"
};


int
template_check(const char *tpl, char *err, size_t errlen)
{
    const char  *p, *s;
    size_t       i, n;

    if (expand(tpl, NULL, NULL, 0) != 0) {
        snprintf(err, errlen, "template \"%s\" has a \"{\" without its "
                 "\"}\", an empty \"{}\", or a name over %d bytes "
                 "(write \"{{\" for a brace)", tpl, TEMPLATE_PATH_MAX - 1);
        return -1;
    }

    /* every reference's first name must be one a record can have */
    for (p = tpl; *p != '\0'; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            p++;
            continue;
        }

        if (p[0] != '{') {
            continue;
        }

        s = p + 1;
        while (*s == ' ' || *s == '\t') {
            s++;
        }

        n = strcspn(s, ".} \t");

        for (i = 0; i < COUNT(record_roots); i++) {
            if (strlen(record_roots[i]) == n
                && strncmp(record_roots[i], s, n) == 0)
            {
                break;
            }
        }

        if (i == COUNT(record_roots)) {
            snprintf(err, errlen, "template \"%s\" refers to \"%.*s\", "
                     "which no action record has (see docs/events.md)",
                     tpl, (int) n, s);
            return 1;
        }

        p = strchr(p, '}');
    }

    return 0;
}


/* ---- matching ---- */

static int
strings_has(const cfg_strings *s, const char *v, int nocase)
{
    size_t  i;

    if (v == NULL) {
        return 0;
    }

    for (i = 0; i < s->n; i++) {
        if (nocase ? strcasecmp(s->v[i], v) == 0 : strcmp(s->v[i], v) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the record's metadata[key] equals value, for every "key=value" */
static int
metadata_matches(const cfg_strings *md, const job *j)
{
    yajl_val     meta, v;
    const char  *eq;
    size_t       i, k, klen;
    int          found;

    meta = NULL;

    if (YAJL_IS_OBJECT(j->record)) {
        for (k = 0; k < j->record->u.object.len; k++) {
            if (strcmp(j->record->u.object.keys[k], "metadata") == 0) {
                meta = j->record->u.object.values[k];
                break;
            }
        }
    }

    for (i = 0; i < md->n; i++) {
        if (!YAJL_IS_OBJECT(meta)) {
            return 0;
        }

        eq = strchr(md->v[i], '=');
        if (eq == NULL) {
            return 0;
        }

        klen = eq - md->v[i];
        found = 0;

        for (k = 0; k < meta->u.object.len && !found; k++) {
            v = meta->u.object.values[k];

            if (strlen(meta->u.object.keys[k]) == klen
                && strncmp(meta->u.object.keys[k], md->v[i], klen) == 0)
            {
                found = YAJL_IS_STRING(v) && strcmp(v->u.string, eq + 1) == 0;
                break;
            }
        }

        if (!found) {
            return 0;
        }
    }

    return 1;
}


static int
items_match(const cfg_strings *want, const job *j, int by_product)
{
    size_t  i;

    for (i = 0; i < j->nitems; i++) {
        if (strings_has(want, by_product ? j->items[i].product
                                         : j->items[i].price, 0))
        {
            return 1;
        }
    }

    return 0;
}


/* every condition but those enrichment can change: items and tenure */
static int
rule_matches_record(const cfg_rule *r, const job *j)
{
    if (r->on.n > 0 && !strings_has(&r->on, j->action, 0)) {
        return 0;
    }

    if (r->type.n > 0 && !strings_has(&r->type, j->type, 0)) {
        return 0;
    }

    if (r->livemode != -1 && j->livemode != r->livemode) {
        return 0;
    }

    if (r->currency.n > 0 && !strings_has(&r->currency, j->currency, 1)) {
        return 0;
    }

    /* an unknown amount meets no bound */
    if (r->min_amount >= 0 && (j->amount < 0 || j->amount < r->min_amount)) {
        return 0;
    }

    if (r->max_amount >= 0 && (j->amount < 0 || j->amount > r->max_amount)) {
        return 0;
    }

    if (r->metadata.n > 0 && !metadata_matches(&r->metadata, j)) {
        return 0;
    }

    return 1;
}


int
rule_matches(const cfg_rule *r, const job *j)
{
    long long  days;

    if (!rule_matches_record(r, j)) {
        return 0;
    }

    if (r->product.n > 0 && !items_match(&r->product, j, 1)) {
        return 0;
    }

    if (r->price.n > 0 && !items_match(&r->price, j, 0)) {
        return 0;
    }

    if (r->min_tenure_days >= 0) {
        days = job_tenure_days(j);
        if (days < 0 || days < r->min_tenure_days) {
            return 0;
        }
    }

    return 1;
}


/* ---- what enrichment could change ---- */

static int
refers_to_items(const char *tpl)
{
    return tpl != NULL && strstr(tpl, "{items") != NULL;
}


static int
strings_refer_to_items(const cfg_strings *s)
{
    size_t  i;

    for (i = 0; i < s->n; i++) {
        if (refers_to_items(s->v[i])) {
            return 1;
        }
    }

    return 0;
}


/* the rule's output depends on the items: templates or default props */
static int
rule_uses_items(const cfg_rule *r)
{
    size_t  i;

    for (i = 0; i < r->nfields; i++) {
        if (refers_to_items(r->fields[i].value)) {
            return 1;
        }
    }

    for (i = 0; i < r->nproperties; i++) {
        if (refers_to_items(r->properties[i].value)) {
            return 1;
        }
    }

    if (r->track != NULL && r->nproperties == 0) {
        return 1;
    }

    return refers_to_items(r->track) || strings_refer_to_items(&r->tag)
           || strings_refer_to_items(&r->untag)
           || strings_refer_to_items(&r->sequence)
           || strings_refer_to_items(&r->form)
           || strings_refer_to_items(&r->list);
}


/* the record says its line items are to be fetched (Checkout) */
static int
line_items_missing(const job *j)
{
    yajl_val  enrich, v;
    size_t    i;

    if (j->items_enriched || !YAJL_IS_OBJECT(j->record)) {
        return 0;
    }

    enrich = NULL;

    for (i = 0; i < j->record->u.object.len; i++) {
        if (strcmp(j->record->u.object.keys[i], "enrich") == 0) {
            enrich = j->record->u.object.values[i];
            break;
        }
    }

    if (!YAJL_IS_ARRAY(enrich)) {
        return 0;
    }

    for (i = 0; i < enrich->u.array.len; i++) {
        v = enrich->u.array.values[i];
        if (YAJL_IS_STRING(v) && strcmp(v->u.string, "line_items") == 0) {
            return 1;
        }
    }

    return 0;
}


static int
rule_needs(const cfg_rule *r, const job *j)
{
    int  needs;

    if (!rule_matches_record(r, j)) {
        return 0;
    }

    needs = 0;

    if ((r->product.n > 0 || r->price.n > 0 || rule_uses_items(r))
        && line_items_missing(j))
    {
        needs |= RULES_NEED_LINE_ITEMS;
    }

    /* only a subscription's start date can tell */
    if (r->min_tenure_days >= 0 && j->subscription != NULL
        && job_tenure_days(j) < 0)
    {
        needs |= RULES_NEED_TENURE;
    }

    return needs;
}


int
rules_needs(const ss_config *c, const job *j)
{
    const cfg_rule  *pr;
    size_t           i, n;
    int              needs;

    needs = 0;
    pr = preset_rules(c->preset, &n);

    for (i = 0; i < n; i++) {
        needs |= rule_needs(&pr[i], j);
    }

    for (i = 0; i < c->nrules; i++) {
        needs |= rule_needs(&c->rules[i], j);
    }

    return needs;
}


/* ---- plans ---- */

typedef struct {
    const cfg_rule  *rule;
    int              index;     /* in the config; -1 for a preset's */
} matched_rule;

typedef struct {
    plan_field  *v;
    size_t       n;
} field_list;


static void
rules_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
rules_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


static void
field_list_free(field_list *fl)
{
    size_t  i;

    for (i = 0; i < fl->n; i++) {
        free(fl->v[i].value);
    }

    free(fl->v);
    fl->v = NULL;
    fl->n = 0;
}


/* where a rule is, for errors */
static void
rule_where(const matched_rule *m, char *buf, size_t len)
{
    if (m->index < 0) {
        snprintf(buf, len, "preset rule");
    } else {
        snprintf(buf, len, "rule %d (line %d)", m->index + 1, m->rule->line);
    }
}


/*
 * Expands each template into fl, skipping keys fl already has (the first
 * rule to set a field wins) and fields whose template names an absent
 * value. Keys are borrowed from the rule; values are owned by fl.
 */
static int
fields_expand(field_list *fl, const plan_field *f, size_t n,
    const job *j, const matched_rule *m, char *err, size_t errlen)
{
    plan_field  *v;
    char         buf[TEMPLATE_VALUE_MAX], where[64];
    size_t       i, k;
    int          rc;

    for (i = 0; i < n; i++) {
        for (k = 0; k < fl->n; k++) {
            if (strcmp(fl->v[k].key, f[i].key) == 0) {
                break;
            }
        }

        if (k < fl->n) {
            continue;
        }

        rc = expand(f[i].value, j, buf, sizeof(buf));
        if (rc == TPL_ABSENT) {
            continue;
        }

        if (rc != 0) {
            rule_where(m, where, sizeof(where));
            rules_err(err, errlen, "%s: \"%s\" is invalid or expands to "
                      "more than %d bytes", where, f[i].key,
                      TEMPLATE_VALUE_MAX - 1);
            return -1;
        }

        v = realloc(fl->v, (fl->n + 1) * sizeof(plan_field));
        if (v == NULL) {
            rules_err(err, errlen, "out of memory");
            return -1;
        }

        fl->v = v;
        fl->v[fl->n].key = f[i].key;
        fl->v[fl->n].value = strdup(buf);
        if (fl->v[fl->n].value == NULL) {
            rules_err(err, errlen, "out of memory");
            return -1;
        }

        fl->n++;
    }

    return 0;
}


static int
plan_has(const plan *p, op_kind kind, const char *name)
{
    size_t  i;

    for (i = 0; i < p->nops; i++) {
        if (p->ops[i].kind != kind) {
            continue;
        }

        if (name == NULL ? p->ops[i].name == NULL
                         : p->ops[i].name && strcmp(p->ops[i].name, name) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Adds one op named by a template, unless the name names an absent value
 * or the plan has the same op already.
 */
static int
add_named(plan *p, op_kind kind, const char *tpl, const plan_field *fields,
    size_t nfields, const job *j, const matched_rule *m, char *err,
    size_t errlen)
{
    char  name[TEMPLATE_VALUE_MAX], where[64];
    int   rc;

    rc = expand(tpl, j, name, sizeof(name));
    if (rc == TPL_ABSENT || (rc == 0 && name[0] == '\0')) {
        return 0;
    }

    if (rc != 0) {
        rule_where(m, where, sizeof(where));
        rules_err(err, errlen, "%s: %s \"%s\" is invalid or expands to more "
                  "than %d bytes", where, op_kind_name(kind), tpl,
                  TEMPLATE_VALUE_MAX - 1);
        return -1;
    }

    if (plan_has(p, kind, name)) {
        return 0;
    }

    if (plan_add(p, kind, name, fields, nfields, m->index) != 0) {
        rules_err(err, errlen, "out of memory");
        return -1;
    }

    return 0;
}


static int
add_each(plan *p, op_kind kind, const cfg_strings *names, const job *j,
    const matched_rule *m, char *err, size_t errlen)
{
    size_t  i;

    for (i = 0; i < names->n; i++) {
        if (add_named(p, kind, names->v[i], NULL, 0, j, m, err, errlen)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* one rule's operations, in the order config.h gives */
static int
add_rule_ops(plan *p, const matched_rule *m, const job *j, char *err,
    size_t errlen)
{
    const cfg_rule    *r;
    const plan_field  *props;
    field_list         fl;
    size_t             nprops;
    int                rc;

    r = m->rule;

    if (add_each(p, OP_TAG, &r->tag, j, m, err, errlen) != 0
        || add_each(p, OP_UNTAG, &r->untag, j, m, err, errlen) != 0
        || add_each(p, OP_SEQUENCE, &r->sequence, j, m, err, errlen) != 0
        || add_each(p, OP_FORM, &r->form, j, m, err, errlen) != 0
        || add_each(p, OP_LIST, &r->list, j, m, err, errlen) != 0)
    {
        return -1;
    }

    /* "fields" went into the upsert: no OP_FIELDS */

    if (r->purchase && !plan_has(p, OP_PURCHASE, NULL)) {
        if (plan_add(p, OP_PURCHASE, NULL, NULL, 0, m->index) != 0) {
            rules_err(err, errlen, "out of memory");
            return -1;
        }
    }

    if (r->track == NULL) {
        return 0;
    }

    props = r->properties;
    nprops = r->nproperties;

    if (nprops == 0) {
        props = default_properties;
        nprops = COUNT(default_properties);
    }

    fl.v = NULL;
    fl.n = 0;

    rc = fields_expand(&fl, props, nprops, j, m, err, errlen);
    if (rc == 0) {
        rc = add_named(p, OP_TRACK, r->track, fl.v, fl.n, j, m, err, errlen);
    }

    field_list_free(&fl);
    return rc;
}


int
rules_plan(const ss_config *c, const job *j, plan *out, char *err,
    size_t errlen)
{
    const cfg_rule  *pr;
    matched_rule    *m;
    field_list       fl;
    size_t           i, n, nm;
    int              rc;

    out->ops = NULL;
    out->nops = 0;

    pr = preset_rules(c->preset, &n);

    m = malloc((n + c->nrules + 1) * sizeof(matched_rule));
    if (m == NULL) {
        rules_err(err, errlen, "out of memory");
        return -1;
    }

    nm = 0;

    for (i = 0; i < n; i++) {
        if (rule_matches(&pr[i], j)) {
            m[nm].rule = &pr[i];
            m[nm++].index = -1;
        }
    }

    for (i = 0; i < c->nrules; i++) {
        if (rule_matches(&c->rules[i], j)) {
            m[nm].rule = &c->rules[i];
            m[nm++].index = (int) i;
        }
    }

    if (nm == 0) {
        free(m);
        return 0;
    }

    /* the upsert carries every matching rule's fields */
    fl.v = NULL;
    fl.n = 0;
    rc = 0;

    for (i = 0; i < nm && rc == 0; i++) {
        rc = fields_expand(&fl, m[i].rule->fields, m[i].rule->nfields, j,
                           &m[i], err, errlen);
    }

    if (rc == 0 && plan_add(out, OP_UPSERT, NULL, fl.v, fl.n, m[0].index)
                   != 0)
    {
        rules_err(err, errlen, "out of memory");
        rc = -1;
    }

    field_list_free(&fl);

    for (i = 0; i < nm && rc == 0; i++) {
        rc = add_rule_ops(out, &m[i], j, err, errlen);
    }

    free(m);

    if (rc != 0) {
        plan_free(out);
        return -1;
    }

    return 0;
}
