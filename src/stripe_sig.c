/*
 * stripe_sig.c - verification of the Stripe-Signature webhook header.
 *
 * Parsing rules (SPEC 7), beyond what the header comment says:
 *
 * - The header is split on ',' and each part on its FIRST '=', so a value
 *   may itself contain '='.
 * - ASCII spaces and tabs around a part, and around its key and value, are
 *   ignored: Stripe never sends them, but proxies and hand-written test
 *   headers sometimes do, and they cannot change what was signed.
 * - Keys are case-sensitive ("t", "v1"); unknown schemes (v0, ...) are
 *   skipped but must still be "key=value". An empty part (",,") is malformed.
 * - A header of only spaces counts as missing.
 * - t= is 1 to STRIPE_SIG_T_MAX decimal digits, no sign, at most INT64_MAX.
 * - v1= is exactly 64 hex digits, either case.
 * - A tolerance <= 0 disables the time check; an empty secret is no secret.
 *
 * HMAC-SHA256 (RFC 2104) is built here on OpenSSL's SHA-256 so that the
 * keyed states live in stripe_sig_secret, in the caller's memory: EVP_MAC
 * fetched and keyed per request (a third of a check's time on a 3 KB body),
 * and an EVP context kept keyed holds its state in OpenSSL's heap, outside
 * the module's memory excluded from core dumps. One update per piece, so
 * the signed string "<t>.<body>" is never copied.
 */

/*
 * SHA256_Init/Update/Final are deprecated in OpenSSL 3.0 in favour of EVP,
 * which has no way to put a digest state in memory of our choosing.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "stripe_sig.h"

#define STRIPE_SIG_DIGEST_LEN  SHA256_DIGEST_LENGTH
#define STRIPE_SIG_BLOCK_LEN   SHA256_CBLOCK

_Static_assert(sizeof(SHA256_CTX) == STRIPE_SIG_HMAC_STATE_SIZE,
               "stripe_sig.h sizes the HMAC states for OpenSSL's SHA256_CTX");

/* Turns a numeric macro into a string literal for the static reasons. */
#define STRIPE_SIG_STR2(x)  #x
#define STRIPE_SIG_STR(x)   STRIPE_SIG_STR2(x)

static const char *const stripe_sig_hex_digits = "0123456789abcdef";


static void
stripe_sig_set_reason(const char **reason, const char *text)
{
    if (reason != NULL) {
        *reason = text;
    }
}


static int
stripe_sig_is_blank(char c)
{
    return c == ' ' || c == '\t';
}


/* Narrows [*start, *end) past leading and trailing blanks. */
static void
stripe_sig_trim(const char **start, const char **end)
{
    while (*start < *end && stripe_sig_is_blank(**start)) {
        (*start)++;
    }

    while (*end > *start && stripe_sig_is_blank(*(*end - 1))) {
        (*end)--;
    }
}


