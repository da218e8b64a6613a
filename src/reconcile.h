/*
 * reconcile.h - "stripe-sync reconcile": the backstop against anything the
 * webhook lost (SPEC 6; docs/operations.md#reconcile).
 *
 * Lists GET /v1/events?created[gte]=<now - window> (Stripe keeps 30 days
 * of events; delivery_success=false with --undelivered) and offers every
 * event to the webhook's enqueue script, normalized from its JSON exactly
 * as listed: an event whose {P}:seen:<id> exists is counted "already
 * seen", a fact already queued "duplicate", an unhandled type "ignored",
 * the rest is queued. Idempotent: safe to run from cron.
 */

#ifndef RECONCILE_H
#define RECONCILE_H

#include <stddef.h>

#define RECONCILE_WINDOW_DEFAULT  "72h"
#define RECONCILE_WINDOW_MAX      (30 * 86400)

/* argv[0] is "reconcile"; the exit status (0, 1; 2 for a usage error) */
int cmd_reconcile(int argc, char **argv);

/*
 * A window ("72h", "3d", "30m", "3600" seconds): seconds, or -1 with err
 * saying why (not a duration; over 30 days).
 */
long long reconcile_window(const char *s, char *err, size_t errlen);

#endif /* RECONCILE_H */
