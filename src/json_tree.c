/*
 * json_tree.c - a JSON body parsed into a tree of json_node in an arena.
 *
 * One pass over the text (RFC 8259) and no recursion: the containers being
 * filled wait on a stack of JSON_DEPTH_MAX, and each node is appended to
 * the one on top. Strings are scanned eight bytes at a time up to a byte
 * that needs a look (a quote, a backslash, a control character, non-ASCII),
 * checked as strict UTF-8 on the way, then copied once into the arena: a
 * string value shares one allocation with its node. Integers are read as
 * they are scanned. The tree is freed in one pass over the arena's chunks.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_tree.h"


#define ARENA_ALIGN  16

#define NOT_JSON     "body is not JSON: "
#define NOT_UTF8     "body has a string that is not valid UTF-8: "

#define ONES         0x0101010101010101ULL      /* a byte of 1s, 8 times */
#define HIGHS        0x8080808080808080ULL


/* a new chunk for n bytes (a multiple of ARENA_ALIGN) */
static void *
json_arena_grow(json_arena *ar, size_t n)
{
    json_arena_chunk  *c;
    size_t        size;

    size = n > ar->chunk ? n : ar->chunk;

    c = malloc(sizeof(json_arena_chunk) + size);
    if (c == NULL) {
        return NULL;
    }

    c->size = size;
    c->used = n;

    /* A big block gets a chunk of its own, behind the one being filled. */
    if (n > ar->chunk / 4 && ar->head != NULL) {
        c->next = ar->head->next;
        ar->head->next = c;

    } else {
        c->next = ar->head;
        ar->head = c;
    }

    return c->data;
}


/* n bytes from the chunk being filled, or from a new one (the parser's
   hot path: inline) */
static inline void *
json_take(json_arena *ar, size_t n)
{
    json_arena_chunk  *c;

    n = (n + ARENA_ALIGN - 1) & ~((size_t) ARENA_ALIGN - 1);
    c = ar->head;

    if (c != NULL && c->size - c->used >= n) {
        c->used += n;
        return c->data + c->used - n;
    }

    return json_arena_grow(ar, n);
}


void *
json_arena_alloc(json_arena *ar, size_t n)
{
    if (n > SIZE_MAX / 2) {
        return NULL;
    }

    return json_take(ar, n);
}


