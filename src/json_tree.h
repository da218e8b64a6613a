/*
 * json_tree.h - a JSON body parsed into a tree, for the normalizer.
 *
 * One arena holds every node and string of a parse and is freed at once.
 * The parser takes RFC 8259 JSON (any value at the top, whitespace around
 * it, nothing else) and refuses nesting deeper than JSON_DEPTH_MAX while it
 * parses (so a body of a million '[' costs nothing), and strings or keys
 * that are not strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), nor \u escapes of UTF-16 surrogates that are not
 * a pair. Of duplicate keys, lookups see the first.
 */

#ifndef JSON_TREE_H
#define JSON_TREE_H

#include <stddef.h>

#define JSON_DEPTH_MAX  64

typedef struct json_arena_chunk  json_arena_chunk;

struct json_arena_chunk {
    json_arena_chunk  *next;
    size_t             size;       /* bytes in data */
    size_t             used;
    size_t             pad;        /* keeps data 16-byte aligned */
    unsigned char      data[];
};

/* Set head = NULL and chunk = the size of a new chunk before first use. */
typedef struct {
    json_arena_chunk  *head;       /* the chunk being filled */
    size_t             chunk;      /* size of a new chunk */
} json_arena;

typedef enum {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_INT,           /* an integer that fits a long long */
    JSON_NUMBER,        /* any other number: a fraction, 1e3, too big */
    JSON_STRING,
    JSON_OBJECT,
    JSON_ARRAY
} json_type;

typedef struct json_node  json_node;

struct json_node {
    json_node      *next;       /* next member or element of the parent */
    const char     *key;        /* member name; NULL in an array */
    size_t          key_len;
    json_type       type;
    union {
        long long   i;
        struct {
            const char  *s;     /* NUL-terminated, may hold NULs */
            size_t       len;
        } str;
        struct {
            json_node   *first;
            json_node   *last;
        } kids;
    } u;
};



/* n bytes, 16-byte aligned; NULL when out of memory */
void *json_arena_alloc(json_arena *ar, size_t n);
char *json_arena_strndup(json_arena *ar, const char *s, size_t len);

/* frees a chain of chunks: pass arena.head */
void json_arena_free(json_arena_chunk *c);

int json_utf8_valid(const unsigned char *s, size_t len);

/*
 * Parses body[0 .. len - 1] (body[len] is not read) into a tree allocated
 * in ar. Strings and keys are unescaped and NUL-terminated; an integer
 * within +-LLONG_MAX is a JSON_INT, any other number a JSON_NUMBER. Returns
 * the root, or NULL with reason set to one line that names what was wrong
 * and where (offsets count from 0):
 *
 *   "body is not JSON: invalid escape \q at byte 123" (and the like),
 *   "body has a string that is not valid UTF-8: overlong form at byte 7",
 *   "JSON nesting deeper than 64 levels at byte 64" or "out of memory".
 */
json_node *json_parse(json_arena *ar, const char *body, size_t len,
    char *reason, size_t reason_size);

/* the first member named key, or NULL (also when obj is not an object) */
const json_node *json_get(const json_node *obj, const char *key);

/* json_at(n, "a", "b", NULL) is n.a.b, or NULL */
const json_node *json_at(const json_node *n, ...)
    __attribute__((sentinel));

/* the first element of an array, or NULL */
const json_node *json_first(const json_node *array);

/*
 * 1 if the JSON text s[0 .. len - 1] nests arrays and objects deeper than
 * max (strings skipped; not a validation). A cheap guard before
 * yajl_tree_parse, whose yajl_tree_free recurses once per level: a queue
 * entry or a response of 500,000 '[' ... ']' would exhaust the stack.
 */
int json_nesting_exceeds(const char *s, size_t len, int max);

/*
 * 1 if the text s[0 .. len - 1] ends inside a string. yajl 2.1 (parser and
 * yajl_tree_parse alike) accepts a complete value followed by an
 * unterminated string, "{}\"x", as valid: its lexer waits for more input
 * and the end of the parse never looks back. A text yajl accepted is JSON
 * only if this is 0 (json_parse() needs no such check).
 */
int json_ends_in_string(const char *s, size_t len);

#endif /* JSON_TREE_H */
