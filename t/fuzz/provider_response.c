/*
 * libFuzzer target for the providers' response handling: every provider's
 * response() on arbitrary bodies and statuses, in every state an
 * operation goes through.
 *
 * Input: 5 header bytes, then the body.
 *   [0] provider: kit (API key), kit (key + OAuth), activecampaign,
 *       klaviyo, webhook, log
 *   [1] operation kind (op_kind), run as step 1 of [upsert, op] (an
 *       upsert as step 0)
 *   [2] which request (0..7) gets the fuzzed answer; the others get a
 *       well-formed answer for their route (fuzz_route), so the machine
 *       reaches every state
 *   [3] the fuzzed answer's status (fuzz_statuses)
 *   [4] flags: 1 check mode, 2 with Retry-After, 4 no response at all
 *       (status 0, transport error), 8 the job has no email (find_email),
 *       16 the body is cut at a NUL-free prefix of half its length
 *
 * Checked, besides "no crash, no leak": a request is well formed (method,
 * a URL under the configured base without spaces or control bytes,
 * headers without CR/LF, a JSON body), every RETRY/FAIL/SKIP says why,
 * and no error quotes a credential, whatever the server echoed. At most
 * FUZZ_REQUESTS_MAX requests per operation: more is a runaway loop.
 *
 * Built with -DFUZZ_MAKE_SEEDS it is instead a program writing seeds into
 * the directory named by its argument (t/fuzz/make-seeds-consumer).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "config.h"
#include "job.h"
#include "plan.h"
#include "provider.h"

#define FUZZ_KEY            "fuzz_KEY_9f3c2e"
#define FUZZ_OAUTH          "fuzz_OAUTH_51ab7d"
#define FUZZ_HOOK_SECRET    "whsec_fuzz_SECRET_77a0"
#define FUZZ_REQUESTS_MAX   64
#define FUZZ_HEADER         5

typedef struct {
    const char  *name;
    const char  *type;
    const char  *base;
    int          oauth;
} fuzz_provider;

static const fuzz_provider  fuzz_providers[] = {
    { "kit",            "kit",            "http://fuzz.test/v4",    0 },
    { "kit-oauth",      "kit",            "http://fuzz.test/v4",    1 },
    { "activecampaign", "activecampaign", "http://fuzz.test/api/3", 0 },
    { "klaviyo",        "klaviyo",        "http://fuzz.test/api",   0 },
    { "webhook",        "webhook",        "http://fuzz.test/hook",  0 },
    { "log",            "log",            "http://fuzz.test/log",   0 },
};

#define FUZZ_NPROVIDERS  (sizeof(fuzz_providers) / sizeof(fuzz_providers[0]))

static const long  fuzz_statuses[] = {
    200, 201, 202, 204, 400, 401, 403, 404, 409, 422, 429, 500, 503, 301,
    302, 408, 100, 299, 600, -1, 99999
};

#define FUZZ_NSTATUSES  (sizeof(fuzz_statuses) / sizeof(fuzz_statuses[0]))

/* a well-formed answer per route: method, a substring of the URL after
   the base, status, body; the first match wins */
typedef struct {
    const char  *type;
    const char  *method;
    const char  *path;
    long         status;
    const char  *body;
} fuzz_answer;

