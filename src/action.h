/*
 * action.h - normalization of a Stripe event into the action record of
 * SPEC section 5 (the queue message, JSON, schema v1).
 *
 * Pure: bytes in, record out. No nginx, no network. Shared by the nginx
 * module (which enqueues the record) and the stripe-sync tool (backfill,
 * reconcile, tests).
 */

#ifndef ACTION_H
#define ACTION_H

#include <stddef.h>

#define ACTION_SCHEMA_VERSION  1
#define ACTION_RECORD_MAX      (64 * 1024)  /* bound on the encoded record */
#define ACTION_DEPTH_MAX       64           /* deeper JSON is refused */

typedef enum {
    ACTION_OK = 0,     /* a record was built: enqueue it */
    ACTION_IGNORED,    /* a valid event of a type we do not handle */
    ACTION_INVALID     /* not JSON, no id/type, unusable: reject (400) */
} action_status;

/*
 * The result of a normalization. Every string is NUL-terminated and owned
 * by the action (freed by action_free()); NULL means absent.
 */
typedef struct {
    char        *id;            /* event id, "evt_..." */
    char        *type;          /* raw Stripe type, "invoice.paid" */
    const char  *name;          /* action, "payment_failed"; NULL if ignored */
    int          livemode;      /* 1 live, 0 test, -1 absent */

    char        *customer_id;   /* "cus_..." */
    char        *customer_json; /* {"email":..,"name":..} for {P}:customers;
                                   NULL unless an email is known */
    char        *once_key;      /* fact-level dedupe key, "purchase:in_1";
                                   NULL when the action is not once-only */
    const char  *order_key;     /* whose jobs run one at a time, in order:
                                   the record's customer id, else its
                                   email; NULL when it has neither */

    char        *record;        /* the record, JSON schema v1 */
    size_t       record_len;

    char         reason[160];   /* why INVALID or IGNORED, one line */

    void        *mem;           /* private: what backs the strings */
} action;

/*
 * Normalizes the event in body[0 .. len - 1]. body[len] must be '\0' (the
 * callers copy the body into a buffer one byte longer). On ACTION_IGNORED,
 * id and type are set when the body had them. On ACTION_INVALID, reason says
 * what was wrong, e.g. "body is not JSON: ..." or "event has no \"type\"".
 *
 * a needs no initialization; call action_free() after every call.
 */
action_status action_from_event(const char *body, size_t len, action *a);

void action_free(action *a);

#endif /* ACTION_H */
