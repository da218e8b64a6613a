/*
 * watermark.h - ordering of state changes to one subscription.
 *
 * Stripe does not deliver in order: a subscription_started can arrive after
 * the subscription_cancelled that followed it. For the actions that change
 * a subscription's state, {P}:wm:<subscription id> holds the newest applied
 * event as "<created>:<event id>"; an event created before it is stale and
 * changes nothing. Events of the same second are all applied, in arrival
 * order; the watermark then keeps the greater event id (bytewise), so every
 * consumer agrees on it. The store's compare-and-set script mirrors
 * watermark_newer() in Lua.
 */

#ifndef WATERMARK_H
#define WATERMARK_H

#include <stddef.h>

/* 1 for the state-changing subscription actions (subscription_started, ...) */
int watermark_applies(const char *action);

/* parses "<created>:<event id>"; 0, or -1 when malformed */
int watermark_parse(const char *wm, long long *created, const char **id);

/* 1 if an event created at `created` is older than the watermark (a
   malformed or NULL watermark makes nothing stale) */
int watermark_is_stale(const char *wm, long long created);

/* 1 if (created, id) should replace the watermark (NULL: always) */
int watermark_newer(const char *wm, long long created, const char *id);

/* writes "<created>:<id>"; -1 if it does not fit */
int watermark_format(char *out, size_t len, long long created,
    const char *id);

#endif /* WATERMARK_H */
