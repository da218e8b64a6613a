/*
 * logging.h - the daemon's log: one line per message on stderr, each
 * starting with the UTC time in ISO 8601 with milliseconds:
 *
 *     2025-04-23T18:45:06.123Z redis: connected to 127.0.0.1:6379
 *
 * Nothing logged may hold a secret (API keys, webhook secrets, the Redis
 * password): callers pass ids, names and provider error excerpts only.
 */

#ifndef LOGGING_H
#define LOGGING_H

#include "plan.h"

#include <stddef.h>

#define LOGGING_TIME_LEN  sizeof("2025-04-23T18:45:06.123Z")

/* writes the current UTC time into buf (LOGGING_TIME_LEN bytes) */
void logging_time(char *buf);

/* one line: the time, a space, the message, a newline; written at once */
void logging_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Appends s to out as the inside of a double-quoted log value: '"' and '\'
 * escaped, control characters as \n, \t or \xNN; cut (with "...") to fit
 * len bytes. Returns out.
 */
char *logging_quote(const char *s, char *out, size_t len);

/* an operation as logs and "check" name it: tag "Course buyer", upsert */
void logging_op_label(op_kind kind, const char *name, char *buf, size_t len);

#endif /* LOGGING_H */