static int
stripe_sig_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* Decodes exactly 64 hex digits into 32 bytes; -1 on any other input. */
static int
stripe_sig_decode_hex(const char *p, size_t len,
    unsigned char out[STRIPE_SIG_DIGEST_LEN])
{
    size_t  i;
    int     hi, lo;

    if (len != STRIPE_SIG_HEX_LEN) {
        return -1;
    }

    for (i = 0; i < STRIPE_SIG_DIGEST_LEN; i++) {
        hi = stripe_sig_hex_value((unsigned char) p[2 * i]);
        lo = stripe_sig_hex_value((unsigned char) p[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


static stripe_sig_status
stripe_sig_parse_timestamp(const char *p, size_t len, stripe_sig_header *out,
    const char **reason)
{
    size_t    i;
    uint64_t  value;

    if (len == 0) {
        stripe_sig_set_reason(reason,
            "Stripe-Signature t= timestamp is empty");
        return STRIPE_SIG_ERR_MALFORMED;
    }

    if (len > STRIPE_SIG_T_MAX) {
        stripe_sig_set_reason(reason,
            "Stripe-Signature t= timestamp is longer than "
            STRIPE_SIG_STR(STRIPE_SIG_T_MAX) " digits");
        return STRIPE_SIG_ERR_MALFORMED;
    }

    value = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            stripe_sig_set_reason(reason,
                "Stripe-Signature t= timestamp is not a decimal integer");
            return STRIPE_SIG_ERR_MALFORMED;
        }

        if (value > ((uint64_t) INT64_MAX - (uint64_t) (p[i] - '0')) / 10) {
            stripe_sig_set_reason(reason,
                "Stripe-Signature t= timestamp is too large");
            return STRIPE_SIG_ERR_MALFORMED;
        }

        value = value * 10 + (uint64_t) (p[i] - '0');
    }

    out->timestamp = (int64_t) value;
    memcpy(out->t_text, p, len);
    out->t_text[len] = '\0';
    out->t_len = len;

    return STRIPE_SIG_OK;
}


/* Handles one "key=value" part, already trimmed and non-empty. */
static stripe_sig_status
stripe_sig_parse_part(const char *part, const char *end,
    stripe_sig_header *out, const char **reason)
{
    const char  *eq, *key_end, *value;

    eq = memchr(part, '=', (size_t) (end - part));
    if (eq == NULL) {
        stripe_sig_set_reason(reason,
            "Stripe-Signature part is not key=value (no '=')");
        return STRIPE_SIG_ERR_MALFORMED;
    }

    key_end = eq;
    value = eq + 1;
    stripe_sig_trim(&part, &key_end);
    stripe_sig_trim(&value, &end);

    if (key_end == part) {
        stripe_sig_set_reason(reason,
            "Stripe-Signature part has an empty key before '='");
        return STRIPE_SIG_ERR_MALFORMED;
    }

    if (key_end - part == 1 && part[0] == 't') {
        if (out->t_len != 0) {
            stripe_sig_set_reason(reason,
                "Stripe-Signature has more than one t=");
            return STRIPE_SIG_ERR_MALFORMED;
        }

        return stripe_sig_parse_timestamp(value, (size_t) (end - value),
                                          out, reason);
    }

    if (key_end - part == 2 && part[0] == 'v' && part[1] == '1') {
        if (out->nv1 == STRIPE_SIG_MAX_V1) {
            stripe_sig_set_reason(reason,
                "Stripe-Signature has more than "
                STRIPE_SIG_STR(STRIPE_SIG_MAX_V1) " v1 values");
            return STRIPE_SIG_ERR_MALFORMED;
        }

        if (stripe_sig_decode_hex(value, (size_t) (end - value),
                                  out->v1[out->nv1]) != 0)
        {
            stripe_sig_set_reason(reason,
                "Stripe-Signature v1 value is not 64 hex digits");
            return STRIPE_SIG_ERR_MALFORMED;
        }

        out->nv1++;
        return STRIPE_SIG_OK;
    }

    /* Other schemes (v0 is Stripe's fake test signature) are ignored. */
    return STRIPE_SIG_OK;
}


stripe_sig_status
stripe_sig_parse(const char *header, size_t len, stripe_sig_header *out,
    const char **reason)
{
    const char         *p, *end, *part, *part_end;
    stripe_sig_status   rc;

    memset(out, 0, sizeof(*out));

    if (header == NULL || len == 0) {
        stripe_sig_set_reason(reason, "Stripe-Signature header is missing");
        return STRIPE_SIG_ERR_MISSING;
    }

    if (len > STRIPE_SIG_HEADER_MAX) {
        stripe_sig_set_reason(reason,
            "Stripe-Signature header is longer than "
            STRIPE_SIG_STR(STRIPE_SIG_HEADER_MAX) " bytes");
        return STRIPE_SIG_ERR_MALFORMED;
    }

    p = header;
    end = header + len;
    stripe_sig_trim(&p, &end);

    if (p == end) {
        stripe_sig_set_reason(reason, "Stripe-Signature header is missing");
        return STRIPE_SIG_ERR_MISSING;
    }

    for ( ;; ) {
        part = p;
        part_end = memchr(p, ',', (size_t) (end - p));
        if (part_end == NULL) {
            part_end = end;
        }

        p = part_end;
        stripe_sig_trim(&part, &part_end);

        if (part == part_end) {
            stripe_sig_set_reason(reason,
                "Stripe-Signature has an empty part between commas");
            return STRIPE_SIG_ERR_MALFORMED;
        }

        rc = stripe_sig_parse_part(part, part_end, out, reason);
        if (rc != STRIPE_SIG_OK) {
            return rc;
        }

        if (p == end) {
            break;
        }

        p++;    /* the ',' */
    }

    if (out->t_len == 0) {
        stripe_sig_set_reason(reason, "Stripe-Signature has no t= timestamp");
        return STRIPE_SIG_ERR_NO_TIMESTAMP;
    }

    if (out->nv1 == 0) {
        stripe_sig_set_reason(reason, "Stripe-Signature has no v1 signature");
        return STRIPE_SIG_ERR_NO_V1;
    }

    return STRIPE_SIG_OK;
}


/* |now - t| > tolerance, computed without signed overflow. */
static int
stripe_sig_outside_tolerance(int64_t t, int64_t now, int64_t tolerance)
{
    uint64_t  distance;

    if (tolerance <= 0) {
        return 0;
    }

    distance = now >= t ? (uint64_t) now - (uint64_t) t
                        : (uint64_t) t - (uint64_t) now;

    return distance > (uint64_t) tolerance;
}


/*
 * The SHA-256 states after key^ipad and key^opad: HMAC-SHA256 keyed, the
 * key's part of the work done (a key longer than a block is hashed first).
 */
static int
stripe_sig_hmac_key(const unsigned char *key, size_t key_len,
    SHA256_CTX *inner, SHA256_CTX *outer)
{
    int            ok;
    size_t         i;
    unsigned char  block[STRIPE_SIG_BLOCK_LEN];

    memset(block, 0, sizeof(block));

    if (key_len > STRIPE_SIG_BLOCK_LEN) {
        ok = SHA256_Init(inner)
             && SHA256_Update(inner, key, key_len)
             && SHA256_Final(block, inner);

    } else {
        memcpy(block, key, key_len);
        ok = 1;
    }

    for (i = 0; i < STRIPE_SIG_BLOCK_LEN; i++) {
        block[i] ^= 0x36;
    }

    ok = ok && SHA256_Init(inner)
         && SHA256_Update(inner, block, STRIPE_SIG_BLOCK_LEN);

    for (i = 0; i < STRIPE_SIG_BLOCK_LEN; i++) {
        block[i] ^= 0x36 ^ 0x5c;
    }

    ok = ok && SHA256_Init(outer)
         && SHA256_Update(outer, block, STRIPE_SIG_BLOCK_LEN);

    OPENSSL_cleanse(block, sizeof(block));

    return ok ? 0 : -1;
}


/*
 * MACs "<t_text>.<body>" into digest with keyed states, which it consumes:
 * the caller passes copies and wipes them.
 */
static int
stripe_sig_hmac(SHA256_CTX *inner, SHA256_CTX *outer, const char *t_text,
    size_t t_len, const unsigned char *body, size_t body_len,
    unsigned char digest[STRIPE_SIG_DIGEST_LEN])
{
    int            ok;
    unsigned char  inner_digest[STRIPE_SIG_DIGEST_LEN];

    ok = SHA256_Update(inner, t_text, t_len)
         && SHA256_Update(inner, ".", 1)
         && SHA256_Update(inner, body, body_len)
         && SHA256_Final(inner_digest, inner)
         && SHA256_Update(outer, inner_digest, sizeof(inner_digest))
         && SHA256_Final(digest, outer);

    OPENSSL_cleanse(inner_digest, sizeof(inner_digest));

    return ok ? 0 : -1;
}


/* The HMAC with one secret, prepared or keyed now. */
static int
stripe_sig_secret_hmac(const stripe_sig_secret *secret, const char *t_text,
    size_t t_len, const unsigned char *body, size_t body_len,
    unsigned char digest[STRIPE_SIG_DIGEST_LEN])
{
    int         rc;
    SHA256_CTX  inner, outer;

    if (secret->prepared) {
        memcpy(&inner, secret->hmac_inner, sizeof(inner));
        memcpy(&outer, secret->hmac_outer, sizeof(outer));
        rc = 0;

    } else {
        rc = stripe_sig_hmac_key(secret->data, secret->len, &inner, &outer);
    }

    if (rc == 0) {
        rc = stripe_sig_hmac(&inner, &outer, t_text, t_len, body, body_len,
                             digest);
    }

    OPENSSL_cleanse(&inner, sizeof(inner));
    OPENSSL_cleanse(&outer, sizeof(outer));

    return rc;
}


/* An empty key is one every forger knows: never accept it. */
static int
stripe_sig_secret_usable(const stripe_sig_secret *s)
{
    return s->data != NULL && s->len > 0;
}


int
stripe_sig_secret_prepare(stripe_sig_secret *secret)
{
    int         rc;
    SHA256_CTX  inner, outer;

    stripe_sig_secret_wipe(secret);

    if (!stripe_sig_secret_usable(secret)) {
        return -1;
    }

    rc = stripe_sig_hmac_key(secret->data, secret->len, &inner, &outer);

    if (rc == 0) {
        memcpy(secret->hmac_inner, &inner, sizeof(inner));
        memcpy(secret->hmac_outer, &outer, sizeof(outer));
        secret->prepared = 1;
    }

    OPENSSL_cleanse(&inner, sizeof(inner));
    OPENSSL_cleanse(&outer, sizeof(outer));

    return rc;
}


void
stripe_sig_secret_wipe(stripe_sig_secret *secret)
{
    OPENSSL_cleanse(secret->hmac_inner, sizeof(secret->hmac_inner));
    OPENSSL_cleanse(secret->hmac_outer, sizeof(secret->hmac_outer));
    secret->prepared = 0;
}


stripe_sig_status
stripe_sig_check(const stripe_sig_header *h, const unsigned char *body,
    size_t body_len, const stripe_sig_secret *secrets, size_t nsecrets,
    int64_t now, int64_t tolerance, const char **reason)
{
    size_t          i, j, t_len, usable;
    int             matched, failed;
    char            t_buf[STRIPE_SIG_T_MAX + 1];
    const char     *t_text;
    unsigned char   digest[STRIPE_SIG_DIGEST_LEN];

    usable = 0;
    for (i = 0; secrets != NULL && i < nsecrets; i++) {
        usable += stripe_sig_secret_usable(&secrets[i]);
    }

    if (usable == 0) {
        stripe_sig_set_reason(reason,
            "no Stripe webhook secret is configured");
        return STRIPE_SIG_ERR_NO_SECRET;
    }

    if (h->nv1 == 0 || h->nv1 > STRIPE_SIG_MAX_V1) {
        stripe_sig_set_reason(reason, "Stripe-Signature has no v1 signature");
        return STRIPE_SIG_ERR_NO_V1;
    }

    if (stripe_sig_outside_tolerance(h->timestamp, now, tolerance)) {
        stripe_sig_set_reason(reason,
            "Stripe-Signature timestamp is outside the tolerance");
        return STRIPE_SIG_ERR_TOLERANCE;
    }

    if (h->t_len > 0 && h->t_len <= STRIPE_SIG_T_MAX) {
        t_text = h->t_text;
        t_len = h->t_len;

    } else {
        t_len = (size_t) snprintf(t_buf, sizeof(t_buf), "%lld",
                                  (long long) h->timestamp);
        t_text = t_buf;
    }

    matched = 0;
    failed = 0;

    /* Every secret against every v1, no early exit: timing is constant. */
    for (i = 0; i < nsecrets; i++) {
        if (!stripe_sig_secret_usable(&secrets[i])) {
            continue;
        }

        if (stripe_sig_secret_hmac(&secrets[i], t_text, t_len, body,
                                   body_len, digest)
            != 0)
        {
            failed = 1;
            continue;
        }

        for (j = 0; j < h->nv1; j++) {
            matched |= CRYPTO_memcmp(digest, h->v1[j],
                                     STRIPE_SIG_DIGEST_LEN) == 0;
        }
    }

    OPENSSL_cleanse(digest, sizeof(digest));

    if (matched) {
        return STRIPE_SIG_OK;
    }

    if (failed) {
        stripe_sig_set_reason(reason,
            "Stripe-Signature could not be checked: HMAC-SHA256 failed in "
            "OpenSSL");
        return STRIPE_SIG_ERR_MISMATCH;
    }

    stripe_sig_set_reason(reason,
        "no v1 signature matches any configured secret");
    return STRIPE_SIG_ERR_MISMATCH;
}


stripe_sig_status
stripe_sig_verify(const char *header, size_t header_len,
    const unsigned char *body, size_t body_len,
    const stripe_sig_secret *secrets, size_t nsecrets,
    int64_t now, int64_t tolerance, const char **reason)
{
    stripe_sig_header  h;
    stripe_sig_status  rc;

    rc = stripe_sig_parse(header, header_len, &h, reason);
    if (rc != STRIPE_SIG_OK) {
        return rc;
    }

    return stripe_sig_check(&h, body, body_len, secrets, nsecrets, now,
                            tolerance, reason);
}


int
stripe_sig_sign(const stripe_sig_secret *secret, int64_t t,
    const unsigned char *body, size_t body_len,
    char hex[STRIPE_SIG_HEX_LEN + 1])
{
    int            n;
    size_t         i;
    char           t_buf[STRIPE_SIG_T_MAX + 1];
    unsigned char  digest[STRIPE_SIG_DIGEST_LEN];

    hex[0] = '\0';

    if (secret == NULL || !stripe_sig_secret_usable(secret)) {
        return -1;
    }

    n = snprintf(t_buf, sizeof(t_buf), "%lld", (long long) t);

    if (stripe_sig_secret_hmac(secret, t_buf, (size_t) n, body, body_len,
                               digest) != 0)
    {
        return -1;
    }

    for (i = 0; i < STRIPE_SIG_DIGEST_LEN; i++) {
        hex[2 * i] = stripe_sig_hex_digits[digest[i] >> 4];
        hex[2 * i + 1] = stripe_sig_hex_digits[digest[i] & 0x0f];
    }

    hex[STRIPE_SIG_HEX_LEN] = '\0';

    return 0;
}
