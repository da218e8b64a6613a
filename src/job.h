/*
 * job.h - one queued action record, as the consumer works on it.
 *
 * A job is the record the nginx module queued (SPEC section 5), parsed,
 * plus what enrichment found (email, name, line items). Rules, templates
 * and providers read a job only through this header, so they never care
 * whether a fact came from the event or from the Stripe API.
 */

#ifndef JOB_H
#define JOB_H

#include <stddef.h>

#include <yajl/yajl_tree.h>

typedef struct {
    char       *price;         /* "price_..." or NULL */
    char       *product;       /* "prod_..." or NULL */
    char       *description;   /* or NULL */
    long long   quantity;      /* -1 when unknown */
    long long   amount;        /* minor units, -1 when unknown */
} job_item;

typedef struct {
    char       *raw;           /* the queue entry exactly as taken */
    yajl_val    record;        /* raw, parsed */

    /* straight from the record; NULL / -1 when absent */
    const char *id;            /* "evt_..." */
    const char *type;          /* "invoice.paid" */
    const char *action;        /* "renewal" */
    long long   created;
    int         livemode;      /* 1, 0, -1 */
    const char *object_type;
    const char *object_id;
    const char *customer_id;
    const char *subscription;
    const char *currency;
    long long   amount;

    /* the record's, then enrichment's; owned by the job */
    char       *email;
    char       *name;
    char       *first_name;    /* split from name: first word */
    char       *last_name;     /* the rest */

    job_item   *items;         /* the record's items, or the line items */
    size_t      nitems;
    int         items_enriched;

    long long   subscription_start;  /* unix time: record's
                                        "subscription_start", or the Stripe
                                        API's start_date; -1 unknown */
} job;

/*
 * Parses a queue entry (len bytes, need not be NUL-terminated). Returns 0,
 * or -1 with err saying why (not JSON, "v" is not 1, no "id"/"action", over
 * JOB_RAW_MAX, nested deeper than JOB_DEPTH_MAX) so the consumer can
 * dead-letter it.
 */
#define JOB_RAW_MAX  (1024 * 1024)
#define JOB_DEPTH_MAX  64      /* deeper nesting is refused, as the module's */

int job_parse(job *j, const char *raw, size_t len, char *err, size_t errlen);
void job_free(job *j);

/* Enrichment results; each replaces what was there (copies its input). */
int job_set_email(job *j, const char *email);
int job_set_name(job *j, const char *name);
int job_set_items(job *j, const job_item *items, size_t n);

/*
 * Looks up a dotted path over the record with the job's enrichment laid on
 * top: "amount", "customer.email", "items.0.price", "metadata.plan".
 * Writes the value as text into buf (numbers in decimal, booleans as
 * true/false) and returns 0, or returns -1 when absent or not a scalar.
 */
int job_lookup(const job *j, const char *path, char *buf, size_t len);

/* Subscription age in whole days at the event's "created"; -1 unknown. */
long long job_tenure_days(const job *j);

#endif /* JOB_H */
