/*
 * cmd_send.c - unit tests for "stripe-sync send" without a network:
 * options, the secret file, the load summary's numbers.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_send.h"
#include "tap.h"


static int
parse(send_options *o, char *err, size_t errlen, ...)
{
    va_list   ap;
    char     *argv[64];
    int       argc, rc;
    FILE     *devnull;

    argc = 0;
    argv[argc++] = "send";

    va_start(ap, errlen);
    while (argc < 63 && (argv[argc] = va_arg(ap, char *)) != NULL) {
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;

    devnull = fopen("/dev/null", "w");
    err[0] = '\0';
    rc = send_options_parse(argc, argv, o, devnull, err, errlen);
    fclose(devnull);

    return rc;
}


static void
test_options(void)
{
    send_options  o;
    char          err[512];

    ok(parse(&o, err, sizeof(err), "--url", "http://h/x", "--secret-file",
             "s", "--type", "invoice.paid", NULL) == 0, "minimal --type");
    is_str(o.url, "http://h/x", "url");
    is_str(o.secret_file, "s", "secret file");
    is_str(o.spec.type, "invoice.paid", "type");
    is_int(o.count, 1, "count 1");
    is_int(o.concurrency, 1, "concurrency 1");
    is_int(o.timeout, 30, "timeout 30 s");
    is_int(o.load, 0, "not a load run");
    is_int(o.spec.amount, -1, "amount: default");
    ok(o.file == NULL, "no file");

    ok(parse(&o, err, sizeof(err), "--url", "https://h/x", "--secret-file",
             "s", "--type", "customer.subscription.updated", "--email",
             "a@b.c", "--price", "price_1", "--customer", "cus_1",
             "--amount", "0", "--livemode", "--previous-price", "price_0",
             "--count", "200", "--concurrency", "8", NULL) == 0,
       "every generated option");
    is_str(o.spec.email, "a@b.c", "email");
    is_str(o.spec.price, "price_1", "price");
    is_str(o.spec.customer, "cus_1", "customer");
    is_int(o.spec.amount, 0, "amount 0 is an amount");
    is_int(o.spec.livemode, 1, "livemode");
    is_str(o.spec.previous_price, "price_0", "previous price");
    is_int(o.count, 200, "count");
    is_int(o.concurrency, 8, "concurrency");
    is_int(o.load, 1, "a load run");

    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "ev.json", NULL) == 0, "a file");
    is_str(o.file, "ev.json", "file");
    ok(o.spec.type == NULL, "no type");

    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "--type", "invoice.paid", "ev.json", NULL) == 0,
       "a file and --type (a bare object to wrap)");

    ok(parse(&o, err, sizeof(err), "--concurrency", "2", "--url",
             "http://h/", "--secret-file", "s", "f.json", NULL) == 0
       && o.load == 1 && o.count == 1, "--concurrency alone: a load run");

    ok(parse(&o, err, sizeof(err), "--secret-file", "s", "--type",
             "invoice.paid", "--dry-run", NULL) == 0,
       "--dry-run needs no --url");

    ok(parse(&o, err, sizeof(err), "--help", NULL) == 1, "--help");
    ok(parse(&o, err, sizeof(err), "--list-types", NULL) == 0
       && o.list_types, "--list-types alone");

    /* usage errors, each naming what is wrong */
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", NULL) == -1 && strstr(err, "--type") != NULL,
       "no file nor type: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--type",
             "invoice.paid", NULL) == -1
       && strstr(err, "--secret-file") != NULL, "no secret: %s", err);
    ok(parse(&o, err, sizeof(err), "--secret-file", "s", "--type",
             "invoice.paid", NULL) == -1 && strstr(err, "--url") != NULL,
       "no url: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "ftp://h/", "--secret-file",
             "s", "--type", "invoice.paid", NULL) == -1
       && strstr(err, "ftp://h/") != NULL, "not http: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "--type", "invoice.paidd", NULL) == -1
       && strstr(err, "invoice.paidd") != NULL, "unknown type: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "--email", "a@b.c", "f.json", NULL) == -1
       && strstr(err, "--email") != NULL, "--email with a file: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "a.json", "b.json", NULL) == -1
       && strstr(err, "b.json") != NULL, "two files: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "f.json", "--count", "0", NULL) == -1
       && strstr(err, "--count") != NULL, "count 0: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "f.json", "--count", "12x", NULL) == -1,
       "count 12x: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "f.json", "--concurrency", "1001", NULL) == -1,
       "concurrency 1001: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "--type", "invoice.paid", "--amount", "-5", NULL) == -1,
       "amount -5: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", "http://h/", "--secret-file",
             "s", "--type", "checkout.session.completed", "--mode", "setup",
             NULL) == -1 && strstr(err, "setup") != NULL,
       "mode setup: %s", err);
    ok(parse(&o, err, sizeof(err), "--bogus", NULL) == -1
       && strstr(err, "--bogus") != NULL, "unknown option: %s", err);
    ok(parse(&o, err, sizeof(err), "--url", NULL) == -1
       && strstr(err, "needs a value") != NULL, "missing value: %s", err);
}


