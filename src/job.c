/*
 * job.c - a queued action record, parsed, with enrichment laid on top
 * (see job.h).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "json_tree.h"

#define JOB_SCHEMA_VERSION  1
#define SECONDS_PER_DAY     86400


static void
job_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
job_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list   ap;
    char     *p;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);

    /* one line, whatever an id from the entry holds */
    for (p = err; *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
}


static yajl_val
member(yajl_val obj, const char *key)
{
    size_t  i;

    if (!YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    /* the first occurrence wins, as in the normalizer */
    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


/* a non-empty string member, or NULL */
static const char *
member_string(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = member(obj, key);
    if (!YAJL_IS_STRING(v) || v->u.string[0] == '\0') {
        return NULL;
    }

    return v->u.string;
}


static long long
member_integer(yajl_val obj, const char *key)
{
    yajl_val  v;

    v = member(obj, key);
    if (!YAJL_IS_INTEGER(v)) {
        return -1;
    }

    return YAJL_GET_INTEGER(v);
}


static int
copy_string(char **dst, const char *src)
{
    char  *s;

    s = NULL;

    if (src != NULL) {
        s = strdup(src);
        if (s == NULL) {
            return -1;
        }
    }

    free(*dst);
    *dst = s;
    return 0;
}


static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}


/*
 * "Ada King Lovelace" -> "Ada" / "King Lovelace". Splits on ASCII white
 * space only, so multibyte UTF-8 names are never cut inside a character.
 */
static int
split_name(job *j)
{
    const char  *s, *end, *word_end, *rest;
    char        *first, *last;

    free(j->first_name);
    free(j->last_name);
    j->first_name = NULL;
    j->last_name = NULL;

    if (j->name == NULL) {
        return 0;
    }

    s = j->name;
    while (is_space(*s)) {
        s++;
    }

    end = s + strlen(s);
    while (end > s && is_space(end[-1])) {
        end--;
    }

    if (s == end) {
        return 0;
    }

    word_end = s;
    while (word_end < end && !is_space(*word_end)) {
        word_end++;
    }

    rest = word_end;
    while (rest < end && is_space(*rest)) {
        rest++;
    }

    first = strndup(s, word_end - s);
    last = rest < end ? strndup(rest, end - rest) : NULL;

    if (first == NULL || (rest < end && last == NULL)) {
        free(first);
        free(last);
        return -1;
    }

    j->first_name = first;
    j->last_name = last;
    return 0;
}


static void
items_free(job_item *items, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(items[i].price);
        free(items[i].product);
        free(items[i].description);
    }

    free(items);
}


static int
item_copy(job_item *dst, const char *price, const char *product,
    const char *description, long long quantity, long long amount)
{
    memset(dst, 0, sizeof(*dst));
    dst->quantity = quantity;
    dst->amount = amount;

    if (copy_string(&dst->price, price) != 0
        || copy_string(&dst->product, product) != 0
        || copy_string(&dst->description, description) != 0)
    {
        free(dst->price);
        free(dst->product);
        free(dst->description);
        return -1;
    }

    return 0;
}


/* the record's "items", each {price, product, quantity, amount, ...} */
static int
items_from_record(job *j)
{
    yajl_val   arr, it;
    job_item  *items;
    size_t     i, n;

    arr = member(j->record, "items");
    if (!YAJL_IS_ARRAY(arr) || arr->u.array.len == 0) {
        return 0;
    }

    items = calloc(arr->u.array.len, sizeof(job_item));
    if (items == NULL) {
        return -1;
    }

    n = 0;

    for (i = 0; i < arr->u.array.len; i++) {
        it = arr->u.array.values[i];
        if (!YAJL_IS_OBJECT(it)) {
            continue;
        }

        if (item_copy(&items[n], member_string(it, "price"),
                      member_string(it, "product"),
                      member_string(it, "description"),
                      member_integer(it, "quantity"),
                      member_integer(it, "amount")) != 0)
        {
            items_free(items, n);
            return -1;
        }

        n++;
    }

    j->items = items;
    j->nitems = n;
    return 0;
}