static const fuzz_answer  fuzz_routes[] = {
    { "kit", "GET", "/account", 200,
      "{\"user\":{\"email\":\"x@example.org\"},\"account\":{\"name\":\"K\","
      "\"plan_type\":\"creator\"}}" },
    { "kit", "GET", "/tags?", 200,
      "{\"tags\":[{\"id\":42,\"name\":\"Buyer\"}],\"pagination\":"
      "{\"has_next_page\":false,\"end_cursor\":null}}" },
    { "kit", "GET", "/sequences?", 200,
      "{\"sequences\":[{\"id\":3,\"name\":\"Buyer\",\"hold\":false}],"
      "\"pagination\":{\"has_next_page\":false}}" },
    { "kit", "GET", "/forms?", 200,
      "{\"forms\":[{\"id\":44,\"name\":\"Buyer\",\"type\":\"embed\"}],"
      "\"pagination\":{\"has_next_page\":false}}" },
    { "kit", "GET", "/subscribers?", 200,
      "{\"subscribers\":[{\"id\":9,\"email_address\":\"ada@example.org\"}],"
      "\"pagination\":{\"has_next_page\":false}}" },
    { "kit", "POST", "/purchases", 201, "{\"purchase\":{\"id\":8}}" },
    { "kit", "POST", "/tags/", 201, "{\"subscriber\":{\"id\":946}}" },
    { "kit", "POST", "/tags", 201, "{\"tag\":{\"id\":77,\"name\":\"Buyer\"}}" },
    { "kit", "POST", "", 201, "{\"subscriber\":{\"id\":263}}" },
    { "kit", "DELETE", "", 204, "" },

    { "activecampaign", "GET", "/users/me", 200,
      "{\"user\":{\"username\":\"jdoe\"}}" },
    { "activecampaign", "GET", "/fields?", 200,
      "{\"fields\":[{\"title\":\"Plan\",\"id\":\"1\"}],\"meta\":{\"total\":"
      "\"1\"}}" },
    { "activecampaign", "POST", "/contact/sync", 201,
      "{\"fieldValues\":[],\"contact\":{\"email\":\"ada@example.org\","
      "\"id\":\"17\"}}" },
    { "activecampaign", "GET", "/contacts?", 200,
      "{\"contacts\":[{\"id\":\"17\",\"email\":\"ada@example.org\"}],"
      "\"meta\":{\"total\":\"1\"}}" },
    { "activecampaign", "GET", "/contactTags", 200,
      "{\"contactTags\":[{\"contact\":\"17\",\"tag\":\"7\",\"id\":\"101\"}]}" },
    { "activecampaign", "GET", "/tags?", 200,
      "{\"tags\":[{\"tagType\":\"contact\",\"tag\":\"Buyer\",\"id\":\"7\"}],"
      "\"meta\":{\"total\":\"1\"}}" },
    { "activecampaign", "POST", "/tags", 201,
      "{\"tag\":{\"tag\":\"Buyer\",\"tagType\":\"contact\",\"id\":\"7\"}}" },
    { "activecampaign", "POST", "/contactTags", 201,
      "{\"contactTag\":{\"contact\":\"17\",\"tag\":\"7\",\"id\":\"1\"}}" },
    { "activecampaign", "DELETE", "/contactTags/", 200, "{}" },
    { "activecampaign", "GET", "/automations?", 200,
      "{\"automations\":[{\"name\":\"Buyer\",\"id\":\"1\",\"status\":\"1\"}],"
      "\"meta\":{\"total\":\"1\"}}" },
    { "activecampaign", "POST", "/contactAutomations", 201,
      "{\"contactAutomation\":{\"id\":\"5\"}}" },
    { "activecampaign", "GET", "/lists?", 200,
      "{\"lists\":[{\"name\":\"Buyer\",\"id\":\"5\"}],\"meta\":{\"total\":"
      "\"1\"}}" },
    { "activecampaign", "POST", "/contactLists", 201,
      "{\"contacts\":[],\"contactList\":{\"id\":\"5\"}}" },
    { "activecampaign", "GET", "/connections?", 200,
      "{\"connections\":[{\"service\":\"stripe-sync\",\"externalid\":"
      "\"stripe-sync\",\"id\":\"3\"}],\"meta\":{\"total\":\"1\"}}" },
    { "activecampaign", "POST", "/connections", 201,
      "{\"connection\":{\"service\":\"stripe-sync\",\"id\":\"3\"}}" },
    { "activecampaign", "GET", "/ecomCustomers?", 200,
      "{\"ecomCustomers\":[{\"connectionid\":\"3\",\"externalid\":\"cus_1\","
      "\"email\":\"ada@example.org\",\"id\":\"8\"}],\"meta\":{\"total\":"
      "\"1\"}}" },
    { "activecampaign", "POST", "/ecomCustomers", 201,
      "{\"ecomCustomer\":{\"connectionid\":\"3\",\"id\":\"8\"}}" },
    { "activecampaign", "POST", "/ecomOrders", 201,
      "{\"ecomOrder\":{\"id\":\"1\"}}" },

    { "klaviyo", "GET", "/accounts", 200,
      "{\"data\":[{\"type\":\"account\",\"id\":\"A1\",\"attributes\":{}}]}" },
    { "klaviyo", "POST", "/profile-import", 201,
      "{\"data\":{\"type\":\"profile\",\"id\":\"01NEW\"}}" },
    { "klaviyo", "GET", "/lists?", 200,
      "{\"data\":[{\"type\":\"list\",\"id\":\"Y6nRLr\",\"attributes\":"
      "{\"name\":\"Buyer\"}}],\"links\":{}}" },
    { "klaviyo", "GET", "/profiles?", 200,
      "{\"data\":[{\"type\":\"profile\",\"id\":\"01FOUND\",\"attributes\":"
      "{\"email\":\"ada@example.org\"}}],\"links\":{}}" },
    { "klaviyo", "POST", "/relationships/profiles", 204, "" },
    { "klaviyo", "POST", "/events", 202, "" },

    { "webhook", "POST", "", 200, "{\"ok\":true}" },
};

