/*
 * stripe_sig.h - verification of the Stripe-Signature webhook header.
 *
 * Header: "t=<unix>,v1=<hex>[,v1=<hex>...][,v0=<hex>]". The signed string is
 * "<t>.<raw body>", HMAC-SHA256 keyed with the whole "whsec_..." secret, in
 * lowercase hex. An event is genuine when ANY v1 value matches ANY secret and
 * |now - t| <= tolerance. Other schemes are ignored. Digests are compared in
 * constant time.
 *
 * Pure C: no nginx, no allocation (not even in OpenSSL: SHA-256 runs on
 * states held in stripe_sig_secret and on the stack). Shared by the nginx
 * module and the tool.
 */

#ifndef STRIPE_SIG_H
#define STRIPE_SIG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STRIPE_SIG_MAX_V1      16   /* v1 values kept; more are refused */
#define STRIPE_SIG_HEX_LEN     64   /* hex digits of a SHA-256 digest */
#define STRIPE_SIG_HEADER_MAX  4096 /* longest header we accept */
#define STRIPE_SIG_T_MAX       32   /* digits of t= kept verbatim */

typedef enum {
    STRIPE_SIG_OK = 0,
    STRIPE_SIG_ERR_MISSING,       /* no header, or empty */
    STRIPE_SIG_ERR_MALFORMED,     /* not "key=value" pairs, bad t, bad hex */
    STRIPE_SIG_ERR_NO_TIMESTAMP,  /* no t= */
    STRIPE_SIG_ERR_NO_V1,         /* no v1= (v0 alone does not count) */
    STRIPE_SIG_ERR_TOLERANCE,     /* |now - t| > tolerance */
    STRIPE_SIG_ERR_MISMATCH,      /* no v1 matched any secret */
    STRIPE_SIG_ERR_NO_SECRET      /* caller passed no secret */
} stripe_sig_status;

/*
 * A parsed header. The digests are decoded from hex. t_text keeps the t=
 * digits exactly as sent (leading zeros included): they are what was signed.
 * A caller filling the struct by hand may leave t_len 0; then the decimal
 * form of timestamp is signed.
 */
typedef struct {
    int64_t        timestamp;
    char           t_text[STRIPE_SIG_T_MAX + 1];
    size_t         t_len;
    size_t         nv1;
    unsigned char  v1[STRIPE_SIG_MAX_V1][32];
} stripe_sig_header;

/* Bytes of one SHA-256 state (OpenSSL's SHA256_CTX, checked in the .c). */
#define STRIPE_SIG_HMAC_STATE_SIZE  112

/*
 * A secret: bytes, not necessarily NUL-terminated. Zero the whole struct
 * before setting data and len by hand.
 *
 * stripe_sig_secret_prepare() keys HMAC-SHA256 with it once: hmac_inner and
 * hmac_outer are the SHA-256 states after key^ipad and key^opad, so a check
 * only hashes the signed string. A secret not prepared is keyed at each
 * check. The states are as sensitive as the key: keep the struct wherever
 * the secret itself lives, and stripe_sig_secret_wipe() it (or wipe that
 * memory) when done. Prepare again after changing data or len.
 */
typedef struct {
    const unsigned char  *data;
    size_t                len;
    int                   prepared;
    unsigned char         hmac_inner[STRIPE_SIG_HMAC_STATE_SIZE];
    unsigned char         hmac_outer[STRIPE_SIG_HMAC_STATE_SIZE];
} stripe_sig_secret;

/*
 * Parses a header. On error returns the status and, when reason is not NULL,
 * points *reason at a static sentence naming what was wrong, e.g.
 * "Stripe-Signature v1 value is not 64 hex digits".
 */
stripe_sig_status stripe_sig_parse(const char *header, size_t len,
    stripe_sig_header *out, const char **reason);

/*
 * Keys HMAC-SHA256 with secret->data (see stripe_sig_secret). Returns 0, or
 * -1 (secret not prepared) when the secret is empty or OpenSSL failed.
 */
int stripe_sig_secret_prepare(stripe_sig_secret *secret);

/* Erases the prepared state (data and len are left as they are). */
void stripe_sig_secret_wipe(stripe_sig_secret *secret);

/*
 * Verifies a parsed header against a body and the configured secrets,
 * prepared or not. tolerance is in seconds; 0 disables the time check.
 */
stripe_sig_status stripe_sig_check(const stripe_sig_header *h,
    const unsigned char *body, size_t body_len,
    const stripe_sig_secret *secrets, size_t nsecrets,
    int64_t now, int64_t tolerance, const char **reason);

/* Parse then check: the whole verification in one call. */
stripe_sig_status stripe_sig_verify(const char *header, size_t header_len,
    const unsigned char *body, size_t body_len,
    const stripe_sig_secret *secrets, size_t nsecrets,
    int64_t now, int64_t tolerance, const char **reason);

/*
 * Computes the v1 signature of body at timestamp t with secret, as 64
 * lowercase hex digits plus a NUL into hex (used by "stripe-sync send" and
 * the tests). Like a check, it uses the prepared states when the secret
 * has them, else keys the HMAC from data and len.
 */
int stripe_sig_sign(const stripe_sig_secret *secret, int64_t t,
    const unsigned char *body, size_t body_len,
    char hex[STRIPE_SIG_HEX_LEN + 1]);

#endif /* STRIPE_SIG_H */
