/*
 * name_cache.c - a small string to string hash table (see name_cache.h).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "name_cache.h"

#define NAME_CACHE_BUCKETS  1024

typedef struct name_entry  name_entry;

struct name_entry {
    name_entry  *next;
    char        *id;
    char         name[];       /* NUL-terminated */
};

struct name_cache {
    name_entry  *buckets[NAME_CACHE_BUCKETS];
    size_t       count;
    size_t       max;
};


/* FNV-1a */
static size_t
name_hash(const char *s)
{
    uint32_t  h = 2166136261u;

    while (*s) {
        h ^= (unsigned char) *s++;
        h *= 16777619u;
    }

    return h % NAME_CACHE_BUCKETS;
}


name_cache *
name_cache_create(size_t max)
{
    name_cache  *c;

    c = calloc(1, sizeof(name_cache));
    if (c == NULL) {
        return NULL;
    }

    c->max = max > 0 ? max : 1;
    return c;
}


static void
name_cache_clear(name_cache *c)
{
    name_entry  *e, *next;
    size_t       i;

    for (i = 0; i < NAME_CACHE_BUCKETS; i++) {
        for (e = c->buckets[i]; e != NULL; e = next) {
            next = e->next;
            free(e->id);
            free(e);
        }
        c->buckets[i] = NULL;
    }

    c->count = 0;
}


void
name_cache_free(name_cache *c)
{
    if (c == NULL) {
        return;
    }

    name_cache_clear(c);
    free(c);
}


static name_entry *
name_cache_find(const name_cache *c, const char *name)
{
    name_entry  *e;

    for (e = c->buckets[name_hash(name)]; e != NULL; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }

    return NULL;
}


const char *
name_cache_get(const name_cache *c, const char *name)
{
    name_entry  *e;

    if (c == NULL || name == NULL) {
        return NULL;
    }

    e = name_cache_find(c, name);
    return e == NULL ? NULL : e->id;
}


int
name_cache_put(name_cache *c, const char *name, const char *id)
{
    name_entry  *e;
    char        *copy;
    size_t       len, h;

    if (c == NULL || name == NULL || id == NULL) {
        return -1;
    }

    copy = strdup(id);
    if (copy == NULL) {
        return -1;
    }

    e = name_cache_find(c, name);
    if (e != NULL) {
        free(e->id);
        e->id = copy;
        return 0;
    }

    if (c->count >= c->max) {
        name_cache_clear(c);
    }

    len = strlen(name);
    e = malloc(sizeof(name_entry) + len + 1);
    if (e == NULL) {
        free(copy);
        return -1;
    }

    memcpy(e->name, name, len + 1);
    e->id = copy;

    h = name_hash(name);
    e->next = c->buckets[h];
    c->buckets[h] = e;
    c->count++;

    return 0;
}


void
name_cache_remove(name_cache *c, const char *name)
{
    name_entry  **pp, *e;

    if (c == NULL || name == NULL) {
        return;
    }

    for (pp = &c->buckets[name_hash(name)]; *pp != NULL; pp = &(*pp)->next) {
        e = *pp;
        if (strcmp(e->name, name) == 0) {
            *pp = e->next;
            free(e->id);
            free(e);
            c->count--;
            return;
        }
    }
}


size_t
name_cache_count(const name_cache *c)
{
    return c == NULL ? 0 : c->count;
}
