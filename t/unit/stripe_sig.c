/*
 * Unit tests for src/stripe_sig.c (SPEC 7). Run from the repository root:
 * the test vector's payload is read from t/fixtures/.
 *
 * The verification tests run twice: with the vector's secret as callers of
 * stripe_sig_sign() fill it (data and len: keyed at each check), then
 * prepared (stripe_sig_secret_prepare(), as the module does): the outcomes
 * and reasons must be the same.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "stripe_sig.h"
#include "tap.h"

#define VECTOR_PATH    "t/fixtures/stripe/signature-vector-payload.json"
#define VECTOR_SECRET  "webhook_secret"
#define VECTOR_T       1533204620
#define VECTOR_V1      \
    "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7"
#define OTHER_V1       \
    "0000000000000000000000000000000000000000000000000000000000000000"

static unsigned char  *body;
static size_t          body_len;

static const stripe_sig_secret  vector_secret = {
    .data = (const unsigned char *) VECTOR_SECRET,
    .len = sizeof(VECTOR_SECRET) - 1
};

/* what verify_vector() checks with: vector_secret, or a prepared copy */
static const stripe_sig_secret  *vector_key = &vector_secret;
static int                       prepared_round;


/* is_str() tests its arguments for NULL; an array would trip -Waddress. */
static const char *
str(const char *s)
{
    return s;
}


static unsigned char *
read_file(const char *path, size_t *len)
{
    FILE           *f;
    long            size;
    unsigned char  *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return NULL;
    }

    buf = malloc((size_t) size + 1);
    if (buf == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size) {
        free(buf);
        fclose(f);
        return NULL;
    }

    fclose(f);
    *len = (size_t) size;
    return buf;
}


/* In the prepared round, the secrets a test builds are prepared too. */
static void
round_prepare(stripe_sig_secret *secrets, size_t n)
{
    size_t  i;

    for (i = 0; prepared_round && i < n; i++) {
        if (secrets[i].len > 0 && stripe_sig_secret_prepare(&secrets[i]) != 0)
        {
            ok(0, "prepare test secret %zu", i);
        }
    }
}


static stripe_sig_status
verify_vector(const char *header, int64_t now, int64_t tolerance,
    const char **reason)
{
    *reason = NULL;
    return stripe_sig_verify(header, strlen(header), body, body_len,
                             vector_key, 1, now, tolerance, reason);
}


/* A header against the vector's body and secret must fail this way. */
static void
refused(const char *name, const char *header, stripe_sig_status want,
    const char *want_reason)
{
    const char         *reason;
    stripe_sig_status   rc;

    rc = verify_vector(header, VECTOR_T, 300, &reason);
    is_int(rc, want, "%s: status", name);
    ok(reason != NULL && strstr(reason, want_reason) != NULL,
       "%s: reason names it (\"%s\")", name, reason ? reason : "(null)");
}


static void
accepted(const char *name, const char *header)
{
    const char         *reason;
    stripe_sig_status   rc;

    rc = verify_vector(header, VECTOR_T, 300, &reason);
    if (!is_int(rc, STRIPE_SIG_OK, "%s: accepted", name)) {
        diag("reason: %s", reason ? reason : "(null)");
    }
}


static void
test_vector(void)
{
    char                hex[STRIPE_SIG_HEX_LEN + 1];
    const char         *reason;
    stripe_sig_header   h;

    is_int(body_len, 484, "vector payload is 484 bytes");

    is_int(stripe_sig_sign(&vector_secret, VECTOR_T, body, body_len, hex), 0,
           "sign returns 0");
    is_str(str(hex), VECTOR_V1, "sign reproduces the Stripe test vector");

    accepted("vector", "t=1533204620,v1=" VECTOR_V1);

    is_int(stripe_sig_parse("t=1533204620,v1=" VECTOR_V1 ",v0=" OTHER_V1,
                            strlen("t=1533204620,v1=" VECTOR_V1 ",v0="
                                   OTHER_V1), &h, &reason),
           STRIPE_SIG_OK, "parse: vector header with v0");
    is_int(h.timestamp, VECTOR_T, "parse: timestamp");
    is_str(h.t_text, "1533204620", "parse: raw t text kept");
    is_int(h.nv1, 1, "parse: one v1 (v0 ignored)");
    ok(h.v1[0][0] == 0x22 && h.v1[0][31] == 0xc7, "parse: v1 decoded");

    is_int(stripe_sig_check(&h, body, body_len, vector_key, 1, VECTOR_T,
                            300, &reason),
           STRIPE_SIG_OK, "check on a parsed header");

    /* reason is optional */
    is_int(stripe_sig_verify("", 0, body, body_len, vector_key, 1,
                             VECTOR_T, 300, NULL),
           STRIPE_SIG_ERR_MISSING, "reason may be NULL");

    accepted("upper-case hex",
             "t=1533204620,v1=2220F87EF101A04665F11CDF770523143F875572"
             "008577FA0F20882DDB9CC3C7");
}


