/*
 * action_check.h - what the normalizer's fuzz targets (action.c,
 * action_data.c) check after each run, besides "no crash, no leak": what the
 * nginx module relies on. A one-line reason on every refusal, id and type on
 * every event that is not refused, and on success a record that is JSON,
 * starts with "v":1 and stays within ACTION_RECORD_MAX.
 */

#ifndef ACTION_CHECK_H
#define ACTION_CHECK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "action.h"


static int
is_json(const char *s, size_t len)
{
    yajl_handle  h;
    yajl_status  st;

    h = yajl_alloc(NULL, NULL, NULL);
    st = yajl_parse(h, (const unsigned char *) s, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }
    yajl_free(h);

    return st == yajl_status_ok;
}


static void
check(action_status st, const action *a)
{
    if (memchr(a->reason, '\0', sizeof(a->reason)) == NULL
        || strchr(a->reason, '\n') != NULL)
    {
        abort();
    }

    switch (st) {

    case ACTION_OK:
        if (a->id == NULL || a->type == NULL || a->name == NULL
            || a->record == NULL || a->record_len > ACTION_RECORD_MAX
            || strlen(a->record) != a->record_len
            || strncmp(a->record, "{\"v\":1,", 7) != 0
            || !is_json(a->record, a->record_len)
            || (a->customer_json != NULL
                && (a->customer_id == NULL
                    || !is_json(a->customer_json, strlen(a->customer_json))))
            /* the order key: the customer id when there is one */
            || (a->customer_id != NULL && a->order_key != a->customer_id)
            || (a->order_key != NULL && a->order_key[0] == '\0'))
        {
            abort();
        }
        break;

    case ACTION_IGNORED:
        if (a->id == NULL || a->type == NULL || a->name != NULL
            || a->record != NULL || a->order_key != NULL
            || a->reason[0] == '\0')
        {
            abort();
        }
        break;

    case ACTION_INVALID:
        if (a->name != NULL || a->record != NULL || a->order_key != NULL
            || a->reason[0] == '\0')
        {
            abort();
        }
        break;

    default:
        abort();
    }
}

#endif /* ACTION_CHECK_H */
