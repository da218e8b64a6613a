/*
 * consumer.c - unit tests for the consumer's pure parts: the retry
 * schedule (backoff.c), rate limits (token_bucket.c), per-customer ordering
 * (customer_order.c), watermarks (watermark.c), dead letters
 * (dead_letter.c) and log quoting (logging.c).
 */

#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "backoff.h"
#include "customer_order.h"
#include "dead_letter.h"
#include "logging.h"
#include "tap.h"
#include "token_bucket.h"
#include "watermark.h"


#define S  1000LL            /* ms per second */


static void
test_backoff_schedule(void)
{
    /* the documented default schedule: base 10 s, cap 6 h, 15 attempts */
    static const long long  bounds[] = {
        10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480,
        21600, 21600
    };
    long long  sum, min_sum;
    size_t     i;

    sum = 0;
    min_sum = 0;

    for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
        is_int(backoff_bound_ms((long long) i + 1, 10 * S, 21600 * S),
               bounds[i] * S, "default bound after attempt %zu: %lld s",
               i + 1, bounds[i]);
        sum += backoff_bound_ms((long long) i + 1, 10 * S, 21600 * S);
        min_sum += backoff_delay_ms((long long) i + 1, 10 * S, 21600 * S,
                                    0.0, 0);
    }

    /* 14 waits between 15 attempts: 23.4 h at most, 11.7 h at least */
    is_int(sum, 84150 * S, "the 14 waits add up to at most 84150 s");
    is_int(min_sum, 42075 * S, "and to at least half that, 42075 s");

    is_int(backoff_bound_ms(15, 10 * S, 21600 * S), 21600 * S,
           "the cap holds for the last attempt");
    is_int(backoff_bound_ms(1000000, 10 * S, 21600 * S), 21600 * S,
           "a huge attempt number does not overflow");
    is_int(backoff_bound_ms(0, 10 * S, 21600 * S), 10 * S,
           "attempt 0 counts as the first");
    is_int(backoff_bound_ms(-5, 10 * S, 21600 * S), 10 * S,
           "a negative attempt counts as the first");
    is_int(backoff_bound_ms(3, 0, 21600 * S), 4,
           "a zero base is taken as 1 ms");
    is_int(backoff_bound_ms(3, 10 * S, 5 * S), 5 * S,
           "a cap below the base wins");
}


static void
test_backoff_jitter(void)
{
    long long  d;
    double     u;
    int        i, inside;

    is_int(backoff_delay_ms(1, 10 * S, 21600 * S, 0.0, 0), 5 * S,
           "u = 0 gives half the bound");
    is_int(backoff_delay_ms(1, 10 * S, 21600 * S, 0.5, 0), 7500,
           "u = 0.5 gives three quarters");
    d = backoff_delay_ms(1, 10 * S, 21600 * S, 0.999999, 0);
    ok(d >= 9999 && d <= 10 * S, "u near 1 gives the bound (%lld)", d);
    is_int(backoff_delay_ms(1, 10 * S, 21600 * S, 1.0, 0) <= 10 * S, 1,
           "u = 1 stays within the bound");
    is_int(backoff_delay_ms(1, 10 * S, 21600 * S, -3.0, 0), 5 * S,
           "a negative u counts as 0");
    is_int(backoff_delay_ms(1, 10 * S, 21600 * S, 0.0, 60 * S), 60 * S,
           "Retry-After longer than the delay wins");
    is_int(backoff_delay_ms(4, 10 * S, 21600 * S, 0.0, 3 * S), 40 * S,
           "Retry-After shorter than the delay changes nothing");

    inside = 1;
    for (i = 0; i < 1000; i++) {
        u = backoff_random();
        d = backoff_delay_ms(3, 10 * S, 21600 * S, u, 0);
        if (u < 0 || u >= 1 || d < 20 * S || d > 40 * S) {
            inside = 0;
        }
    }
    ok(inside, "1000 random delays after attempt 3 are within [20 s, 40 s]");
}


