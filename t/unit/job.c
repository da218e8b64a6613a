/*
 * Unit tests of job.c: parsing a queue entry (and refusing bad ones),
 * the convenience fields, enrichment setters, dotted-path lookup with the
 * enrichment overlay, the first/last name split, tenure.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "tap.h"

#define REC(body)  "{\"v\":1,\"id\":\"evt_1\",\"action\":\"purchase\"" body "}"


static int
parse(job *j, const char *raw, char *err, size_t errlen)
{
    return job_parse(j, raw, strlen(raw), err, errlen);
}


/* parse must fail with exactly this reason */
#define REFUSES(raw, want, what)                                             \
    refuses((raw), sizeof(raw) - 1, (want), (what))

static void
refuses(const char *raw, size_t len, const char *want, const char *what)
{
    job   j;
    char  err[256];

    err[0] = '\0';
    is_int(job_parse(&j, raw, len, err, sizeof(err)), -1, "refused: %s",
           what);
    is_str(err, want, "reason: %s", what);
    ok(j.raw == NULL && j.record == NULL && j.email == NULL,
       "nothing left allocated: %s", what);
}


/* a record whose member "a" nests n arrays */
static char *
nested(size_t n)
{
    static const char   head[] = REC(",\"a\":");
    char               *b;
    size_t              h;

    h = sizeof(head) - 2;               /* without the closing brace */
    b = malloc(h + 2 * n + 2);
    if (b == NULL) {
        exit(1);
    }

    memcpy(b, head, h);
    memset(b + h, '[', n);
    memset(b + h + n, ']', n);
    b[h + 2 * n] = '}';
    b[h + 2 * n + 1] = '\0';

    return b;
}


static void
test_refusals(void)
{
    char    *big;
    size_t   n;

    REFUSES("", "queue entry is not JSON: parse error: premature EOF",
            "empty");
    REFUSES("{\"v\":1,",
            "queue entry is not JSON: parse error: premature EOF",
            "truncated");
    REFUSES("nope", "queue entry is not JSON: lexical error: invalid "
            "string in json text.", "not JSON");
    REFUSES("[1]", "queue entry is not a JSON object", "array");
    REFUSES("{\"id\":\"evt_1\",\"action\":\"purchase\"}",
            "queue entry has no schema version \"v\", this consumer reads 1",
            "no v");
    REFUSES("{\"v\":2,\"id\":\"evt_1\",\"action\":\"purchase\"}",
            "queue entry has schema version 2, this consumer reads 1",
            "v 2");
    REFUSES("{\"v\":\"1\",\"id\":\"evt_1\",\"action\":\"purchase\"}",
            "queue entry has schema version \"1\", this consumer reads 1",
            "v a string");
    REFUSES("{\"v\":1.0,\"id\":\"evt_1\",\"action\":\"purchase\"}",
            "queue entry has schema version 1.0, this consumer reads 1",
            "v a fraction");
    REFUSES("{\"v\":1,\"action\":\"purchase\"}",
            "queue entry has no \"id\"", "no id");
    REFUSES("{\"v\":1,\"id\":\"\",\"action\":\"purchase\"}",
            "queue entry has no \"id\"", "empty id");
    REFUSES("{\"v\":1,\"id\":7,\"action\":\"purchase\"}",
            "queue entry has no \"id\"", "numeric id");
    REFUSES("{\"v\":1,\"id\":\"evt_1\"}",
            "queue entry evt_1 has no \"action\"", "no action");
    REFUSES("{\"v\":1,\"id\":\"evt_1\",\"action\":null}",
            "queue entry evt_1 has no \"action\"", "null action");
    REFUSES("{\"v\":1,\"id\":\"evt\\n\\t1\"}",
            "queue entry evt  1 has no \"action\"",
            "an id with control characters: the error stays one line");
    REFUSES(REC("") "x",
            "queue entry is not JSON: parse error: trailing garbage",
            "trailing garbage");
    REFUSES("{\"v\":1,\0\"id\":\"evt_1\"}",
            "queue entry contains a NUL byte", "NUL byte");
    /* yajl alone takes a value followed by an unterminated string */
    REFUSES(REC("") "\"x",
            "queue entry is not JSON: trailing garbage",
            "an unterminated string after the record");
    REFUSES(REC("") " \"x\\\"",
            "queue entry is not JSON: trailing garbage",
            "an unterminated string ending in an escape");

    refuses(NULL, 0, "queue entry is not JSON: parse error: premature EOF",
            "NULL");

    n = JOB_RAW_MAX + 1;
    big = malloc(n);
    memset(big, ' ', n);
    refuses(big, n, "queue entry is 1048577 bytes, over the 1048576-byte "
            "limit", "over JOB_RAW_MAX");
    free(big);

    /* yajl_tree_free recurses per level: 400,000 would blow the stack */
    big = nested(400000);
    refuses(big, strlen(big), "queue entry nests deeper than 64 levels",
            "400,000 levels");
    free(big);

    big = nested(64);
    refuses(big, strlen(big), "queue entry nests deeper than 64 levels",
            "65 levels, the record's own included");
    free(big);

    big = nested(63);
    {
        job   j;
        char  err[256];

        is_int(job_parse(&j, big, strlen(big), err, sizeof(err)), 0,
               "64 levels, the record's own included: parsed");
        job_free(&j);
    }
    free(big);
}


