/*
 * json_tree.c - a JSON body parsed into a tree of json_node in an arena.
 *
 * yajl's callback parser does the lexing; the callbacks append nodes to the
 * open containers, so the tree is built without recursion and freed in one
 * pass over the arena's chunks.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "json_tree.h"


#define ARENA_ALIGN  16


void *
json_arena_alloc(json_arena *ar, size_t n)
{
    json_arena_chunk  *c;
    size_t        size;

    if (n > SIZE_MAX / 2) {
        return NULL;
    }

    n = (n + ARENA_ALIGN - 1) & ~((size_t) ARENA_ALIGN - 1);
    c = ar->head;

    if (c != NULL && c->size - c->used >= n) {
        c->used += n;
        return c->data + c->used - n;
    }

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




typedef struct {
    json_arena     *ar;
    json_node      *root;
    json_node      *open[JSON_DEPTH_MAX];   /* containers being filled */
    int             depth;
    const char     *key;        /* name of the member to come */
    size_t          key_len;
    const char     *error;      /* why a callback stopped the parse */
    yajl_handle     handle;
    size_t          end;        /* offset past the top-level container */
} json_parser;


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


static json_node *
json_add(json_parser *p, json_type type)
{
    json_node  *n, *parent;

    n = json_arena_alloc(p->ar, sizeof(json_node));
    if (n == NULL) {
        p->error = "out of memory";
        return NULL;
    }

    memset(n, 0, sizeof(json_node));
    n->type = type;

    if (p->depth == 0) {
        p->root = n;
        return n;
    }

    parent = p->open[p->depth - 1];

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

    return n;
}


static int
json_on_null(void *ctx)
{
    return json_add(ctx, JSON_NULL) != NULL;
}


static int
json_on_boolean(void *ctx, int b)
{
    return json_add(ctx, b ? JSON_TRUE : JSON_FALSE) != NULL;
}


/* Raw number text: yajl's own integer callback fails the parse on 1e30. */
static int
json_on_number(void *ctx, const char *s, size_t len)
{
    json_node  *n;
    long long   v;
    size_t      i, neg;

    n = json_add(ctx, JSON_NUMBER);
    if (n == NULL) {
        return 0;
    }

    neg = s[0] == '-';
    v = 0;

    if (len == neg) {
        return 1;
    }

    /* within +-LLONG_MAX: yajl, in the consumer, cannot read -2^63 back */
    for (i = neg; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (LLONG_MAX - (s[i] - '0')) / 10) {
            return 1;
        }

        v = v * 10 + (s[i] - '0');
    }

    n->type = JSON_INT;
    n->u.i = neg ? -v : v;

    return 1;
}


static int
json_on_string(void *ctx, const unsigned char *s, size_t len)
{
    json_parser  *p = ctx;
    json_node    *n;

    if (!json_utf8_valid(s, len)) {
        p->error = "body has a string that is not valid UTF-8";
        return 0;
    }

    n = json_add(p, JSON_STRING);
    if (n == NULL) {
        return 0;
    }

    n->u.str.s = json_arena_strndup(p->ar, (const char *) s, len);
    n->u.str.len = len;

    if (n->u.str.s == NULL) {
        p->error = "out of memory";
        return 0;
    }

    return 1;
}


static int
json_on_key(void *ctx, const unsigned char *key, size_t len)
{
    json_parser  *p = ctx;

    if (!json_utf8_valid(key, len)) {
        p->error = "body has a string that is not valid UTF-8";
        return 0;
    }

    p->key = json_arena_strndup(p->ar, (const char *) key, len);
    p->key_len = len;

    if (p->key == NULL) {
        p->error = "out of memory";
        return 0;
    }

    return 1;
}


static int
json_open(json_parser *p, json_type type)
{
    json_node  *n;

    if (p->depth == JSON_DEPTH_MAX) {
        p->error = "JSON nesting deeper than 64 levels";
        return 0;
    }

    n = json_add(p, type);
    if (n == NULL) {
        return 0;
    }

    p->open[p->depth++] = n;

    return 1;
}


static int
json_on_start_map(void *ctx)
{
    return json_open(ctx, JSON_OBJECT);
}


static int
json_on_start_array(void *ctx)
{
    return json_open(ctx, JSON_ARRAY);
}


static int
json_on_end(void *ctx)
{
    json_parser  *p = ctx;

    p->depth--;

    if (p->depth == 0) {
        p->end = yajl_get_bytes_consumed(p->handle);
    }

    return 1;
}


static const yajl_callbacks  json_callbacks = {
    json_on_null,
    json_on_boolean,
    NULL,                       /* integers come through json_on_number */
    NULL,                       /* and so do doubles */
    json_on_number,
    json_on_string,
    json_on_start_map,
    json_on_key,
    json_on_end,
    json_on_start_array,
    json_on_end
};


json_node *
json_parse(json_arena *ar, const char *body, size_t len, char *reason,
    size_t reason_size)
{
    json_parser     p;
    yajl_handle     h;
    yajl_status     st;
    unsigned char  *err;
    size_t          n;

    memset(&p, 0, sizeof(json_parser));
    p.ar = ar;

    h = yajl_alloc(&json_callbacks, NULL, &p);
    if (h == NULL) {
        snprintf(reason, reason_size, "out of memory");
        return NULL;
    }

    p.handle = h;

    st = yajl_parse(h, (const unsigned char *) body, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    /* yajl takes `{..}"junk` (an unclosed string after the value) as
       complete: only what follows the top-level container can hide one */
    if (st == yajl_status_ok
        && json_ends_in_string(body + p.end, len - p.end))
    {
        yajl_free(h);
        snprintf(reason, reason_size, "body is not JSON: trailing garbage");
        return NULL;
    }

    if (st == yajl_status_ok) {
        yajl_free(h);
        return p.root;
    }

    if (p.error != NULL) {
        snprintf(reason, reason_size, "%s", p.error);

    } else {
        err = yajl_get_error(h, 0, NULL, 0);

        /* yajl's message ends in a newline: keep its first line. */
        n = err != NULL ? strcspn((char *) err, "\r\n") : 0;
        snprintf(reason, reason_size, "body is not JSON: %.*s", (int) n,
                 err != NULL ? (char *) err : "");

        if (err != NULL) {
            yajl_free_error(h, err);
        }
    }

    yajl_free(h);

    return NULL;
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
        if (n->key_len == len && memcmp(n->key, key, len) == 0) {
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
