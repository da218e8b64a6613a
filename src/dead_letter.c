/*
 * dead_letter.c - dead letters as JSON (dead_letter.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "dead_letter.h"
#include "job.h"
#include "json_tree.h"


static int
dead_letter_add(dead_letter_buf *b, const char *s, size_t n)
{
    size_t   cap;
    char    *p;

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }

        p = realloc(b->p, cap);
        if (p == NULL) {
            return -1;
        }

        b->p = p;
        b->cap = cap;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';

    return 0;
}


/* length of the UTF-8 sequence at s (n bytes left), 0 if not one */
static size_t
dead_letter_utf8(const unsigned char *s, size_t n)
{
    size_t          need, i;
    unsigned long   cp;

    if (s[0] < 0x80) {
        return 1;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }

    if (n < need) {
        return 0;
    }

    for (i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }

    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    {
        return 0;
    }

    return need;
}


int
dead_letter_quote(dead_letter_buf *b, const char *s, size_t len, size_t max)
{
    const unsigned char  *u;
    size_t                i, n;
    char                  esc[8];

    if (dead_letter_add(b, "\"", 1) != 0) {
        return -1;
    }

    u = (const unsigned char *) s;

    for (i = 0; i < len; i += n) {
        n = dead_letter_utf8(u + i, len - i);

        if (i + (n ? n : 1) > max) {
            break;
        }

        if (n == 0) {
            snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
            n = 1;
            if (dead_letter_add(b, esc, 6) != 0) {
                return -1;
            }
            continue;
        }

        if (n > 1) {
            if (dead_letter_add(b, s + i, n) != 0) {
                return -1;
            }
            continue;
        }

        switch (u[i]) {
        case '"':
            strcpy(esc, "\\\"");
            break;
        case '\\':
            strcpy(esc, "\\\\");
            break;
        case '\n':
            strcpy(esc, "\\n");
            break;
        case '\r':
            strcpy(esc, "\\r");
            break;
        case '\t':
            strcpy(esc, "\\t");
            break;
        default:
            if (u[i] < 0x20 || u[i] == 0x7f) {
                snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
            } else {
                esc[0] = (char) u[i];
                esc[1] = '\0';
            }
        }

        if (dead_letter_add(b, esc, strlen(esc)) != 0) {
            return -1;
        }
    }

    return dead_letter_add(b, "\"", 1);
}


int
dead_letter_is_json(const char *raw, size_t len)
{
    yajl_handle  h;
    int          ok;

    /* too deep for job_parse (and for any yajl_tree reader of the letter) */
    if (len == 0 || memchr(raw, '\0', len) != NULL
        || json_nesting_exceeds(raw, len, JOB_DEPTH_MAX))
    {
        return 0;
    }

    /* no callbacks: yajl only checks the syntax (and UTF-8) */
    h = yajl_alloc(NULL, NULL, NULL);
    if (h == NULL) {
        return 0;
    }

    ok = yajl_parse(h, (const unsigned char *) raw, len) == yajl_status_ok
         && yajl_complete_parse(h) == yajl_status_ok
         && !json_ends_in_string(raw, len);

    yajl_free(h);
    return ok;
}


char *
dead_letter_build(const char *raw, size_t len, const char *error,
    const char *response, long long attempts, long long failed_at,
    const char *consumer)
{
    dead_letter_buf  b;
    char             num[64];
    int              rc;

    memset(&b, 0, sizeof(b));

    if (len <= JOB_RAW_MAX && dead_letter_is_json(raw, len)) {
        rc = dead_letter_add(&b, "{\"record\":", 10)
             || dead_letter_add(&b, raw, len);

    } else {
        snprintf(num, sizeof(num), ",\"raw_bytes\":%zu", len);
        rc = dead_letter_add(&b, "{\"raw\":", 7)
             || dead_letter_quote(&b, raw, len, DEAD_LETTER_RAW_MAX)
             || dead_letter_add(&b, num, strlen(num));
    }

    rc = rc
         || dead_letter_add(&b, ",\"error\":", 9)
         || dead_letter_quote(&b, error ? error : "", error ? strlen(error)
                              : 0, 4096);

    if (!rc && response != NULL && response[0] != '\0') {
        rc = dead_letter_add(&b, ",\"response\":", 12)
             || dead_letter_quote(&b, response, strlen(response),
                                  DEAD_LETTER_RESPONSE_MAX);
    }

    snprintf(num, sizeof(num), ",\"attempts\":%lld,\"failed_at\":%lld",
             attempts, failed_at);

    rc = rc
         || dead_letter_add(&b, num, strlen(num))
         || dead_letter_add(&b, ",\"consumer\":", 12)
         || dead_letter_quote(&b, consumer ? consumer : "",
                              consumer ? strlen(consumer) : 0, 1024)
         || dead_letter_add(&b, "}", 1);

    if (rc) {
        free(b.p);
        return NULL;
    }

    return b.p;
}