static void
test_fields(void)
{
    job    j;
    char   err[256];
    const char *raw =
        "{\"v\":1,\"id\":\"evt_9\",\"type\":\"invoice.payment_failed\","
        "\"action\":\"payment_failed\",\"created\":1745437580,"
        "\"livemode\":false,\"object\":{\"type\":\"invoice\","
        "\"id\":\"in_1\"},\"customer\":{\"id\":\"cus_1\","
        "\"email\":\"ada@example.org\",\"name\":\"Ada King Lovelace\"},"
        "\"amount\":24900,\"currency\":\"usd\",\"items\":[{\"price\":"
        "\"price_1\",\"product\":\"prod_1\",\"quantity\":2,\"amount\":"
        "24900,\"description\":\"2 x Course\"},{\"price\":\"price_2\"},"
        "\"junk\"],\"subscription\":\"sub_1\",\"attempt_count\":2,"
        "\"metadata\":{\"plan\":\"pro\",\"a.b\":\"dotted\"}}";

    is_int(parse(&j, raw, err, sizeof(err)), 0, "a full record parses");
    is_str(j.raw, raw, "raw kept");
    is_str(j.id, "evt_9", "id");
    is_str(j.type, "invoice.payment_failed", "type");
    is_str(j.action, "payment_failed", "action");
    is_int(j.created, 1745437580, "created");
    is_int(j.livemode, 0, "livemode false is 0");
    is_str(j.object_type, "invoice", "object type");
    is_str(j.object_id, "in_1", "object id");
    is_str(j.customer_id, "cus_1", "customer id");
    is_str(j.subscription, "sub_1", "subscription");
    is_str(j.currency, "usd", "currency");
    is_int(j.amount, 24900, "amount");
    is_str(j.email, "ada@example.org", "email from customer");
    is_str(j.name, "Ada King Lovelace", "name from customer");
    is_str(j.first_name, "Ada", "first name: the first word");
    is_str(j.last_name, "King Lovelace", "last name: the rest");
    is_int(j.nitems, 2, "two items (a non-object is skipped)");
    is_int(j.items_enriched, 0, "items are the record's");
    is_str(j.items[0].price, "price_1", "item 0 price");
    is_str(j.items[0].product, "prod_1", "item 0 product");
    is_str(j.items[0].description, "2 x Course", "item 0 description");
    is_int(j.items[0].quantity, 2, "item 0 quantity");
    is_int(j.items[0].amount, 24900, "item 0 amount");
    ok(j.items[1].product == NULL && j.items[1].quantity == -1
       && j.items[1].amount == -1, "item 1: absent facts are NULL / -1");
    is_int(j.subscription_start, -1, "no subscription start");
    job_free(&j);
    ok(j.raw == NULL && j.items == NULL && j.nitems == 0, "job_free clears");
    job_free(&j);
    ok(1, "job_free twice is harmless");

    is_int(parse(&j, REC(",\"livemode\":true"), err, sizeof(err)), 0,
           "minimal record");
    is_int(j.livemode, 1, "livemode true is 1");
    ok(j.type == NULL && j.object_id == NULL && j.customer_id == NULL
       && j.email == NULL && j.name == NULL && j.first_name == NULL
       && j.items == NULL && j.currency == NULL, "absent facts are NULL");
    is_int(j.created, -1, "absent created is -1");
    is_int(j.amount, -1, "absent amount is -1");
    job_free(&j);

    is_int(parse(&j, REC(",\"amount\":\"2000\",\"livemode\":\"true\","
                         "\"created\":1.5"), err, sizeof(err)), 0,
           "odd types parse");
    ok(j.amount == -1 && j.livemode == -1 && j.created == -1,
       "a string amount, a string boolean, a fraction are absent");
    job_free(&j);

    /* not NUL-terminated input: only len bytes are read */
    is_int(job_parse(&j, REC("") "garbage", strlen(REC("")), err,
                     sizeof(err)), 0, "len bounds the input");
    job_free(&j);
}