static void
test_token_bucket(void)
{
    token_bucket  b;
    int           i, taken;

    token_bucket_init(&b, 2, 10, 1000);

    taken = 0;
    for (i = 0; i < 10; i++) {
        taken += token_bucket_take(&b, 1000) == 0;
    }
    is_int(taken, 10, "a full bucket gives its burst at once");
    is_int(token_bucket_take(&b, 1000), 500,
           "then the next token is 500 ms away at 2/s");
    is_int(token_bucket_take(&b, 1250), 250, "250 ms later: 250 ms left");
    is_int(token_bucket_take(&b, 1500), 0, "and at 500 ms it is there");
    is_int(token_bucket_take(&b, 1500), 500, "only one was");

    is_int(token_bucket_take(&b, 100000), 0, "a long idle refills");
    taken = 1;
    for (i = 0; i < 20; i++) {
        taken += token_bucket_take(&b, 100000) == 0;
    }
    is_int(taken, 10, "but never past the burst");

    token_bucket_init(&b, 2, 10, 0);
    token_bucket_pause(&b, 60000);
    is_int(token_bucket_take(&b, 1000), 59000, "a pause stops everything");
    token_bucket_pause(&b, 30000);
    is_int(token_bucket_take(&b, 1000), 59000,
           "an earlier pause does not shorten a later one");
    is_int(token_bucket_take(&b, 60000), 0, "the pause ends on time");

    token_bucket_init(&b, 0, 1, 0);
    taken = 0;
    for (i = 0; i < 1000; i++) {
        taken += token_bucket_take(&b, 0) == 0;
    }
    is_int(taken, 1000, "rate 0 means unlimited");

    token_bucket_init(&b, 1, 5, 0);
    for (i = 0; i < 5; i++) {
        token_bucket_take(&b, 0);
    }
    token_bucket_set(&b, 100, 200, 0);
    is_int(token_bucket_take(&b, 0), 10,
           "a new rate keeps the (empty) bucket: 10 ms at 100/s");

    token_bucket_init(&b, 1, 0, 0);
    is_int(token_bucket_take(&b, 0), 0, "burst 0 is taken as 1");
    is_int(token_bucket_take(&b, 0), 1000, "and holds only one");

    token_bucket_init(&b, 3, 1, 0);
    token_bucket_take(&b, 0);
    is_int(token_bucket_take(&b, 0), 334,
           "a fractional wait rounds up (1/3 s -> 334 ms)");
}


static void
test_customer_order(void)
{
    customer_order       o;
    unsigned long long   a1, b1, a2, n1, a3, n2;

    customer_order_init(&o);

    a1 = customer_order_add(&o, "cus_A");
    b1 = customer_order_add(&o, "cus_B");
    a2 = customer_order_add(&o, "cus_A");
    n1 = customer_order_add(&o, NULL);
    a3 = customer_order_add(&o, "cus_A");
    n2 = customer_order_add(&o, "");

    ok(a1 && b1 && a2 && n1 && a3 && n2, "adds give sequence numbers");
    ok(a1 < b1 && b1 < a2, "in take order");

    ok(customer_order_may_start(&o, a1), "the first of A may start");
    ok(customer_order_may_start(&o, b1), "the first of B may start");
    ok(!customer_order_may_start(&o, a2), "the second of A waits");
    ok(!customer_order_may_start(&o, a3), "the third of A waits");
    ok(customer_order_may_start(&o, n1), "a job without a key never waits");
    ok(customer_order_may_start(&o, n2), "an empty key is no key");

    customer_order_remove(&o, a1);
    ok(customer_order_may_start(&o, a2), "A's first done: its second runs");
    ok(!customer_order_may_start(&o, a3), "its third still waits");

    customer_order_remove(&o, a3);
    ok(customer_order_may_start(&o, a2),
       "removing a later job changes nothing for an earlier one");

    customer_order_remove(&o, a2);
    is_int(o.n, 3, "three held");
    ok(!customer_order_may_start(&o, a1), "a removed job is unknown");
    ok(!customer_order_may_start(&o, 999), "so is one never added");

    customer_order_remove(&o, 999);
    is_int(o.n, 3, "removing an unknown job is harmless");

    a1 = customer_order_add(&o, "cus_B");
    ok(!customer_order_may_start(&o, a1),
       "a later B waits behind the B still held");
    customer_order_remove(&o, b1);
    ok(customer_order_may_start(&o, a1), "and runs once it is gone");

    customer_order_free(&o);
    is_int(o.n, 0, "freed");

    /* many, to cross the array's growth */
    customer_order_init(&o);
    for (a1 = 0; a1 < 100; a1++) {
        customer_order_add(&o, a1 % 2 ? "odd" : "even");
    }
    ok(customer_order_may_start(&o, 1) && customer_order_may_start(&o, 2)
       && !customer_order_may_start(&o, 3)
       && !customer_order_may_start(&o, 100),
       "100 jobs of two customers: only the first of each runs");
    customer_order_free(&o);
}


