/*
 * json_tree.c - unit tests of json_parse(): the tree it builds (escapes,
 * surrogate pairs, UTF-8, numbers, duplicate keys, top-level scalars) and
 * every way it refuses a body, each with its reason's exact text.
 */

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_tree.h"
#include "tap.h"

#define FIXTURES  "t/fixtures/stripe"

/* ASan aborts on a malloc() it cannot give, where libc returns NULL */
#ifdef __SANITIZE_ADDRESS__
#define JSON_TEST_NO_OOM
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JSON_TEST_NO_OOM
#endif
#endif


static json_arena   ar;
static char         reason[160];


/* body[0 .. len - 1] parsed in a fresh arena; reason says why on NULL */
static const json_node *
parse_len(const char *body, size_t len)
{
    json_arena_free(ar.head);
    ar.head = NULL;
    ar.chunk = 4096;
    reason[0] = '\0';

    return json_parse(&ar, body, len, reason, sizeof(reason));
}


static const json_node *
parse(const char *body)
{
    return parse_len(body, strlen(body));
}


static void
refuses_len(const char *body, size_t len, const char *want, const char *what)
{
    ok(parse_len(body, len) == NULL, "%s: refused", what);
    is_str(reason, want, "%s: reason", what);
}


static void
refuses(const char *body, const char *want, const char *what)
{
    refuses_len(body, strlen(body), want, what);
}


/* body is one string whose value is want[0 .. want_len - 1] */
static void
string_is(const char *body, const char *want, size_t want_len,
    const char *what)
{
    const json_node  *n;

    n = parse(body);

    if (!ok(n != NULL && n->type == JSON_STRING, "%s: a string", what)) {
        diag("reason: %s", reason);
        return;
    }

    ok(n->u.str.len == want_len
       && memcmp(n->u.str.s, want, want_len) == 0, "%s: its bytes", what);
    ok(n->u.str.s[n->u.str.len] == '\0', "%s: NUL-terminated", what);
}


static void
int_is(const char *body, long long want, const char *what)
{
    const json_node  *n;

    n = parse(body);

    if (!ok(n != NULL && n->type == JSON_INT, "%s: JSON_INT", what)) {
        diag("reason: %s", reason);
        return;
    }

    ok(n->u.i == want, "%s: %lld", what, want);
}


static void
number_is(const char *body, const char *what)
{
    const json_node  *n;

    n = parse(body);
    ok(n != NULL && n->type == JSON_NUMBER, "%s: JSON_NUMBER (%s)", what,
       n == NULL ? reason : "");
}


/* ---- the tree ---- */