static void
name_split(const char *name, const char *first, const char *last)
{
    job   j;
    char  err[256], raw[512];

    snprintf(raw, sizeof(raw), REC(",\"customer\":{\"name\":\"%s\"}"), name);
    is_int(parse(&j, raw, err, sizeof(err)), 0, "parses: %s", name);
    is_str(j.first_name, first, "first name of \"%s\"", name);
    is_str(j.last_name, last, "last name of \"%s\"", name);
    job_free(&j);
}


static void
test_names(void)
{
    job   j;
    char  err[256];

    name_split("Ada Lovelace", "Ada", "Lovelace");
    name_split("Cher", "Cher", NULL);
    name_split("  Ada   Lovelace  ", "Ada", "Lovelace");
    name_split("Jean Luc  Picard", "Jean", "Luc  Picard");
    name_split("José Álvarez Ñúñez", "José", "Álvarez Ñúñez");
    name_split("山田 太郎", "山田", "太郎");
    name_split("Zoë", "Zoë", NULL);
    name_split("Ada\\tLovelace", "Ada", "Lovelace");
    name_split("   ", NULL, NULL);

    is_int(parse(&j, REC(""), err, sizeof(err)), 0, "no customer");
    is_int(job_set_name(&j, "Grace Brewster Hopper"), 0, "set name");
    is_str(j.name, "Grace Brewster Hopper", "name set");
    is_str(j.first_name, "Grace", "split again: first");
    is_str(j.last_name, "Brewster Hopper", "split again: last");
    is_int(job_set_name(&j, "Grace"), 0, "set a one-word name");
    ok(j.last_name == NULL, "the old last name is gone");
    is_int(job_set_name(&j, NULL), 0, "clear the name");
    ok(j.name == NULL && j.first_name == NULL, "name cleared");
    is_int(job_set_email(&j, "g@example.org"), 0, "set email");
    is_str(j.email, "g@example.org", "email set");
    is_int(job_set_email(&j, "h@example.org"), 0, "replace email");
    is_str(j.email, "h@example.org", "email replaced");
    job_free(&j);
}


static void
looks_up(const job *j, const char *path, const char *want)
{
    char  buf[256];
    int   rc;

    rc = job_lookup(j, path, buf, sizeof(buf));

    if (want == NULL) {
        is_int(rc, -1, "%s is absent", path);
    } else {
        is_int(rc, 0, "%s found", path);
        is_str(rc == 0 ? buf : NULL, want, "%s value", path);
    }
}