/* yajl's messages span lines (the input, a caret): keep the first */
static void
first_line(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
}


/* how "v" looks, for the error: 2, 1.0, "1", true */
static void
describe_version(yajl_val v, char *buf, size_t len)
{
    if (YAJL_IS_NUMBER(v)) {
        snprintf(buf, len, "%s", v->u.number.r);
    } else if (YAJL_IS_STRING(v)) {
        snprintf(buf, len, "\"%.32s\"", v->u.string);
    } else if (YAJL_IS_TRUE(v)) {
        snprintf(buf, len, "true");
    } else if (YAJL_IS_FALSE(v)) {
        snprintf(buf, len, "false");
    } else if (YAJL_IS_NULL(v)) {
        snprintf(buf, len, "null");
    } else {
        snprintf(buf, len, "%s", YAJL_IS_ARRAY(v) ? "an array" : "an object");
    }
}


int
job_parse(job *j, const char *raw, size_t len, char *err, size_t errlen)
{
    yajl_val     v, obj, cus;
    char         yerr[256], what[64];

    memset(j, 0, sizeof(*j));
    j->created = -1;
    j->livemode = -1;
    j->amount = -1;
    j->subscription_start = -1;

    if (len > JOB_RAW_MAX) {
        job_err(err, errlen, "queue entry is %zu bytes, over the %d-byte "
                "limit", len, JOB_RAW_MAX);
        return -1;
    }

    if (raw == NULL) {
        raw = "";
        len = 0;
    }

    if (memchr(raw, '\0', len) != NULL) {
        job_err(err, errlen, "queue entry contains a NUL byte");
        return -1;
    }

    /* yajl_tree_free recurses per level: 500,000 '[' would blow the stack */
    if (json_nesting_exceeds(raw, len, JOB_DEPTH_MAX)) {
        job_err(err, errlen, "queue entry nests deeper than %d levels",
                JOB_DEPTH_MAX);
        return -1;
    }

    j->raw = malloc(len + 1);
    if (j->raw == NULL) {
        job_err(err, errlen, "out of memory");
        return -1;
    }

    memcpy(j->raw, raw, len);
    j->raw[len] = '\0';

    yerr[0] = '\0';
    j->record = yajl_tree_parse(j->raw, yerr, sizeof(yerr));
    if (j->record == NULL) {
        first_line(yerr);
        job_err(err, errlen, "queue entry is not JSON: %s",
                yerr[0] ? yerr : "parse error");
        goto failed;
    }

    if (json_ends_in_string(j->raw, len)) {
        job_err(err, errlen, "queue entry is not JSON: trailing garbage");
        goto failed;
    }

    if (!YAJL_IS_OBJECT(j->record)) {
        job_err(err, errlen, "queue entry is not a JSON object");
        goto failed;
    }

    v = member(j->record, "v");
    if (v == NULL) {
        job_err(err, errlen, "queue entry has no schema version \"v\", "
                "this consumer reads %d", JOB_SCHEMA_VERSION);
        goto failed;
    }

    if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != JOB_SCHEMA_VERSION) {
        describe_version(v, what, sizeof(what));
        job_err(err, errlen, "queue entry has schema version %s, this "
                "consumer reads %d", what, JOB_SCHEMA_VERSION);
        goto failed;
    }

    j->id = member_string(j->record, "id");
    if (j->id == NULL) {
        job_err(err, errlen, "queue entry has no \"id\"");
        goto failed;
    }

    j->action = member_string(j->record, "action");
    if (j->action == NULL) {
        job_err(err, errlen, "queue entry %s has no \"action\"", j->id);
        goto failed;
    }

    j->type = member_string(j->record, "type");
    j->created = member_integer(j->record, "created");

    v = member(j->record, "livemode");
    j->livemode = YAJL_IS_TRUE(v) ? 1 : YAJL_IS_FALSE(v) ? 0 : -1;

    obj = member(j->record, "object");
    j->object_type = member_string(obj, "type");
    j->object_id = member_string(obj, "id");

    cus = member(j->record, "customer");
    j->customer_id = member_string(cus, "id");

    j->subscription = member_string(j->record, "subscription");
    j->currency = member_string(j->record, "currency");
    j->amount = member_integer(j->record, "amount");
    j->subscription_start = member_integer(j->record, "subscription_start");

    if (copy_string(&j->email, member_string(cus, "email")) != 0
        || copy_string(&j->name, member_string(cus, "name")) != 0
        || split_name(j) != 0
        || items_from_record(j) != 0)
    {
        job_err(err, errlen, "out of memory");
        goto failed;
    }

    return 0;

