/*
 * libFuzzer target for the Stripe-Signature parser and verifier.
 *
 * Input: "<header>\n<body>" (no newline: all header, empty body). Besides
 * "no crash", it checks the invariants callers rely on: a reason on every
 * error, sane counts on success, and that a header we sign ourselves for
 * the parsed timestamp and this body always verifies.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stripe_sig.h"

static const stripe_sig_secret  fuzz_secrets[2] = {
    { .data = (const unsigned char *) "whsec_fuzz_old", .len = 14 },
    { .data = (const unsigned char *) "whsec_fuzz", .len = 10 },
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                hex[STRIPE_SIG_HEX_LEN + 1], own[128];
    const char         *header, *reason, *nl;
    size_t              header_len, body_len;
    const uint8_t      *body;
    stripe_sig_header   h;
    stripe_sig_status   rc;

    header = (const char *) data;
    nl = memchr(data, '\n', size);
    header_len = nl != NULL ? (size_t) (nl - header) : size;
    body = nl != NULL ? (const uint8_t *) nl + 1 : NULL;
    body_len = nl != NULL ? size - header_len - 1 : 0;

    reason = NULL;
    rc = stripe_sig_parse(header, header_len, &h, &reason);

    if (rc != STRIPE_SIG_OK) {
        if (reason == NULL || reason[0] == '\0') {
            abort();    /* every refusal must say why */
        }

    } else {
        if (h.nv1 == 0 || h.nv1 > STRIPE_SIG_MAX_V1 || h.t_len == 0
            || h.t_len > STRIPE_SIG_T_MAX || h.timestamp < 0
            || strlen(h.t_text) != h.t_len)
        {
            abort();
        }
    }

    reason = NULL;
    rc = stripe_sig_verify(header, header_len, body, body_len, fuzz_secrets,
                           2, 1533204620, 300, &reason);
    if (rc != STRIPE_SIG_OK && reason == NULL) {
        abort();
    }

    /* Round trip: our own signature for this t and body must verify. */
    if (stripe_sig_parse(header, header_len, &h, NULL) == STRIPE_SIG_OK) {
        if (stripe_sig_sign(&fuzz_secrets[1], h.timestamp, body, body_len,
                            hex) != 0)
        {
            abort();
        }

        snprintf(own, sizeof(own), "t=%lld,v1=%s", (long long) h.timestamp,
                 hex);

        rc = stripe_sig_verify(own, strlen(own), body, body_len,
                               fuzz_secrets, 2, h.timestamp, 300, &reason);
        if (rc != STRIPE_SIG_OK) {
            abort();
        }

        rc = stripe_sig_verify(own, strlen(own), body, body_len,
                               fuzz_secrets, 1, h.timestamp, 0, &reason);
        if (rc != STRIPE_SIG_ERR_MISMATCH) {
            abort();    /* the other secret must not verify it */
        }
    }

    return 0;
}
