/*
 * Unit tests of action_from_event() on what Stripe does not usually send:
 * bodies that are not JSON or not events, odd values (numbers as strings,
 * duplicate keys, huge numbers), missing customers and emails, non-ASCII
 * text, and inputs built to push the record past its bound.
 */

#include <stdarg.h>

#include "action_test.h"


/* A buffer that grows, for the big bodies. */
typedef struct {
    char    *s;
    size_t   len;
    size_t   size;
} sbuf;


static void
sbuf_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sbuf_add(sbuf *b, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    for ( ;; ) {
        va_start(ap, fmt);
        n = vsnprintf(b->s + b->len, b->size - b->len, fmt, ap);
        va_end(ap);

        if (b->s != NULL && (size_t) n < b->size - b->len) {
            b->len += n;
            return;
        }

        b->size = b->size * 2 + n + 64;
        b->s = realloc(b->s, b->size);
        if (b->s == NULL) {
            diag("out of memory");
            exit(1);
        }
    }
}


static void
sbuf_repeat(sbuf *b, const char *s, size_t times)
{
    while (times--) {
        sbuf_add(b, "%s", s);
    }
}


static void
is_invalid(const char *body, size_t len, const char *reason, const char *what)
{
    run_bytes(body, len);
    is_int(S, ACTION_INVALID, "%s: invalid", what);
    is_str(A.reason, reason, "%s: reason", what);
    ok(A.record == NULL && A.name == NULL, "%s: no record", what);
}


/* ---- bodies that are not events ---- */

static void
test_not_json(void)
{
    char  body[] = "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\"}";

    is_invalid("", 0, "body is not JSON: empty body", "empty body");
    is_invalid("  \n", 3, "body is not JSON: only whitespace (3 bytes)",
               "blanks");
    is_invalid("{\"id\":\"evt_1\",\"type\":\"charge.succ", 33,
               "body is not JSON: unterminated string starting at byte 21",
               "truncated JSON");
    is_invalid("{}x", 3, "body is not JSON: trailing garbage at byte 2",
               "trailing garbage");
    is_invalid("{\"a\":1,}", 8, "body is not JSON: unexpected '}' at byte 7, "
               "expected a member name (a string)", "trailing comma");
    is_invalid("/* c */ {}", 10, "body is not JSON: unexpected '/' at byte 0, "
               "expected a value (comments are not JSON)", "comments refused");
    is_invalid("{\"id\":'evt'}", 12,
               "body is not JSON: unexpected ''' at byte 6, expected a value",
               "single quotes");

    /* a NUL in the body, though body[len] is '\0' */
    body[6] = '\0';
    is_invalid(body, sizeof(body) - 1, "body contains a NUL byte",
               "embedded NUL");

    is_invalid("[]", 2, "body is not a JSON object", "array");
    is_invalid("\"evt_1\"", 7, "body is not a JSON object", "string");
    is_invalid("42", 2, "body is not a JSON object", "number");
    is_invalid("null", 4, "body is not a JSON object", "null");
}


static void
test_utf8(void)
{
    static const char  *bad[][2] = {
        { "{\"id\":\"evt_\xff\"}",
          "body has a string that is not valid UTF-8: invalid byte 0xff at "
          "byte 11" },
        { "{\"id\":\"evt_\xc3\"}",
          "body has a string that is not valid UTF-8: incomplete sequence at "
          "byte 11" },
        { "{\"id\":\"\xc0\x80\"}",
          "body has a string that is not valid UTF-8: overlong form at "
          "byte 7" },
        { "{\"id\":\"\xe0\x80\xaf\"}",
          "body has a string that is not valid UTF-8: overlong form at "
          "byte 7" },
        { "{\"id\":\"\xed\xa0\x80\"}",
          "body has a string that is not valid UTF-8: UTF-16 surrogate at "
          "byte 7" },
        { "{\"id\":\"\xf4\x90\x80\x80\"}",
          "body has a string that is not valid UTF-8: code point past "
          "U+10FFFF at byte 7" },
        { "{\"id\":\"\\udc00\"}",
          "body has a string that is not valid UTF-8: unpaired UTF-16 "
          "surrogate \\udc00 at byte 7" },
        { "{\"\xc0\xaf\":1}",
          "body has a string that is not valid UTF-8: overlong form at "
          "byte 2" }                                            /* in a key */
    };
    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        is_invalid(bad[i][0], strlen(bad[i][0]), bad[i][1], bad[i][0]);
    }
}


