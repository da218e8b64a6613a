/*
 * provider.c - what the providers share: status classification with
 * Retry-After, request building, URL escaping, redaction, the JSON helpers
 * and the name cache.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "name_cache.h"
#include "provider_json.h"
#include "provider_test.h"


static step_status
classify(op_exec *x, long status, const char *body, const char *ra,
    const char *error)
{
    http_response  res;

    memset(&res, 0, sizeof(res));
    res.status = status;
    res.body = body;
    res.body_len = body ? strlen(body) : 0;
    res.retry_after = ra;
    res.error = error;

    memset(x, 0, sizeof(*x));
    x->retry_after_ms = -5;
    return provider_classify(x, &res, "Kit tag \"A\"");
}


static void
test_classify(void)
{
    op_exec    x;
    char       body[600], date[64];
    time_t     t;
    struct tm  tm;
    long       st;
    int        i;

    for (st = 200; st < 300; st += 1) {
        if (classify(&x, st, "{}", NULL, NULL) != STEP_DONE) {
            break;
        }
    }
    is_int(st, 300, "every 2xx: DONE");
    is_str(x.err, "", "DONE: no err");

    is_int(classify(&x, 408, "slow", NULL, NULL), STEP_RETRY, "408: RETRY");
    is_int(classify(&x, 429, "Retry later", NULL, NULL), STEP_RETRY,
           "429: RETRY");
    is_int(x.retry_after_ms, 0, "429 without Retry-After: 0");
    is_str(x.err, "Kit tag \"A\": HTTP 429: Retry later", "err format");
    is_int(classify(&x, 500, "", NULL, NULL), STEP_RETRY, "500: RETRY");
    is_str(x.err, "Kit tag \"A\": HTTP 500: (empty body)", "empty body");
    is_int(classify(&x, 599, "x", NULL, NULL), STEP_RETRY, "599: RETRY");
    is_int(classify(&x, 400, "x", NULL, NULL), STEP_FAIL, "400: FAIL");
    is_int(classify(&x, 401, "x", NULL, NULL), STEP_FAIL, "401: FAIL");
    is_int(classify(&x, 404, "x", NULL, NULL), STEP_FAIL, "404: FAIL");
    is_int(classify(&x, 422, "x", NULL, NULL), STEP_FAIL, "422: FAIL");
    is_int(classify(&x, 302, "x", NULL, NULL), STEP_FAIL, "302: FAIL");
    is_int(classify(&x, 0, NULL, NULL, "Connection refused"), STEP_RETRY,
           "no response: RETRY");
    is_str(x.err, "Kit tag \"A\": Connection refused", "transport err");
    is_int(classify(&x, 0, NULL, NULL, NULL), STEP_RETRY,
           "no response, no text: RETRY");
    is_str(x.err, "Kit tag \"A\": no response", "fallback text");

    is_int(classify(&x, 429, "", "120", NULL), STEP_RETRY, "429 + 120");
    is_int(x.retry_after_ms, 120000, "Retry-After seconds");
    classify(&x, 503, "", " 5 ", NULL);
    is_int(x.retry_after_ms, 5000, "Retry-After with spaces");
    classify(&x, 503, "", "99999999999999999999", NULL);
    is_int(x.retry_after_ms, 86400000LL, "Retry-After capped at a day");
    classify(&x, 503, "", "soon", NULL);
    is_int(x.retry_after_ms, 0, "unreadable Retry-After: 0");
    classify(&x, 503, "", "-3", NULL);
    is_int(x.retry_after_ms, 0, "negative Retry-After: 0");
    classify(&x, 429, "", "Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    is_int(x.retry_after_ms, 0, "a past HTTP date: 0");

    t = time(NULL) + 60;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    classify(&x, 429, "", date, NULL);
    ok(x.retry_after_ms > 50000 && x.retry_after_ms <= 60000,
       "IMF-fixdate a minute ahead: %lld ms", x.retry_after_ms);
    strftime(date, sizeof(date), "%A, %d-%b-%y %H:%M:%S GMT", &tm);
    classify(&x, 429, "", date, NULL);
    ok(x.retry_after_ms > 50000 && x.retry_after_ms <= 60000,
       "RFC 850 date: %lld ms", x.retry_after_ms);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
    classify(&x, 429, "", date, NULL);
    ok(x.retry_after_ms > 50000 && x.retry_after_ms <= 60000,
       "asctime date: %lld ms", x.retry_after_ms);
    classify(&x, 400, "", "60", NULL);
    is_int(x.retry_after_ms, 0, "a FAIL carries no wait");

    for (i = 0; i < 599; i++) {
        body[i] = (char) ('a' + i % 26);
    }
    body[599] = '\0';
    body[3] = '\n';
    body[4] = '\t';
    body[5] = '\x1b';
    classify(&x, 500, body, NULL, NULL);
    ok(strchr(x.err, '\n') == NULL && strchr(x.err, '\t') == NULL
       && strchr(x.err, '\x1b') == NULL, "control characters replaced");
    is_int(strlen(x.err), strlen("Kit tag \"A\": HTTP 500: ") + 200,
           "excerpt: the first 200 bytes");

    /* 199 ASCII then a 2-byte character across the cut */
    memset(body, 'a', 199);
    body[199] = '\xc3';
    body[200] = '\xa9';
    strcpy(body + 201, "tail");
    classify(&x, 500, body, NULL, NULL);
    is_int(strlen(x.err), strlen("Kit tag \"A\": HTTP 500: ") + 199,
           "excerpt does not split a UTF-8 character");
}


