/*
 * Unit tests for src/stripe_sig.c (SPEC 7). Run from the repository root:
 * the test vector's payload is read from t/fixtures/.
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
    (const unsigned char *) VECTOR_SECRET, sizeof(VECTOR_SECRET) - 1
};


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


static stripe_sig_status
verify_vector(const char *header, int64_t now, int64_t tolerance,
    const char **reason)
{
    *reason = NULL;
    return stripe_sig_verify(header, strlen(header), body, body_len,
                             &vector_secret, 1, now, tolerance, reason);
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

    is_int(stripe_sig_check(&h, body, body_len, &vector_secret, 1, VECTOR_T,
                            300, &reason),
           STRIPE_SIG_OK, "check on a parsed header");

    /* reason is optional */
    is_int(stripe_sig_verify("", 0, body, body_len, &vector_secret, 1,
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
        { (const unsigned char *) "whsec_old", 9 },
        { (const unsigned char *) "whsec_new", 9 },
    };

    stripe_sig_sign(&secrets[1], VECTOR_T, body, body_len, hex_new);
    stripe_sig_sign(&secrets[0], VECTOR_T, body, body_len, hex_old);
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
    stripe_sig_secret   wrong = { (const unsigned char *) "webhook_secreT",
                                  14 };

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
                           body_len - 1, &vector_secret, 1, VECTOR_T, 300,
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
    stripe_sig_secret   empty = { (const unsigned char *) "", 0 };
    const char         *h = "t=1533204620,v1=" VECTOR_V1;

    rc = stripe_sig_verify(h, strlen(h), body, body_len, &vector_secret, 0,
                           VECTOR_T, 300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_SECRET, "nsecrets == 0");
    ok(reason && strstr(reason, "no Stripe webhook secret"),
       "nsecrets == 0: reason");

    rc = stripe_sig_verify(h, strlen(h), body, body_len, NULL, 0, VECTOR_T,
                           300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_SECRET, "secrets == NULL");

    rc = stripe_sig_verify(h, strlen(h), body, body_len, &empty, 1, VECTOR_T,
                           300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_SECRET, "an empty secret is no secret");

    rc = stripe_sig_verify(h, strlen(h), body, body_len, &vector_secret, 0,
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
    rc = stripe_sig_check(&h, body, body_len, &vector_secret, 1, VECTOR_T,
                          300, &reason);
    is_int(rc, STRIPE_SIG_OK, "check with t_len 0 formats the timestamp");

    h.nv1 = 0;
    rc = stripe_sig_check(&h, body, body_len, &vector_secret, 1, VECTOR_T,
                          300, &reason);
    is_int(rc, STRIPE_SIG_ERR_NO_V1, "check with nv1 0");
}


static void
test_sign(void)
{
    char               hex[STRIPE_SIG_HEX_LEN + 1];
    stripe_sig_secret  empty = { (const unsigned char *) "", 0 };

    is_int(stripe_sig_sign(&empty, VECTOR_T, body, body_len, hex), -1,
           "sign refuses an empty secret");
    is_str(str(hex), "", "sign leaves an empty string on failure");

    is_int(stripe_sig_sign(&vector_secret, VECTOR_T, NULL, 0, hex), 0,
           "sign an empty body");
    is_int(strlen(hex), 64, "64 hex digits");
    ok(strspn(hex, "0123456789abcdef") == 64, "lowercase hex");
}


int
main(void)
{
    body = read_file(VECTOR_PATH, &body_len);
    if (body == NULL) {
        ok(0, "read %s (run from the repository root)", VECTOR_PATH);
        return tap_done();
    }

    test_vector();
    test_several_v1();
    test_rotation();
    test_tolerance();
    test_refusals();
    test_mismatch();
    test_no_secret();
    test_raw_timestamp();
    test_sign();

    free(body);
    return tap_done();
}