static void
test_several_v1(void)
{
    int   i;
    char  header[2048], *p;

    accepted("2nd of 3 v1 matches",
             "t=1533204620,v1=" OTHER_V1 ",v1=" VECTOR_V1
             ",v1=1111111111111111111111111111111111111111111111111111111111"
             "111111");
    accepted("v0 before v1", "t=1533204620,v0=" OTHER_V1 ",v1=" VECTOR_V1);
    accepted("t after v1", "v1=" VECTOR_V1 ",t=1533204620");

    /* The limit itself: 16 values, the last one matching. */
    p = header + sprintf(header, "t=1533204620");
    for (i = 0; i < STRIPE_SIG_MAX_V1 - 1; i++) {
        p += sprintf(p, ",v1=" OTHER_V1);
    }
    sprintf(p, ",v1=" VECTOR_V1);
    accepted("16 v1 values, the 16th matches", header);

    sprintf(p, ",v1=" OTHER_V1 ",v1=" VECTOR_V1);
    refused("17 v1 values", header, STRIPE_SIG_ERR_MALFORMED,
            "more than 16 v1 values");
}


static void
test_rotation(void)
{
    char                hex_new[STRIPE_SIG_HEX_LEN + 1];
    char                hex_old[STRIPE_SIG_HEX_LEN + 1];
    char                header[256];
    const char         *reason;
    stripe_sig_status   rc;
    stripe_sig_secret   secrets[2] = {
        { .data = (const unsigned char *) "whsec_old", .len = 9 },
        { .data = (const unsigned char *) "whsec_new", .len = 9 },
    };

    stripe_sig_sign(&secrets[1], VECTOR_T, body, body_len, hex_new);
    stripe_sig_sign(&secrets[0], VECTOR_T, body, body_len, hex_old);
    round_prepare(secrets, 2);
    ok(strcmp(hex_new, hex_old) != 0, "two secrets sign differently");

    snprintf(header, sizeof(header), "t=1533204620,v1=%s", hex_new);
    rc = stripe_sig_verify(header, strlen(header), body, body_len, secrets,
                           2, VECTOR_T, 300, &reason);
    is_int(rc, STRIPE_SIG_OK, "rotation: signed with the 2nd secret");

    rc = stripe_sig_verify(header, strlen(header), body, body_len, secrets,
                           1, VECTOR_T, 300, &reason);
    is_int(rc, STRIPE_SIG_ERR_MISMATCH, "rotation: old secret alone refuses");
    ok(reason && strstr(reason, "no v1 signature matches any configured"),
       "rotation: mismatch reason");

    /* Stripe sends one v1 per secret during a roll. */
    snprintf(header, sizeof(header), "t=1533204620,v1=%s,v1=%s", hex_old,
             hex_new);
    rc = stripe_sig_verify(header, strlen(header), body, body_len,
                           &secrets[1], 1, VECTOR_T, 300, &reason);
    is_int(rc, STRIPE_SIG_OK, "rotation: one v1 per secret, new one set");
}


