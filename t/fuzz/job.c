/*
 * libFuzzer target for the consumer's reading of queue entries: job_parse()
 * on arbitrary bytes, then job_lookup() (what templates and rules read)
 * with arbitrary paths, before and after enrichment.
 *
 * Input: "<path>\n<path>\n...\n\n<queue entry>"; without a blank line the
 * whole input is the entry and a fixed list of paths is looked up.
 *
 * Checked, besides "no crash, no leak": a refused entry says why (one
 * line), and its dead letter is valid JSON whatever the entry held; a
 * parsed job has its id and action; a lookup that succeeds wrote a
 * NUL-terminated value within the buffer, whatever its size; an entry
 * nested deeper than JOB_DEPTH_MAX is refused.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "dead_letter.h"
#include "job.h"
#include "json_tree.h"

static const char *const  fuzz_paths[] = {
    "id", "type", "action", "created", "livemode", "amount", "currency",
    "customer.id", "customer.email", "customer.name", "first_name",
    "last_name", "items.0.price", "items.0.product", "items.0.quantity",
    "items.0.amount", "items.0.description", "items.1.price",
    "metadata.plan", "metadata.a.b", "object.id", "subscription",
    "card.exp_month", "previous.items.0.price", "enrich.0", "v", ""
};

static const size_t  fuzz_sizes[] = { 1, 2, 8, 64, 1024 };


/* yajl_parse without a tree: no recursion, any depth */
static int
fuzz_is_json(const char *s, size_t len)
{
    yajl_handle  h;
    int          ok;

    h = yajl_alloc(NULL, NULL, NULL);
    ok = yajl_parse(h, (const unsigned char *) s, len) == yajl_status_ok
         && yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);

    return ok;
}


static void
fuzz_lookup(const job *j, const char *path)
{
    char    buf[1024 + 16];
    size_t  k, n;

    for (k = 0; k < sizeof(fuzz_sizes) / sizeof(fuzz_sizes[0]); k++) {
        n = fuzz_sizes[k];
        memset(buf, 0xA5, sizeof(buf));

        if (job_lookup(j, path, buf, n) == 0) {
            if (memchr(buf, '\0', n) == NULL) {
                abort();    /* not terminated within the buffer */
            }
        }

        if ((unsigned char) buf[n] != 0xA5) {
            abort();    /* wrote past the buffer */
        }
    }
}


static void
fuzz_lookups(const job *j, const char *paths, size_t plen)
{
    const char  *p, *nl, *end;
    char        *path;
    size_t       i;

    for (i = 0; i < sizeof(fuzz_paths) / sizeof(fuzz_paths[0]); i++) {
        fuzz_lookup(j, fuzz_paths[i]);
    }

    end = paths + plen;

    for (p = paths; p != NULL && p < end; p = nl ? nl + 1 : NULL) {
        nl = memchr(p, '\n', (size_t) (end - p));
        path = strndup(p, nl ? (size_t) (nl - p) : (size_t) (end - p));
        if (path == NULL) {
            return;
        }

        fuzz_lookup(j, path);
        free(path);
    }

    (void) job_tenure_days(j);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char  *in, *raw, *sep;
    size_t       raw_len, plen;
    job          j;
    job_item     items[2];
    char         err[512], *letter;

    in = (const char *) data;
    sep = memmem(in, size, "\n\n", 2);

    if (sep != NULL) {
        plen = (size_t) (sep - in);
        raw = sep + 2;
        raw_len = size - plen - 2;

    } else {
        plen = 0;
        raw = in;
        raw_len = size;
    }

    memset(err, 0, sizeof(err));

    if (job_parse(&j, raw, raw_len, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || strchr(err, '\n') != NULL) {
            abort();    /* a refusal says why, in one line */
        }

        /* the consumer dead-letters it: the letter must be JSON */
        letter = dead_letter_build(raw, raw_len, err, "{\"errors\":[]}", 0,
                                   1745433906, "fuzz:1");
        if (letter == NULL || !fuzz_is_json(letter, strlen(letter))) {
            abort();
        }
        free(letter);

        job_free(&j);    /* job_parse left it empty: must stay harmless */
        return 0;
    }

    if (j.id == NULL || j.id[0] == '\0' || j.action == NULL
        || j.action[0] == '\0' || j.record == NULL
        || json_nesting_exceeds(raw, raw_len, JOB_DEPTH_MAX))
    {
        abort();
    }

    fuzz_lookups(&j, in, plen);

    /* what enrichment lays on top */
    memset(items, 0, sizeof(items));
    items[0].price = (char *) "price_E";
    items[0].product = (char *) "prod_E";
    items[0].quantity = 2;
    items[0].amount = -1;
    items[1].description = (char *) "Line \"two\"";
    items[1].quantity = -1;
    items[1].amount = 500;

    if (job_set_email(&j, "enriched@example.org") != 0
        || job_set_name(&j, "  Ada   King Lovelace ") != 0
        || job_set_items(&j, items, 2) != 0)
    {
        abort();
    }

    fuzz_lookups(&j, in, plen);

    letter = dead_letter_build(raw, raw_len, "gave up", NULL, 15, 0, "c");
    if (letter == NULL || !fuzz_is_json(letter, strlen(letter))) {
        abort();
    }
    free(letter);

    job_free(&j);
    return 0;
}