failed:

    job_free(j);
    return -1;
}


void
job_free(job *j)
{
    if (j->record != NULL) {
        yajl_tree_free(j->record);
    }

    free(j->raw);
    free(j->email);
    free(j->name);
    free(j->first_name);
    free(j->last_name);
    items_free(j->items, j->nitems);

    memset(j, 0, sizeof(*j));
    j->created = -1;
    j->livemode = -1;
    j->amount = -1;
    j->subscription_start = -1;
}


int
job_set_email(job *j, const char *email)
{
    return copy_string(&j->email, email);
}


int
job_set_name(job *j, const char *name)
{
    if (copy_string(&j->name, name) != 0) {
        return -1;
    }

    return split_name(j);
}


int
job_set_items(job *j, const job_item *items, size_t n)
{
    job_item  *copy;
    size_t     i;

    copy = NULL;

    if (n > 0) {
        copy = calloc(n, sizeof(job_item));
        if (copy == NULL) {
            return -1;
        }

        for (i = 0; i < n; i++) {
            if (item_copy(&copy[i], items[i].price, items[i].product,
                          items[i].description, items[i].quantity,
                          items[i].amount) != 0)
            {
                items_free(copy, i);
                return -1;
            }
        }
    }

    items_free(j->items, j->nitems);
    j->items = copy;
    j->nitems = n;
    j->items_enriched = 1;
    return 0;
}


/* ---- lookup ---- */

static int
put_text(char *buf, size_t len, const char *s)
{
    size_t  n;

    n = strlen(s);
    if (n + 1 > len) {
        return -1;
    }

    memcpy(buf, s, n + 1);
    return 0;
}


static int
put_integer(char *buf, size_t len, long long v)
{
    int  n;

    n = snprintf(buf, len, "%lld", v);
    return n < 0 || (size_t) n >= len ? -1 : 0;
}


/* a decimal array index, no sign, no leading zeros beyond "0" */
static int
parse_index(const char *s, size_t n, size_t *out)
{
    size_t  i, v;

    if (n == 0 || n > 9 || (n > 1 && s[0] == '0')) {
        return -1;
    }

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v = v * 10 + (s[i] - '0');
    }

    *out = v;
    return 0;
}


/* "items.N.x" over enrichment's line items */
static int
lookup_item(const job *j, const char *rest, char *buf, size_t len)
{
    const char      *dot;
    const job_item  *it;
    size_t           idx;

    dot = strchr(rest, '.');
    if (dot == NULL || parse_index(rest, dot - rest, &idx) != 0
        || idx >= j->nitems)
    {
        return -1;
    }

    it = &j->items[idx];
    rest = dot + 1;

    if (strcmp(rest, "price") == 0) {
        return it->price ? put_text(buf, len, it->price) : -1;
    }

    if (strcmp(rest, "product") == 0) {
        return it->product ? put_text(buf, len, it->product) : -1;
    }

    if (strcmp(rest, "description") == 0) {
        return it->description ? put_text(buf, len, it->description) : -1;
    }

    if (strcmp(rest, "quantity") == 0) {
        return it->quantity >= 0 ? put_integer(buf, len, it->quantity) : -1;
    }

    if (strcmp(rest, "amount") == 0) {
        return it->amount >= 0 ? put_integer(buf, len, it->amount) : -1;
    }

    return -1;
}


