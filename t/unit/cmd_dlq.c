/*
 * cmd_dlq.c - unit tests for "stripe-sync dlq" without Redis: reading a
 * dead letter (id, what list shows, whether and what it can replay), the
 * exact bytes of its record, the list line, the indented form.
 */

#include <stdlib.h>
#include <string.h>

#include "cmd_dlq.h"
#include "dead_letter.h"
#include "tap.h"


static void
test_span(void)
{
    const char  *t;
    size_t       off, len;

    t = "{\"record\":{\"v\":1,\"s\":\"a}\\\"]\"},\"error\":\"x\"}";
    ok(dlq_member_span(t, strlen(t), "record", &off, &len) == 0, "record");
    is_int(off, 10, "where it starts");
    ok(len == 19 && memcmp(t + off, "{\"v\":1,\"s\":\"a}\\\"]\"}", len) == 0,
       "its bytes, braces and quotes inside strings skipped");

    ok(dlq_member_span(t, strlen(t), "error", &off, &len) == 0
       && len == 3 && memcmp(t + off, "\"x\"", 3) == 0, "a later member");
    ok(dlq_member_span(t, strlen(t), "raw", &off, &len) == -1, "absent");

    t = " { \"a\" : [1, {\"b\": [2]}] , \"n\" : -1.5e3 , \"t\":true}";
    ok(dlq_member_span(t, strlen(t), "n", &off, &len) == 0
       && len == 6 && memcmp(t + off, "-1.5e3", 6) == 0,
       "spaces, arrays, a number");
    ok(dlq_member_span(t, strlen(t), "t", &off, &len) == 0
       && len == 4, "true, last");

    t = "{\"record\":1,\"record\":2}";
    ok(dlq_member_span(t, strlen(t), "record", &off, &len) == 0
       && t[off] == '1', "of duplicates, the first (as the parser reads)");

    t = "{\"rec\\\"ord\":1}";
    ok(dlq_member_span(t, strlen(t), "record", &off, &len) == -1,
       "a key with an escape is not another key");

    ok(dlq_member_span("[1]", 3, "record", &off, &len) == -1, "an array");
    ok(dlq_member_span("{\"record\":{", 11, "record", &off, &len) == -1,
       "cut short");
}