static void
test_truncated_everywhere(void)
{
    char    *data, *body;
    size_t   len, cut, wrong;

    data = read_file(FIXTURES "/event-data/invoice.payment_failed.data.json",
                     NULL);
    body = event_json("invoice.payment_failed", data);
    len = strlen(body);
    free(data);

    wrong = 0;

    for (cut = 0; cut < len; cut++) {
        run_bytes(body, cut);

        if (S != ACTION_INVALID
            || strncmp(A.reason, "body is not JSON: ", 18) != 0
            || strchr(A.reason, '\n') != NULL)
        {
            if (wrong++ < 3) {
                diag("cut at %zu: status %d, reason '%s'", cut, S, A.reason);
            }
        }
    }

    is_int(wrong, 0, "every prefix of an event (%zu) is not JSON", len);

    run_bytes(body, len);
    is_int(S, ACTION_OK, "the whole event is");

    free(body);
}


static void
test_nesting(void)
{
    sbuf    b = { NULL, 0, 0 };
    size_t  depth;

    /* 1,000 levels under data.object.metadata */
    sbuf_add(&b, "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\","
             "\"data\":{\"object\":{\"metadata\":");
    sbuf_repeat(&b, "[", 1000);
    sbuf_repeat(&b, "]", 1000);
    sbuf_add(&b, "}}}");
    is_invalid(b.s, b.len, "JSON nesting deeper than 64 levels at byte 130",
               "1,000 levels");

    /* 1 MB of '[' : refused at level 65, no stack used */
    b.len = 0;
    sbuf_repeat(&b, "[", 1024 * 1024);
    is_invalid(b.s, b.len, "JSON nesting deeper than 64 levels at byte 64",
               "1 MB of [");

    /* 64 levels is the limit: the event is 1, data 2, ... */
    for (depth = 64; depth <= 65; depth++) {
        b.len = 0;
        sbuf_add(&b, "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\","
                 "\"data\":{\"object\":{\"x\":");
        sbuf_repeat(&b, "[", depth - 3);
        sbuf_repeat(&b, "]", depth - 3);
        sbuf_add(&b, "}}}");
        run_bytes(b.s, b.len);
        is_int(S, depth == 64 ? ACTION_OK : ACTION_INVALID,
               "%zu levels: %s", depth, depth == 64 ? "ok" : "refused");
    }

    free(b.s);
}


static void
test_envelope(void)
{
    static const char  *bad[][2] = {
        { "{\"type\":\"charge.succeeded\"}", "event has no \"id\"" },
        { "{\"id\":null,\"type\":\"charge.succeeded\"}",
          "event has no \"id\"" },
        { "{\"id\":42,\"type\":\"charge.succeeded\"}", "event has no \"id\"" },
        { "{\"id\":\"\",\"type\":\"charge.succeeded\"}",
          "event \"id\" is not 1 to 255 printable characters" },
        { "{\"id\":\"evt\\n1\",\"type\":\"charge.succeeded\"}",
          "event \"id\" is not 1 to 255 printable characters" },
        { "{\"id\":\"evt_1\"}", "event has no \"type\"" },
        { "{\"id\":\"evt_1\",\"type\":[\"charge.succeeded\"]}",
          "event has no \"type\"" },
        { "{\"id\":\"evt_1\",\"type\":\"\"}",
          "event \"type\" is not 1 to 255 printable characters" },
        { "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\"}",
          "event has no data.object" },
        { "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\",\"data\":null}",
          "event has no data.object" },
        { "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\","
          "\"data\":{\"object\":\"ch_1\"}}", "event has no data.object" },
        { "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\","
          "\"data\":{\"object\":[]}}", "event has no data.object" }
    };
    sbuf    b = { NULL, 0, 0 };
    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        is_invalid(bad[i][0], strlen(bad[i][0]), bad[i][1], bad[i][0]);
    }

    run("{\"id\":\"evt_1\",\"type\":\"charge.succeeded\"}");
    is_str(A.id, "evt_1", "no data.object: a->id still set");

    /* an id of 256 characters */
    sbuf_add(&b, "{\"id\":\"");
    sbuf_repeat(&b, "e", 256);
    sbuf_add(&b, "\",\"type\":\"x.y\"}");
    is_invalid(b.s, b.len,
               "event \"id\" is not 1 to 255 printable characters",
               "256-character id");

    b.len = 0;
    sbuf_add(&b, "{\"id\":\"");
    sbuf_repeat(&b, "e", 255);
    sbuf_add(&b, "\",\"type\":\"x.y\"}");
    run_bytes(b.s, b.len);
    is_int(S, ACTION_IGNORED, "255-character id: fine (then ignored)");
    is_int(strlen(A.id), 255, "a->id has 255 characters");

    /* an unknown type: ignored, whatever the data */
    run("{\"id\":\"evt_1\",\"type\":\"radar.early_fraud_warning.created\"}");
    is_int(S, ACTION_IGNORED, "unknown type without data: ignored");
    is_str(A.reason, "event type \"radar.early_fraud_warning.created\" is "
           "not handled", "reason names the type");
    is_int(A.livemode, -1, "a->livemode -1 when absent");

    /* a long type: the reason is cut, still one line, still terminated */
    b.len = 0;
    sbuf_add(&b, "{\"id\":\"evt_1\",\"type\":\"");
    sbuf_repeat(&b, "t", 255);
    sbuf_add(&b, "\",\"livemode\":true}");
    run_bytes(b.s, b.len);
    is_int(S, ACTION_IGNORED, "255-character type: ignored");
    is_int(strlen(A.reason), sizeof(A.reason) - 1, "reason cut to fit");
    is_int(A.livemode, 1, "a->livemode 1");

    /* livemode as a string is no livemode */
    run("{\"id\":\"evt_1\",\"type\":\"charge.succeeded\",\"livemode\":\"true\","
        "\"created\":\"1745433906\",\"data\":{\"object\":{\"id\":\"ch_1\"}}}");
    is_int(A.livemode, -1, "livemode \"true\": absent");
    ok(!has("livemode") && !has("created"),
       "record: no livemode, no created");

    free(b.s);
}


