/*
 * consumer.h - "stripe-sync consume": the daemon that drains {P}:queue
 * into the email platform (SPEC 6; docs/operations.md).
 *
 *     consumer *cs = consumer_create(config, path, err, sizeof(err));
 *     signal handlers call consumer_stop(cs) / consumer_reload(cs)
 *     rc = consumer_run(cs);       // returns after a stop
 *     consumer_free(cs);
 *
 * One thread: Redis through store.h (synchronous, short commands; a
 * blocking take only when nothing is held), HTTP through http.h (many
 * requests at once), every job a small state machine moved on by the loop.
 */

#ifndef CONSUMER_H
#define CONSUMER_H

#include <stddef.h>

#include "config.h"

typedef struct consumer  consumer;

/*
 * Takes ownership of c (loaded from path, which SIGHUP reloads). Creates
 * the provider: NULL with err filled when that fails (missing key, ...).
 * Does not touch Redis yet.
 */
consumer *consumer_create(ss_config *c, const char *path, char *err,
    size_t errlen);

/*
 * Runs until consumer_stop(): stops taking, lets started jobs finish for
 * up to shutdown_grace seconds, leaves the rest in its processing list.
 * Returns 0, or -1 with consumer_error() on a fatal error.
 */
int consumer_run(consumer *cs);

void consumer_free(consumer *cs);

/* async-signal-safe: they only set flags the loop reads */
void consumer_stop(consumer *cs);
void consumer_reload(consumer *cs);

const char *consumer_error(const consumer *cs);

#endif /* CONSUMER_H */
