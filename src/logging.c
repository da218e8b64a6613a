/*
 * logging.c - timestamped lines on stderr (logging.h).
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "logging.h"


#define LOGGING_LINE_MAX  4096


void
logging_time(char *buf)
{
    struct timeval  tv;
    struct tm       tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);

    strftime(buf, LOGGING_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + 19, LOGGING_TIME_LEN - 19, ".%03uZ",
             (unsigned) (tv.tv_usec / 1000) % 1000);
}


void
logging_printf(const char *fmt, ...)
{
    char     line[LOGGING_LINE_MAX];
    size_t   n;
    int      r;
    va_list  ap;

    logging_time(line);
    n = strlen(line);
    line[n++] = ' ';

    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);

    if (r < 0) {
        return;
    }

    n += (size_t) r < sizeof(line) - n - 1 ? (size_t) r
                                            : sizeof(line) - n - 2;
    line[n++] = '\n';

    /* one write(2), so lines of concurrent writers never interleave */
    if (write(STDERR_FILENO, line, n) < 0) {
        return;
    }
}


char *
logging_quote(const char *s, char *out, size_t len)
{
    size_t          o;
    unsigned char   c;
    char            esc[5];
    size_t          elen;

    if (len == 0) {
        return out;
    }

    o = 0;

    for (; s != NULL && *s != '\0'; s++) {
        c = (unsigned char) *s;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            elen = 2;

        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            elen = 2;

        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            elen = 2;

        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            elen = 4;

        } else {
            esc[0] = (char) c;
            elen = 1;
        }

        /* keep room for "..." and the NUL */
        if (o + elen + 4 > len) {
            if (len >= 4) {
                o = o + 4 > len ? len - 4 : o;
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }

        memcpy(out + o, esc, elen);
        o += elen;
    }

    out[o] = '\0';
    return out;
}


void
logging_op_label(op_kind kind, const char *name, char *buf, size_t len)
{
    char  q[300];

    if (name != NULL) {
        snprintf(buf, len, "%s \"%s\"", op_kind_name(kind),
                 logging_quote(name, q, sizeof(q)));
    } else {
        snprintf(buf, len, "%s", op_kind_name(kind));
    }
}