static void
test_parse(void)
{
    dlq_letter   l, l2;
    char        *letter, line[1024];
    const char  *raw;

    raw = "{\"v\":1,\"id\":\"evt_1Q\",\"type\":\"invoice.paid\",\"action\":"
          "\"purchase\",\"customer\":{\"id\":\"cus_N\",\"email\":\"a@b.c\"}}";
    letter = dead_letter_build(raw, strlen(raw), "Kit tag \"VIP\": HTTP 422:"
                               " Name is too long", "{\"errors\":[]}", 3,
                               1745437580, "host:1");

    ok(dlq_letter_parse(letter, strlen(letter), &l) == 0, "a letter");
    is_str(l.id, "evt_1Q", "id: the record's event id");
    is_str(l.action, "purchase", "action");
    is_str(l.customer, "cus_N", "customer");
    is_int(l.attempts, 3, "attempts");
    is_int(l.failed_at, 1745437580, "failed at");
    is_str(l.error, "Kit tag \"VIP\": HTTP 422: Name is too long", "error");
    ok(l.replayable, "replayable");
    ok(l.record_len == strlen(raw)
       && memcmp(letter + l.record_off, raw, l.record_len) == 0,
       "the record: the queue entry byte for byte");

    dlq_format_line(&l, line, sizeof(line));
    is_str(line, "evt_1Q                        purchase                "
           "cus_N                3  2025-04-23T19:46:20Z  Kit tag \"VIP\": "
           "HTTP 422: Name is too long", "the list line");
    free(letter);

    /* not JSON: "raw" */
    raw = "{\"v\":1,\"id\":\"evt_cut";
    letter = dead_letter_build(raw, strlen(raw), "queue entry is not JSON",
                               NULL, 0, 1, "h");
    ok(dlq_letter_parse(letter, strlen(letter), &l) == 0, "a raw letter");
    ok(strncmp(l.id, "dead-", 5) == 0 && strlen(l.id) == 17,
       "id: dead- and 12 hex digits: %s", l.id);
    ok(!l.replayable, "not replayable");
    ok(l.why && strstr(l.why, "raw") != NULL, "why: %s", l.why);
    dlq_letter_parse(letter, strlen(letter), &l2);
    is_str(l2.id, l.id, "the same letter, the same id");
    dlq_format_line(&l, line, sizeof(line));
    ok(strstr(line, "  -                       -  ") != NULL, "no action, "
       "no customer: -: %s", line);
    free(letter);

    /* JSON, but not a record we can replay */
    raw = "{\"v\":2,\"id\":\"evt_V2\",\"action\":\"purchase\"}";
    letter = dead_letter_build(raw, strlen(raw), "schema version 2", NULL, 0,
                               1, "h");
    dlq_letter_parse(letter, strlen(letter), &l);
    is_str(l.id, "evt_V2", "its event id is still its id");
    ok(!l.replayable && strstr(l.why, "schema v1") != NULL,
       "v 2: not replayable: %s", l.why);
    free(letter);

    raw = "[1,2]";
    letter = dead_letter_build(raw, strlen(raw), "not an object", NULL, 0, 1,
                               "h");
    dlq_letter_parse(letter, strlen(letter), &l);
    ok(strncmp(l.id, "dead-", 5) == 0, "no event id: hashed: %s", l.id);
    ok(!l.replayable, "an array is not a record");
    free(letter);

    raw = "{\"v\":1,\"id\":\"evt_NOACT\"}";
    letter = dead_letter_build(raw, strlen(raw), "no action", NULL, 0, 1,
                               "h");
    dlq_letter_parse(letter, strlen(letter), &l);
    ok(!l.replayable, "no action: not replayable");
    free(letter);

    raw = "{\"v\":1,\"id\":\"evt\\nX\",\"action\":\"purchase\"}";
    letter = dead_letter_build(raw, strlen(raw), "e", NULL, 1, 1, "h");
    dlq_letter_parse(letter, strlen(letter), &l);
    ok(strncmp(l.id, "dead-", 5) == 0, "an id with a newline would break "
       "the list line: hashed: %s", l.id);
    ok(l.replayable, "still a record to replay");
    free(letter);

    ok(dlq_letter_parse("not json", 8, &l) == -1, "a letter that is not "
       "JSON");
    ok(strncmp(l.id, "dead-", 5) == 0 && !l.replayable, "still an id: %s",
       l.id);
}


static void
test_line(void)
{
    dlq_letter  l;
    char        line[1024];
    size_t      i;

    memset(&l, 0, sizeof(l));
    snprintf(l.id, sizeof(l.id), "evt_X");
    l.attempts = -1;
    l.failed_at = -1;

    for (i = 0; i < 100; i++) {
        l.error[i] = (char) ('a' + i % 26);
    }
    l.error[3] = '\n';
    dlq_format_line(&l, line, sizeof(line));
    ok(strstr(line, " -  -                     abc efghijklmnopqrstuvwxyz"
              "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzab...")
       != NULL, "80 characters then ..., a newline as a space, absent "
       "attempts and time as -: %s", line);

    /* UTF-8: characters, not bytes, and never half of one */
    l.error[0] = '\0';
    for (i = 0; i < 90; i++) {
        strcat(l.error, "\xc3\xa9");
    }
    dlq_format_line(&l, line, sizeof(line));
    ok(strstr(line, "\xc3\xa9...") != NULL
       && strlen(strstr(line, "\xc3\xa9")) == 80 * 2 + 3,
       "80 two-byte characters");
}


static void
test_pretty(void)
{
    const char  *t;
    char        *p;
    size_t       n;

    t = "{\"a\":[1,2.50,1e3],\"b\":{\"c\":\"\\u00e9\\\"\"},\"d\":null,"
        "\"e\":true}";
    p = dlq_pretty(t, strlen(t), &n);
    is_str(p, "{\n"
              "  \"a\": [\n"
              "    1,\n"
              "    2.50,\n"
              "    1e3\n"
              "  ],\n"
              "  \"b\": {\n"
              "    \"c\": \"\xc3\xa9\\\"\"\n"
              "  },\n"
              "  \"d\": null,\n"
              "  \"e\": true\n"
              "}\n", "indented by two, numbers as written");
    ok(p && strlen(p) == n, "length");
    free(p);

    ok(dlq_pretty("{\"a\":", 5, &n) == NULL, "not JSON: NULL");
}


int
main(void)
{
    test_span();
    test_parse();
    test_line();
    test_pretty();

    return tap_done();
}