static void
test_lookup(void)
{
    job       j;
    job_item  items[2];
    char      err[256], tiny[4];
    const char *raw =
        "{\"v\":1,\"id\":\"evt_2\",\"action\":\"purchase\","
        "\"created\":1700000000,\"livemode\":true,"
        "\"object\":{\"type\":\"checkout.session\",\"id\":\"cs_1\"},"
        "\"customer\":{\"id\":\"cus_2\",\"email\":\"rec@example.org\"},"
        "\"amount\":5000,\"ratio\":0.5,\"gone\":null,\"empty\":\"\","
        "\"items\":[{\"price\":\"price_rec\",\"quantity\":1}],"
        "\"card\":{\"exp_month\":12,\"exp_year\":2030},"
        "\"previous\":{\"items\":[{\"price\":\"OLD\"}]},"
        "\"metadata\":{\"plan\":\"pro\",\"a.b\":\"dotted\",\"a\":"
        "\"plain\"},\"enrich\":[\"line_items\"]}";

    is_int(parse(&j, raw, err, sizeof(err)), 0, "record parses");

    looks_up(&j, "amount", "5000");
    looks_up(&j, "created", "1700000000");
    looks_up(&j, "livemode", "true");
    looks_up(&j, "ratio", "0.5");
    looks_up(&j, "object.id", "cs_1");
    looks_up(&j, "object.type", "checkout.session");
    looks_up(&j, "customer.email", "rec@example.org");
    looks_up(&j, "customer.id", "cus_2");
    looks_up(&j, "customer.name", NULL);
    looks_up(&j, "card.exp_month", "12");
    looks_up(&j, "items.0.price", "price_rec");
    looks_up(&j, "items.0.quantity", "1");
    looks_up(&j, "items.1.price", NULL);
    looks_up(&j, "items.00.price", NULL);
    looks_up(&j, "items.-1.price", NULL);
    looks_up(&j, "items.x.price", NULL);
    looks_up(&j, "previous.items.0.price", "OLD");
    looks_up(&j, "enrich.0", "line_items");
    looks_up(&j, "metadata.plan", "pro");
    looks_up(&j, "metadata.a.b", "dotted");
    looks_up(&j, "metadata.a", "plain");
    looks_up(&j, "metadata.missing", NULL);
    looks_up(&j, "metadata", NULL);
    looks_up(&j, "items", NULL);
    looks_up(&j, "gone", NULL);
    looks_up(&j, "empty", NULL);
    looks_up(&j, "amount.x", NULL);
    looks_up(&j, "nothing", NULL);
    looks_up(&j, "", NULL);
    looks_up(&j, "first_name", NULL);

    is_int(job_lookup(&j, "created", tiny, sizeof(tiny)), -1,
           "a value longer than the buffer is refused");
    is_int(job_lookup(&j, "amount", tiny, 0), -1, "a zero-length buffer");

    /* enrichment laid over the record */
    job_set_email(&j, "api@example.org");
    job_set_name(&j, "Ada Lovelace");
    looks_up(&j, "customer.email", "api@example.org");
    looks_up(&j, "customer.name", "Ada Lovelace");
    looks_up(&j, "first_name", "Ada");
    looks_up(&j, "last_name", "Lovelace");

    memset(items, 0, sizeof(items));
    items[0].price = "price_A";
    items[0].product = "prod_A";
    items[0].description = "Course A";
    items[0].quantity = 3;
    items[0].amount = 3000;
    items[1].price = "price_B";
    items[1].quantity = -1;
    items[1].amount = -1;

    is_int(job_set_items(&j, items, 2), 0, "set line items");
    is_int(j.items_enriched, 1, "items enriched");
    ok(j.items[0].price != items[0].price, "items are copied");
    looks_up(&j, "items.0.price", "price_A");
    looks_up(&j, "items.0.product", "prod_A");
    looks_up(&j, "items.0.description", "Course A");
    looks_up(&j, "items.0.quantity", "3");
    looks_up(&j, "items.0.amount", "3000");
    looks_up(&j, "items.1.price", "price_B");
    looks_up(&j, "items.1.product", NULL);
    looks_up(&j, "items.1.quantity", NULL);
    looks_up(&j, "items.2.price", NULL);
    looks_up(&j, "items.0.color", NULL);
    looks_up(&j, "items.0", NULL);

    is_int(job_set_items(&j, NULL, 0), 0, "no line items");
    looks_up(&j, "items.0.price", NULL);
    job_free(&j);
}


static void
tenure(const char *extra, long long start, long long want, const char *what)
{
    job   j;
    char  err[256], raw[512];

    snprintf(raw, sizeof(raw), REC("%s"), extra);
    is_int(parse(&j, raw, err, sizeof(err)), 0, "parses: %s", what);
    if (start != -2) {
        j.subscription_start = start;
    }
    is_int(job_tenure_days(&j), want, "tenure: %s", what);
    job_free(&j);
}


static void
test_tenure(void)
{
    tenure(",\"created\":1700000000,\"subscription_start\":1700000000", -2,
           0, "same second");
    tenure(",\"created\":1700086399,\"subscription_start\":1700000000", -2,
           0, "a second short of a day");
    tenure(",\"created\":1700086400,\"subscription_start\":1700000000", -2,
           1, "one day");
    tenure(",\"created\":1731536000,\"subscription_start\":1700000000", -2,
           365, "a year");
    tenure(",\"created\":1700000000", 1700000000 - 30 * 86400, 30,
           "start from enrichment");
    tenure(",\"created\":1700000000,\"subscription_start\":1690000000",
           1600000000, 115, "the record's start wins");
    tenure(",\"created\":1700000000", -1, -1, "start unknown");
    tenure("", 1600000000, -1, "created unknown");
    tenure(",\"created\":1600000000", 1700000000, -1, "start after created");
}


int
main(void)
{
    test_refusals();
    test_fields();
    test_names();
    test_lookup();
    test_tenure();

    return tap_done();
}
