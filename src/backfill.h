/*
 * backfill.h - "stripe-sync backfill": past purchasers and active
 * subscriptions, read from the Stripe API, queued as if their events had
 * just arrived (SPEC 6; docs/operations.md#backfill).
 *
 *   checkout       GET /v1/checkout/sessions?status=complete, the paid
 *                  ones          -> checkout.session.completed
 *   invoices       GET /v1/invoices?status=paid   -> invoice.paid
 *   subscriptions  GET /v1/subscriptions?status=active
 *                                 -> customer.subscription.created
 *   customers      GET /v1/customers -> customer.created (--only only)
 *
 * Each object is wrapped in a synthetic event, "evt_backfill_<object id>",
 * normalized by action_from_event() and offered to the webhook's enqueue
 * script: a second run adds nothing (the event id is seen), and a purchase
 * a webhook already queued is not queued again (the fact is seen).
 *
 * Resumable: after each page, {P}:backfill:<collection> holds a checkpoint
 * (backfill_checkpoint, as JSON); a rerun with the same --since continues
 * after it, a finished collection is not listed again (--restart: both
 * are ignored).
 */

#ifndef BACKFILL_H
#define BACKFILL_H

#include <stddef.h>

#define BACKFILL_EVENT_PREFIX  "evt_backfill_"

/* argv[0] is "backfill"; the exit status (0, 1; 2 for a usage error) */
int cmd_backfill(int argc, char **argv);

typedef struct {
    const char  *name;      /* "checkout": --only, the checkpoint key */
    const char  *path;      /* "checkout/sessions": GET /v1/<path> */
    const char  *status;    /* the list's status filter, or NULL */
    const char  *type;      /* the synthetic event's type */
    int          by_default;
} backfill_collection;

/* the collections, in the order they run; a NULL name ends the array */
extern const backfill_collection  backfill_collections[];

/* by --only name, or NULL */
const backfill_collection *backfill_collection_find(const char *name);

/*
 * The synthetic event around an object (obj[0 .. len - 1], its JSON as
 * Stripe sent it):
 *
 *   {"id":"evt_backfill_<id>","object":"event","type":"<type>",
 *    "created":<created>,"livemode":<livemode>,"api_version":null,
 *    "data":{"object":<obj>}}
 *
 * created < 0 and livemode < 0 leave those members out. Malloc'd and
 * NUL-terminated, its length in *outlen; NULL when out of memory.
 */
char *backfill_envelope(const char *type, const char *id, long long created,
    int livemode, const char *obj, size_t len, size_t *outlen);

/* what {P}:backfill:<collection> holds */
typedef struct {
    long long   since;          /* created[gte] used; -1: none */
    char        since_arg[64];  /* --since as written; "": none */
    char        after[256];     /* starting_after for the next page;
                                   "": from the newest */
    int         done;           /* the last page was read */
    long long   pages;          /* read so far, over every run */
    long long   fetched;        /* objects read so far */
    long long   updated;        /* unix time of the last write */
} backfill_checkpoint;

/*
 * {"since":..,"since_arg":"..","after":"..","done":false,"pages":..,
 *  "fetched":..,"updated":..}: malloc'd, NULL when out of memory.
 */
char *backfill_checkpoint_encode(const backfill_checkpoint *cp);

/* 0, or -1 with err (not JSON, a member of the wrong type, too long) */
int backfill_checkpoint_decode(const char *s, size_t len,
    backfill_checkpoint *cp, char *err, size_t errlen);

#endif /* BACKFILL_H */