static void
test_json_classify(void)
{
    op_exec        x;
    http_response  res;
    step_status    s;

    memset(&res, 0, sizeof(res));
    memset(&x, 0, sizeof(x));

    res.status = 422;
    res.body = "{\"errors\":[\"a\",\"b\"]}";
    res.body_len = strlen(res.body);
    s = provider_json_classify(&x, &res, "W");
    is_int(s, STEP_FAIL, "json classify 422: FAIL");
    is_str(x.err, "W: HTTP 422: a; b", "string errors joined");

    res.body = "{\"errors\":[{\"title\":\"T\",\"detail\":\"D\"},"
               "{\"code\":\"c\"}]}";
    res.body_len = strlen(res.body);
    provider_json_classify(&x, &res, "W");
    is_str(x.err, "W: HTTP 422: T; D; c", "object errors");

    res.body = "{\"error\":\"invalid_token\"}";
    res.body_len = strlen(res.body);
    provider_json_classify(&x, &res, "W");
    is_str(x.err, "W: HTTP 422: invalid_token", "{error} shape");

    res.body = "{\"other\":1}";
    res.body_len = strlen(res.body);
    provider_json_classify(&x, &res, "W");
    is_str(x.err, "W: HTTP 422: {\"other\":1}", "unknown shape: raw");

    res.body = "[1,2]";
    res.body_len = strlen(res.body);
    provider_json_classify(&x, &res, "W");
    is_str(x.err, "W: HTTP 422: [1,2]", "array: raw");

    res.status = 201;
    res.body = "{\"errors\":[\"ignored\"]}";
    res.body_len = strlen(res.body);
    is_int(provider_json_classify(&x, &res, "W"), STEP_DONE, "2xx: DONE");
    is_str(x.err, "", "2xx: no err");
}