/* ---- customers and emails ---- */

static void
test_customer_and_email(void)
{
    run_object("invoice.payment_failed",
               "{\"id\":\"in_1\",\"customer\":null,"
               "\"customer_email\":\"a@example.org\"}");
    is_str(keys_at("customer"), "email", "null customer: email only");
    ok(A.customer_id == NULL, "null customer: no a->customer_id");
    ok(A.customer_json == NULL, "no id: no a->customer_json");
    ok(!has("enrich"), "email known: nothing to enrich");

    run_object("invoice.payment_failed",
               "{\"id\":\"in_1\",\"customer\":\"cus_1\","
               "\"customer_email\":null,\"customer_name\":null}");
    is_str(keys_at("customer"), "id", "no email anywhere: id only");
    ok(strstr(A.record, "@") == NULL, "no email invented");
    is_str(str_at("enrich.0"), "email", "enrich email");
    ok(A.customer_json == NULL, "no a->customer_json");

    run_object("invoice.payment_failed", "{\"id\":\"in_1\"}");
    ok(!has("customer") && !has("enrich"),
       "no customer at all: no customer member, nothing to enrich");

    /* checkout: customer_details.email first, customer_email the prefill */
    run_object("checkout.session.completed",
               "{\"id\":\"cs_1\",\"mode\":\"payment\","
               "\"payment_status\":\"paid\",\"customer\":\"cus_1\","
               "\"customer_email\":\"prefill@example.org\","
               "\"customer_details\":{\"email\":\"typed@example.org\"}}");
    is_str(str_at("customer.email"), "typed@example.org",
           "customer_details.email beats customer_email");

    run_object("checkout.session.completed",
               "{\"id\":\"cs_1\",\"mode\":\"payment\","
               "\"payment_status\":\"paid\",\"customer\":\"cus_1\","
               "\"customer_email\":\"prefill@example.org\","
               "\"customer_details\":{\"email\":null}}");
    is_str(str_at("customer.email"), "prefill@example.org",
           "customer_email when customer_details has none");

    /* charge: billing_details.email, then receipt_email */
    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"customer\":\"cus_1\","
               "\"billing_details\":{\"email\":null,\"name\":\"Ada\"},"
               "\"receipt_email\":\"receipt@example.org\"}");
    is_str(str_at("customer.email"), "receipt@example.org", "receipt_email");
    is_str(A.customer_json,
           "{\"email\":\"receipt@example.org\",\"name\":\"Ada\"}",
           "a->customer_json");

    /* an expanded customer */
    run_object("invoice.paid",
               "{\"id\":\"in_1\",\"customer_email\":null,\"customer\":"
               "{\"id\":\"cus_X\",\"object\":\"customer\","
               "\"email\":\"x@example.org\",\"name\":\"X\"}}");
    is_str(str_at("customer.id"), "cus_X", "expanded customer: its id");
    is_str(str_at("customer.email"), "x@example.org", "its email");
    is_str(str_at("customer.name"), "X", "its name");

    run_object("customer.subscription.created",
               "{\"id\":\"sub_1\",\"customer\":{\"id\":\"cus_Y\","
               "\"email\":\"y@example.org\"}}");
    is_str(str_at("customer.email"), "y@example.org",
           "subscription with an expanded customer: its email");
    is_str(A.customer_json, "{\"email\":\"y@example.org\"}",
           "a->customer_json without a name");

    /* payment intent, API before 2022-11-15: charges.data */
    run_object("payment_intent.succeeded",
               "{\"id\":\"pi_1\",\"customer\":\"cus_1\",\"receipt_email\":null,"
               "\"charges\":{\"data\":[{\"billing_details\":"
               "{\"email\":\"c@example.org\",\"name\":\"C\"}}]}}");
    is_str(str_at("customer.email"), "c@example.org",
           "payment intent: charges.data[0].billing_details.email");
    is_str(str_at("customer.name"), "C", "and its name");

    /* not an email: skipped for the next location */
    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"billing_details\":{\"email\":\"nobody\"},"
               "\"receipt_email\":\"r@example.org\"}");
    is_str(str_at("customer.email"), "r@example.org", "no @: skipped");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"customer\":\"cus_1\","
               "\"billing_details\":{\"email\":\"a b@example.org\"}}");
    ok(!has("customer.email"), "a space: not an email");

    run_object("customer.created",
               "{\"id\":\"cus_1\",\"email\":\"\",\"name\":\"\"}");
    is_str(keys_at("customer"), "id", "empty email and name: absent");

    /* customer.updated: the old email */
    run_event("customer.updated",
              "{\"object\":{\"id\":\"cus_1\",\"email\":\"new@example.org\"},"
              "\"previous_attributes\":{\"email\":\"old@example.org\","
              "\"name\":\"Old Name\"}}");
    is_str(str_at("previous.email"), "old@example.org", "previous.email");
    is_str(str_at("previous.name"), "Old Name", "previous.name");
    is_str(str_at("customer.email"), "new@example.org", "customer.email");
}


