/*
 * Constant-time review of the signature check (SPEC 7: "Compare in constant
 * time (CRYPTO_memcmp)").
 *
 * Review finding (issue 6): stripe_sig_check() computes the HMAC of every
 * usable secret and compares it with EVERY v1 value through CRYPTO_memcmp,
 * OR-ing the results into one flag; nothing returns or breaks on a match,
 * and the only branch on the outcome comes after all pairs were compared.
 * So the time taken depends on the number of secrets and of v1 values (both
 * public: the configuration, the header) and on the body length, never on
 * how many leading bytes of a forged signature were right, nor on which
 * pair matched. The parser's branches run on the header only, which the
 * sender knows. Nothing to fix; this test keeps it that way.
 *
 * How: this binary defines CRYPTO_memcmp itself. stripe_sig.o is linked in
 * statically, so its calls bind to this definition instead of libcrypto's;
 * each call is recorded (which v1 it was given, the length) and answered
 * by a plain byte loop.
 *
 * Every case runs with the secrets keyed at each check and prepared
 * (stripe_sig_secret_prepare(), as the module holds them).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "stripe_sig.h"
#include "tap.h"

#define CALLS_MAX  1024

static const unsigned char  *watch_lo, *watch_hi;   /* header.v1[] */
static size_t                ncalls, nforeign, bad_len;
static int                   v1_index[CALLS_MAX];


int
CRYPTO_memcmp(const void *in_a, const void *in_b, size_t len)
{
    const unsigned char  *a = in_a, *b = in_b;
    unsigned char         x;
    size_t                i;

    if (b >= watch_lo && b < watch_hi) {
        if (ncalls < CALLS_MAX) {
            v1_index[ncalls] = (int) ((size_t) (b - watch_lo) / 32);
        }
        ncalls++;
        bad_len += len != 32;

    } else {
        nforeign++;    /* a call from elsewhere (libcrypto itself) */
    }

    x = 0;
    for (i = 0; i < len; i++) {
        x |= a[i] ^ b[i];
    }

    return x != 0;
}


static void
watch(const stripe_sig_header *h)
{
    watch_lo = (const unsigned char *) h->v1;
    watch_hi = watch_lo + sizeof(h->v1);
    ncalls = 0;
    nforeign = 0;
    bad_len = 0;
}


/* "t=T,v1=..,v1=.." with nv1 values; v1 number good_at (or -1: none) is
   the right one for secret good_secret */
static void
make_header(char *out, size_t len, int64_t t, const unsigned char *body,
    size_t body_len, const stripe_sig_secret *good_secret, size_t nv1,
    int good_at)
{
    char    hex[STRIPE_SIG_HEX_LEN + 1];
    size_t  i, n;

    n = (size_t) snprintf(out, len, "t=%lld", (long long) t);

    for (i = 0; i < nv1; i++) {
        if ((int) i == good_at) {
            if (stripe_sig_sign(good_secret, t, body, body_len, hex) != 0) {
                printf("Bail out! stripe_sig_sign failed\n");
                exit(255);
            }

        } else {
            /* right but for the last digit: a forger's near miss */
            stripe_sig_sign(good_secret, t, body, body_len, hex);
            hex[63] = hex[63] == '0' ? '1' : '0';
            hex[(i * 7) % 63] = hex[(i * 7) % 63] == 'a' ? 'b' : 'a';
        }

        n += (size_t) snprintf(out + n, len - n, ",v1=%s", hex);
    }
}


