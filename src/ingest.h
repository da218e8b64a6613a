/*
 * ingest.h - what "stripe-sync backfill" and "stripe-sync reconcile" share:
 * Stripe list pages fetched one request at a time (paced by a token
 * bucket, a 429 or a 5xx retried on the same page), and events offered to
 * the queue through action_from_event() and the ONE enqueue script of the
 * webhook path (enqueue_script.h), so both dedupe exactly as it does.
 *
 *     ingest *g = ingest_create(&c, r, dry_run, err, sizeof(err));
 *     while (ingest_fetch(g, &req, &body, &len, &cut) == 1) {
 *         ... for each event:
 *         st = ingest_normalize(json, len, &a);
 *         ingest_offer(g, st, &a, &counts, &res);
 *         action_free(&a);
 *     }
 *     ingest_free(g);
 *
 * Keys: {P}:seen:<event id> and {P}:once:<fact>, both with a lifetime of
 * INGEST_DEDUP_TTL (the module's default stripe_sync_dedup_ttl).
 */

#ifndef INGEST_H
#define INGEST_H

#include <stddef.h>

#include "action.h"
#include "cli_redis.h"
#include "config.h"
#include "provider.h"

#define INGEST_DEDUP_TTL       (30 * 86400)
#define INGEST_RATE_MAX        25      /* requests/s: Stripe's budget */
#define INGEST_ATTEMPTS        5       /* a page, on 408/5xx/no answer */
#define INGEST_ATTEMPTS_429    10      /* a page, on 429 */
#define INGEST_BACKOFF_MS      500     /* doubling, jittered, to ... */
#define INGEST_BACKOFF_MAX_MS  30000

typedef struct ingest  ingest;

/* what happened to the items offered */
typedef struct {
    long long   fetched;    /* items listed */
    long long   queued;     /* pushed on {P}:queue (dry run: would be) */
    long long   seen;       /* event id already seen */
    long long   facts;      /* fact already seen (the webhook got it) */
    long long   ignored;    /* a type or state nothing handles */
    long long   skipped;    /* left out by the caller before normalizing */
    long long   invalid;    /* the normalizer refused it */
} ingest_counts;

typedef enum {
    INGEST_QUEUED = 0,
    INGEST_SEEN,
    INGEST_FACT,
    INGEST_IGNORED,
    INGEST_INVALID
} ingest_result;

/*
 * Uses c's stripe settings (api_base, api_key, rate capped at
 * INGEST_RATE_MAX, timeout) and the connection r (not owned). With
 * dry_run nothing is written to Redis: ingest_offer() only reads whether
 * the event or its fact was seen. NULL with err on error.
 */
ingest *ingest_create(const ss_config *c, cli_redis *r, int dry_run,
    char *err, size_t errlen);
void ingest_free(ingest *g);

/* why the last call failed: one line, never the API key */
const char *ingest_error(const ingest *g);

/* the HTTP status of the last response (0: none came) */
long ingest_status(const ingest *g);

/* set from a signal handler: fetches stop at the next wait */
void ingest_interrupt(void);
int ingest_interrupted(void);

/*
 * GETs req (its body, if any, is freed), waiting for a token first. 408,
 * 429, 5xx and network errors are retried after Retry-After or a backoff
 * (INGEST_ATTEMPTS, INGEST_ATTEMPTS_429 times in all); each retry is said
 * on stderr. Returns 1 with the body (NUL-terminated, valid until the next
 * fetch), 0 when interrupted, -1 on failure (ingest_error()). A truncated
 * body (over HTTP_BODY_MAX) is -1 with *truncated set.
 */
int ingest_fetch(ingest *g, http_request *req, const char **body,
    size_t *len, int *truncated);

/*
 * action_from_event() on event[0 .. len - 1] (which need not be followed
 * by a '\0'): a is filled in every case; action_free() it.
 */
action_status ingest_normalize(const char *event, size_t len, action *a);

/*
 * Offers what ingest_normalize() made of an event: an action goes to the
 * enqueue script (dry run: only looked up); counts it in n and says what
 * happened in *res. 0, or -1 when Redis failed (ingest_error()).
 */
int ingest_offer(ingest *g, action_status st, const action *a,
    ingest_counts *n, ingest_result *res);

/* the email in an action's customer_json, or "" (buf: at least 256) */
const char *ingest_action_email(const action *a, char *buf, size_t len);

/*
 * Time arguments (pure):
 *   duration  "90s", "30m", "72h", "3d", "2w", or plain seconds "3600":
 *             seconds, or -1 when s is none of these (or is 0)
 *   since     "YYYY-MM-DD" (00:00 UTC), unix seconds ("1735689600"), or a
 *             duration with a unit back from now ("30d"): unix time, or -1
 */
long long ingest_parse_duration(const char *s);
long long ingest_parse_since(const char *s, long long now);

/* unix time as "2025-04-23T18:45:06Z" (buf: at least 21 bytes) */
const char *ingest_iso_time(long long t, char *buf, size_t len);

#endif /* INGEST_H */