static void
test_names_non_ascii(void)
{
    run_object("customer.created",
               "{\"id\":\"cus_1\",\"email\":\"zoe@example.org\","
               "\"name\":\"Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m\"}");
    is_str(str_at("customer.name"), "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m",
           "raw UTF-8 name");
    is_str(A.customer_json, "{\"email\":\"zoe@example.org\","
           "\"name\":\"Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m\"}",
           "customer_json keeps UTF-8 as is");

    run_object("customer.created",
               "{\"id\":\"cus_1\",\"name\":\"\\u5c71\\u7530 \\u0141ukasz "
               "\\ud83d\\ude00\"}");
    is_str(str_at("customer.name"),
           "\xe5\xb1\xb1\xe7\x94\xb0 \xc5\x81ukasz \xf0\x9f\x98\x80",
           "\\u escapes and a surrogate pair decoded");

    run_object("customer.created",
               "{\"id\":\"cus_1\",\"name\":\"O'Brien \\\"Ace\\\" \\\\ "
               "</script>\\n\\u0000x\"}");
    is_str(str_at("customer.name"), "O'Brien \"Ace\" \\ </script>\n",
           "quotes, backslash, newline round-trip (cut at the NUL by C)");
    ok(strstr(A.record, "\\u0000x") != NULL, "a NUL is written \\u0000");
}


/* ---- values in shapes Stripe does not send ---- */