/*
 * The member of obj named by the start of path: the longest key that is
 * the whole path or is followed by a dot in it, so metadata keys holding
 * dots ("metadata.plan.tier") still resolve. *next is what follows.
 */
static yajl_val
step_object(yajl_val obj, const char *path, const char **next)
{
    const char  *key;
    yajl_val     best;
    size_t       i, n, best_len;

    best = NULL;
    best_len = 0;

    for (i = 0; i < obj->u.object.len; i++) {
        key = obj->u.object.keys[i];
        n = strlen(key);

        if (strncmp(path, key, n) == 0 && (path[n] == '\0' || path[n] == '.')
            && (best == NULL || n > best_len))
        {
            best = obj->u.object.values[i];
            best_len = n;
        }
    }

    if (best != NULL) {
        *next = path[best_len] == '.' ? path + best_len + 1
                                      : path + best_len;
    }

    return best;
}


static yajl_val
step_array(yajl_val arr, const char *path, const char **next)
{
    size_t  n, idx;

    n = strcspn(path, ".");

    if (parse_index(path, n, &idx) != 0 || idx >= arr->u.array.len) {
        return NULL;
    }

    *next = path[n] == '.' ? path + n + 1 : path + n;
    return arr->u.array.values[idx];
}


static int
lookup_record(const job *j, const char *path, char *buf, size_t len)
{
    yajl_val  v;

    v = j->record;

    while (*path != '\0') {
        if (YAJL_IS_OBJECT(v)) {
            v = step_object(v, path, &path);
        } else if (YAJL_IS_ARRAY(v)) {
            v = step_array(v, path, &path);
        } else {
            return -1;
        }

        if (v == NULL) {
            return -1;
        }
    }

    if (YAJL_IS_STRING(v)) {
        return v->u.string[0] ? put_text(buf, len, v->u.string) : -1;
    }

    if (YAJL_IS_INTEGER(v)) {
        return put_integer(buf, len, YAJL_GET_INTEGER(v));
    }

    if (YAJL_IS_NUMBER(v)) {
        return put_text(buf, len, v->u.number.r);
    }

    if (YAJL_IS_TRUE(v)) {
        return put_text(buf, len, "true");
    }

    if (YAJL_IS_FALSE(v)) {
        return put_text(buf, len, "false");
    }

    return -1;   /* null, object, array */
}


int
job_lookup(const job *j, const char *path, char *buf, size_t len)
{
    if (path == NULL || *path == '\0' || buf == NULL || len == 0
        || j->record == NULL)
    {
        return -1;
    }

    /* enrichment wins over the record for what it can find */
    if (strcmp(path, "customer.email") == 0) {
        return j->email ? put_text(buf, len, j->email) : -1;
    }

    if (strcmp(path, "customer.name") == 0) {
        return j->name ? put_text(buf, len, j->name) : -1;
    }

    if (strcmp(path, "first_name") == 0) {
        return j->first_name ? put_text(buf, len, j->first_name) : -1;
    }

    if (strcmp(path, "last_name") == 0) {
        return j->last_name ? put_text(buf, len, j->last_name) : -1;
    }

    if (j->items_enriched && strncmp(path, "items.", 6) == 0) {
        return lookup_item(j, path + 6, buf, len);
    }

    return lookup_record(j, path, buf, len);
}


long long
job_tenure_days(const job *j)
{
    long long  start;

    start = member_integer(j->record, "subscription_start");
    if (start < 0) {
        start = j->subscription_start;
    }

    if (start < 0 || j->created < 0 || j->created < start) {
        return -1;
    }

    return (j->created - start) / SECONDS_PER_DAY;
}