static void
test_secret(void)
{
    char   path[] = "/tmp/stripe-sync-unit-secret-XXXXXX";
    char   secret[SEND_SECRET_MAX + 1], err[512];
    FILE  *f;
    int    fd, i;

    fd = mkstemp(path);
    f = fdopen(fd, "w");
    fputs("# the endpoint's secret\n\n   whsec_abc123  \nwhsec_second\n", f);
    fclose(f);

    ok(send_read_secret(path, secret, sizeof(secret), err, sizeof(err)) == 0,
       "read");
    is_str(secret, "whsec_abc123", "first line that is not empty or #, "
           "trimmed");

    f = fopen(path, "w");
    fputs("# nothing\n\n", f);
    fclose(f);
    ok(send_read_secret(path, secret, sizeof(secret), err, sizeof(err)) == -1
       && strstr(err, "no secret") != NULL, "no secret: %s", err);

    f = fopen(path, "w");
    for (i = 0; i < 2000; i++) {
        fputc('x', f);
    }
    fclose(f);
    ok(send_read_secret(path, secret, sizeof(secret), err, sizeof(err)) == -1
       && strstr(err, "xxx") == NULL, "too long, not echoed: %s", err);

    f = fopen(path, "w");
    fputs("whsec_short\n", f);
    fclose(f);
    ok(send_read_secret(path, secret, 5, err, sizeof(err)) == -1
       && strstr(err, "whsec") == NULL, "too long for the buffer: %s", err);

    unlink(path);
    ok(send_read_secret(path, secret, sizeof(secret), err, sizeof(err)) == -1
       && strstr(err, path) != NULL, "missing file: %s", err);
}


static void
test_summary(void)
{
    send_summary  s;
    char          buf[2048];
    FILE         *f;
    int           i;

    memset(&s, 0, sizeof(s));
    is_int(send_summary_percentile(&s, 0.5), 0, "no latency: 0");

    /* 1..100 ms, shuffled */
    for (i = 0; i < 100; i++) {
        send_summary_add(&s, 200, "{\"received\":true}", NULL,
                         (long long) ((i * 37) % 100 + 1) * 1000);
    }

    is_int(s.sent, 100, "sent");
    is_int(s.ok, 100, "2xx");
    is_int(s.queued, 100, "queued");
    is_int(send_summary_percentile(&s, 0.50), 50000, "p50 = 50 ms");
    is_int(send_summary_percentile(&s, 0.99), 99000, "p99 = 99 ms");
    is_int(send_summary_percentile(&s, 0.90), 90000, "p90 = 90 ms");
    is_int(send_summary_percentile(&s, 1.0), 100000, "max");
    is_int(send_summary_percentile(&s, 0.0), 1000, "min");

    send_summary_add(&s, 200, "{\"received\":true,\"duplicate\":true}",
                     NULL, 1000);
    send_summary_add(&s, 200, "{\"received\":true,\"ignored\":\"event type "
                     "\\\"x\\\" is not handled\"}", NULL, 1000);
    send_summary_add(&s, 400, "{\"error\":\"no v1 signature matches any "
                     "configured secret\"}", NULL, 2000);
    send_summary_add(&s, 400, "{\"error\":\"other\"}", NULL, 2000);
    send_summary_add(&s, 503, "{\"error\":\"redis\"}\n", NULL, 3000);
    send_summary_add(&s, 0, NULL, "Couldn't connect to server", 0);
    send_summary_add(&s, 0, NULL, "later error", 0);

    is_int(s.sent, 107, "sent counts everything");
    is_int(s.ok, 102, "2xx");
    is_int(s.duplicate, 1, "duplicate");
    is_int(s.ignored, 1, "ignored");
    is_int(s.queued, 100, "queued unchanged");
    is_int(s.non2xx, 3, "non-2xx");
    is_int(s.errors, 2, "errors");
    is_int(s.nlatency, 105, "a latency per answer, none for errors");
    is_str(s.first_error, "Couldn't connect to server", "first error kept");

    s.elapsed_us = 2000000;
    f = fmemopen(buf, sizeof(buf), "w");
    send_summary_print(&s, f);
    fclose(f);

    ok(strstr(buf, "sent: 107 in 2.000 s, 53.5 requests/s\n") != NULL,
       "sent line");
    ok(strstr(buf, "2xx: 102 (queued 100, duplicate 1, ignored 1)\n") != NULL,
       "2xx line");
    ok(strstr(buf, "non-2xx: 3 (400 x2 {\"error\":\"no v1 signature matches "
              "any configured secret\"}; 503 x1 {\"error\":\"redis\"})\n")
       != NULL, "non-2xx by status, the first body of each on one line");
    ok(strstr(buf, "errors: 2 (first: Couldn't connect to server)\n") != NULL,
       "errors line");
    ok(strstr(buf, "latency: p50 ") != NULL, "latency line");

    send_summary_free(&s);

    memset(&s, 0, sizeof(s));
    send_summary_add(&s, 201, "", NULL, 7);
    is_int(send_summary_percentile(&s, 0.5), 7, "one value: every "
           "percentile is it");
    is_int(s.ok, 1, "201 is 2xx");
    is_int(s.queued, 0, "not the module's answer: not counted as queued");
    send_summary_free(&s);
}


int
main(void)
{
    test_options();
    test_secret();
    test_summary();

    return tap_done();
}