static void
test_numbers(void)
{
    run_object("charge.succeeded", "{\"id\":\"ch_1\",\"amount\":0}");
    is_int(int_at_path("amount"), 0, "amount 0 is kept");

    run_object("charge.succeeded", "{\"id\":\"ch_1\",\"amount\":\"2000\"}");
    ok(!has("amount"), "amount as a string: left out");

    run_object("charge.succeeded", "{\"id\":\"ch_1\",\"amount\":20.5}");
    ok(!has("amount"), "a fraction: left out");

    run_object("charge.succeeded", "{\"id\":\"ch_1\",\"amount\":2e3}");
    ok(!has("amount"), "an exponent: left out");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"amount\":99999999999999999999999}");
    ok(!has("amount"), "past 2^63: left out");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"amount\":9223372036854775807}");
    is_int(int_at_path("amount"), 9223372036854775807LL, "2^63-1 kept");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"amount\":9223372036854775808}");
    ok(!has("amount"), "2^63: left out");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"amount\":-9223372036854775807}");
    is_int(int_at_path("amount"), -9223372036854775807LL,
           "-(2^63-1) kept (as given)");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"amount\":-9223372036854775808}");
    ok(!has("amount"), "-2^63: left out (yajl cannot read it back)");

    run_object("charge.succeeded", "{\"id\":\"ch_1\",\"amount\":-0}");
    is_int(int_at_path("amount"), 0, "-0 is 0");

    run_object("invoice.paid", "{\"id\":\"in_1\",\"attempt_count\":\"3\","
               "\"billing_reason\":\"subscription_cycle\"}");
    is_str(A.name, "renewal", "attempt_count \"3\" is no count: renewal");
    ok(!has("attempt_count"), "attempt_count as a string: left out");

    run_object("invoice.payment_failed",
               "{\"id\":\"in_1\",\"attempt_count\":1.0}");
    is_str(A.once_key, "payment_failed:in_1:0",
           "attempt_count 1.0: counted as absent in once_key");

    run_object("invoice.paid",
               "{\"id\":\"in_1\",\"lines\":{\"data\":[{\"quantity\":\"1\","
               "\"amount\":\"100\",\"price\":{\"id\":\"price_1\"}}]}}");
    is_str(keys_at("items.0"), "price", "line: string numbers left out");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"payment_method_details\":{\"card\":"
               "{\"exp_month\":\"12\",\"exp_year\":2030}}}");
    ok(!has("card"), "exp_month as a string: no card");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"payment_method_details\":{\"card\":"
               "{\"exp_month\":13,\"exp_year\":2030}}}");
    ok(!has("card"), "exp_month 13: no card");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"payment_method_details\":{\"card\":"
               "{\"exp_month\":12,\"exp_year\":2030,\"last4\":\"42\","
               "\"number\":\"4242424242424242\",\"cvc\":\"123\"}}}");
    is_str(keys_at("card"), "exp_month,exp_year",
           "card: bad last4 dropped, never number or cvc");

    /* subscription amounts that overflow */
    run_object("customer.subscription.created",
               "{\"id\":\"sub_1\",\"items\":{\"data\":[{\"price\":"
               "{\"id\":\"price_1\",\"unit_amount\":9223372036854775807},"
               "\"quantity\":2}]}}");
    ok(!has("items.0.amount") && !has("amount"),
       "unit_amount x quantity overflows: no amount");

    run_object("customer.subscription.created",
               "{\"id\":\"sub_1\",\"items\":{\"data\":["
               "{\"price\":{\"id\":\"p1\",\"unit_amount\":"
               "9223372036854775807},\"quantity\":1},"
               "{\"price\":{\"id\":\"p2\",\"unit_amount\":1},"
               "\"quantity\":1}]}}");
    ok(has("items.1.amount") && !has("amount"),
       "the sum overflows: no amount");

    run_object("customer.subscription.created",
               "{\"id\":\"sub_1\",\"items\":{\"data\":["
               "{\"price\":{\"id\":\"p1\",\"unit_amount\":100},"
               "\"quantity\":1},{\"price\":{\"id\":\"p2\"},\"quantity\":1}]}}");
    ok(!has("amount"), "an item without a price amount: no sum");
}


static void
test_duplicate_keys(void)
{
    run("{\"id\":\"evt_first\",\"id\":\"evt_second\","
        "\"type\":\"customer.created\",\"type\":\"charge.succeeded\","
        "\"data\":{\"object\":{\"id\":\"cus_1\",\"email\":\"a@example.org\","
        "\"email\":\"b@example.org\"}}}");
    is_str(A.id, "evt_first", "duplicate id: the first wins");
    is_str(A.type, "customer.created", "duplicate type: the first wins");
    is_str(str_at("customer.email"), "a@example.org",
           "duplicate email: the first wins");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"metadata\":{\"k\":\"one\",\"k\":\"two\"}}");
    is_str(keys_at("metadata"), "k", "duplicate metadata key written once");
    is_str(str_at("metadata.k"), "one", "the first value");
    is_int(bool_at("metadata_truncated"), 1, "and the record says so");
}


static void
test_ids(void)
{
    sbuf  b = { NULL, 0, 0 };

    sbuf_add(&b, "{\"id\":\"ch_1\",\"customer\":\"cus_");
    sbuf_repeat(&b, "x", 252);
    sbuf_add(&b, "\",\"invoice\":\"in_1\\u0000\"}");
    run_object("charge.succeeded", b.s);
    ok(!has("customer") && A.customer_id == NULL,
       "a 256-byte customer id: left out");
    ok(!has("invoice"), "an id with a NUL: left out");

    run_object("charge.succeeded", "{\"id\":\"ch_1\",\"customer\":42}");
    ok(!has("customer"), "a numeric customer: left out");

    free(b.s);
}


/* ---- metadata and the bounds of the record ---- */