#define FUZZ_NROUTES  (sizeof(fuzz_routes) / sizeof(fuzz_routes[0]))

static const char  fuzz_record[] =
    "{\"v\":1,\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
    "\"action\":\"purchase\",\"created\":1745433906,\"livemode\":true,"
    "\"object\":{\"type\":\"checkout_session\",\"id\":\"cs_test_1\"},"
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"ada@example.org\","
    "\"name\":\"Ada King Lovelace\"},\"amount\":24900,\"currency\":\"usd\","
    "\"items\":[{\"price\":\"price_1\",\"product\":\"prod_1\","
    "\"quantity\":1,\"amount\":24900,\"description\":\"Course\"}],"
    "\"invoice\":\"in_1\",\"reason\":\"Your card was declined.\","
    "\"card\":{\"exp_month\":12,\"exp_year\":2030},\"metadata\":{}}";

static const char  fuzz_record_no_email[] =
    "{\"v\":1,\"id\":\"evt_2\",\"type\":\"customer.subscription.created\","
    "\"action\":\"subscription_started\",\"created\":1745433906,"
    "\"object\":{\"type\":\"subscription\",\"id\":\"sub_1\"},"
    "\"customer\":{\"id\":\"cus_1\"},\"subscription\":\"sub_1\","
    "\"enrich\":[\"email\"]}";


static const fuzz_answer *
fuzz_route(const char *type, const char *base, const http_request *req)
{
    const char  *path;
    size_t       i;

    path = req->url + strlen(base);

    for (i = 0; i < FUZZ_NROUTES; i++) {
        if (strcmp(fuzz_routes[i].type, type) == 0
            && strcmp(fuzz_routes[i].method, req->method) == 0
            && strstr(path, fuzz_routes[i].path) != NULL)
        {
            return &fuzz_routes[i];
        }
    }

    return NULL;
}


static int
fuzz_contains(const char *s, size_t len, const char *needle)
{
    return memmem(s, len, needle, strlen(needle)) != NULL;
}


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
fuzz_check_request(const fuzz_provider *fp, const http_request *req)
{
    const char  *m;
    size_t       i, n;

    m = req->method;
    if (m == NULL || (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0
                      && strcmp(m, "DELETE") != 0 && strcmp(m, "PUT") != 0
                      && strcmp(m, "PATCH") != 0))
    {
        abort();
    }

    n = strnlen(req->url, sizeof(req->url));
    if (n == sizeof(req->url) || strncmp(req->url, fp->base,
                                         strlen(fp->base)) != 0)
    {
        abort();    /* not under the configured base */
    }

    for (i = 0; i < n; i++) {
        if ((unsigned char) req->url[i] <= 0x20
            || (unsigned char) req->url[i] >= 0x7f)
        {
            abort();    /* a space or a control byte in the URL */
        }
    }

    if (req->nheaders > HTTP_HEADERS_MAX) {
        abort();
    }

    for (i = 0; i < req->nheaders; i++) {
        n = strnlen(req->headers[i], HTTP_HEADER_MAX);
        if (n == HTTP_HEADER_MAX || strpbrk(req->headers[i], "\r\n") != NULL
            || strchr(req->headers[i], ':') == NULL)
        {
            abort();    /* header injection, or not "Name: value" */
        }
    }

    if (req->body != NULL && (strlen(req->body) != req->body_len
                              || !fuzz_is_json(req->body, req->body_len)))
    {
        abort();
    }
}


