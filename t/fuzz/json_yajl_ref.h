/*
 * json_yajl_ref.h - the oracle of t/fuzz/json.c: the yajl-based
 * json_parse() that src/json_tree.c had before its own parser.
 */

#ifndef JSON_YAJL_REF_H
#define JSON_YAJL_REF_H

#include <stddef.h>

#include "json_tree.h"

json_node *json_yajl_ref_parse(json_arena *ar, const char *body, size_t len,
    char *reason, size_t reason_size);

#endif /* JSON_YAJL_REF_H */