static void
test_metadata(void)
{
    sbuf    b = { NULL, 0, 0 };
    size_t  i;

    sbuf_add(&b, "{\"id\":\"ch_1\",\"metadata\":{");
    for (i = 0; i < 60; i++) {
        sbuf_add(&b, "%s\"k%zu\":\"v%zu\"", i ? "," : "", i, i);
    }
    sbuf_add(&b, "}}");
    run_object("charge.succeeded", b.s);
    is_int(len_at("metadata"), 50, "60 keys: the first 50 kept");
    is_str(str_at("metadata.k0"), "v0", "k0");
    is_str(str_at("metadata.k49"), "v49", "k49");
    ok(!has("metadata.k50"), "k50 dropped");
    is_int(bool_at("metadata_truncated"), 1, "metadata_truncated");

    b.len = 0;
    sbuf_add(&b, "{\"id\":\"ch_1\",\"metadata\":{\"n\":1,\"b\":true,"
             "\"z\":null,\"o\":{\"a\":\"b\"},\"a\":[\"x\"],\"\":\"empty\","
             "\"k_");
    sbuf_repeat(&b, "k", 39);
    sbuf_add(&b, "\":\"key of 41\",\"k");
    sbuf_repeat(&b, "k", 39);
    sbuf_add(&b, "\":\"key of 40\",\"long\":\"");
    sbuf_repeat(&b, "v", 501);
    sbuf_add(&b, "\",\"max\":\"");
    sbuf_repeat(&b, "v", 500);
    sbuf_add(&b, "\",\"e\":\"\"}}");
    run_object("charge.succeeded", b.s);
    is_int(len_at("metadata"), 3,
           "strings only, key <= 40 bytes, value <= 500 bytes");
    is_int(strlen(str_at("metadata.max") ?: ""), 500, "500-byte value kept");
    ok(has("metadata.e"), "an empty value kept");
    is_int(bool_at("metadata_truncated"), 1, "metadata_truncated");

    run_object("charge.succeeded", "{\"id\":\"ch_1\",\"metadata\":null}");
    ok(!has("metadata"), "metadata null: no metadata member");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"metadata\":{\"plan\":\"gold\"}}");
    is_str(str_at("metadata.plan"), "gold", "a plain pair");
    ok(!has("metadata_truncated"), "nothing dropped: no flag");

    free(b.s);
}


static void
invoice_with_lines(sbuf *b, size_t lines, const char *description,
    size_t repeat)
{
    size_t  i;

    b->len = 0;
    sbuf_add(b, "{\"id\":\"evt_big\",\"type\":\"invoice.paid\",\"created\":1,"
             "\"data\":{\"object\":{\"id\":\"in_big\",\"customer\":\"cus_1\","
             "\"customer_email\":\"big@example.org\",\"amount_paid\":%zu,"
             "\"currency\":\"eur\",\"lines\":{\"data\":[", lines * 100);

    for (i = 0; i < lines; i++) {
        sbuf_add(b, "%s{\"id\":\"il_%zu\",\"amount\":100,\"quantity\":1,"
                 "\"pricing\":{\"price_details\":{\"price\":\"price_%zu\","
                 "\"product\":\"prod_%zu\"}},\"description\":\"",
                 i ? "," : "", i, i, i);
        sbuf_repeat(b, description, repeat);
        sbuf_add(b, "\"}");
    }

    sbuf_add(b, "],\"has_more\":false}}}}");
}


