/*
 * cmd_dlq.h - "stripe-sync dlq": the dead letters in {P}:dead.
 *
 *   stripe-sync dlq [-c FILE] list             one line per letter
 *   stripe-sync dlq [-c FILE] show ID          the whole letter, pretty
 *   stripe-sync dlq [-c FILE] replay ID        back to the queue, next
 *   stripe-sync dlq [-c FILE] replay --all
 *   stripe-sync dlq [-c FILE] purge [ID] --yes
 *
 * A letter's ID is the event id of its record, so it does not change as
 * letters come and go; a letter without one (a queue entry that was not a
 * record) is "dead-" and 12 hex digits of the SHA-256 of the letter.
 *
 * Replay is one script: LREM the letter from {P}:dead, RPUSH its record
 * (the queue entry byte for byte) on {P}:queue, so a crash can neither
 * lose nor duplicate it. Exit status 0, 1 (not found, not replayable,
 * Redis), 2 (usage).
 */

#ifndef CMD_DLQ_H
#define CMD_DLQ_H

#include <stddef.h>
#include <stdio.h>

#define DLQ_ID_MAX  256

/* what "list" shows of one letter, and where its record is */
typedef struct {
    char        id[DLQ_ID_MAX];     /* event id, or "dead-<hex>" */
    char        action[64];         /* "" when absent */
    char        customer[DLQ_ID_MAX];
    long long   attempts;           /* -1 when absent */
    long long   failed_at;          /* -1 when absent */
    char        error[512];         /* the start of it */
    int         replayable;         /* a schema v1 record, id, action */
    const char *why;                /* why not replayable (static) */
    size_t      record_off;         /* the record's bytes in the letter */
    size_t      record_len;
} dlq_letter;

/*
 * Reads a letter. 0, or -1 when it is not a JSON object (then id is still
 * set, to its hash, so it can be shown and purged).
 */
int dlq_letter_parse(const char *text, size_t len, dlq_letter *l);

/*
 * The value of a top-level member of the JSON object in text, as the
 * bytes it was written with: 0 with *off and *vlen, -1 when absent. The
 * text must be valid JSON (this only scans).
 */
int dlq_member_span(const char *text, size_t len, const char *key,
    size_t *off, size_t *vlen);

/* "evt_..  purchase  cus_..  1  2025-04-23T19:46:20Z  <error, 80 chars>" */
void dlq_format_line(const dlq_letter *l, char *buf, size_t len);

/* text re-indented (2 spaces), numbers as written; malloc'd, or NULL */
char *dlq_pretty(const char *text, size_t len, size_t *outlen);

/* the subcommand: argv[0] is "dlq" */
int cmd_dlq(int argc, char **argv);

#endif /* CMD_DLQ_H */