char *
json_arena_strndup(json_arena *ar, const char *s, size_t len)
{
    char  *p;

    p = json_arena_alloc(ar, len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


void
json_arena_free(json_arena_chunk *c)
{
    json_arena_chunk  *next;

    while (c != NULL) {
        next = c->next;
        free(c);
        c = next;
    }
}




/* Strict UTF-8 (RFC 3629): yajl lets overlong forms and surrogates by. */
int
json_utf8_valid(const unsigned char *s, size_t len)
{
    size_t    i, k, n;
    unsigned  c;
    uint64_t  w;

    i = 0;

    while (i < len) {

        /* ASCII eight bytes at a time: most of what Stripe sends */
        if (len - i >= 8) {
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }

        c = s[i];

        if (c < 0x80) {
            i++;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;

        } else {
            return 0;
        }

        if (len - i <= n) {
            return 0;
        }

        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }

        if ((c == 0xe0 && s[i + 1] < 0xa0)         /* overlong */
            || (c == 0xed && s[i + 1] > 0x9f)      /* a surrogate */
            || (c == 0xf0 && s[i + 1] < 0x90)      /* overlong */
            || (c == 0xf4 && s[i + 1] > 0x8f))     /* past U+10FFFF */
        {
            return 0;
        }

        i += n + 1;
    }

    return 1;
}


/* ---- the parser's state, and its reasons ---- */

typedef struct {
    json_arena           *ar;
    const unsigned char  *start;    /* the body: offsets in reasons count */
    const unsigned char  *end;      /* from start */
    json_node            *root;
    json_node            *parent;   /* the container being filled, or NULL */
    const char           *key;      /* name of the member to come */
    size_t                key_len;
    char                 *reason;
    size_t                reason_size;
} json_parser;


static void json_error(json_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


/* RFC 8259's four: yajl also took \v and \f */
static const unsigned char  json_ws[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1
};


static void
json_error(json_parser *p, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(p->reason, p->reason_size, fmt, ap);
    va_end(ap);
}


static size_t
json_offset(json_parser *p, const unsigned char *at)
{
    return (size_t) (at - p->start);
}


/* c as a reason shows it: 'x', or 0x0a when it is not printable */
static const char *
json_char(unsigned c, char *buf, size_t size)
{
    if (c >= 0x20 && c < 0x7f) {
        snprintf(buf, size, "'%c'", c);

    } else {
        snprintf(buf, size, "0x%02x", c);
    }

    return buf;
}


static void
json_unexpected(json_parser *p, const unsigned char *at, const char *expected)
{
    char  c[8];

    if (at == p->end) {
        json_error(p, NOT_JSON "unexpected end of body at byte %zu, "
                   "expected %s", json_offset(p, at), expected);

    } else {
        json_error(p, NOT_JSON "unexpected %s at byte %zu, expected %s%s",
                   json_char(*at, c, sizeof(c)), json_offset(p, at),
                   expected, *at == '/' ? " (comments are not JSON)" : "");
    }
}


static void
json_unterminated(json_parser *p, const unsigned char *s)
{
    json_error(p, NOT_JSON "unterminated string starting at byte %zu",
               json_offset(p, s));
}


static void
json_out_of_memory(json_parser *p)
{
    json_error(p, "out of memory");
}


/* eight bytes from c, the first in the low bits whatever the byte order */
static inline uint64_t
json_load8(const unsigned char *c)
{
    uint64_t  w;

    memcpy(&w, c, 8);

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif

    return w;
}


static inline const unsigned char *
json_skip_ws(const unsigned char *c, const unsigned char *end)
{
    uint64_t  x;

    while (c < end && *c <= ' ' && json_ws[*c]) {
        c++;

        /* pretty-printed bodies (Stripe's are) indent: the spaces that
           follow, eight at a time, up to the first byte that is not one */
        while (end - c >= 8) {
            x = json_load8(c) ^ (ONES * ' ');

            if (x != 0) {
                c += __builtin_ctzll(x) >> 3;
                break;
            }

            c += 8;
        }
    }

    return c;
}


/* n, a node, put in the tree: the member p->key, or the next element */
static inline void
json_link(json_parser *p, json_node *n, json_type type)
{
    json_node  *parent;

    n->next = NULL;
    n->key = NULL;
    n->key_len = 0;
    n->type = type;
    n->u.kids.first = NULL;     /* zeroes all of the union */
    n->u.kids.last = NULL;

    parent = p->parent;

    if (parent == NULL) {
        p->root = n;
        return;
    }

    if (parent->type == JSON_OBJECT) {
        n->key = p->key;
        n->key_len = p->key_len;
    }

    if (parent->u.kids.last == NULL) {
        parent->u.kids.first = n;

    } else {
        parent->u.kids.last->next = n;
    }

    parent->u.kids.last = n;
}


static inline json_node *
json_add(json_parser *p, json_type type)
{
    json_node  *n;

    n = json_take(p->ar, sizeof(json_node));
    if (n == NULL) {
        json_out_of_memory(p);
        return NULL;
    }

    json_link(p, n, type);

    return n;
}


/* ---- strings ---- */

/*
 * The high bit of each byte of w that is '"', '\\', a control character or
 * not ASCII is set in the result: q - 1 and b - 1 set it where q or b is 0,
 * w - 0x20 where w is below 0x20, w itself from 0x80 on. A borrow sets bits
 * above the first such byte too, never below it: only the first is used.
 */
static inline uint64_t
json_special(uint64_t w)
{
    uint64_t  q, b;

    q = w ^ (ONES * '"');
    b = w ^ (ONES * '\\');

    return ((q - ONES) | (b - ONES) | (w - ONES * 0x20) | w) & HIGHS;
}


static inline int
json_is_special(unsigned c)
{
    return c == '"' || c == '\\' || c < 0x20 || c >= 0x80;
}


/* the first byte from c on that needs a look in a string, or end */
static inline const unsigned char *
json_scan(const unsigned char *c, const unsigned char *end)
{
    uint64_t  m;

    while (end - c >= 8) {
        m = json_special(json_load8(c));
        if (m != 0) {
            return c + (__builtin_ctzll(m) >> 3);
        }

        c += 8;
    }

    while (c < end && !json_is_special(*c)) {
        c++;
    }

    return c;
}


static inline int
json_is_hex(unsigned c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}


static inline unsigned
json_hex_value(unsigned c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}


/*
 * The four hex digits after the "\u" at e (a backslash) in the string
 * opened at s: their value, or -1 with the reason set.
 */
static long
json_hex4(json_parser *p, const unsigned char *s, const unsigned char *e)
{
    unsigned  c, v;
    long      i;

    v = 0;

    for (i = 2; i < 6; i++) {
        if (p->end - e <= i) {
            json_unterminated(p, s);
            return -1;
        }

        c = e[i];

        if (!json_is_hex(c)) {
            json_error(p, NOT_JSON "invalid \\u escape at byte %zu, expected "
                       "4 hex digits", json_offset(p, e));
            return -1;
        }

        v = v << 4 | json_hex_value(c);
    }

    return v;
}


/*
 * The length of the escape at e (a backslash) in the string opened at s,
 * or 0 with the reason set. A \u escape of a UTF-16 surrogate is one half
 * of a pair, "\ud83d\ude00", or not a character.
 */
static size_t
json_escape_check(json_parser *p, const unsigned char *s,
    const unsigned char *e)
{
    long  hi, lo;
    char  c[8];

    if (p->end - e < 2) {
        json_unterminated(p, s);
        return 0;
    }

    switch (e[1]) {

    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
        return 2;

    case 'u':
        break;

    default:
        if (e[1] > 0x20 && e[1] < 0x7f) {
            json_error(p, NOT_JSON "invalid escape \\%c at byte %zu", e[1],
                       json_offset(p, e));

        } else {
            json_error(p, NOT_JSON "invalid escape: '\\' then %s at byte %zu",
                       json_char(e[1], c, sizeof(c)), json_offset(p, e));
        }

        return 0;
    }

    hi = json_hex4(p, s, e);
    if (hi < 0) {
        return 0;
    }

    if (hi < 0xd800 || hi > 0xdfff) {
        return 6;
    }

    if (hi <= 0xdbff) {
        if (p->end - e <= 6 || (e[6] == '\\' && p->end - e == 7)) {
            json_unterminated(p, s);
            return 0;
        }

        if (e[6] == '\\' && e[7] == 'u') {
            lo = json_hex4(p, s, e + 6);
            if (lo < 0) {
                return 0;
            }

            if (lo >= 0xdc00 && lo <= 0xdfff) {
                return 12;
            }
        }
    }

    json_error(p, NOT_UTF8 "unpaired UTF-16 surrogate \\%.5s at byte %zu",
               (const char *) e + 1, json_offset(p, e));

    return 0;
}


/*
 * The length of the UTF-8 sequence at c (a byte >= 0x80) in the string
 * opened at s, or 0 with the reason set: strict UTF-8 (RFC 3629), no
 * overlong forms, no surrogates, nothing past U+10FFFF.
 */
static size_t
json_utf8_check(json_parser *p, const unsigned char *s, const unsigned char *c)
{
    unsigned     lead, lo, hi;
    size_t       i, n;
    const char  *why;

    lead = c[0];
    lo = 0x80;
    hi = 0xbf;

    if (lead < 0xc0) {
        json_error(p, NOT_UTF8 "unexpected continuation byte 0x%02x at byte "
                   "%zu", lead, json_offset(p, c));
        return 0;
    }

    if (lead < 0xc2) {
        why = "overlong form";
        goto invalid;
    }

    if (lead < 0xe0) {
        n = 2;

    } else if (lead < 0xf0) {
        n = 3;
        lo = lead == 0xe0 ? 0xa0 : 0x80;    /* overlong below */
        hi = lead == 0xed ? 0x9f : 0xbf;    /* surrogates above */

    } else if (lead < 0xf5) {
        n = 4;
        lo = lead == 0xf0 ? 0x90 : 0x80;    /* overlong below */
        hi = lead == 0xf4 ? 0x8f : 0xbf;    /* past U+10FFFF above */

    } else if (lead < 0xf8) {
        why = "code point past U+10FFFF";
        goto invalid;

    } else {
        json_error(p, NOT_UTF8 "invalid byte 0x%02x at byte %zu", lead,
                   json_offset(p, c));
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((size_t) (p->end - c) <= i) {
            json_unterminated(p, s);
            return 0;
        }

        if (c[i] < 0x80 || c[i] > 0xbf) {
            why = "incomplete sequence";
            goto invalid;
        }

        if (i == 1 && (c[1] < lo || c[1] > hi)) {
            why = c[1] < lo ? "overlong form"
                  : lead == 0xed ? "UTF-16 surrogate"
                  : "code point past U+10FFFF";
            goto invalid;
        }
    }

    return n;

invalid:

    json_error(p, NOT_UTF8 "%s at byte %zu", why, json_offset(p, c));
    return 0;
}


/*
 * Checks the rest of the string opened at s from c, its first byte that
 * needs a look: returns the closing quote and sets *esc to the first
 * backslash (NULL when there is none); NULL with the reason set when the
 * string is not valid.
 */
static const unsigned char *
json_string_end(json_parser *p, const unsigned char *s,
    const unsigned char *c, const unsigned char **esc)
{
    size_t  n;
    char    ch[8];

    *esc = NULL;

    for ( ;; ) {
        if (c == p->end) {
            json_unterminated(p, s);
            return NULL;
        }

        if (*c == '"') {
            return c;
        }

        if (*c == '\\') {
            if (*esc == NULL) {
                *esc = c;
            }

            n = json_escape_check(p, s, c);

        } else if (*c < 0x20) {
            json_error(p, NOT_JSON "unescaped control character %s in a "
                       "string at byte %zu", json_char(*c, ch, sizeof(ch)),
                       json_offset(p, c));
            return NULL;

        } else {
            n = json_utf8_check(p, s, c);
        }

        if (n == 0) {
            return NULL;
        }

        c = json_scan(c + n, p->end);
    }
}


static size_t
json_utf8_put(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = cp;
        return 1;
    }

    if (cp < 0x800) {
        d[0] = 0xc0 | cp >> 6;
        d[1] = 0x80 | (cp & 0x3f);
        return 2;
    }

    if (cp < 0x10000) {
        d[0] = 0xe0 | cp >> 12;
        d[1] = 0x80 | (cp >> 6 & 0x3f);
        d[2] = 0x80 | (cp & 0x3f);
        return 3;
    }

    d[0] = 0xf0 | cp >> 18;
    d[1] = 0x80 | (cp >> 12 & 0x3f);
    d[2] = 0x80 | (cp >> 6 & 0x3f);
    d[3] = 0x80 | (cp & 0x3f);
    return 4;
}


static unsigned
json_hex4_value(const unsigned char *h)
{
    return json_hex_value(h[0]) << 12 | json_hex_value(h[1]) << 8
           | json_hex_value(h[2]) << 4 | json_hex_value(h[3]);
}


/*
 * Writes the text from c up to the closing quote q, whose escapes
 * json_string_end() checked and the first of which is at e, unescaped to d
 * with a NUL after it: returns its length (never more than q - c).
 */
static size_t
json_unescape(char *d, const unsigned char *c, const unsigned char *q,
    const unsigned char *e)
{
    char      *start;
    unsigned   cp;

    start = d;

    while (e != NULL) {
        memcpy(d, c, e - c);
        d += e - c;

        switch (e[1]) {
        case 'b':  *d++ = '\b'; break;
        case 'f':  *d++ = '\f'; break;
        case 'n':  *d++ = '\n'; break;
        case 'r':  *d++ = '\r'; break;
        case 't':  *d++ = '\t'; break;
        case 'u':  break;
        default:   *d++ = e[1]; break;      /* " \ / */
        }

        c = e + 2;

        if (e[1] == 'u') {
            cp = json_hex4_value(e + 2);
            c = e + 6;

            if (cp >= 0xd800 && cp <= 0xdbff) {     /* a pair: checked */
                cp = 0x10000 + ((cp - 0xd800) << 10)
                     + (json_hex4_value(e + 8) - 0xdc00);
                c = e + 12;
            }

            d += json_utf8_put(d, cp);
        }

        e = memchr(c, '\\', q - c);
    }

    memcpy(d, c, q - c);
    d += q - c;
    *d = '\0';

    return d - start;
}


/*
 * The string whose opening quote is at s, copied into the arena, unescaped
 * and NUL-terminated, after room for `before` bytes (its node): returns the
 * block and sets *str, *len and *next (past the closing quote); NULL with
 * the reason set when the string is not valid.
 */
static inline __attribute__((always_inline)) void *   /* a call: +25% */
json_string(json_parser *p, const unsigned char *s, size_t before,
    char **str, size_t *len, const unsigned char **next)
{
    const unsigned char  *q, *esc;
    char                 *block;
    size_t                n;

    q = json_scan(s + 1, p->end);
    esc = NULL;

    /* the usual string: plain ASCII up to its closing quote */
    if (q == p->end || *q != '"') {
        q = json_string_end(p, s, q, &esc);
        if (q == NULL) {
            return NULL;
        }
    }

    n = q - s - 1;      /* the bytes between the quotes */

    block = json_take(p->ar, before + (n < 16 ? 16 : n + 1));
    if (block == NULL) {
        json_out_of_memory(p);
        return NULL;
    }

    *str = block + before;

    if (esc != NULL) {
        *len = json_unescape(*str, s + 1, q, esc);

    } else {
        /* most names and values are short: a copy of a fixed 16 bytes
           is two moves, not a call */
        if (n < 16 && p->end - s > 16) {
            memcpy(*str, s + 1, 16);

        } else {
            memcpy(*str, s + 1, n);
        }

        (*str)[n] = '\0';
        *len = n;
    }

    *next = q + 1;

    return block;
}


/* ---- numbers and literals ---- */

static inline int
json_is_digit(const unsigned char *c, const unsigned char *end)
{
    return c < end && (unsigned) (*c - '0') <= 9;
}


/* past the run of digits at c; NULL with the reason set when there is none
   (where: where in the number they were wanted) */
static const unsigned char *
json_digits(json_parser *p, const unsigned char *c, const char *where)
{
    if (!json_is_digit(c, p->end)) {
        json_error(p, NOT_JSON "no digit %s at byte %zu", where,
                   json_offset(p, c));
        return NULL;
    }

    do {
        c++;
    } while (json_is_digit(c, p->end));

    return c;
}


/*
 * The number at s, added to the tree: a JSON_INT when it is an integer
 * within +-LLONG_MAX (the consumer's yajl cannot read -2^63 back), else a
 * JSON_NUMBER. Returns the byte past it, or NULL with the reason set.
 */
static const unsigned char *
json_number(json_parser *p, const unsigned char *s)
{
    const unsigned char  *c, *digits, *end;
    unsigned long long    v;
    json_node            *n;
    int                   integer;

    end = p->end;
    c = s + (*s == '-');
    digits = c;
    v = 0;
    integer = 1;

    if (!json_is_digit(c, end)) {
        json_error(p, NOT_JSON "no digit after '-' in a number at byte %zu",
                   json_offset(p, c));
        return NULL;
    }

    if (*c == '0') {
        c++;

        if (json_is_digit(c, end)) {
            json_error(p, NOT_JSON "leading zero in a number at byte %zu",
                       json_offset(p, c - 1));
            return NULL;
        }

    } else {
        do {
            v = v * 10 + (*c++ - '0');     /* wraps past 19 digits: unused */
        } while (json_is_digit(c, end));
    }

    if (c < end && *c == '.') {
        integer = 0;

        c = json_digits(p, c + 1, "after '.' in a number");
        if (c == NULL) {
            return NULL;
        }
    }

    if (c < end && (*c == 'e' || *c == 'E')) {
        c++;
        integer = 0;

        if (c < end && (*c == '+' || *c == '-')) {
            c++;
        }

        c = json_digits(p, c, "in the exponent of a number");
        if (c == NULL) {
            return NULL;
        }
    }

    n = json_add(p, JSON_NUMBER);
    if (n == NULL) {
        return NULL;
    }

    if (integer && c - digits <= 19 && v <= LLONG_MAX) {
        n->type = JSON_INT;
        n->u.i = *s == '-' ? -(long long) v : (long long) v;
    }

    return c;
}


static inline const unsigned char *
json_literal(json_parser *p, const unsigned char *s, const char *word,
    size_t len, json_type type)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s + i == p->end || s[i] != (unsigned char) word[i]) {
            json_error(p, NOT_JSON "invalid literal at byte %zu, expected %s",
                       json_offset(p, s), word);
            return NULL;
        }
    }

    if (json_add(p, type) == NULL) {
        return NULL;
    }

    return s + len;
}