static void
test_big_invoices(void)
{
    sbuf  b = { NULL, 0, 0 };

    invoice_with_lines(&b, 500, "Line", 1);
    run_bytes(b.s, b.len);
    is_int(S, ACTION_OK, "500-line invoice: normalized");
    is_int(len_at("items"), 100, "items capped at 100");
    is_str(str_at("items.99.price"), "price_99", "the first 100 kept");
    is_int(bool_at("items_truncated"), 1, "items_truncated");
    is_int(int_at_path("amount"), 50000, "the amount is the invoice's");
    ok(A.record_len <= ACTION_RECORD_MAX, "record within the bound (%zu)",
       A.record_len);

    invoice_with_lines(&b, 100, "Line", 1);
    run_bytes(b.s, b.len);
    is_int(len_at("items"), 100, "100 lines: all kept");
    ok(!has("items_truncated"), "100 lines: not truncated");

    /* has_more: Stripe left lines out of the payload */
    invoice_with_lines(&b, 2, "Line", 1);
    memcpy(strstr(b.s, "\"has_more\":false"), "\"has_more\":true ", 16);
    run_bytes(b.s, b.len);
    is_int(len_at("items"), 2, "has_more: the lines given");
    is_int(bool_at("items_truncated"), 1, "has_more: items_truncated");

    /* one description of 1 MB, in 3-byte characters */
    invoice_with_lines(&b, 1, "\xe2\x82\xac", 350 * 1024);
    run_bytes(b.s, b.len);
    is_int(S, ACTION_OK, "1 MB description: normalized");
    is_int(strlen(str_at("items.0.description") ?: ""), 498,
           "cut to 500 bytes at a character boundary (166 x 3)");
    ok(A.record_len < 2048, "record small (%zu)", A.record_len);

    /* 500 lines of 500 control characters each: 3 KB per item encoded */
    invoice_with_lines(&b, 500, "\\u0001", 500);
    run_bytes(b.s, b.len);
    is_int(S, ACTION_OK, "500 lines of control characters: normalized");
    ok(A.record_len <= ACTION_RECORD_MAX, "record within the bound (%zu)",
       A.record_len);
    ok(len_at("items") > 0 && len_at("items") < 100,
       "items kept while they fit (%zu)", len_at("items"));
    is_int(bool_at("items_truncated"), 1, "items_truncated");
    is_str(str_at("customer.email"), "big@example.org",
           "the facts after the items are all there");
    is_str(str_at("invoice"), "in_big", "invoice after the items");

    free(b.s);
}


static void
test_worst_record(void)
{
    sbuf    b = { NULL, 0, 0 };
    size_t  i;

    /* Every string at its limit, every byte escaped 6-fold. */
    sbuf_add(&b, "{\"id\":\"evt_w\",\"type\":\"customer.subscription.updated\","
             "\"api_version\":\"");
    sbuf_repeat(&b, "\\\"", 255);
    sbuf_add(&b, "\",\"data\":{\"previous_attributes\":{\"items\":{\"data\":[");
    for (i = 0; i < 20; i++) {
        sbuf_add(&b, "%s{\"price\":{\"id\":\"", i ? "," : "");
        sbuf_repeat(&b, "\\\\", 255);
        sbuf_add(&b, "\",\"product\":\"");
        sbuf_repeat(&b, "\\\\", 255);
        sbuf_add(&b, "\",\"unit_amount\":1},\"quantity\":1}");
    }
    sbuf_add(&b, "]},\"status\":\"");
    sbuf_repeat(&b, "\\\\", 255);
    sbuf_add(&b, "\"},\"object\":{\"id\":\"");
    sbuf_repeat(&b, "\\\\", 255);
    sbuf_add(&b, "\",\"customer\":{\"id\":\"");
    sbuf_repeat(&b, "\\\\", 255);
    sbuf_add(&b, "\",\"name\":\"");
    sbuf_repeat(&b, "\\u0002", 300);
    sbuf_add(&b, "\"},\"status\":\"");
    sbuf_repeat(&b, "\\\\", 255);
    sbuf_add(&b, "\",\"metadata\":{");
    for (i = 0; i < 50; i++) {
        sbuf_add(&b, "%s\"%02zu", i ? "," : "", i);
        sbuf_repeat(&b, "\\u0003", 38);
        sbuf_add(&b, "\":\"");
        sbuf_repeat(&b, "\\u0004", 500);
        sbuf_add(&b, "\"");
    }
    sbuf_add(&b, "},\"items\":{\"data\":[");
    for (i = 0; i < 200; i++) {
        sbuf_add(&b, "%s{\"price\":{\"id\":\"", i ? "," : "");
        sbuf_repeat(&b, "\\\\", 255);
        sbuf_add(&b, "\",\"product\":\"");
        sbuf_repeat(&b, "\\\\", 255);
        sbuf_add(&b, "\",\"unit_amount\":1},\"quantity\":1}");
    }
    sbuf_add(&b, "]}}}}");

    run_bytes(b.s, b.len);
    is_int(S, ACTION_OK, "worst record: normalized");
    ok(A.record_len <= ACTION_RECORD_MAX, "worst record within %d (%zu)",
       ACTION_RECORD_MAX, A.record_len);
    ok(R != NULL, "worst record is JSON");
    is_int(bool_at("items_truncated"), 1, "items_truncated");
    is_int(bool_at("metadata_truncated"), 1, "metadata_truncated");
    is_int(len_at("previous.items"), 10, "previous items capped at 10");
    ok(len_at("metadata") > 0, "some metadata kept (%zu)",
       len_at("metadata"));
    is_int(strlen(str_at("customer.name") ?: ""), 256,
           "name cut at 256 bytes");

    free(b.s);
}


/* ---- failure reasons and cards from expanded objects ---- */

