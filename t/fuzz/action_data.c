/*
 * libFuzzer target for the normalizer's readers: the input is
 * "<event type>\n<data member>", wrapped here in an event envelope so the
 * fuzzer spends its time inside data.object rather than on the envelope.
 *
 * action_check.h says what is checked after each run.
 */

#include <stdio.h>

#include "action_check.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char   head[] = "{\"id\":\"evt_fuzz\",\"object\":\"event\","
                                 "\"created\":1745433906,\"livemode\":true,"
                                 "\"type\":\"";
    static const char   mid[] = "\",\"data\":";
    const uint8_t      *nl;
    size_t              type_len, data_len, len;
    char               *body;
    action              a;
    action_status       st;

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return 0;
    }

    type_len = nl - data;
    data_len = size - type_len - 1;
    len = sizeof(head) - 1 + type_len + sizeof(mid) - 1 + data_len + 1;

    body = malloc(len + 1);
    if (body == NULL) {
        return 0;
    }

    snprintf(body, len + 1, "%s%.*s%s%.*s}", head, (int) type_len,
             (const char *) data, mid, (int) data_len, (const char *) nl + 1);

    /* a NUL in the input shortens the body: normalize what was built */
    len = strlen(body);

    st = action_from_event(body, len, &a);
    check(st, &a);

    action_free(&a);
    free(body);

    return 0;
}