static void
test_watermark(void)
{
    long long    created;
    const char  *id;
    char         buf[64];

    ok(watermark_applies("subscription_started"), "subscription_started");
    ok(watermark_applies("subscription_cancelled"), "subscription_cancelled");
    ok(watermark_applies("subscription_paused"), "subscription_paused");
    ok(watermark_applies("subscription_resumed"), "subscription_resumed");
    ok(watermark_applies("subscription_updated"), "subscription_updated");
    ok(watermark_applies("plan_changed"), "plan_changed");
    ok(watermark_applies("subscription_cancel_scheduled"),
       "subscription_cancel_scheduled");
    ok(watermark_applies("trial_ending"), "trial_ending");
    ok(!watermark_applies("purchase"), "not purchase");
    ok(!watermark_applies("payment_failed"), "not payment_failed");
    ok(!watermark_applies(NULL), "not NULL");

    ok(watermark_parse("1745437580:evt_1", &created, &id) == 0
       && created == 1745437580 && strcmp(id, "evt_1") == 0,
       "parse \"1745437580:evt_1\"");
    ok(watermark_parse("12:", &created, &id) == 0 && id[0] == '\0',
       "an empty id parses");
    ok(watermark_parse("evt_1", &created, &id) != 0, "no number: malformed");
    ok(watermark_parse("12", &created, &id) != 0, "no colon: malformed");
    ok(watermark_parse("", &created, &id) != 0, "empty: malformed");
    ok(watermark_parse(NULL, &created, &id) != 0, "NULL: malformed");
    ok(watermark_parse("99999999999999999999:x", &created, &id) != 0,
       "an overflowing number: malformed");

    ok(watermark_is_stale("200:evt_b", 100), "created before: stale");
    ok(!watermark_is_stale("200:evt_b", 200), "same second: not stale");
    ok(!watermark_is_stale("200:evt_b", 300), "after: not stale");
    ok(!watermark_is_stale(NULL, 100), "no watermark: nothing is stale");
    ok(!watermark_is_stale("junk", 100), "a malformed one neither");

    ok(watermark_newer(NULL, 100, "evt_a"), "anything beats no watermark");
    ok(watermark_newer("junk", 100, "evt_a"), "and a malformed one");
    ok(watermark_newer("100:evt_a", 101, "evt_a"), "a later second wins");
    ok(!watermark_newer("100:evt_a", 99, "evt_z"), "an earlier one loses");
    ok(watermark_newer("100:evt_a", 100, "evt_b"),
       "same second: the greater id wins");
    ok(!watermark_newer("100:evt_b", 100, "evt_a"), "the smaller loses");
    ok(!watermark_newer("100:evt_a", 100, "evt_a"), "the same event: no");
    ok(watermark_newer("100:evt_B", 100, "evt_a"),
       "bytewise: 'a' > 'B' (no locale)");

    ok(watermark_format(buf, sizeof(buf), 100, "evt_a") == 0
       && strcmp(buf, "100:evt_a") == 0, "format");
    ok(watermark_format(buf, 5, 100, "evt_a") != 0,
       "format refuses to cut");
}


static yajl_val
parse(const char *s)
{
    char  err[128];

    return yajl_tree_parse(s, err, sizeof(err));
}


static const char *
get_string(yajl_val v, const char *key)
{
    const char  *path[2];
    yajl_val     m;

    path[0] = key;
    path[1] = NULL;
    m = yajl_tree_get(v, path, yajl_t_string);

    return m ? YAJL_GET_STRING(m) : NULL;
}