static void
fuzz_check_err(const ss_config *c, const op_exec *x, step_status s)
{
    size_t  n;

    n = strnlen(x->err, sizeof(x->err));
    if (n == sizeof(x->err)) {
        abort();
    }

    if ((s == STEP_RETRY || s == STEP_FAIL || s == STEP_SKIP) && n == 0) {
        abort();    /* every refusal says why */
    }

    /* the provider's own credentials: the consumer redacts the others */
    if ((c->provider_api_key && fuzz_contains(x->err, n, FUZZ_KEY))
        || (c->provider_oauth_token && fuzz_contains(x->err, n, FUZZ_OAUTH))
        || (c->provider_secret && fuzz_contains(x->err, n, FUZZ_HOOK_SECRET)))
    {
        abort();    /* a credential in an error */
    }
}


static void
fuzz_config(ss_config *c, const fuzz_provider *fp)
{
    int  hook;

    /* as config_load leaves it: each type has only its own credentials */
    hook = strcmp(fp->type, "webhook") == 0;

    memset(c, 0, sizeof(*c));
    c->provider_type = (char *) fp->type;
    c->provider_api_key = hook ? NULL : (char *) FUZZ_KEY;
    c->provider_oauth_token = fp->oauth ? (char *) FUZZ_OAUTH : NULL;
    c->provider_api_base = (char *) fp->base;
    c->provider_url = hook ? (char *) fp->base : NULL;
    c->provider_secret = hook ? (char *) FUZZ_HOOK_SECRET : NULL;
    c->provider_list = (char *) "Buyer";
    c->provider_timeout = 30;
    c->stripe_api_base = (char *) "http://fuzz.test/stripe";
}


static void
fuzz_plan(plan *pl, op_kind kind)
{
    static const plan_field  fields[2] = {
        { (char *) "Plan", (char *) "pro" }, { (char *) "Tier", (char *) "2" }
    };
    const char              *name;
    int                      with;

    memset(pl, 0, sizeof(*pl));

    switch (kind) {
    case OP_TAG: case OP_UNTAG: case OP_SEQUENCE: case OP_FORM: case OP_LIST:
        name = "Buyer";
        break;
    case OP_TRACK:
        name = "Paid";
        break;
    default:
        name = NULL;
    }

    with = kind == OP_UPSERT || kind == OP_FIELDS || kind == OP_TRACK;

    if (plan_add(pl, OP_UPSERT, NULL, fields, 2, -1) != 0
        || plan_add(pl, kind, name, with ? fields : NULL, with ? 2 : 0, 0)
           != 0)
    {
        abort();
    }
}


/*
 * Runs one operation. The request numbered at gets (status, body, len);
 * the others their route's answer. Returns the final status; with seeds
 * set, writes each request's well-formed answer as a seed instead.
 */