/* ---- the parser ---- */

/*
 * Three places in the text, three labels: at a value (value:), past one
 * (next:, which closes containers: close:) and at a member's name
 * (member:). Each value is added to the container on top of open[] as it
 * is read; a container is pushed when it opens and popped when it closes.
 */
json_node *
json_parse(json_arena *ar, const char *body, size_t len, char *reason,
    size_t reason_size)
{
    json_parser           p;
    json_node            *open[JSON_DEPTH_MAX];     /* being filled */
    json_node            *n;
    const unsigned char  *c, *end;
    char                 *s;
    size_t                slen;
    int                   depth, closing;

    if (len == 0) {
        snprintf(reason, reason_size, NOT_JSON "empty body");
        return NULL;
    }

    p.ar = ar;
    p.start = (const unsigned char *) body;
    p.end = p.start + len;
    p.root = NULL;
    p.parent = NULL;
    p.key = NULL;
    p.key_len = 0;
    p.reason = reason;
    p.reason_size = reason_size;

    end = p.end;
    depth = 0;

    c = json_skip_ws(p.start, end);
    if (c == end) {
        json_error(&p, NOT_JSON "only whitespace (%zu bytes)", len);
        return NULL;
    }

value:

    /* c: at the first byte of a value (whitespace skipped) */

    if (c == end) {
        json_unexpected(&p, c, "a value");
        return NULL;
    }

    switch (*c) {

    case '{':
    case '[':
        if (depth == JSON_DEPTH_MAX) {
            json_error(&p, "JSON nesting deeper than %d levels at byte %zu",
                       JSON_DEPTH_MAX, json_offset(&p, c));
            return NULL;
        }

        n = json_add(&p, *c == '{' ? JSON_OBJECT : JSON_ARRAY);
        if (n == NULL) {
            return NULL;
        }

        open[depth++] = n;
        p.parent = n;

        c = json_skip_ws(c + 1, end);

        if (c < end && *c == (n->type == JSON_OBJECT ? '}' : ']')) {
            c++;
            goto close;
        }

        if (n->type == JSON_OBJECT) {
            goto member;
        }

        goto value;

    case '"':
        n = json_string(&p, c, sizeof(json_node), &s, &slen, &c);
        if (n == NULL) {
            return NULL;
        }

        json_link(&p, n, JSON_STRING);
        n->u.str.s = s;
        n->u.str.len = slen;
        break;

    case 't':
        c = json_literal(&p, c, "true", 4, JSON_TRUE);
        break;

    case 'f':
        c = json_literal(&p, c, "false", 5, JSON_FALSE);
        break;

    case 'n':
        c = json_literal(&p, c, "null", 4, JSON_NULL);
        break;

    case '-': case '0': case '1': case '2': case '3': case '4': case '5':
    case '6': case '7': case '8': case '9':
        c = json_number(&p, c);
        break;

    default:
        json_unexpected(&p, c, "a value");
        return NULL;
    }

    if (c == NULL) {
        return NULL;
    }

next:

    /* c: past a value; what follows it in its container, if any */

    if (depth == 0) {
        c = json_skip_ws(c, end);

        if (c != end) {
            json_error(&p, NOT_JSON "trailing garbage at byte %zu",
                       json_offset(&p, c));
            return NULL;
        }

        return p.root;
    }

    c = json_skip_ws(c, end);
    closing = p.parent->type == JSON_OBJECT ? '}' : ']';

    if (c < end && *c == ',') {
        c = json_skip_ws(c + 1, end);

        if (closing == '}') {
            goto member;
        }

        goto value;
    }

    if (c < end && *c == closing) {
        c++;
        goto close;
    }

    json_unexpected(&p, c, closing == '}' ? "',' or '}'" : "',' or ']'");
    return NULL;

close:

    depth--;
    p.parent = depth > 0 ? open[depth - 1] : NULL;
    goto next;

member:

    /* c: at a member's name (whitespace skipped) */

    if (c == end || *c != '"') {
        json_unexpected(&p, c, "a member name (a string)");
        return NULL;
    }

    if (json_string(&p, c, 0, &s, &slen, &c) == NULL) {
        return NULL;
    }

    p.key = s;
    p.key_len = slen;

    c = json_skip_ws(c, end);

    if (c == end || *c != ':') {
        json_unexpected(&p, c, "':'");
        return NULL;
    }

    c = json_skip_ws(c + 1, end);
    goto value;
}