static void
test_tree(void)
{
    const json_node  *root, *n, *a;

    root = parse(" {\"id\":\"evt_1\", \"n\" : 42,\n\t\"a\":[true,false,null,"
                 "1.5,\"x\",{},[]],\r\n\"o\":{\"k\":\"v\"}} ");

    if (!ok(root != NULL, "an object: parsed")) {
        diag("reason: %s", reason);
        return;
    }

    is_int(root->type, JSON_OBJECT, "root is an object");
    ok(root->key == NULL && root->next == NULL, "root: no name, no sibling");

    n = root->u.kids.first;
    ok(n != NULL && n->key_len == 2 && strcmp(n->key, "id") == 0
       && n->type == JSON_STRING && strcmp(n->u.str.s, "evt_1") == 0,
       "first member: id, a string");

    n = n->next;
    ok(n != NULL && strcmp(n->key, "n") == 0 && n->type == JSON_INT
       && n->u.i == 42, "second member: n, 42");

    a = n->next;
    ok(a != NULL && strcmp(a->key, "a") == 0 && a->type == JSON_ARRAY,
       "third member: a, an array");

    n = json_first(a);
    is_int(n->type, JSON_TRUE, "a[0] true");
    ok(n->key == NULL && n->key_len == 0, "an element has no name");
    n = n->next;
    is_int(n->type, JSON_FALSE, "a[1] false");
    n = n->next;
    is_int(n->type, JSON_NULL, "a[2] null");
    n = n->next;
    is_int(n->type, JSON_NUMBER, "a[3] 1.5 is a JSON_NUMBER");
    n = n->next;
    ok(n->type == JSON_STRING && strcmp(n->u.str.s, "x") == 0, "a[4] \"x\"");
    n = n->next;
    ok(n->type == JSON_OBJECT && n->u.kids.first == NULL
       && n->u.kids.last == NULL, "a[5] {} is empty");
    n = n->next;
    ok(n->type == JSON_ARRAY && n->u.kids.first == NULL, "a[6] [] is empty");
    ok(n->next == NULL && a->u.kids.last == n, "a[6] is the last");

    n = json_at(root, "o", "k", NULL);
    ok(n != NULL && n->type == JSON_STRING && strcmp(n->u.str.s, "v") == 0,
       "json_at(o, k)");
    ok(root->u.kids.last == a->next, "o is the last member");
    ok(json_get(root, "nope") == NULL, "json_get: absent");
    ok(json_get(a, "x") == NULL, "json_get on an array: NULL");
    ok(json_first(root) == NULL, "json_first on an object: NULL");

    /* duplicate names: both kept, in order; lookups see the first */
    root = parse("{\"a\":1,\"b\":2,\"a\":3}");
    ok(root != NULL, "duplicate names: parsed");
    n = root->u.kids.first;
    ok(n->u.i == 1 && n->next->u.i == 2 && n->next->next->u.i == 3
       && strcmp(n->next->next->key, "a") == 0, "duplicates: all three");
    is_int(json_get(root, "a")->u.i, 1, "json_get sees the first");

    /* names hold what strings hold */
    root = parse("{\"\":1,\"a\\u0000b\":2,\"\\u00e9\":3}");
    n = root != NULL ? root->u.kids.first : NULL;
    ok(n != NULL && n->key_len == 0 && n->key[0] == '\0', "an empty name");
    n = n != NULL ? n->next : NULL;
    ok(n != NULL && n->key_len == 3 && memcmp(n->key, "a\0b", 4) == 0,
       "a name holding a NUL");
    n = n != NULL ? n->next : NULL;
    ok(n != NULL && n->key_len == 2 && strcmp(n->key, "\xc3\xa9") == 0,
       "an escaped name");
    ok(json_get(root, "\xc3\xa9") == n, "json_get on an escaped name");

    /* any value at the top (RFC 8259) */
    string_is("\"evt\"", "evt", 3, "a string at the top");
    int_is(" 42 ", 42, "a number at the top");
    root = parse("true");
    ok(root != NULL && root->type == JSON_TRUE, "true at the top");
    root = parse("null");
    ok(root != NULL && root->type == JSON_NULL, "null at the top");
    root = parse("\r\n\t [ ] \r\n\t ");
    ok(root != NULL && root->type == JSON_ARRAY, "whitespace around");
}


/* ---- strings ---- */

