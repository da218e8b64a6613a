/*
 * watermark.c - per-subscription ordering watermarks (watermark.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watermark.h"


static const char  *watermark_actions[] = {
    "subscription_started",
    "subscription_cancelled",
    "subscription_paused",
    "subscription_resumed",
    "subscription_updated",
    "plan_changed",
    "subscription_cancel_scheduled",
    "trial_ending",
    NULL
};


int
watermark_applies(const char *action)
{
    size_t  i;

    if (action == NULL) {
        return 0;
    }

    for (i = 0; watermark_actions[i] != NULL; i++) {
        if (strcmp(action, watermark_actions[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


int
watermark_parse(const char *wm, long long *created, const char **id)
{
    char       *end;
    long long   v;

    if (wm == NULL || wm[0] == '\0') {
        return -1;
    }

    errno = 0;
    v = strtoll(wm, &end, 10);

    if (errno != 0 || end == wm || *end != ':') {
        return -1;
    }

    *created = v;
    *id = end + 1;

    return 0;
}


int
watermark_is_stale(const char *wm, long long created)
{
    long long    wm_created;
    const char  *wm_id;

    if (watermark_parse(wm, &wm_created, &wm_id) != 0) {
        return 0;
    }

    return created < wm_created;
}


int
watermark_newer(const char *wm, long long created, const char *id)
{
    long long    wm_created;
    const char  *wm_id;

    if (watermark_parse(wm, &wm_created, &wm_id) != 0) {
        return 1;
    }

    if (created != wm_created) {
        return created > wm_created;
    }

    return strcmp(id, wm_id) > 0;
}


int
watermark_format(char *out, size_t len, long long created, const char *id)
{
    int  n;

    n = snprintf(out, len, "%lld:%s", created, id);

    return n < 0 || (size_t) n >= len ? -1 : 0;
}
