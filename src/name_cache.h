/*
 * name_cache.h - what a provider has learnt about a platform: ids by name
 * (tags, lists, sequences) and by email (contacts, profiles), kept for the
 * process's life so a name is looked up once.
 *
 * Bounded: when full it forgets everything and starts again, which costs
 * one lookup per name and never a wrong answer.
 */

#ifndef NAME_CACHE_H
#define NAME_CACHE_H

#include <stddef.h>

typedef struct name_cache  name_cache;

/* max: entries kept before starting again; NULL when out of memory */
name_cache *name_cache_create(size_t max);
void name_cache_free(name_cache *c);

/* the id stored under name (exact, case-sensitive), or NULL */
const char *name_cache_get(const name_cache *c, const char *name);

/* stores or replaces; 0, or -1 when out of memory */
int name_cache_put(name_cache *c, const char *name, const char *id);

/* forgets name (an id the platform no longer knows) */
void name_cache_remove(name_cache *c, const char *name);

size_t name_cache_count(const name_cache *c);

#endif /* NAME_CACHE_H */