static void
test_escapes(void)
{
    string_is("\"\\\"\"", "\"", 1, "\\\"");
    string_is("\"\\\\\"", "\\", 1, "\\\\");
    string_is("\"\\/\"", "/", 1, "\\/");
    string_is("\"\\b\"", "\b", 1, "\\b");
    string_is("\"\\f\"", "\f", 1, "\\f");
    string_is("\"\\n\"", "\n", 1, "\\n");
    string_is("\"\\r\"", "\r", 1, "\\r");
    string_is("\"\\t\"", "\t", 1, "\\t");
    string_is("\"\\u0041\"", "A", 1, "\\u0041");
    string_is("\"\\u0000\"", "\0", 1, "\\u0000: a NUL in the string");
    string_is("\"a\\u0000b\"", "a\0b", 3, "a NUL inside");
    string_is("\"\\u007f\\u0080\"", "\x7f\xc2\x80", 3, "U+007F, U+0080");
    string_is("\"\\u07ff\\u0800\"", "\xdf\xbf\xe0\xa0\x80", 5,
              "U+07FF, U+0800");
    string_is("\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9", 4,
              "hex digits in either case");
    string_is("\"\\u20ac\"", "\xe2\x82\xac", 3, "U+20AC");
    string_is("\"\\ud7ff\\ue000\\uffff\"",
              "\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf", 9,
              "around the surrogates, U+FFFF");
    string_is("\"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\"", "x\"y\\z/\b\f\n\r\t", 11,
              "every short escape in a row");
    string_is("\"a long string before the escape, past sixteen bytes\\n\"",
              "a long string before the escape, past sixteen bytes\n", 52,
              "a long prefix, then an escape");

    refuses("\"\\q\"", "body is not JSON: invalid escape \\q at byte 1",
            "\\q");
    refuses("[\"ab\\'\"]", "body is not JSON: invalid escape \\' at byte 4",
            "\\'");
    refuses("\"\\U0041\"", "body is not JSON: invalid escape \\U at byte 1",
            "\\U");
    refuses("\"\\x41\"", "body is not JSON: invalid escape \\x at byte 1",
            "\\x");
    refuses("\"\\\x01\"",
            "body is not JSON: invalid escape: '\\' then 0x01 at byte 1",
            "a backslash before a control byte");
    refuses("\"\\ \"",
            "body is not JSON: invalid escape: '\\' then ' ' at byte 1",
            "a backslash before a space");
    refuses("\"\\u12x4\"", "body is not JSON: invalid \\u escape at byte 1, "
            "expected 4 hex digits", "\\u12x4");
    refuses("\"\\u\"", "body is not JSON: invalid \\u escape at byte 1, "
            "expected 4 hex digits", "\\u then a quote");
    refuses("\"\\", "body is not JSON: unterminated string starting at "
            "byte 0", "a backslash at the end");
    refuses("\"\\u12", "body is not JSON: unterminated string starting at "
            "byte 0", "\\u cut short");
}