static void
test_tolerance(void)
{
    const char         *reason;
    const char         *h = "t=1533204620,v1=" VECTOR_V1;
    stripe_sig_status   rc;

    rc = verify_vector(h, VECTOR_T + 300, 300, &reason);
    is_int(rc, STRIPE_SIG_OK, "past: exactly tolerance old is accepted");

    rc = verify_vector(h, VECTOR_T + 301, 300, &reason);
    is_int(rc, STRIPE_SIG_ERR_TOLERANCE, "past: one second too old");
    ok(reason && strstr(reason, "timestamp is outside the tolerance"),
       "past: reason");

    rc = verify_vector(h, VECTOR_T - 300, 300, &reason);
    is_int(rc, STRIPE_SIG_OK, "future: exactly tolerance ahead is accepted");

    rc = verify_vector(h, VECTOR_T - 301, 300, &reason);
    is_int(rc, STRIPE_SIG_ERR_TOLERANCE, "future: one second too far ahead");
    ok(reason && strstr(reason, "timestamp is outside the tolerance"),
       "future: reason");

    rc = verify_vector(h, 4000000000LL, 0, &reason);
    is_int(rc, STRIPE_SIG_OK, "tolerance 0 disables the check (past)");

    rc = verify_vector(h, 0, 0, &reason);
    is_int(rc, STRIPE_SIG_OK, "tolerance 0 disables the check (future)");

    rc = verify_vector("t=9223372036854775807,v1=" VECTOR_V1, INT64_MIN,
                       300, &reason);
    is_int(rc, STRIPE_SIG_ERR_TOLERANCE, "extreme distance does not overflow");

    /* The tolerance is checked before the HMAC: a stale forgery is stale. */
    rc = verify_vector("t=1533204620,v1=" OTHER_V1, VECTOR_T + 1000, 300,
                       &reason);
    is_int(rc, STRIPE_SIG_ERR_TOLERANCE, "tolerance before signature");
}


