/*
 * provider_log.c - the dry run: one JSON line per operation on standard
 * output, no request ever.
 */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "provider_test.h"

static const char  *record =
    "{\"v\":1,\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
    "\"action\":\"purchase\",\"created\":1745433906,"
    "\"object\":{\"type\":\"checkout_session\",\"id\":\"cs_1\"},"
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"ada@example.org\"},"
    "\"amount\":24900,\"currency\":\"usd\","
    "\"items\":[{\"price\":\"price_1\",\"product\":\"prod_1\","
    "\"quantity\":1,\"amount\":24900}]}";


/* runs plan step i with stdout going to a file; returns what was written */
static char *
captured(provider *p, const plan *pl, size_t i, const job *j, int check,
    step_status *s, size_t *nreq)
{
    char     path[] = "/tmp/provider_log_XXXXXX";
    char    *out;
    op_run  *r;
    FILE    *f;
    long     len;
    int      fd, saved;

    fd = mkstemp(path);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);

    r = run_op((provider *) p, pl, i, j, check, NULL, 0);

    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);

    *s = r->status;
    *nreq = r->nreq;
    run_free(r);

    f = fopen(path, "r");
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    out = calloc(1, (size_t) len + 1);
    if (len > 0 && fread(out, 1, (size_t) len, f) != (size_t) len) {
        out[0] = '\0';
    }
    fclose(f);
    unlink(path);

    return out;
}


int
main(void)
{
    const provider_ops  *ops;
    provider            *p;
    ss_config            c;
    plan                 pl;
    job                  j;
    yajl_val             v;
    step_status          s;
    size_t               n;
    char                *out, *nl, err[128];
    plan_field           f[2] = { { "plan", "gold" }, { "tier", "2" } };

    ops = provider_find("log");
    ok(ops != NULL, "provider_find(\"log\")");

    memset(&c, 0, sizeof(c));
    c.provider_type = "log";
    p = ops->create(&c, err, sizeof(err));
    ok(p != NULL, "created without any credential");

    for (n = 0; n < OP_KINDS; n++) {
        if (n != OP_FIND_EMAIL) {
            ok(p->ops->supports(p, (op_kind) n), "supports %s",
               op_kind_name((op_kind) n));
        }
    }
    ok(!p->ops->supports(p, OP_FIND_EMAIL), "no records to find an email in");

    job_from(&j, record);
    memset(&pl, 0, sizeof(pl));
    plan_add(&pl, OP_UPSERT, NULL, f, 2, -1);
    plan_add(&pl, OP_TAG, "Buyer \"VIP\"", NULL, 0, 0);
    plan_add(&pl, OP_PURCHASE, NULL, NULL, 0, 0);

    out = captured(p, &pl, 0, &j, 0, &s, &n);
    is_int(s, STEP_DONE, "upsert: DONE");
    is_int(n, 0, "upsert: no request");
    nl = strchr(out, '\n');
    ok(nl != NULL && nl[1] == '\0', "exactly one line");
    if (nl != NULL) {
        *nl = '\0';
    }
    v = yajl_tree_parse(out, NULL, 0);
    ok(v != NULL, "the line is JSON: %s", out);
    is_str(jstr(jget(v, "event", NULL)), "evt_1", "event");
    is_str(jstr(jget(v, "action", NULL)), "purchase", "action");
    is_str(jstr(jget(v, "type", NULL)), "checkout.session.completed", "type");
    is_str(jstr(jget(v, "email", NULL)), "ada@example.org", "email");
    is_str(jstr(jget(v, "customer", NULL)), "cus_1", "customer");
    is_str(jstr(jget(v, "op", NULL)), "upsert", "op");
    ok(jget(v, "name", NULL) == NULL, "no name for upsert");
    is_str(jstr(jget(v, "fields", "plan", NULL)), "gold", "fields");
    is_str(jstr(jget(v, "fields", "tier", NULL)), "2", "fields 2");
    yajl_tree_free(v);
    free(out);

    out = captured(p, &pl, 1, &j, 0, &s, &n);
    v = yajl_tree_parse(out, NULL, 0);
    is_str(jstr(jget(v, "op", NULL)), "tag", "tag: op");
    is_str(jstr(jget(v, "name", NULL)), "Buyer \"VIP\"", "tag: name, quoted");
    ok(jget(v, "fields", NULL) == NULL, "tag: no fields");
    yajl_tree_free(v);
    free(out);

    out = captured(p, &pl, 2, &j, 0, &s, &n);
    v = yajl_tree_parse(out, NULL, 0);
    is_str(jstr(jget(v, "op", NULL)), "purchase", "purchase: op");
    is_str(jstr(jget(v, "object", NULL)), "cs_1", "purchase: object");
    is_str(jnum(jget(v, "amount", NULL)), "24900", "purchase: amount");
    is_str(jstr(jget(v, "currency", NULL)), "usd", "purchase: currency");
    is_str(jstr(jget(jat(jget(v, "items", NULL), 0), "product", NULL)),
           "prod_1", "purchase: items");
    yajl_tree_free(v);
    free(out);

    out = captured(p, &pl, 1, &j, 1, &s, &n);
    is_int(s, STEP_DONE, "check: DONE");
    is_str(out, "", "check: nothing written");
    free(out);

    plan_free(&pl);
    job_free(&j);
    p->ops->destroy(p);

    return tap_done();
}
