/* Placeholder: replaced by the real implementation. */

#include "stripe_sig.h"


stripe_sig_status
stripe_sig_parse(const char *header, size_t len, stripe_sig_header *out,
    const char **reason)
{
    (void) header; (void) len; (void) out;
    *reason = "not implemented";
    return STRIPE_SIG_ERR_MALFORMED;
}


stripe_sig_status
stripe_sig_check(const stripe_sig_header *h, const unsigned char *body,
    size_t body_len, const stripe_sig_secret *secrets, size_t nsecrets,
    int64_t now, int64_t tolerance, const char **reason)
{
    (void) h; (void) body; (void) body_len; (void) secrets; (void) nsecrets;
    (void) now; (void) tolerance;
    *reason = "not implemented";
    return STRIPE_SIG_ERR_MISMATCH;
}


stripe_sig_status
stripe_sig_verify(const char *header, size_t header_len,
    const unsigned char *body, size_t body_len,
    const stripe_sig_secret *secrets, size_t nsecrets,
    int64_t now, int64_t tolerance, const char **reason)
{
    (void) header; (void) header_len; (void) body; (void) body_len;
    (void) secrets; (void) nsecrets; (void) now; (void) tolerance;
    *reason = "not implemented";
    return STRIPE_SIG_ERR_MISMATCH;
}


int
stripe_sig_sign(const stripe_sig_secret *secret, int64_t t,
    const unsigned char *body, size_t body_len,
    char hex[STRIPE_SIG_HEX_LEN + 1])
{
    (void) secret; (void) t; (void) body; (void) body_len;
    hex[0] = '\0';
    return -1;
}