static void
test_request(void)
{
    http_request  req;
    char          out[64], big[4000];
    int           i;

    memset(&req, 0x5a, sizeof(req));
    http_request_init(&req, "GET");
    is_str(req.method, "GET", "init: method");
    is_str(req.url, "", "init: no URL");
    is_int(req.nheaders, 0, "init: no headers");
    ok(req.body == NULL && req.body_len == 0, "init: no body");

    is_int(http_request_url(&req, "%s/x?%d", "https://h", 5), 0, "url");
    is_str(req.url, "https://h/x?5", "url text");
    memset(big, 'u', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    is_int(http_request_url(&req, "https://h/%s", big), -1,
           "too long URL: -1");

    for (i = 0; i < HTTP_HEADERS_MAX; i++) {
        is_int(http_request_header(&req, "H%d: %d", i, i), 0, "header %d",
               i);
    }
    is_int(http_request_header(&req, "One: more"), -1, "header 9: -1");
    is_int(req.nheaders, HTTP_HEADERS_MAX, "eight headers");
    is_str(req.headers[3], "H3: 3", "header text");

    http_request_init(&req, "POST");
    is_int(http_request_header(&req, "X: %s", "a\r\nEvil: 1"), -1,
           "CR LF in a header: refused");
    is_int(req.nheaders, 0, "refused header not kept");
    is_int(http_request_header(&req, "X: %s", big), -1,
           "too long header: -1");

    is_int(http_escape("a b&c=d/é~._-", out, sizeof(out)), 0, "escape");
    is_str(out, "a%20b%26c%3Dd%2F%C3%A9~._-", "escape: RFC 3986 unreserved "
           "kept");
    is_int(http_escape("abcdef", out, 4), -1, "escape: too small");
    is_str(out, "", "escape: too small leaves \"\"");
    is_int(http_escape("", out, sizeof(out)), 0, "escape empty");
    is_str(out, "", "escape empty: \"\"");
}


static void
test_redact(void)
{
    char  s[64];

    strcpy(s, "key abc123 and abc123 again");
    provider_redact(s, sizeof(s), "abc123");
    is_str(s, "key [redacted] and [redacted] again", "every occurrence");

    strcpy(s, "nothing here");
    provider_redact(s, sizeof(s), "abc123");
    is_str(s, "nothing here", "no occurrence: unchanged");

    provider_redact(s, sizeof(s), NULL);
    provider_redact(s, sizeof(s), "");
    is_str(s, "nothing here", "NULL or empty secret: unchanged");

    strcpy(s, "abc");
    provider_redact(s, 8, "abc");
    is_str(s, "[redact", "bounded by len");

    strcpy(s, "cut at sk_live_12");
    provider_redact(s, sizeof(s), "sk_live_123456789");
    is_str(s, "cut at [redacted]", "a secret cut by an excerpt is redacted");
}


static void
test_values(void)
{
    char  buf[64];

    is_int(iso8601_utc(1745433906, buf, sizeof(buf)), 0, "iso8601");
    is_str(buf, "2025-04-23T18:45:06Z", "iso8601 text");
    is_int(iso8601_utc(-1, buf, sizeof(buf)), -1, "negative time: -1");
    is_int(iso8601_utc(0, buf, 5), -1, "does not fit: -1");

    is_int((int) iso8601_parse("2025-04-23T18:45:06Z"), 1745433906,
           "parse: Z");
    is_int((int) iso8601_parse("2025-04-23T13:45:06-05:00"), 1745433906,
           "parse: -05:00");
    is_int((int) iso8601_parse("2025-04-24T00:15:06+0530"), 1745433906,
           "parse: +0530");
    is_int((int) iso8601_parse("2025-04-23 18:45:06.123Z"), 1745433906,
           "parse: space, fraction");
    is_int((int) iso8601_parse("2025-04-23T18:45:06"), 1745433906,
           "parse: no zone is UTC");
    is_int((int) iso8601_parse("2025-13-23T18:45:06Z"), -1,
           "parse: month 13: -1");
    is_int((int) iso8601_parse("2025-04-23T18:45:06Zjunk"), -1,
           "parse: trailing junk: -1");
    is_int((int) iso8601_parse("2025-04-23"), -1, "parse: a date only: -1");
    is_int((int) iso8601_parse(""), -1, "parse: empty: -1");
    is_int((int) iso8601_parse(NULL), -1, "parse: NULL: -1");

    money_major_units(24900, "usd", buf, sizeof(buf));
    is_str(buf, "249.00", "usd");
    money_major_units(5, "eur", buf, sizeof(buf));
    is_str(buf, "0.05", "5 cents");
    money_major_units(-150, "USD", buf, sizeof(buf));
    is_str(buf, "-1.50", "negative");
    money_major_units(500, "jpy", buf, sizeof(buf));
    is_str(buf, "500", "jpy zero-decimal");
    money_major_units(1234, "KWD", buf, sizeof(buf));
    is_str(buf, "1.234", "kwd three-decimal");
    money_major_units(7, NULL, buf, sizeof(buf));
    is_str(buf, "0.07", "no currency: two decimals");
    money_major_units(-9223372036854775807LL - 1, "usd", buf, sizeof(buf));
    is_str(buf, "-92233720368547758.08", "LLONG_MIN");
    is_int(money_major_units(123456, "usd", buf, 4), -1, "does not fit");

    is_int(currency_upper("usd", buf, sizeof(buf)), 0, "upper");
    is_str(buf, "USD", "upper text");
    is_int(currency_upper(NULL, buf, sizeof(buf)), -1, "NULL currency");
    is_int(currency_upper("", buf, sizeof(buf)), -1, "empty currency");
}


static void
test_writer(void)
{
    json_writer   w;
    http_request  req;
    yajl_val      v;

    http_request_init(&req, "POST");
    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_pair(&w, "s", "a\"b");
    json_writer_pair_integer(&w, "n", -3);
    json_writer_key(&w, "d");
    json_writer_number(&w, "1.50");
    json_writer_key(&w, "b");
    json_writer_bool(&w, 1);
    json_writer_key(&w, "z");
    json_writer_string(&w, NULL);
    json_writer_map_close(&w);
    is_int(json_writer_finish(&w, &req), 0, "writer: finished");
    is_str(req.body, "{\"s\":\"a\\\"b\",\"n\":-3,\"d\":1.50,\"b\":true,"
           "\"z\":null}", "writer: text");
    is_int(req.body_len, strlen(req.body), "writer: length");
    free(req.body);

    http_request_init(&req, "POST");
    json_writer_init(&w);
    json_writer_map_open(&w);
    json_writer_pair(&w, "bad", "\xff\xfe");
    json_writer_map_close(&w);
    is_int(json_writer_finish(&w, &req), -1, "invalid UTF-8: -1");
    ok(req.body == NULL, "invalid UTF-8: no body");

    http_request_init(&req, "POST");
    json_writer_init(&w);
    json_writer_map_close(&w);
    is_int(json_writer_finish(&w, &req), -1, "unbalanced: -1");

    v = yajl_tree_parse("{\"a\":[1,\"x\",{\"b\":null}],\"c\":2.50e1,"
                        "\"t\":false}", NULL, 0);
    http_request_init(&req, "POST");
    json_writer_init(&w);
    json_writer_value(&w, v);
    is_int(json_writer_finish(&w, &req), 0, "tree regenerated");
    is_str(req.body, "{\"a\":[1,\"x\",{\"b\":null}],\"c\":2.50e1,"
           "\"t\":false}", "tree: same text");
    free(req.body);
    yajl_tree_free(v);
}


static void
test_members(void)
{
    yajl_val  v;
    char      id[8];

    v = yajl_tree_parse("{\"i\":42,\"s\":\"17\",\"f\":1.5,\"e\":\"\","
                        "\"t\":true,\"long\":\"123456789\",\"k\":\"01F_a-Z\","
                        "\"path\":\"1/../x\",\"sp\":\"4 2\",\"q\":\"1?a=b\","
                        "\"crlf\":\"1\\r\\n\",\"neg\":-3}", NULL, 0);
    is_int(json_member_id(v, "i", id, sizeof(id)), 0, "integer id");
    is_str(id, "42", "integer id text");
    is_int(json_member_id(v, "s", id, sizeof(id)), 0, "string id");
    is_str(id, "17", "string id text");
    is_int(json_member_id(v, "f", id, sizeof(id)), -1, "float: no id");
    is_int(json_member_id(v, "e", id, sizeof(id)), -1, "empty: no id");
    is_int(json_member_id(v, "none", id, sizeof(id)), -1, "absent: no id");
    is_int(json_member_id(v, "long", id, sizeof(id)), -1, "too long: -1");
    is_int(json_member_id(v, "k", id, sizeof(id)), 0, "a Klaviyo-style id");
    is_str(id, "01F_a-Z", "kept as is");
    /* ids go into the next URL: a server's answer must not steer it */
    is_int(json_member_id(v, "path", id, sizeof(id)), -1, "\"1/../x\": no id");
    is_int(json_member_id(v, "sp", id, sizeof(id)), -1, "\"4 2\": no id");
    is_int(json_member_id(v, "q", id, sizeof(id)), -1, "\"1?a=b\": no id");
    is_int(json_member_id(v, "crlf", id, sizeof(id)), -1, "CR LF: no id");
    is_int(json_member_id(v, "neg", id, sizeof(id)), 0, "a negative integer");
    ok(json_member_true(v, "t"), "true");
    ok(!json_member_true(v, "i"), "42 is not true");
    ok(json_member(NULL, "x") == NULL, "member of NULL");
    is_str(json_member_string(v, "i"), NULL, "not a string: NULL");
    yajl_tree_free(v);
}


static void
test_cache(void)
{
    name_cache  *c;
    char         name[32], id[32];
    int          i, hits;

    c = name_cache_create(100);
    ok(c != NULL, "cache created");
    is_str(name_cache_get(c, "a"), NULL, "empty: miss");
    is_int(name_cache_put(c, "Tag", "1"), 0, "put");
    is_str(name_cache_get(c, "Tag"), "1", "get");
    is_str(name_cache_get(c, "tag"), NULL, "case-sensitive");
    name_cache_put(c, "Tag", "2");
    is_str(name_cache_get(c, "Tag"), "2", "replaced");
    is_int(name_cache_count(c), 1, "one entry");
    name_cache_remove(c, "Tag");
    is_str(name_cache_get(c, "Tag"), NULL, "removed");
    name_cache_remove(c, "never");

    for (i = 0; i < 250; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(id, sizeof(id), "%d", i);
        name_cache_put(c, name, id);
    }
    ok(name_cache_count(c) <= 100, "bounded: %zu entries",
       name_cache_count(c));

    hits = 0;
    for (i = 0; i < 250; i++) {
        const char  *got;

        snprintf(name, sizeof(name), "n%d", i);
        snprintf(id, sizeof(id), "%d", i);
        got = name_cache_get(c, name);
        if (got != NULL) {
            hits += strcmp(got, id) == 0 ? 1 : -1000;
        }
    }
    ok(hits > 0, "what is kept is right (%d hits)", hits);
    is_str(name_cache_get(c, "n249"), "249", "the latest is kept");

    name_cache_free(c);
    name_cache_free(NULL);
}


int
main(void)
{
    ok(provider_find("kit") && provider_find("activecampaign")
       && provider_find("klaviyo") && provider_find("webhook")
       && provider_find("log"), "the five providers");
    ok(provider_find("Kit") == NULL, "names are exact");

    test_classify();
    test_json_classify();
    test_request();
    test_redact();
    test_values();
    test_writer();
    test_members();
    test_cache();

    return tap_done();
}
