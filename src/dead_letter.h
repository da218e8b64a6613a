/*
 * dead_letter.h - the JSON pushed on {P}:dead for a job given up on:
 *
 *   {"record":{...the queue entry...},"error":"kit: tag \"VIP\": HTTP 422:
 *    ...","response":"<the platform's answer, cut>","attempts":3,
 *    "failed_at":1745437580,"consumer":"host:1234"}
 *
 * The entry is embedded as JSON when it is JSON (so `dlq replay` pushes it
 * back as is); otherwise (not JSON, over JOB_RAW_MAX or nested deeper than
 * JOB_DEPTH_MAX) it is kept as the string "raw", cut to DEAD_LETTER_RAW_MAX
 * bytes, with "raw_bytes" giving its full length. "response" is left out
 * when there was none.
 */

#ifndef DEAD_LETTER_H
#define DEAD_LETTER_H

#include <stddef.h>

#define DEAD_LETTER_RAW_MAX       (64 * 1024)
#define DEAD_LETTER_RESPONSE_MAX  2048

/* malloc'd, NUL-terminated; NULL when out of memory */
char *dead_letter_build(const char *raw, size_t len, const char *error,
    const char *response, long long attempts, long long failed_at,
    const char *consumer);

/* 1 if raw[0 .. len-1] is one complete JSON value (UTF-8, no NUL, at most
   JOB_DEPTH_MAX deep) */
int dead_letter_is_json(const char *raw, size_t len);

/*
 * Appends s (len bytes) to buf as a JSON string, quotes included: bytes
 * that are not UTF-8 become \u00XX (read as Latin-1), so the output is
 * always valid JSON; cut at max input bytes, at a character boundary.
 * Returns 0 or -1 (out of memory).
 */
typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} dead_letter_buf;

int dead_letter_quote(dead_letter_buf *b, const char *s, size_t len,
    size_t max);

#endif /* DEAD_LETTER_H */