static step_status
fuzz_run(unsigned pi, op_kind kind, unsigned at, long status,
    unsigned flags, const char *body, size_t len, const char *seeds)
{
    const fuzz_provider  *fp;
    const fuzz_answer    *a;
    const provider_ops   *ops;
    provider             *p;
    ss_config             c;
    plan                  pl;
    job                   j;
    op_exec               x;
    http_request          req;
    http_response         res;
    step_status           s;
    const char           *record;
    char                  err[256];
    unsigned              n;

    fp = &fuzz_providers[pi];
    ops = provider_find(fp->type);
    if (ops == NULL) {
        abort();
    }

    fuzz_config(&c, fp);
    p = ops->create(&c, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "create %s: %s\n", fp->name, err);
        abort();
    }

    record = (flags & 8) ? fuzz_record_no_email : fuzz_record;
    if (job_parse(&j, record, strlen(record), err, sizeof(err)) != 0) {
        abort();
    }

    fuzz_plan(&pl, kind);

    memset(&x, 0, sizeof(x));
    x.plan = &pl;
    x.index = kind == OP_UPSERT ? 0 : 1;
    x.op = &pl.ops[x.index];
    x.job = &j;
    x.check = flags & 1;
    memset(x.scratch, 'Z', sizeof(x.scratch) - 1);    /* dirty on purpose */

    s = STEP_DONE;

    if (!ops->supports(p, kind)) {
        goto done;
    }

    for (n = 0; ; n++) {
        memset(&req, 0xA5, sizeof(req));    /* next() must set each field */
        s = ops->next(p, &x, &req);
        fuzz_check_err(&c, &x, s);
        if (s != STEP_REQUEST) {
            break;
        }

        fuzz_check_request(fp, &req);

        if (n == FUZZ_REQUESTS_MAX) {
            abort();    /* a runaway request loop */
        }

        a = fuzz_route(fp->type, fp->base, &req);

        memset(&res, 0, sizeof(res));
        res.status = a ? a->status : 200;
        res.body = a ? a->body : "{}";

        if (seeds != NULL) {
            char   path[512];
            FILE  *f;

            snprintf(path, sizeof(path), "%s/%s.%s.%u.%s", seeds, fp->name,
                     op_kind_name(kind), n, (flags & 1) ? "check" : "run");
            f = fopen(path, "w");
            if (f != NULL) {
                size_t  k;

                for (k = 0; k < FUZZ_NSTATUSES; k++) {
                    if (fuzz_statuses[k] == res.status) {
                        break;
                    }
                }
                fprintf(f, "%c%c%c%c%c%s", (char) pi, (char) kind, (char) n,
                        (char) k, (char) (flags | 0x40), res.body);
                fclose(f);
            }
        }

        if (n == at && seeds == NULL) {
            res.status = status;
            res.body = body;
            res.body_len = len;
            if (flags & 2) {
                res.retry_after = "120";
            }
            if (flags & 4) {
                res.status = 0;
                res.error = "Operation timed out after 30000 milliseconds";
            }
        } else {
            res.body_len = strlen(res.body);
        }

        s = ops->response(p, &x, &res);
        free(req.body);
        fuzz_check_err(&c, &x, s);

        if (s != STEP_REQUEST) {
            break;
        }
    }

done:

    plan_free(&pl);
    job_free(&j);
    ops->destroy(p);

    return s;
}


#ifndef FUZZ_MAKE_SEEDS

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    /* the log provider prints its dry run on stdout: not here */
    if (freopen("/dev/null", "w", stdout) == NULL) {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char      *body;
    size_t     len;
    unsigned   flags;

    if (size < FUZZ_HEADER) {
        return 0;
    }

    flags = data[4];
    len = size - FUZZ_HEADER;

    /* http.c hands providers a NUL-terminated body, NULs inside allowed */
    body = malloc(len + 1);
    if (body == NULL) {
        return 0;
    }
    memcpy(body, data + FUZZ_HEADER, len);
    body[len] = '\0';

    if (flags & 16) {
        len /= 2;
        body[len] = '\0';
    }

    fuzz_run(data[0] % FUZZ_NPROVIDERS, (op_kind) (data[1] % OP_KINDS),
             data[2] % 8, fuzz_statuses[data[3] % FUZZ_NSTATUSES], flags, body,
             len, NULL);

    free(body);
    return 0;
}

#else

/* seeds: each request of each operation answered well, in both modes */
int
main(int argc, char **argv)
{
    unsigned  pi, kind, check;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <seed dir>\n", argv[0]);
        return 2;
    }

    for (pi = 0; pi < FUZZ_NPROVIDERS; pi++) {
        for (kind = 0; kind < OP_KINDS; kind++) {
            for (check = 0; check < 2; check++) {
                fuzz_run(pi, (op_kind) kind, 99, 200,
                         check | (kind == OP_FIND_EMAIL ? 8 : 0), NULL, 0,
                         argv[1]);
            }
        }
    }

    return 0;
}

#endif
