/*
 * tap.h - a minimal TAP producer for the C unit tests, run by prove.
 *
 * Each test binary calls the check macros, then tap_done(), which prints
 * the plan and returns the exit status.
 */

#ifndef TAP_H
#define TAP_H

#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

#define ok(cond, ...)                                                         \
    tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                \
    tap_is_int((long long) (got), (long long) (want), __FILE__, __LINE__,     \
               __VA_ARGS__)

#define is_str(got, want, ...)                                                \
    tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

#define diag(...)                                                             \
    do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

static void
tap_desc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#include <stdarg.h>

static void
tap_desc(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

#define tap_ok(pass, file, line, ...)                                         \
    tap_result((pass), (file), (line)) ? (tap_desc(__VA_ARGS__),              \
    printf("\n"), 1) : (tap_desc(__VA_ARGS__), printf("\n"), 0)

static int
tap_result(int pass, const char *file, int line)
{
    tap_count++;

    if (!pass) {
        tap_failed++;
        printf("# failed at %s line %d\n", file, line);
    }

    printf("%sok %d - ", pass ? "" : "not ", tap_count);
    return pass;
}

#define tap_is_int(got, want, file, line, ...)                                \
    (tap_ok((got) == (want), file, line, __VA_ARGS__)                         \
     ? 1 : (printf("#   got: %lld\n#   expected: %lld\n", (got), (want)), 0))

#define tap_is_str(got, want, file, line, ...)                                \
    (tap_ok(tap_streq((got), (want)), file, line, __VA_ARGS__)                \
     ? 1 : tap_show_str((got), (want)))

static int
tap_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }

    return strcmp(a, b) == 0;
}


/* a function, not a macro: char arrays must not meet a NULL test */
static int
tap_show_str(const char *got, const char *want)
{
    printf("#   got: '%s'\n#   expected: '%s'\n",
           got ? got : "(null)", want ? want : "(null)");
    return 0;
}


static int
tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif /* TAP_H */