static void
test_surrogates(void)
{
    string_is("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4, "U+1F600");
    string_is("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", 4,
              "U+1F600, upper case");
    string_is("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80", 4, "U+10000");
    string_is("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4, "U+10FFFF");
    string_is("\"a\\ud83d\\ude00b\\ud83d\\ude00\"",
              "a\xf0\x9f\x98\x80" "b\xf0\x9f\x98\x80", 10, "two pairs");

    refuses("\"\\ud800\"", "body has a string that is not valid UTF-8: "
            "unpaired UTF-16 surrogate \\ud800 at byte 1",
            "a high surrogate alone");
    refuses("\"\\ud800abc\"", "body has a string that is not valid UTF-8: "
            "unpaired UTF-16 surrogate \\ud800 at byte 1",
            "a high surrogate, then text");
    refuses("\"\\ud800\\u0041\"", "body has a string that is not valid "
            "UTF-8: unpaired UTF-16 surrogate \\ud800 at byte 1",
            "a high surrogate, then \\u0041");
    refuses("\"\\ud800\\ud800\"", "body has a string that is not valid "
            "UTF-8: unpaired UTF-16 surrogate \\ud800 at byte 1",
            "two high surrogates");
    refuses("\"\\ud800\\n\"", "body has a string that is not valid UTF-8: "
            "unpaired UTF-16 surrogate \\ud800 at byte 1",
            "a high surrogate, then \\n");
    refuses("\"x\\udc00\"", "body has a string that is not valid UTF-8: "
            "unpaired UTF-16 surrogate \\udc00 at byte 2",
            "a low surrogate alone");
    refuses("\"\\uDFFF\\uD800\"", "body has a string that is not valid "
            "UTF-8: unpaired UTF-16 surrogate \\uDFFF at byte 1",
            "a pair the wrong way round");
    refuses("{\"\\ud800\":1}", "body has a string that is not valid UTF-8: "
            "unpaired UTF-16 surrogate \\ud800 at byte 2", "in a name");
    refuses("\"\\ud800\\u12x4\"", "body is not JSON: invalid \\u escape at "
            "byte 7, expected 4 hex digits", "a bad second half");
    refuses("\"\\ud800", "body is not JSON: unterminated string starting at "
            "byte 0", "a high surrogate at the end");
    refuses("\"\\ud800\\", "body is not JSON: unterminated string starting "
            "at byte 0", "a high surrogate, then a backslash at the end");
    refuses("\"\\ud800\\udc", "body is not JSON: unterminated string "
            "starting at byte 0", "a pair cut short");
}


static void
test_utf8(void)
{
    static const struct {
        const char  *body;
        const char  *reason;
    } bad[] = {
        { "\"\xc0\x80\"", "overlong form at byte 1" },
        { "\"\xc1\xbf\"", "overlong form at byte 1" },
        { "\"\xe0\x80\xaf\"", "overlong form at byte 1" },
        { "\"\xe0\x9f\xbf\"", "overlong form at byte 1" },
        { "\"\xf0\x80\x80\xaf\"", "overlong form at byte 1" },
        { "\"\xf0\x8f\xbf\xbf\"", "overlong form at byte 1" },
        { "\"\xed\xa0\x80\"", "UTF-16 surrogate at byte 1" },
        { "\"ab\xed\xbf\xbf\"", "UTF-16 surrogate at byte 3" },
        { "\"\xf4\x90\x80\x80\"", "code point past U+10FFFF at byte 1" },
        { "\"\xf5\x80\x80\x80\"", "code point past U+10FFFF at byte 1" },
        { "\"\xf7\xbf\xbf\xbf\"", "code point past U+10FFFF at byte 1" },
        { "\"\xf8\x88\x80\x80\x80\"", "invalid byte 0xf8 at byte 1" },
        { "\"\xff\"", "invalid byte 0xff at byte 1" },
        { "\"\xfe\"", "invalid byte 0xfe at byte 1" },
        { "\"\x80\"", "unexpected continuation byte 0x80 at byte 1" },
        { "\"\xc3\xa9\xa9\"", "unexpected continuation byte 0xa9 at byte 3" },
        { "\"Ada \xc3\x28 Lovelace\"", "incomplete sequence at byte 5" },
        { "\"\xe2\x82\x28\"", "incomplete sequence at byte 1" },
        { "\"\xf0\x9f\x98\"", "incomplete sequence at byte 1" },
        { "\"\xc3\"", "incomplete sequence at byte 1" },
        { "{\"\xc0\xaf\":1}", "overlong form at byte 2" },
        { "{\"a\":\"evt_\xff\"}", "invalid byte 0xff at byte 10" },
        { "[\"0123456789abcdef\xed\xa0\x80\"]",
          "UTF-16 surrogate at byte 18" }
    };
    char    want[160];
    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(want, sizeof(want),
                 "body has a string that is not valid UTF-8: %s",
                 bad[i].reason);
        refuses(bad[i].body, want, bad[i].reason);
    }

    /* cut inside a character: the string is what is unfinished */
    refuses("\"\xc3", "body is not JSON: unterminated string starting at "
            "byte 0", "cut after a lead byte");
    refuses("[\"\xf0\x9f\x98", "body is not JSON: unterminated string "
            "starting at byte 1", "cut inside a 4-byte character");

    string_is("\"\xc2\x80\xdf\xbf\"", "\xc2\x80\xdf\xbf", 4,
              "U+0080, U+07FF");
    string_is("\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\"",
              "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf", 12,
              "U+0800, U+D7FF, U+E000, U+FFFF");
    string_is("\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"",
              "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8, "U+10000, U+10FFFF");
    string_is("\"Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 and "
              "some ASCII after it\"",
              "Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 and "
              "some ASCII after it", 40, "mixed text");
    string_is("\"\x7f\"", "\x7f", 1, "DEL needs no escape");
}


static void
test_control_characters(void)
{
    refuses("\"a\x01\"", "body is not JSON: unescaped control character "
            "0x01 in a string at byte 2", "0x01");
    refuses("\"\x1f\"", "body is not JSON: unescaped control character "
            "0x1f in a string at byte 1", "0x1f");
    refuses("\"tab\there\"", "body is not JSON: unescaped control character "
            "0x09 in a string at byte 4", "a raw tab");
    refuses("{\"a\":\"line\nbreak\"}", "body is not JSON: unescaped control "
            "character 0x0a in a string at byte 10", "a raw newline");
    refuses("{\"a\nb\":1}", "body is not JSON: unescaped control character "
            "0x0a in a string at byte 3", "in a name");
    refuses_len("\"a\0b\"", 5, "body is not JSON: unescaped control "
                "character 0x00 in a string at byte 2", "a raw NUL");
    refuses("\"0123456789abcdef0123456789\x02\"", "body is not JSON: "
            "unescaped control character 0x02 in a string at byte 27",
            "past the first eight-byte words");
}


/* ---- numbers ---- */

static void
test_numbers(void)
{
    int_is("0", 0, "0");
    int_is("-0", 0, "-0");
    int_is("7", 7, "7");
    int_is("-7", -7, "-7");
    int_is("9223372036854775807", LLONG_MAX, "LLONG_MAX");
    int_is("-9223372036854775807", -LLONG_MAX, "-LLONG_MAX");
    int_is("999999999999999999", 999999999999999999LL, "18 nines");
    int_is("1000000000000000000", 1000000000000000000LL, "10^18");

    /* LLONG_MIN too: the consumer's yajl cannot read -2^63 back */
    number_is("-9223372036854775808", "LLONG_MIN");
    number_is("9223372036854775808", "LLONG_MAX + 1");
    number_is("-9223372036854775809", "LLONG_MIN - 1");
    number_is("9999999999999999999", "19 nines");
    number_is("18446744073709551616", "2^64 (0 modulo 2^64)");
    number_is("123456789012345678901234567890", "30 digits");
    number_is("1e5", "1e5");
    number_is("1E5", "1E5");
    number_is("1e+5", "1e+5");
    number_is("1e-5", "1e-5");
    number_is("1.5", "1.5");
    number_is("-1.5", "-1.5");
    number_is("0.0", "0.0");
    number_is("-0.0e0", "-0.0e0");
    number_is("1.0", "1.0: a fraction, whatever its value");

    refuses("01", "body is not JSON: leading zero in a number at byte 0",
            "01");
    refuses("-01", "body is not JSON: leading zero in a number at byte 1",
            "-01");
    refuses("[00]", "body is not JSON: leading zero in a number at byte 1",
            "00");
    refuses("-", "body is not JSON: no digit after '-' in a number at byte "
            "1", "- alone");
    refuses("[-a]", "body is not JSON: no digit after '-' in a number at "
            "byte 2", "-a");
    refuses("--1", "body is not JSON: no digit after '-' in a number at "
            "byte 1", "--1");
    refuses("1.", "body is not JSON: no digit after '.' in a number at byte "
            "2", "1.");
    refuses("[1.e5]", "body is not JSON: no digit after '.' in a number at "
            "byte 3", "1.e5");
    refuses("1e", "body is not JSON: no digit in the exponent of a number "
            "at byte 2", "1e");
    refuses("1e+", "body is not JSON: no digit in the exponent of a number "
            "at byte 3", "1e+");
    refuses("[1E-x]", "body is not JSON: no digit in the exponent of a "
            "number at byte 4", "1E-x");
    refuses(".5", "body is not JSON: unexpected '.' at byte 0, expected a "
            "value", ".5");
    refuses("+1", "body is not JSON: unexpected '+' at byte 0, expected a "
            "value", "+1");
    refuses("[0x10]", "body is not JSON: unexpected 'x' at byte 2, expected "
            "',' or ']'", "hex");
    refuses("1 2", "body is not JSON: trailing garbage at byte 2",
            "two numbers");
    refuses("NaN", "body is not JSON: unexpected 'N' at byte 0, expected a "
            "value", "NaN");
    refuses("[Infinity]", "body is not JSON: unexpected 'I' at byte 1, "
            "expected a value", "Infinity");

    /* body[len] is not read: a number ends where the body does */
    int_is("1234", 1234, "1234");
    ok(parse_len("1234", 2) != NULL && parse_len("1234", 2)->u.i == 12,
       "the first two bytes of 1234 are 12");
}


/* ---- structure ---- */

static void
test_structure(void)
{
    refuses("", "body is not JSON: empty body", "empty body");
    refuses_len(NULL, 0, "body is not JSON: empty body", "no body at all");
    refuses("  \n", "body is not JSON: only whitespace (3 bytes)", "blanks");
    refuses(" \t\r\n", "body is not JSON: only whitespace (4 bytes)",
            "every kind of whitespace");

    /* RFC 8259 whitespace is four bytes; yajl also took \v and \f */
    refuses("\v{}", "body is not JSON: unexpected 0x0b at byte 0, expected "
            "a value", "\\v before");
    refuses("[1,\f2]", "body is not JSON: unexpected 0x0c at byte 3, "
            "expected a value", "\\f inside");
    refuses("{}\v", "body is not JSON: trailing garbage at byte 2",
            "\\v after");

    refuses("{\"id\":\"evt_1\",\"type\":\"charge.succ",
            "body is not JSON: unterminated string starting at byte 21",
            "truncated in a string");
    refuses("[", "body is not JSON: unexpected end of body at byte 1, "
            "expected a value", "[");
    refuses("[1,", "body is not JSON: unexpected end of body at byte 3, "
            "expected a value", "[1,");
    refuses("[1", "body is not JSON: unexpected end of body at byte 2, "
            "expected ',' or ']'", "[1");
    refuses("{", "body is not JSON: unexpected end of body at byte 1, "
            "expected a member name (a string)", "{");
    refuses("{\"a\"", "body is not JSON: unexpected end of body at byte 4, "
            "expected ':'", "{\"a\"");
    refuses("{\"a\": ", "body is not JSON: unexpected end of body at byte 6, "
            "expected a value", "{\"a\": ");
    refuses("{\"a\":1", "body is not JSON: unexpected end of body at byte 6, "
            "expected ',' or '}'", "{\"a\":1");
    refuses("\"abc", "body is not JSON: unterminated string starting at "
            "byte 0", "an unterminated string");

    refuses("{}x", "body is not JSON: trailing garbage at byte 2",
            "trailing garbage");
    refuses("{}\"junk", "body is not JSON: trailing garbage at byte 2",
            "an unterminated string after the value");
    refuses("{} \"a\"", "body is not JSON: trailing garbage at byte 3",
            "a string after the value");
    refuses("[]]", "body is not JSON: trailing garbage at byte 2",
            "a bracket after the value");
    refuses("{}\xff", "body is not JSON: trailing garbage at byte 2",
            "0xff after the value");
    refuses("truex", "body is not JSON: trailing garbage at byte 4",
            "truex");
    refuses_len("{}\0", 3, "body is not JSON: trailing garbage at byte 2",
                "a NUL after the value");

    refuses("{\"a\":1,}", "body is not JSON: unexpected '}' at byte 7, "
            "expected a member name (a string)", "a trailing comma");
    refuses("[1,]", "body is not JSON: unexpected ']' at byte 3, expected a "
            "value", "a trailing comma in an array");
    refuses("[,1]", "body is not JSON: unexpected ',' at byte 1, expected a "
            "value", "a leading comma");
    refuses("{\"a\" 1}", "body is not JSON: unexpected '1' at byte 5, "
            "expected ':'", "no colon");
    refuses("{1:2}", "body is not JSON: unexpected '1' at byte 1, expected a "
            "member name (a string)", "a number as a name");
    refuses("{\"a\":1 \"b\":2}", "body is not JSON: unexpected '\"' at byte "
            "7, expected ',' or '}'", "no comma between members");
    refuses("[1 2]", "body is not JSON: unexpected '2' at byte 3, expected "
            "',' or ']'", "no comma between elements");
    refuses("[}", "body is not JSON: unexpected '}' at byte 1, expected a "
            "value", "[}");
    refuses("{]", "body is not JSON: unexpected ']' at byte 1, expected a "
            "member name (a string)", "{]");
    refuses("[1}", "body is not JSON: unexpected '}' at byte 2, expected "
            "',' or ']'", "[1}");
    refuses("/* c */ {}", "body is not JSON: unexpected '/' at byte 0, "
            "expected a value (comments are not JSON)", "comments refused");
    refuses("{\"id\":'evt'}", "body is not JSON: unexpected ''' at byte 6, "
            "expected a value", "single quotes");
    refuses("\xef\xbb\xbf{}", "body is not JSON: unexpected 0xef at byte 0, "
            "expected a value", "a byte order mark");
    refuses("nul", "body is not JSON: invalid literal at byte 0, expected "
            "null", "nul");
    refuses("nope", "body is not JSON: invalid literal at byte 0, expected "
            "null", "nope");
    refuses("[tru]", "body is not JSON: invalid literal at byte 1, expected "
            "true", "tru");
    refuses("{\"a\":fals}", "body is not JSON: invalid literal at byte 5, "
            "expected false", "fals");
    refuses("True", "body is not JSON: unexpected 'T' at byte 0, expected a "
            "value", "True");

    /* body[len] is not read */
    refuses_len("truex", 3, "body is not JSON: invalid literal at byte 0, "
                "expected true", "tru of true");
    refuses_len("\"abc\"", 4, "body is not JSON: unterminated string "
                "starting at byte 0", "a string whose quote is past len");
}


static char *
repeat(const char *open, size_t n, const char *middle, const char *close)
{
    char    *s;
    size_t   i, lo, lm, lc;

    lo = strlen(open);
    lm = strlen(middle);
    lc = strlen(close);

    s = malloc(n * (lo + lc) + lm + 1);
    if (s == NULL) {
        exit(1);
    }

    for (i = 0; i < n; i++) {
        memcpy(s + i * lo, open, lo);
    }

    memcpy(s + n * lo, middle, lm);

    for (i = 0; i < n; i++) {
        memcpy(s + n * lo + lm + i * lc, close, lc);
    }

    s[n * (lo + lc) + lm] = '\0';

    return s;
}


static void
test_nesting(void)
{
    const json_node  *n;
    char             *s;
    int               depth;

    s = repeat("[", JSON_DEPTH_MAX, "1", "]");
    n = parse(s);
    ok(n != NULL, "64 arrays: parsed");

    for (depth = 1; n != NULL && n->type == JSON_ARRAY; depth++) {
        n = json_first(n);
    }

    ok(depth == 65 && n != NULL && n->type == JSON_INT && n->u.i == 1,
       "64 levels down, the 1");
    free(s);

    s = repeat("[", JSON_DEPTH_MAX + 1, "1", "]");
    refuses(s, "JSON nesting deeper than 64 levels at byte 64", "65 arrays");
    free(s);

    s = repeat("{\"a\":", JSON_DEPTH_MAX, "{}", "}");
    refuses(s, "JSON nesting deeper than 64 levels at byte 320",
            "64 objects holding {}");
    free(s);

    s = repeat("{\"a\":", JSON_DEPTH_MAX - 1, "[]", "}");
    ok(parse(s) != NULL, "63 objects holding []: parsed");
    free(s);

    /* refused at level 65, as it is reached */
    s = repeat("[", 1024 * 1024, "", "");
    refuses(s, "JSON nesting deeper than 64 levels at byte 64", "1 MB of [");
    free(s);

    /* unbalanced deep text after a refusal is never looked at */
    s = repeat("[", JSON_DEPTH_MAX, "", "");
    refuses(s, "body is not JSON: unexpected end of body at byte 64, "
            "expected a value", "64 [ and nothing more");
    free(s);
}


/* ---- arenas ---- */

static void
test_arena(void)
{
    json_arena        small;
    const json_node  *root, *n;
    char              body[4200], *p;
    int               i;

    /* chunks of 64 bytes: nodes spread over many, strings in their own */
    p = body;
    p += sprintf(p, "{\"long\":\"");
    for (i = 0; i < 300; i++) {
        p += sprintf(p, "%c", 'a' + i % 26);
    }
    p += sprintf(p, "\",\"list\":[");
    for (i = 0; i < 200; i++) {
        p += sprintf(p, "%s\"v%d\"", i ? "," : "", i);
    }
    sprintf(p, "]}");

    small.head = NULL;
    small.chunk = 64;
    root = json_parse(&small, body, strlen(body), reason, sizeof(reason));

    ok(root != NULL, "64-byte chunks: parsed");
    n = json_get(root, "long");
    ok(n != NULL && n->u.str.len == 300 && n->u.str.s[299] == 'a' + 299 % 26
       && n->u.str.s[300] == '\0', "a 300-byte string in a chunk of its own");

    for (i = 0, n = json_first(json_get(root, "list")); n != NULL;
         n = n->next, i++)
    {
        char  want[16];

        snprintf(want, sizeof(want), "v%d", i);
        if (strcmp(n->u.str.s, want) != 0) {
            break;
        }
    }

    is_int(i, 200, "200 elements, in order");
    json_arena_free(small.head);

#ifndef JSON_TEST_NO_OOM
    /* a chunk malloc() cannot give */
    small.head = NULL;
    small.chunk = (size_t) 1 << 62;
    root = json_parse(&small, "{\"a\":[1]}", 9, reason, sizeof(reason));
    ok(root == NULL, "no memory: refused");
    is_str(reason, "out of memory", "no memory: reason");
    json_arena_free(small.head);
#endif
}


/* ---- the Stripe fixtures, and helpers kept from before ---- */

static void
test_fixtures(void)
{
    const char       *dirs[] = { FIXTURES "/event-data", FIXTURES "/objects" };
    const json_node  *n;
    struct dirent    *e;
    DIR              *d;
    FILE             *f;
    char              path[512], *body;
    size_t            i, len, files, parsed;

    files = 0;
    parsed = 0;

    for (i = 0; i < 2; i++) {
        d = opendir(dirs[i]);
        if (d == NULL) {
            continue;
        }

        while ((e = readdir(d)) != NULL) {
            if (strstr(e->d_name, ".json") == NULL) {
                continue;
            }

            snprintf(path, sizeof(path), "%s/%s", dirs[i], e->d_name);
            f = fopen(path, "rb");
            if (f == NULL) {
                continue;
            }

            body = malloc(1 << 20);
            len = body != NULL ? fread(body, 1, 1 << 20, f) : 0;
            fclose(f);
            files++;

            n = body != NULL ? parse_len(body, len) : NULL;

            if (n != NULL && n->type == JSON_OBJECT) {
                parsed++;

            } else {
                diag("%s: %s", path, reason);
            }

            free(body);
        }

        closedir(d);
    }

    ok(files > 10, "%zu Stripe fixtures found", files);
    is_int(parsed, files, "every fixture parses as an object");
}


static void
test_helpers(void)
{
    ok(json_ends_in_string("{}\"x", 4), "json_ends_in_string: {}\"x");
    ok(!json_ends_in_string("{\"a\":\"\\\"\"}", 10),
       "json_ends_in_string: an escaped quote");
    ok(json_nesting_exceeds("[[[", 3, 2), "json_nesting_exceeds: 3 > 2");
    ok(!json_nesting_exceeds("[\"[[[\"]", 7, 1),
       "json_nesting_exceeds: brackets in strings do not count");
    ok(json_utf8_valid((const unsigned char *) "\xf4\x8f\xbf\xbf", 4),
       "json_utf8_valid: U+10FFFF");
    ok(!json_utf8_valid((const unsigned char *) "\xed\xa0\x80", 3),
       "json_utf8_valid: a surrogate");
}


int
main(void)
{
    test_tree();
    test_escapes();
    test_surrogates();
    test_utf8();
    test_control_characters();
    test_numbers();
    test_structure();
    test_nesting();
    test_arena();
    test_fixtures();
    test_helpers();

    json_arena_free(ar.head);

    return tap_done();
}
