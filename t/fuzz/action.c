/*
 * libFuzzer target for the normalizer: the input is a webhook body.
 * action_check.h says what is checked after each run.
 */

#include "action_check.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *body;
    action          a;
    action_status   st;

    /* the callers' contract: body[len] is '\0' */
    body = malloc(size + 1);
    if (body == NULL) {
        return 0;
    }

    memcpy(body, data, size);
    body[size] = '\0';

    st = action_from_event(body, size, &a);
    check(st, &a);

    action_free(&a);
    free(body);

    return 0;
}
