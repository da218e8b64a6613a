/*
 * provider_log.c - the dry run: every operation becomes one JSON line on
 * standard output, nothing is sent anywhere.
 *
 *   {"event":"evt_1","type":"invoice.paid","action":"renewal",
 *    "customer":"cus_1","email":"ada@example.org","op":"tag","name":"VIP"}
 *
 * "fields" is added when the operation has some; purchases and tracked
 * events also carry "object", "amount", "currency" and "items".
 */

#include <stdio.h>
#include <stdlib.h>

#include "provider_json.h"

extern const provider_ops  provider_log_ops;


static provider *
log_create(const ss_config *c, char *err, size_t errlen)
{
    provider  *p;

    p = calloc(1, sizeof(provider));
    if (p == NULL) {
        snprintf(err, errlen, "log provider: out of memory");
        return NULL;
    }

    p->ops = &provider_log_ops;
    p->config = c;
    return p;
}


static void
log_destroy(provider *p)
{
    free(p);
}


static int
log_supports(const provider *p, op_kind kind)
{
    (void) p;

    /* every operation, but there are no records to find an email in */
    return (int) kind >= 0 && kind < OP_KINDS && kind != OP_FIND_EMAIL;
}


static void
log_items(json_writer *w, const job *j)
{
    const job_item  *it;
    size_t           i;

    json_writer_key(w, "items");
    json_writer_array_open(w);

    for (i = 0; i < j->nitems; i++) {
        it = &j->items[i];

        json_writer_map_open(w);
        if (it->price != NULL) {
            json_writer_pair(w, "price", it->price);
        }
        if (it->product != NULL) {
            json_writer_pair(w, "product", it->product);
        }
        if (it->description != NULL) {
            json_writer_pair(w, "description", it->description);
        }
        if (it->quantity >= 0) {
            json_writer_pair_integer(w, "quantity", it->quantity);
        }
        if (it->amount >= 0) {
            json_writer_pair_integer(w, "amount", it->amount);
        }
        json_writer_map_close(w);
    }

    json_writer_array_close(w);
}


/* one line: the operation and what identifies the job */
static int
log_line(const op_exec *x, http_request *out)
{
    json_writer     w;
    const job      *j;
    const plan_op  *op;
    size_t          i;

    j = x->job;
    op = x->op;

    json_writer_init(&w);
    json_writer_map_open(&w);

    json_writer_pair(&w, "event", j->id);
    json_writer_pair(&w, "type", j->type);
    json_writer_pair(&w, "action", j->action);
    if (j->customer_id != NULL) {
        json_writer_pair(&w, "customer", j->customer_id);
    }
    json_writer_pair(&w, "email", j->email);
    json_writer_pair(&w, "op", op_kind_name(op->kind));

    if (op->name != NULL) {
        json_writer_pair(&w, "name", op->name);
    }

    if (op->nfields > 0) {
        json_writer_key(&w, "fields");
        json_writer_map_open(&w);
        for (i = 0; i < op->nfields; i++) {
            json_writer_pair(&w, op->fields[i].key, op->fields[i].value);
        }
        json_writer_map_close(&w);
    }

    if (op->kind == OP_PURCHASE || op->kind == OP_TRACK) {
        if (j->object_id != NULL) {
            json_writer_pair(&w, "object", j->object_id);
        }
        if (j->amount >= 0) {
            json_writer_pair_integer(&w, "amount", j->amount);
        }
        if (j->currency != NULL) {
            json_writer_pair(&w, "currency", j->currency);
        }
        log_items(&w, j);
    }

    json_writer_map_close(&w);

    /* the request struct is only a convenient owner for the text */
    return json_writer_finish(&w, out);
}


static step_status
log_next(provider *p, op_exec *x, http_request *req)
{
    http_request  line;
    int           failed;

    (void) p;

    http_request_init(req, "GET");

    if (x->check) {
        x->err[0] = '\0';
        return STEP_DONE;
    }

    http_request_init(&line, "GET");
    if (log_line(x, &line) != 0) {
        snprintf(x->err, sizeof(x->err),
                 "log %s: cannot encode the line (invalid UTF-8?)",
                 op_kind_name(x->op->kind));
        return STEP_FAIL;
    }

    failed = fwrite(line.body, 1, line.body_len, stdout) != line.body_len
             || fputc('\n', stdout) == EOF
             || fflush(stdout) != 0;
    free(line.body);

    if (failed) {
        snprintf(x->err, sizeof(x->err),
                 "log %s: cannot write to standard output",
                 op_kind_name(x->op->kind));
        return STEP_RETRY;
    }

    x->err[0] = '\0';
    return STEP_DONE;
}


static step_status
log_response(provider *p, op_exec *x, const http_response *res)
{
    (void) p;
    (void) res;

    /* never asked for a request, so never answered */
    snprintf(x->err, sizeof(x->err), "log: unexpected response");
    return STEP_FAIL;
}


const provider_ops  provider_log_ops = {
    "log",
    1000.0,
    1000,
    NULL,
    log_create,
    log_destroy,
    log_supports,
    log_next,
    log_response
};
