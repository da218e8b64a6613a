/* Placeholder until the normalizer lands: refuses every event. */

#include <stdio.h>
#include <string.h>

#include "action.h"


action_status
action_from_event(const char *body, size_t len, action *a)
{
    (void) body;
    (void) len;

    memset(a, 0, sizeof(*a));
    snprintf(a->reason, sizeof(a->reason), "normalizer not built yet");

    return ACTION_INVALID;
}


void
action_free(action *a)
{
    memset(a, 0, sizeof(*a));
}