static void
check_pairs(const char *what, int prepared, size_t nsecrets, size_t nv1,
    int good_secret, int good_at)
{
    static const unsigned char  body[] = "{\"id\":\"evt_ct\"}";
    static const char *const    names[] = {
        "whsec_ct_one", "whsec_ct_two", "whsec_ct_three", "whsec_ct_four"
    };
    stripe_sig_secret   secrets[4];
    stripe_sig_header   h;
    stripe_sig_status   rc, want;
    const char         *reason;
    char                header[STRIPE_SIG_HEADER_MAX + 1];
    char                name[128];
    size_t              i, in_order;

    snprintf(name, sizeof(name), "%s%s", what, prepared ? " (prepared)" : "");
    what = name;

    memset(secrets, 0, sizeof(secrets));

    for (i = 0; i < nsecrets; i++) {
        secrets[i].data = (const unsigned char *) names[i];
        secrets[i].len = strlen(names[i]);

        if (prepared && stripe_sig_secret_prepare(&secrets[i]) != 0) {
            printf("Bail out! stripe_sig_secret_prepare failed\n");
            exit(255);
        }
    }

    make_header(header, sizeof(header), 1745433906, body, sizeof(body) - 1,
                &secrets[good_secret >= 0 ? good_secret : 0], nv1, good_at);

    if (stripe_sig_parse(header, strlen(header), &h, &reason)
        != STRIPE_SIG_OK)
    {
        printf("Bail out! test header does not parse: %s\n", reason);
        exit(255);
    }

    watch(&h);
    rc = stripe_sig_check(&h, body, sizeof(body) - 1, secrets, nsecrets,
                          1745433906, 300, &reason);

    want = good_secret >= 0 && good_at >= 0 ? STRIPE_SIG_OK
                                            : STRIPE_SIG_ERR_MISMATCH;
    is_int(rc, want, "%s: %s", what, want == STRIPE_SIG_OK ? "accepted"
                                                           : "refused");
    is_int(ncalls, nsecrets * nv1,
           "%s: CRYPTO_memcmp once per (secret, v1) pair: %zu x %zu = %zu",
           what, nsecrets, nv1, ncalls);
    is_int(bad_len, 0, "%s: every comparison is of 32 bytes", what);
    is_int(nforeign, 0, "%s: no other CRYPTO_memcmp call", what);

    in_order = 0;
    for (i = 0; i < ncalls && i < CALLS_MAX; i++) {
        in_order += v1_index[i] == (int) (i % nv1);
    }
    is_int(in_order, ncalls, "%s: each secret's digest against v1 0..%zu",
           what, nv1 - 1);

    for (i = 0; i < nsecrets; i++) {
        stripe_sig_secret_wipe(&secrets[i]);
    }
}


int
main(void)
{
    int                 prepared;
    stripe_sig_secret   secrets[3];
    stripe_sig_header   h;
    const char         *reason;
    char                header[STRIPE_SIG_HEADER_MAX + 1];

    for (prepared = 0; prepared <= 1; prepared++) {
        /* a match in the very first pair must not cut the loop short */
        check_pairs("match in the first pair", prepared, 3, 4, 0, 0);
        check_pairs("match in the last pair", prepared, 3, 4, 2, 3);
        check_pairs("match in the middle", prepared, 3, 4, 1, 2);
        check_pairs("no match", prepared, 3, 4, -1, -1);
        check_pairs("one secret, one v1", prepared, 1, 1, 0, 0);
        check_pairs("four secrets, 16 v1", prepared, 4, STRIPE_SIG_MAX_V1,
                    0, 0);
        check_pairs("four secrets, 16 v1, no match", prepared, 4,
                    STRIPE_SIG_MAX_V1, -1, -1);
    }

    /* an empty secret is skipped: no digest, no comparison */
    memset(secrets, 0, sizeof(secrets));
    secrets[0].data = (const unsigned char *) "whsec_ct_one";
    secrets[0].len = 12;
    secrets[1].data = (const unsigned char *) "";
    secrets[1].len = 0;
    secrets[2].data = (const unsigned char *) "whsec_ct_three";
    secrets[2].len = 14;
    make_header(header, sizeof(header), 1745433906,
                (const unsigned char *) "{}", 2, &secrets[0], 2, 0);
    stripe_sig_parse(header, strlen(header), &h, &reason);
    watch(&h);
    is_int(stripe_sig_check(&h, (const unsigned char *) "{}", 2, secrets, 3,
                            1745433906, 300, &reason),
           STRIPE_SIG_OK, "empty secret among three: accepted");
    is_int(ncalls, 4, "empty secret: 2 usable x 2 v1 = 4 comparisons");

    /* refused before any HMAC: no comparison at all */
    watch(&h);
    is_int(stripe_sig_check(&h, (const unsigned char *) "{}", 2, secrets, 3,
                            1745433906 + 301, 300, &reason),
           STRIPE_SIG_ERR_TOLERANCE, "outside the tolerance: refused");
    is_str(reason, "Stripe-Signature timestamp is outside the tolerance",
           "outside the tolerance: the reason");
    is_int(ncalls, 0, "outside the tolerance: nothing compared");

    return tap_done();
}