static void
test_failures(void)
{
    run_object("charge.failed",
               "{\"id\":\"ch_1\",\"failure_code\":\"card_declined\","
               "\"failure_message\":\"Your card was declined.\","
               "\"outcome\":{\"reason\":\"generic_decline\","
               "\"seller_message\":\"The bank declined.\"}}");
    is_str(str_at("reason"), "Your card was declined.", "failure_message");
    is_str(str_at("reason_code"), "card_declined", "failure_code");

    run_object("charge.failed",
               "{\"id\":\"ch_1\",\"failure_message\":null,"
               "\"outcome\":{\"reason\":\"highest_risk_level\","
               "\"seller_message\":\"Stripe blocked this payment.\"}}");
    is_str(str_at("reason"), "Stripe blocked this payment.",
           "outcome.seller_message");
    is_str(str_at("reason_code"), "highest_risk_level", "outcome.reason");

    run_object("charge.succeeded",
               "{\"id\":\"ch_1\",\"outcome\":{\"seller_message\":"
               "\"Payment complete.\"}}");
    ok(!has("reason"), "no reason on a success");

    run_object("invoice.payment_failed",
               "{\"id\":\"in_1\",\"attempt_count\":3,\"charge\":"
               "{\"id\":\"ch_1\",\"failure_message\":\"Your card has "
               "expired.\",\"failure_code\":\"expired_card\","
               "\"payment_method_details\":{\"card\":{\"exp_month\":4,"
               "\"exp_year\":2024,\"brand\":\"mastercard\","
               "\"last4\":\"4444\",\"fingerprint\":\"F\"}}}}");
    is_str(str_at("reason"), "Your card has expired.",
           "invoice: the expanded charge's message");
    is_str(str_at("reason_code"), "expired_card", "its code");
    is_str(keys_at("card"), "exp_month,exp_year,brand,last4", "its card");
    is_int(int_at_path("card.exp_month"), 4, "card.exp_month");
    is_str(str_at("card.brand"), "mastercard", "card.brand");
    is_str(A.once_key, "payment_failed:in_1:3", "once_key with the attempt");

    run_object("invoice.payment_failed",
               "{\"id\":\"in_1\",\"charge\":\"ch_1\"}");
    ok(!has("reason") && !has("card"), "a charge id: no reason, no card");

    run_object("payment_intent.payment_failed",
               "{\"id\":\"pi_1\",\"amount\":500,\"last_payment_error\":"
               "{\"message\":\"Insufficient funds.\",\"code\":\"card_declined\","
               "\"decline_code\":\"insufficient_funds\",\"payment_method\":"
               "{\"card\":{\"exp_month\":1,\"exp_year\":2031,"
               "\"brand\":\"amex\",\"last4\":\"0005\"}}}}");
    is_str(str_at("reason"), "Insufficient funds.", "last_payment_error");
    is_str(str_at("reason_code"), "insufficient_funds", "decline_code");
    is_int(int_at_path("card.exp_year"), 2031, "its payment method's card");

    run_object("customer.subscription.deleted",
               "{\"id\":\"sub_1\",\"cancellation_details\":"
               "{\"reason\":\"payment_failed\"}}");
    is_str(str_at("reason_code"), "payment_failed",
           "cancellation_details.reason");

    run_object("customer.created",
               "{\"id\":\"cus_1\",\"invoice_settings\":"
               "{\"default_payment_method\":{\"card\":{\"exp_month\":2,"
               "\"exp_year\":2029}}}}");
    is_int(int_at_path("card.exp_year"), 2029,
           "customer: the default payment method's card");
}


/* ---- the module's view: the struct, repeated use, freeing ---- */

static void
test_action_struct(void)
{
    action  a;

    memset(&a, 0x5a, sizeof(a));
    is_int(action_from_event("{}", 2, &a), ACTION_INVALID,
           "uninitialized struct: fine");
    is_str(a.reason, "event has no \"id\"", "reason");
    ok(a.id == NULL && a.type == NULL && a.record == NULL,
       "nothing else set");
    action_free(&a);
    ok(a.mem == NULL && a.record == NULL, "action_free clears");
    action_free(&a);
    ok(1, "action_free twice is harmless");
}


int
main(void)
{
    test_not_json();
    test_utf8();
    test_truncated_everywhere();
    test_nesting();
    test_envelope();

    test_customer_and_email();
    test_names_non_ascii();

    test_numbers();
    test_duplicate_keys();
    test_ids();

    test_metadata();
    test_big_invoices();
    test_worst_record();

    test_failures();
    test_action_struct();

    reset();

    return tap_done();
}
