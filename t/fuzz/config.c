/*
 * libFuzzer target for the consumer's configuration file: the input is
 * written to a file and loaded with config_load(), as `stripe-sync check`
 * and `consume` do. Besides "no crash, no leak" it checks what callers rely
 * on: a failed load says why; a good load has
 * every default filled; no message quotes a secret file's content. A good
 * load's rules are then run on one record (rules_plan), so the templates
 * and conditions the fuzzer writes are exercised too.
 *
 * The file lives in a private directory (tmpfs when /dev/shm exists) with
 * files the seeds name: "secret" (0600), "secret.open" (0644: the warning),
 * "empty", and "include.conf" for @include.
 *
 * config_load opens whatever file a secret key or an @include names. A
 * FIFO or a terminal would block it (that is the user's choice in real
 * life), so inputs that could name a file outside the private directory
 * are skipped: a string starting with '/' (adjacent strings are joined, so
 * "/d" "ev/tty" starts with one too), "..", and the escapes \x and \/.
 * Only the file system is off limits, not the syntax.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "job.h"
#include "plan.h"
#include "rules.h"

#define FUZZ_SECRET  "fuzz_SECRET_value_7e1a"

static char  fuzz_dir[64];
static char  fuzz_path[128];
static int   fuzz_input_has_secret;

static const char  fuzz_record[] =
    "{\"v\":1,\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"action\":\"renewal\","
    "\"created\":1745433906,\"livemode\":true,"
    "\"object\":{\"type\":\"invoice\",\"id\":\"in_1\"},"
    "\"customer\":{\"id\":\"cus_1\",\"email\":\"ada@example.org\","
    "\"name\":\"Ada King Lovelace\"},\"amount\":24900,\"currency\":\"usd\","
    "\"items\":[{\"price\":\"price_1\",\"product\":\"prod_1\",\"quantity\":1,"
    "\"amount\":24900,\"description\":\"Course\"}],"
    "\"subscription\":\"sub_1\",\"invoice\":\"in_1\",\"attempt_count\":2,"
    "\"billing_reason\":\"subscription_cycle\",\"subscription_start\":"
    "1700000000,\"metadata\":{\"plan\":\"pro\",\"a.b\":\"dotted\"}}";


/*
 * libconfig 1.5 (Debian bookworm) leaks the string it was reading when a
 * syntax error follows it inside the same string token sequence
 * (strbuf_append, freed by nobody): not ours to fix, so not reported.
 */
const char *
__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}


static void
fuzz_put(const char *name, const char *content, mode_t mode)
{
    char   path[192];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        abort();
    }

    fputs(content, f);
    fclose(f);
    chmod(path, mode);
}


static void
fuzz_cleanup(void)
{
    static const char *const  names[] = {
        "stripe-sync.conf", "secret", "secret.open", "empty", "include.conf"
    };
    char                      path[192];
    size_t                    i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, names[i]);
        unlink(path);
    }

    rmdir(fuzz_dir);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz-config-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (mkdtemp(fuzz_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }

    snprintf(fuzz_path, sizeof(fuzz_path), "%s/stripe-sync.conf", fuzz_dir);
    atexit(fuzz_cleanup);

    fuzz_put("secret", FUZZ_SECRET "\n", 0600);
    fuzz_put("secret.open", FUZZ_SECRET "\n", 0644);
    fuzz_put("empty", "", 0600);
    fuzz_put("include.conf",
             "rules = ( { on = \"purchase\"; tag = [\"Included\"]; } );\n",
             0600);

    return 0;
}


static void
fuzz_message(const char *msg)
{
    size_t  n;

    /* never empty (a value quoted in it may hold a newline: the file is
       the administrator's, not an attacker's) */
    n = strlen(msg);
    if (n == 0) {
        abort();
    }

    if (!fuzz_input_has_secret && strstr(msg, FUZZ_SECRET) != NULL) {
        abort();    /* a secret file's content in a message */
    }
}


static int
fuzz_off_limits(const uint8_t *data, size_t size)
{
    static const char *const  words[] = {
        "\"/", "..", "\\x", "\\X", "\\/"
    };
    size_t                    i;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (memmem(data, size, words[i], strlen(words[i])) != NULL) {
            return 1;
        }
    }

    return 0;
}


static void
fuzz_rules(const ss_config *c)
{
    job    j;
    plan   pl;
    char   err[512], *json;

    if (job_parse(&j, fuzz_record, sizeof(fuzz_record) - 1, err,
                  sizeof(err)) != 0)
    {
        abort();
    }

    (void) rules_needs(c, &j);

    memset(&pl, 0, sizeof(pl));
    err[0] = '\0';

    if (rules_plan(c, &j, &pl, err, sizeof(err)) == 0) {
        json = plan_to_json(&pl);
        free(json);

    } else if (err[0] == '\0') {
        abort();    /* a refusal says why */
    }

    plan_free(&pl);
    job_free(&j);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ss_config  c;
    FILE      *f;
    char       err[CONFIG_ERR_MAX];
    int        rc;

    if (fuzz_off_limits(data, size)) {
        return 0;
    }

    f = fopen(fuzz_path, "w");
    if (f == NULL) {
        abort();
    }

    if (size > 0 && fwrite(data, 1, size, f) != size) {
        abort();
    }

    fclose(f);

    fuzz_input_has_secret = memmem(data, size, FUZZ_SECRET,
                                   sizeof(FUZZ_SECRET) - 1) != NULL;

    memset(&c, 0, sizeof(c));
    memset(err, 'x', sizeof(err));

    rc = config_load(&c, fuzz_path, err, sizeof(err), fuzz_message);

    if (rc != 0) {
        if (rc != -1 || memchr(err, '\0', sizeof(err)) == NULL) {
            abort();
        }

        fuzz_message(err);
        config_free(&c);    /* config_load freed it: must stay harmless */
        return 0;
    }

    if (c.file == NULL || c.redis == NULL || c.prefix == NULL
        || c.stripe_api_base == NULL || c.provider_type == NULL
        || c.consumer_id == NULL || (c.nrules > 0 && c.rules == NULL)
        || c.concurrency < 1 || c.retry_max_attempts < 1)
    {
        abort();
    }

    fuzz_rules(&c);
    config_free(&c);

    return 0;
}