static void
test_refusals(void)
{
    int   i;
    char  header[8192], *p;

    refused("empty header", "", STRIPE_SIG_ERR_MISSING,
            "Stripe-Signature header is missing");
    refused("blank header", " \t ", STRIPE_SIG_ERR_MISSING,
            "Stripe-Signature header is missing");
    refused("no t", "v1=" VECTOR_V1, STRIPE_SIG_ERR_NO_TIMESTAMP,
            "has no t= timestamp");
    refused("no v1", "t=1533204620", STRIPE_SIG_ERR_NO_V1,
            "has no v1 signature");
    refused("v0 only", "t=1533204620,v0=" VECTOR_V1, STRIPE_SIG_ERR_NO_V1,
            "has no v1 signature");
    refused("non-hex v1",
            "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa"
            "0f20882ddb9cc3cg", STRIPE_SIG_ERR_MALFORMED,
            "v1 value is not 64 hex digits");
    refused("63-digit v1",
            "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa"
            "0f20882ddb9cc3c", STRIPE_SIG_ERR_MALFORMED,
            "v1 value is not 64 hex digits");
    refused("65-digit v1", "t=1533204620,v1=" VECTOR_V1 "7",
            STRIPE_SIG_ERR_MALFORMED, "v1 value is not 64 hex digits");
    refused("empty v1", "t=1533204620,v1=", STRIPE_SIG_ERR_MALFORMED,
            "v1 value is not 64 hex digits");
    refused("duplicated t", "t=1533204620,t=1533204620,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "more than one t=");
    refused("duplicated t after v1",
            "t=1533204620,v1=" VECTOR_V1 ",t=1533204620",
            STRIPE_SIG_ERR_MALFORMED, "more than one t=");

    refused("t with +", "t=+1533204620,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is not a decimal integer");
    refused("t with -", "t=-1533204620,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is not a decimal integer");
    refused("t with letters", "t=15332O4620,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is not a decimal integer");
    refused("t in hex", "t=0x5b62f2cc,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is not a decimal integer");
    refused("t with inner space", "t=1533 204620,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is not a decimal integer");
    refused("empty t", "t=,v1=" VECTOR_V1, STRIPE_SIG_ERR_MALFORMED,
            "t= timestamp is empty");
    refused("t overflows int64", "t=9223372036854775808,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is too large");
    refused("t overflows uint64", "t=99999999999999999999999,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is too large");
    refused("t of 33 digits",
            "t=000000000000000000000001533204620,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "longer than 32 digits");

    refused("part with no '='", "t=1533204620,v1=" VECTOR_V1 ",garbage",
            STRIPE_SIG_ERR_MALFORMED, "not key=value (no '=')");
    refused("only a word", "garbage", STRIPE_SIG_ERR_MALFORMED,
            "not key=value (no '=')");
    refused("empty key", "t=1533204620,=abc,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "empty key");
    refused("empty part", "t=1533204620,,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "empty part");
    refused("trailing comma", "t=1533204620,v1=" VECTOR_V1 ",",
            STRIPE_SIG_ERR_MALFORMED, "empty part");

    /* Split on the FIRST '=': the rest belongs to the value. */
    accepted("'=' inside an unknown scheme's value",
             "t=1533204620,v0=a=b==,v1=" VECTOR_V1);
    refused("'=' inside t's value", "t=1533204620=1,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "t= timestamp is not a decimal integer");
    refused("'=' inside v1's value", "t=1533204620,v1==" VECTOR_V1,
            STRIPE_SIG_ERR_MALFORMED, "v1 value is not 64 hex digits");

    accepted("spaces and tabs around parts, keys and values",
             "  t = 1533204620 ,\tv1\t=\t" VECTOR_V1 " , v0=x ");
    refused("keys are case-sensitive", "T=1533204620,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_NO_TIMESTAMP, "has no t= timestamp");

    /* 100 v1 parts: over the length limit, refused before any parsing. */
    p = header + sprintf(header, "t=1533204620");
    for (i = 0; i < 100; i++) {
        p += sprintf(p, ",v1=" VECTOR_V1);
    }
    refused("100 v1 parts", header, STRIPE_SIG_ERR_MALFORMED,
            "longer than 4096 bytes");

    /* 100 short v1 parts fit in 4096 bytes: refused by the first one. */
    p = header + sprintf(header, "t=1533204620");
    for (i = 0; i < 100; i++) {
        p += sprintf(p, ",v1=ab");
    }
    refused("100 short v1 parts", header, STRIPE_SIG_ERR_MALFORMED,
            "v1 value is not 64 hex digits");

    /* Exactly at the limit is fine; one byte more is not. */
    p = header + sprintf(header, "t=1533204620,v1=" VECTOR_V1 ",x=");
    memset(p, 'a', STRIPE_SIG_HEADER_MAX - (size_t) (p - header));
    header[STRIPE_SIG_HEADER_MAX] = '\0';
    accepted("header of exactly 4096 bytes", header);
    header[STRIPE_SIG_HEADER_MAX] = 'a';
    header[STRIPE_SIG_HEADER_MAX + 1] = '\0';
    refused("header of 4097 bytes", header, STRIPE_SIG_ERR_MALFORMED,
            "longer than 4096 bytes");
}


static void
test_mismatch(void)
{
    int                 i;
    char                header[256];
    char                hex[STRIPE_SIG_HEX_LEN + 1];
    const char         *reason;
    stripe_sig_status   rc;
    stripe_sig_secret   wrong = {
        .data = (const unsigned char *) "webhook_secreT", .len = 14
    };

    round_prepare(&wrong, 1);

    /* Flip the last byte, then the first: the compare covers all 32. */
    strcpy(hex, VECTOR_V1);
    hex[63] = hex[63] == '7' ? '6' : '7';
    snprintf(header, sizeof(header), "t=1533204620,v1=%s", hex);
    refused("digest differs only in the last byte", header,
            STRIPE_SIG_ERR_MISMATCH, "no v1 signature matches any");

    strcpy(hex, VECTOR_V1);
    hex[0] = hex[0] == '2' ? '3' : '2';
    snprintf(header, sizeof(header), "t=1533204620,v1=%s", hex);
    refused("digest differs only in the first byte", header,
            STRIPE_SIG_ERR_MISMATCH, "no v1 signature matches any");

    refused("signed at another time", "t=1533204621,v1=" VECTOR_V1,
            STRIPE_SIG_ERR_MISMATCH, "no v1 signature matches any");

    for (i = 0; i < 2; i++) {
        size_t  at = i == 0 ? 0 : body_len - 1;

        body[at] ^= 0x01;
        refused(i == 0 ? "tampered body (first byte)"
                       : "tampered body (last byte)",
                "t=1533204620,v1=" VECTOR_V1, STRIPE_SIG_ERR_MISMATCH,
                "no v1 signature matches any");
        body[at] ^= 0x01;
    }

    rc = stripe_sig_verify("t=1533204620,v1=" VECTOR_V1,
                           strlen("t=1533204620,v1=" VECTOR_V1), body,
                           body_len - 1, vector_key, 1, VECTOR_T, 300,
                           &reason);
    is_int(rc, STRIPE_SIG_ERR_MISMATCH, "truncated body rejected");

    rc = stripe_sig_verify("t=1533204620,v1=" VECTOR_V1,
                           strlen("t=1533204620,v1=" VECTOR_V1), body,
                           body_len, &wrong, 1, VECTOR_T, 300, &reason);
    is_int(rc, STRIPE_SIG_ERR_MISMATCH, "wrong secret rejected");
    ok(reason && strstr(reason, "no v1 signature matches any configured")
       && strstr(reason, "webhook_secre") == NULL,
       "mismatch reason names no secret");
}


static void
test_no_secret(void)
{
    const char         *reason = NULL;
    stripe_sig_status   rc;
    stripe_sig_secret   empty = { .data = (const unsigned char *) "" };
    const char         *h = "t=1533204620,v1=" VECTOR_V1;

    rc = stripe_sig_verify(h, strlen(h), body, body_len, vector_key, 0,
                           VECTOR_T, 300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_SECRET, "nsecrets == 0");
    ok(reason && strstr(reason, "no Stripe webhook secret"),
       "nsecrets == 0: reason");

    rc = stripe_sig_verify(h, strlen(h), body, body_len, NULL, 0, VECTOR_T,
                           300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_SECRET, "secrets == NULL");

    is_int(stripe_sig_secret_prepare(&empty), -1,
           "an empty secret is not prepared");
    is_int(empty.prepared, 0, "an empty secret: not marked prepared");

    rc = stripe_sig_verify(h, strlen(h), body, body_len, &empty, 1, VECTOR_T,
                           300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_SECRET, "an empty secret is no secret");

    rc = stripe_sig_verify(h, strlen(h), body, body_len, vector_key, 0,
                           VECTOR_T + 100000, 300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_SECRET, "no secret is reported first");
}


static void
test_raw_timestamp(void)
{
    char                hex[STRIPE_SIG_HEX_LEN + 1], header[256];
    const char         *reason;
    size_t              i;
    unsigned int        len;
    unsigned char      *msg, digest[EVP_MAX_MD_SIZE];
    stripe_sig_status   rc;
    stripe_sig_header   h;

    /* Sign "01533204620.<body>" by hand: the digits as sent are signed. */
    msg = malloc(body_len + 12);
    if (msg == NULL) {
        ok(0, "malloc");
        return;
    }
    memcpy(msg, "01533204620.", 12);
    memcpy(msg + 12, body, body_len);
    HMAC(EVP_sha256(), VECTOR_SECRET, (int) strlen(VECTOR_SECRET), msg,
         body_len + 12, digest, &len);
    free(msg);

    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", digest[i]);
    }

    snprintf(header, sizeof(header), "t=01533204620,v1=%s", hex);
    accepted("leading zero in t is signed as sent", header);

    refused("leading zero in t, vector signature",
            "t=01533204620,v1=" VECTOR_V1, STRIPE_SIG_ERR_MISMATCH,
            "no v1 signature matches any");

    /* A hand-made struct with no t_text signs the decimal timestamp. */
    memset(&h, 0, sizeof(h));
    h.timestamp = VECTOR_T;
    h.nv1 = 1;
    for (i = 0; i < 32; i++) {
        unsigned int  b;

        sscanf(VECTOR_V1 + 2 * i, "%2x", &b);
        h.v1[0][i] = (unsigned char) b;
    }
    rc = stripe_sig_check(&h, body, body_len, vector_key, 1, VECTOR_T,
                          300, &reason);
    is_int(rc, STRIPE_SIG_OK, "check with t_len 0 formats the timestamp");

    h.nv1 = 0;
    rc = stripe_sig_check(&h, body, body_len, vector_key, 1, VECTOR_T,
                          300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_V1, "check with nv1 0");
}


static void
test_sign(void)
{
    char               hex[STRIPE_SIG_HEX_LEN + 1];
    stripe_sig_secret  empty = { .data = (const unsigned char *) "" };

    is_int(stripe_sig_sign(&empty, VECTOR_T, body, body_len, hex), -1,
           "sign refuses an empty secret");
    is_str(str(hex), "", "sign leaves an empty string on failure");

    is_int(stripe_sig_sign(&vector_secret, VECTOR_T, NULL, 0, hex), 0,
           "sign an empty body");
    is_int(strlen(hex), 64, "64 hex digits");
    ok(strspn(hex, "0123456789abcdef") == 64, "lowercase hex");
}


/* hex of HMAC-SHA256(key, "<t>.<msg>") by OpenSSL's one-shot HMAC() */
static void
reference_hex(const unsigned char *key, size_t key_len, const char *t,
    const unsigned char *msg, size_t msg_len, char hex[STRIPE_SIG_HEX_LEN + 1])
{
    size_t          i, t_len;
    unsigned int    len;
    unsigned char  *signed_text, digest[EVP_MAX_MD_SIZE];

    t_len = strlen(t);
    signed_text = malloc(t_len + 1 + msg_len);
    if (signed_text == NULL) {
        printf("Bail out! malloc\n");
        exit(255);
    }

    memcpy(signed_text, t, t_len);
    signed_text[t_len] = '.';
    if (msg_len > 0) {
        memcpy(signed_text + t_len + 1, msg, msg_len);
    }

    HMAC(EVP_sha256(), key, (int) key_len, signed_text, t_len + 1 + msg_len,
         digest, &len);
    free(signed_text);

    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", digest[i]);
    }
}


static void
test_prepare(void)
{
    size_t              i, nonzero;
    const char         *reason;
    const char         *h = "t=1533204620,v1=" VECTOR_V1;
    stripe_sig_secret   s;

    s = vector_secret;
    is_int(stripe_sig_secret_prepare(&s), 0, "prepare the vector's secret");
    is_int(s.prepared, 1, "marked prepared");
    is_int(stripe_sig_verify(h, strlen(h), body, body_len, &s, 1, VECTOR_T,
                             300, &reason),
           STRIPE_SIG_OK, "the Stripe test vector through a prepared secret");

    /* the check hashes with the states: the key bytes are not read again */
    s.data = (const unsigned char *) "XXXXXXXXXXXXXX";
    is_int(stripe_sig_verify(h, strlen(h), body, body_len, &s, 1, VECTOR_T,
                             300, &reason),
           STRIPE_SIG_OK, "prepared: the states are used, not data");

    s.data = (const unsigned char *) "whsec_other";
    s.len = 11;
    is_int(stripe_sig_secret_prepare(&s), 0, "prepare again, another key");
    is_int(stripe_sig_verify(h, strlen(h), body, body_len, &s, 1, VECTOR_T,
                             300, &reason),
           STRIPE_SIG_ERR_MISMATCH, "prepared again: the new key is used");

    stripe_sig_secret_wipe(&s);
    nonzero = 0;
    for (i = 0; i < STRIPE_SIG_HMAC_STATE_SIZE; i++) {
        nonzero += s.hmac_inner[i] != 0;
        nonzero += s.hmac_outer[i] != 0;
    }
    is_int(nonzero, 0, "wipe zeroes both states");
    is_int(s.prepared, 0, "wipe: no longer marked prepared");
    ok(s.len == 11 && s.data != NULL, "wipe leaves data and len");

    s.data = vector_secret.data;
    s.len = vector_secret.len;
    is_int(stripe_sig_verify(h, strlen(h), body, body_len, &s, 1, VECTOR_T,
                             300, &reason),
           STRIPE_SIG_OK, "wiped: keyed at each check again");
}


/* The same outcome and reason, prepared or not, on a variety of headers. */
static void
test_prepared_same(void)
{
    size_t              i, differ;
    const char         *r1, *r2;
    stripe_sig_status   rc1, rc2;
    stripe_sig_secret   p;
    static const char  *headers[] = {
        "t=1533204620,v1=" VECTOR_V1,
        "t=1533204620,v1=" OTHER_V1,
        "t=1533204620,v1=" OTHER_V1 ",v1=" VECTOR_V1,
        "t=1533204621,v1=" VECTOR_V1,
        "t=01533204620,v1=" VECTOR_V1,
        "t=1533209999,v1=" VECTOR_V1,
        "t=1533204620",
        "v1=" VECTOR_V1,
        "garbage",
    };

    p = vector_secret;
    stripe_sig_secret_prepare(&p);

    differ = 0;
    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        r1 = NULL;
        r2 = NULL;
        rc1 = stripe_sig_verify(headers[i], strlen(headers[i]), body,
                                body_len, &vector_secret, 1, VECTOR_T, 300,
                                &r1);
        rc2 = stripe_sig_verify(headers[i], strlen(headers[i]), body,
                                body_len, &p, 1, VECTOR_T, 300, &r2);
        if (rc1 != rc2 || r1 != r2) {
            diag("differ on \"%s\": %d \"%s\" vs %d \"%s\"", headers[i],
                 rc1, r1 ? r1 : "(null)", rc2, r2 ? r2 : "(null)");
            differ++;
        }
    }

    is_int(differ, 0, "prepared and not: same status and reason on %zu "
           "headers", sizeof(headers) / sizeof(headers[0]));

    stripe_sig_secret_wipe(&p);
}


/*
 * Keys around SHA-256's 64-byte block (a longer key is hashed first) and
 * bodies around its padding boundaries, against OpenSSL's HMAC().
 */
static void
test_key_lengths(void)
{
    static const size_t  key_lens[] = { 1, 32, 63, 64, 65, 128, 200 };
    static const size_t  body_lens[] = { 0, 1, 44, 45, 53, 117, 484, 3000 };
    size_t               k, b, i, signed_bad, plain_bad, prep_bad, forged;
    char                 want[STRIPE_SIG_HEX_LEN + 1];
    char                 hex[STRIPE_SIG_HEX_LEN + 1], header[128];
    const char          *reason;
    unsigned char        key[200], msg[3000];
    stripe_sig_secret    plain, prep;

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (unsigned char) (i * 131 + 7);
    }

    for (k = 0; k < sizeof(key_lens) / sizeof(key_lens[0]); k++) {
        for (i = 0; i < key_lens[k]; i++) {
            key[i] = (unsigned char) (i * 37 + key_lens[k]);  /* 0x00 too */
        }

        memset(&plain, 0, sizeof(plain));
        plain.data = key;
        plain.len = key_lens[k];
        prep = plain;
        is_int(stripe_sig_secret_prepare(&prep), 0,
               "key of %zu bytes: prepared", key_lens[k]);

        signed_bad = plain_bad = prep_bad = forged = 0;

        for (b = 0; b < sizeof(body_lens) / sizeof(body_lens[0]); b++) {
            reference_hex(key, key_lens[k], "1533204620", msg, body_lens[b],
                          want);

            stripe_sig_sign(&plain, VECTOR_T, msg, body_lens[b], hex);
            signed_bad += strcmp(hex, want) != 0;

            snprintf(header, sizeof(header), "t=1533204620,v1=%s", want);
            plain_bad += stripe_sig_verify(header, strlen(header), msg,
                                           body_lens[b], &plain, 1, VECTOR_T,
                                           300, &reason)
                         != STRIPE_SIG_OK;
            prep_bad += stripe_sig_verify(header, strlen(header), msg,
                                          body_lens[b], &prep, 1, VECTOR_T,
                                          300, &reason)
                        != STRIPE_SIG_OK;

            /* one bit off: refused both ways */
            i = strlen(header) - 1;
            header[i] = header[i] == '0' ? '1' : '0';
            forged += stripe_sig_verify(header, strlen(header), msg,
                                        body_lens[b], &plain, 1, VECTOR_T,
                                        300, &reason)
                      == STRIPE_SIG_ERR_MISMATCH;
            forged += stripe_sig_verify(header, strlen(header), msg,
                                        body_lens[b], &prep, 1, VECTOR_T,
                                        300, &reason)
                      == STRIPE_SIG_ERR_MISMATCH;
        }

        is_int(signed_bad, 0, "key of %zu bytes: sign agrees with HMAC()",
               key_lens[k]);
        is_int(plain_bad, 0, "key of %zu bytes: HMAC()'s signature verifies",
               key_lens[k]);
        is_int(prep_bad, 0, "key of %zu bytes: verifies when prepared",
               key_lens[k]);
        is_int(forged, 2 * b, "key of %zu bytes: a bit off is refused",
               key_lens[k]);

        stripe_sig_secret_wipe(&prep);
    }

    /* an empty key is refused everywhere: one every forger knows */
    memset(&plain, 0, sizeof(plain));
    plain.data = key;
    is_int(stripe_sig_secret_prepare(&plain), -1,
           "key of 0 bytes: not prepared");
    is_int(stripe_sig_sign(&plain, VECTOR_T, msg, 10, hex), -1,
           "key of 0 bytes: sign refuses");
    reference_hex(key, 0, "1533204620", msg, 10, want);
    snprintf(header, sizeof(header), "t=1533204620,v1=%s", want);
    is_int(stripe_sig_verify(header, strlen(header), msg, 10, &plain, 1,
                             VECTOR_T, 300, &reason),
           STRIPE_SIG_ERR_NO_SECRET,
           "key of 0 bytes: HMAC()'s signature is not accepted");
}


/* Several secrets, prepared, not, or some of each: the match anywhere. */
static void
test_secret_positions(void)
{
    static const char *const  modes[] = { "none", "all", "every other" };
    size_t                    n, at, i, mode, bad;
    char                      names[4][32], hex[STRIPE_SIG_HEX_LEN + 1];
    char                      forged[STRIPE_SIG_HEX_LEN + 1], header[256];
    const char               *reason;
    stripe_sig_secret         secrets[4], stranger;

    memset(&stranger, 0, sizeof(stranger));
    stranger.data = (const unsigned char *) "whsec_stranger";
    stranger.len = 14;
    stripe_sig_sign(&stranger, VECTOR_T, body, body_len, forged);

    for (mode = 0; mode < 3; mode++) {
        for (n = 1; n <= 4; n++) {
            memset(secrets, 0, sizeof(secrets));

            for (i = 0; i < n; i++) {
                snprintf(names[i], sizeof(names[i]), "whsec_position_%zu", i);
                secrets[i].data = (const unsigned char *) names[i];
                secrets[i].len = strlen(names[i]);

                if (mode == 1 || (mode == 2 && i % 2 == 0)) {
                    stripe_sig_secret_prepare(&secrets[i]);
                }
            }

            bad = 0;

            for (at = 0; at < n; at++) {
                stripe_sig_sign(&secrets[at], VECTOR_T, body, body_len, hex);

                snprintf(header, sizeof(header), "t=1533204620,v1=%s", hex);
                bad += stripe_sig_verify(header, strlen(header), body,
                                         body_len, secrets, n, VECTOR_T, 300,
                                         &reason)
                       != STRIPE_SIG_OK;

                /* the genuine v1 after a forged one */
                snprintf(header, sizeof(header),
                         "t=1533204620,v1=%s,v1=%s", forged, hex);
                bad += stripe_sig_verify(header, strlen(header), body,
                                         body_len, secrets, n, VECTOR_T, 300,
                                         &reason)
                       != STRIPE_SIG_OK;
            }

            is_int(bad, 0, "%zu secrets, %s prepared: the match in each "
                   "position is accepted", n, modes[mode]);

            snprintf(header, sizeof(header), "t=1533204620,v1=%s", forged);
            is_int(stripe_sig_verify(header, strlen(header), body, body_len,
                                     secrets, n, VECTOR_T, 300, &reason),
                   STRIPE_SIG_ERR_MISMATCH,
                   "%zu secrets, %s prepared: another secret's signature is "
                   "refused", n, modes[mode]);

            for (i = 0; i < n; i++) {
                stripe_sig_secret_wipe(&secrets[i]);
            }
        }
    }
}


/* run twice: with the vector's secret as given, then prepared */
static void
verification_tests(void)
{
    test_vector();
    test_several_v1();
    test_rotation();
    test_tolerance();
    test_refusals();
    test_mismatch();
    test_no_secret();
    test_raw_timestamp();
}


int
main(void)
{
    stripe_sig_secret  prepared;

    body = read_file(VECTOR_PATH, &body_len);
    if (body == NULL) {
        ok(0, "read %s (run from the repository root)", VECTOR_PATH);
        return tap_done();
    }

    verification_tests();
    test_sign();

    /* the same again, as the module checks: every secret prepared */
    prepared = vector_secret;
    if (!is_int(stripe_sig_secret_prepare(&prepared), 0,
                "prepared round: the vector's secret prepared"))
    {
        return tap_done();
    }

    vector_key = &prepared;
    prepared_round = 1;

    verification_tests();

    stripe_sig_secret_wipe(&prepared);
    vector_key = &vector_secret;

    test_prepare();
    test_prepared_same();
    test_key_lengths();
    test_secret_positions();

    free(body);
    return tap_done();
}
