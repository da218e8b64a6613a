/*
 * libFuzzer target for json_parse(): a differential test against the
 * yajl-based parser it replaced (json_yajl_ref.c). For every input both
 * accept or both refuse, and when both accept the trees are equal: types,
 * member names, values, order. Where the old parser was wrong, the new one
 * refuses what the old one took (json_known_difference()), and nothing
 * else. Each refusal's reason is one printable line naming a byte within
 * the body.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_tree.h"
#include "json_yajl_ref.h"


static unsigned
json_hex4(const uint8_t *h)
{
    unsigned  v, i, c;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = h[i];
        v = v << 4 | (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }

    return v;
}


static int
json_is_hex4(const uint8_t *s, size_t len)
{
    size_t  i;

    if (len < 4) {
        return 0;
    }

    for (i = 0; i < 4; i++) {
        if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0') {
            return 0;
        }
    }

    return 1;
}


/*
 * 1 if a text the old parser accepted holds what it got wrong and the new
 * one refuses: \v or \f as whitespace (not JSON's, RFC 8259 section 2), or
 * a \u escape of a UTF-16 surrogate that is not half of a pair (yajl wrote
 * '?' and dropped the next byte, or made a code point of any two escapes).
 * Exact on a text yajl accepted, where strings are where quotes say.
 */
static int
json_known_difference(const uint8_t *s, size_t len)
{
    size_t    i;
    unsigned  u;
    int       in_string;

    in_string = 0;

    for (i = 0; i < len; i++) {
        if (!in_string) {
            if (s[i] == '\v' || s[i] == '\f') {
                return 1;
            }

            in_string = s[i] == '"';
            continue;
        }

        if (s[i] == '"') {
            in_string = 0;
            continue;
        }

        if (s[i] != '\\' || i + 1 >= len) {
            continue;
        }

        if (s[i + 1] != 'u' || !json_is_hex4(s + i + 2, len - i - 2)) {
            i++;                        /* \" \\ and the like */
            continue;
        }

        u = json_hex4(s + i + 2);

        if (u >= 0xdc00 && u <= 0xdfff) {
            return 1;                   /* a low surrogate first */
        }

        if (u >= 0xd800 && u <= 0xdbff) {
            if (len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u'
                || !json_is_hex4(s + i + 8, 4))
            {
                return 1;
            }

            u = json_hex4(s + i + 8);
            if (u < 0xdc00 || u > 0xdfff) {
                return 1;
            }

            i += 6;                     /* the pair's first half */
        }

        i += 5;
    }

    return 0;
}


static void
json_fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "json: %s; input (%zu bytes): %.*s\n", what, size,
            (int) (size < 400 ? size : 400), (const char *) data);
    abort();
}


/* 1 if the trees at a and b are the same (depth is at most 64) */
static int
json_same(const json_node *a, const json_node *b)
{
    for ( ;; ) {
        if (a == NULL || b == NULL) {
            return a == b;
        }

        if (a->type != b->type
            || (a->key == NULL) != (b->key == NULL)
            || a->key_len != b->key_len
            || (a->key != NULL && memcmp(a->key, b->key, a->key_len) != 0))
        {
            return 0;
        }

        switch (a->type) {

        case JSON_INT:
            if (a->u.i != b->u.i) {
                return 0;
            }
            break;

        case JSON_STRING:
            if (a->u.str.len != b->u.str.len
                || memcmp(a->u.str.s, b->u.str.s, a->u.str.len) != 0)
            {
                return 0;
            }
            break;

        case JSON_OBJECT:
        case JSON_ARRAY:
            if (!json_same(a->u.kids.first, b->u.kids.first)) {
                return 0;
            }
            break;

        default:
            break;
        }

        a = a->next;
        b = b->next;
    }
}


/* what the callers rely on: NUL after names and strings, strict UTF-8 */
static int
json_well_formed(const json_node *n)
{
    for ( ; n != NULL; n = n->next) {
        if (n->key != NULL
            && (n->key[n->key_len] != '\0'
                || !json_utf8_valid((const unsigned char *) n->key,
                                    n->key_len)))
        {
            return 0;
        }

        if (n->type == JSON_STRING
            && (n->u.str.s[n->u.str.len] != '\0'
                || !json_utf8_valid((const unsigned char *) n->u.str.s,
                                    n->u.str.len)))
        {
            return 0;
        }

        if ((n->type == JSON_OBJECT || n->type == JSON_ARRAY)
            && !json_well_formed(n->u.kids.first))
        {
            return 0;
        }
    }

    return 1;
}


/* one printable line, one of json_parse()'s kinds, a byte within the body */
static int
json_reason_ok(const char *reason, size_t size)
{
    const char  *at;
    size_t       i;

    for (i = 0; reason[i] != '\0'; i++) {
        if ((unsigned char) reason[i] < 0x20 || reason[i] == 0x7f) {
            return 0;
        }
    }

    if (strcmp(reason, "body is not JSON: empty body") == 0) {
        return size == 0;
    }

    if (strncmp(reason, "body is not JSON: only whitespace", 33) == 0) {
        return size > 0;
    }

    if (strncmp(reason, "body is not JSON: ", 18) != 0
        && strncmp(reason, "body has a string that is not valid UTF-8: ", 43)
           != 0
        && strncmp(reason, "JSON nesting deeper than 64 levels", 34) != 0)
    {
        return 0;
    }

    at = strstr(reason, " at byte ");
    if (at == NULL) {
        return 0;
    }

    return strtoull(at + 9, NULL, 10) <= size;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_arena   a, b;
    json_node   *got, *want;
    char        *body, reason[160], ref_reason[160];

    /* exactly size bytes: reading body[size] is an error ASan reports */
    body = malloc(size ? size : 1);
    if (body == NULL) {
        return 0;
    }

    memcpy(body, data, size);

    a.head = NULL;
    a.chunk = 512;          /* small: chunks fill up, strings get their own */
    b.head = NULL;
    b.chunk = 65536;

    got = json_parse(&a, body, size, reason, sizeof(reason));
    want = json_yajl_ref_parse(&b, body, size, ref_reason,
                               sizeof(ref_reason));

    if (want != NULL && json_known_difference(data, size)) {
        want = NULL;
        snprintf(ref_reason, sizeof(ref_reason), "(a known difference)");
    }

    if (got == NULL && want != NULL) {
        fprintf(stderr, "json: new refuses: %s\n", reason);
        json_fail("the old parser accepts, the new one refuses", data, size);
    }

    if (got != NULL && want == NULL) {
        fprintf(stderr, "json: old refuses: %s\n", ref_reason);
        json_fail("the old parser refuses, the new one accepts", data, size);
    }

    if (got != NULL && !json_same(got, want)) {
        json_fail("the trees differ", data, size);
    }

    if (got != NULL && !json_well_formed(got)) {
        json_fail("a name or string is not NUL-terminated UTF-8", data, size);
    }

    if (got == NULL && !json_reason_ok(reason, size)) {
        fprintf(stderr, "json: reason: %s\n", reason);
        json_fail("the reason is not one line of a known kind naming a byte "
                  "of the body", data, size);
    }

    json_arena_free(a.head);
    json_arena_free(b.head);
    free(body);

    return 0;
}