static void
test_dead_letter(void)
{
    static const char  rec[] = "{\"v\":1,\"id\":\"evt_1\",\"action\":\"x\"}";
    const char        *path[3];
    char              *l, *big;
    yajl_val           v, m;
    size_t             n;

    l = dead_letter_build(rec, sizeof(rec) - 1, "kit: HTTP 422: \"bad\"",
                          "{\"errors\":[\"bad\"]}", 3, 1745437580, "h:1");
    v = l ? parse(l) : NULL;
    ok(v != NULL, "a dead letter is JSON");

    path[0] = "record";
    path[1] = "id";
    path[2] = NULL;
    m = yajl_tree_get(v, path, yajl_t_string);
    is_str(m ? YAJL_GET_STRING(m) : NULL, "evt_1",
           "the record is embedded as JSON, not a string");
    is_str(get_string(v, "error"), "kit: HTTP 422: \"bad\"", "error");
    is_str(get_string(v, "response"), "{\"errors\":[\"bad\"]}", "response");
    path[0] = "attempts";
    path[1] = NULL;
    m = yajl_tree_get(v, path, yajl_t_number);
    is_int(m ? YAJL_GET_INTEGER(m) : -1, 3, "attempts");
    path[0] = "failed_at";
    m = yajl_tree_get(v, path, yajl_t_number);
    is_int(m ? YAJL_GET_INTEGER(m) : -1, 1745437580, "failed_at");
    is_str(get_string(v, "consumer"), "h:1", "consumer");
    ok(strncmp(l, "{\"record\":{\"v\":1,", 17) == 0,
       "the record's bytes are kept as they were");
    yajl_tree_free(v);
    free(l);

    l = dead_letter_build("not json", 8, "queue entry is not JSON", NULL, 0,
                          1, "h:1");
    v = l ? parse(l) : NULL;
    is_str(get_string(v, "raw"), "not json", "not JSON: kept as \"raw\"");
    ok(yajl_tree_get(v, (const char *[]) { "response", NULL }, yajl_t_any)
       == NULL, "no response: no member");
    m = yajl_tree_get(v, (const char *[]) { "raw_bytes", NULL },
                      yajl_t_number);
    is_int(m ? YAJL_GET_INTEGER(m) : -1, 8, "raw_bytes");
    yajl_tree_free(v);
    free(l);

    l = dead_letter_build("\xff\xfe\"x\x01\xc3\xa9\xe2\x82", 10, "bad", "",
                          0, 1, "h:1");
    v = l ? parse(l) : NULL;
    ok(v != NULL, "invalid UTF-8 and control bytes still give JSON");
    is_str(get_string(v, "raw"), "\xc3\xbf\xc3\xbe\"x\x01\xc3\xa9"
           "\xc3\xa2\xc2\x82", "bad bytes read as Latin-1, good ones kept");
    ok(yajl_tree_get(v, (const char *[]) { "response", NULL }, yajl_t_any)
       == NULL, "an empty response: no member");
    yajl_tree_free(v);
    free(l);

    n = 200 * 1024;
    big = malloc(n);
    memset(big, 'a', n);
    big[0] = '[';
    l = dead_letter_build(big, n, "huge", NULL, 0, 1, "h:1");
    v = l ? parse(l) : NULL;
    ok(v != NULL, "a 200 KB entry gives JSON");
    is_int(get_string(v, "raw") ? strlen(get_string(v, "raw")) : 0,
           DEAD_LETTER_RAW_MAX, "cut to 64 KB");
    m = yajl_tree_get(v, (const char *[]) { "raw_bytes", NULL },
                      yajl_t_number);
    is_int(m ? YAJL_GET_INTEGER(m) : -1, (long long) n,
           "raw_bytes says how long it was");
    yajl_tree_free(v);
    free(l);
    free(big);

    ok(dead_letter_is_json("{}", 2), "{} is JSON");
    ok(dead_letter_is_json("[1,2]", 5), "[1,2] is JSON");
    ok(!dead_letter_is_json("{", 1), "{ is not");
    ok(!dead_letter_is_json("{} {}", 5), "two values are not one");
    ok(!dead_letter_is_json("", 0), "nothing is not");
    ok(!dead_letter_is_json("\"a\0b\"", 5), "a NUL byte is refused");
    ok(!dead_letter_is_json("\"\xff\"", 3), "invalid UTF-8 is refused");
    ok(!dead_letter_is_json("2\"", 2),
       "a value then an unterminated string is not (yajl says it is)");
    ok(!dead_letter_is_json("{}\"x\\", 5), "nor one ending in an escape");
    ok(dead_letter_is_json("\"a\\\"b\"", 6), "an escaped quote is fine");
    ok(dead_letter_is_json("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                           "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                           "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", 128),
       "64 levels are JSON");
    ok(!dead_letter_is_json("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                            "[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                            "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", 130),
       "65 are kept as raw: too deep for a yajl_tree reader");

    /* a multi-byte character is never cut in half */
    {
        dead_letter_buf  b;

        memset(&b, 0, sizeof(b));
        dead_letter_quote(&b, "ab\xc3\xa9", 4, 3);
        is_str(b.p, "\"ab\"", "cut before a character that does not fit");
        free(b.p);
    }
}


static void
test_logging_quote(void)
{
    char  buf[32], small[8];

    is_str(logging_quote("a \"b\" \\ c", buf, sizeof(buf)),
           "a \\\"b\\\" \\\\ c", "quotes and backslashes escaped");
    is_str(logging_quote("x\ny\tz\x01", buf, sizeof(buf)),
           "x\\ny\\tz\\x01", "control characters escaped");
    is_str(logging_quote(NULL, buf, sizeof(buf)), "", "NULL is empty");
    is_str(logging_quote("0123456789", small, sizeof(small)), "0123...",
           "cut with ... to fit");
    ok(strlen(logging_quote("\"\"\"\"\"\"\"\"\"\"", small, sizeof(small)))
       < sizeof(small), "escapes never overflow");
}


int
main(void)
{
    test_backoff_schedule();
    test_backoff_jitter();
    test_token_bucket();
    test_customer_order();
    test_watermark();
    test_dead_letter();
    test_logging_quote();

    return tap_done();
}
