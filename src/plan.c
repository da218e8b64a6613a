/*
 * plan.c - the ordered operations of one job (see plan.h).
 */

#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "plan.h"

static const char *op_kind_names[OP_KINDS] = {
    "upsert", "tag", "untag", "sequence", "form", "list", "fields",
    "purchase", "track", "find_email"
};


const char *
op_kind_name(op_kind k)
{
    if ((int) k < 0 || k >= OP_KINDS) {
        return "unknown";
    }

    return op_kind_names[k];
}


static void
fields_free(plan_field *f, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(f[i].key);
        free(f[i].value);
    }

    free(f);
}


int
plan_add(plan *p, op_kind kind, const char *name,
    const plan_field *fields, size_t nfields, int rule)
{
    plan_op  *ops, *op;
    size_t    i;

    ops = realloc(p->ops, (p->nops + 1) * sizeof(plan_op));
    if (ops == NULL) {
        return -1;
    }

    p->ops = ops;
    op = &ops[p->nops];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->rule = rule;

    if (name != NULL) {
        op->name = strdup(name);
        if (op->name == NULL) {
            return -1;
        }
    }

    if (nfields > 0) {
        op->fields = calloc(nfields, sizeof(plan_field));
        if (op->fields == NULL) {
            free(op->name);
            return -1;
        }

        for (i = 0; i < nfields; i++) {
            op->fields[i].key = strdup(fields[i].key);
            op->fields[i].value = strdup(fields[i].value ? fields[i].value
                                                         : "");
            if (op->fields[i].key == NULL || op->fields[i].value == NULL) {
                fields_free(op->fields, i + 1);
                free(op->name);
                return -1;
            }
        }

        op->nfields = nfields;
    }

    p->nops++;
    return 0;
}


void
plan_free(plan *p)
{
    size_t  i;

    for (i = 0; i < p->nops; i++) {
        free(p->ops[i].name);
        fields_free(p->ops[i].fields, p->ops[i].nfields);
    }

    free(p->ops);
    p->ops = NULL;
    p->nops = 0;
}


static int
gen_string(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *) s, strlen(s))
           == yajl_gen_status_ok ? 0 : -1;
}


/*
 * [{"op":"upsert","fields":{"plan":"price_1"}},{"op":"tag","name":"Buyer"}]
 * "fields" holds upsert fields and track properties alike; it is left out
 * when empty, as "name" is when there is none.
 */
char *
plan_to_json(const plan *p)
{
    yajl_gen              g;
    const unsigned char  *buf;
    const plan_op        *op;
    size_t                i, k, len;
    char                 *out;
    int                   rc;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NULL;
    }

    /* values are already-validated UTF-8 from the record or the config */
    rc = yajl_gen_array_open(g) == yajl_gen_status_ok ? 0 : -1;

    for (i = 0; rc == 0 && i < p->nops; i++) {
        op = &p->ops[i];

        rc |= yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -1;
        rc |= gen_string(g, "op");
        rc |= gen_string(g, op_kind_name(op->kind));

        if (op->name != NULL) {
            rc |= gen_string(g, "name");
            rc |= gen_string(g, op->name);
        }

        if (op->nfields > 0) {
            rc |= gen_string(g, "fields");
            rc |= yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -1;

            for (k = 0; k < op->nfields; k++) {
                rc |= gen_string(g, op->fields[k].key);
                rc |= gen_string(g, op->fields[k].value);
            }

            rc |= yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
        }

        rc |= yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
    }

    if (rc == 0) {
        rc = yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
    }

    out = NULL;

    if (rc == 0 && yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        out = malloc(len + 1);
        if (out != NULL) {
            memcpy(out, buf, len);
            out[len] = '\0';
        }
    }

    yajl_gen_free(g);
    return out;
}