const json_node *
json_get(const json_node *obj, const char *key)
{
    const json_node  *n;
    size_t            len;

    if (obj == NULL || obj->type != JSON_OBJECT) {
        return NULL;
    }

    len = strlen(key);

    for (n = obj->u.kids.first; n != NULL; n = n->next) {
        /* the first byte before a call: most names differ there */
        if (n->key_len == len && n->key[0] == key[0]
            && memcmp(n->key, key, len) == 0)
        {
            return n;
        }
    }

    return NULL;
}


const json_node *
json_at(const json_node *n, ...)
{
    va_list      ap;
    const char  *key;

    va_start(ap, n);

    while (n != NULL && (key = va_arg(ap, const char *)) != NULL) {
        n = json_get(n, key);
    }

    va_end(ap);

    return n;
}


const json_node *
json_first(const json_node *array)
{
    if (array == NULL || array->type != JSON_ARRAY) {
        return NULL;
    }

    return array->u.kids.first;
}


int
json_nesting_exceeds(const char *s, size_t len, int max)
{
    size_t  i;
    int     depth, in_string;

    depth = 0;
    in_string = 0;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (s[i] == '\\') {
                i++;
            } else if (s[i] == '"') {
                in_string = 0;
            }
            continue;
        }

        switch (s[i]) {
        case '"':
            in_string = 1;
            break;
        case '[':
        case '{':
            if (++depth > max) {
                return 1;
            }
            break;
        case ']':
        case '}':
            depth--;
            break;
        }
    }

    return 0;
}


int
json_ends_in_string(const char *s, size_t len)
{
    size_t  i;
    int     in_string;

    in_string = 0;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (s[i] == '\\') {
                i++;
            } else if (s[i] == '"') {
                in_string = 0;
            }

        } else if (s[i] == '"') {
            in_string = 1;
        }
    }

    return in_string;
}
