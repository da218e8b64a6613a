/*
 * cmd_stats.c - unit tests for "stripe-sync stats" output without Redis:
 * the table, the JSON object, the Prometheus text (families, labels,
 * HELP/TYPE once each, known counters at 0, other counters named).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_stats.h"
#include "json_tree.h"
#include "tap.h"


static char *
render(void (*print)(const stats_snapshot *, FILE *), const stats_snapshot *s)
{
    char    *buf;
    size_t   len;
    FILE    *f;

    f = open_memstream(&buf, &len);
    print(s, f);
    fclose(f);

    return buf;
}


static void
fill(stats_snapshot *s)
{
    static stats_counter   counters[] = {
        { "backfill_pages", 2, 0, 0 },
        { "consumer_dead", 4, 0.5, 1 },
        { "consumer_done", 10, 2.25, 1 },
        { "ingest_other", 1, 0, 1 },
        { "ingest_queued", 25, 0, 1 },
        { "weird-name.x", 9, 0, 1 },
    };
    static stats_consumer  consumers[] = {
        { "a:1", 2, 1 },
        { "b\"q:2", 1, 0 },
    };

    memset(s, 0, sizeof(*s));
    snprintf(s->prefix, sizeof(s->prefix), "p");
    s->time = 1745437580;
    s->queue = 3;
    s->processing = 3;
    s->retry = 5;
    s->retry_due = 2;
    s->dead = 4;
    s->customers = 6;
    s->consumers = consumers;
    s->nconsumers = 2;
    s->live = 1;
    s->counters = counters;
    s->ncounters = sizeof(counters) / sizeof(counters[0]);
}


static size_t
count(const char *hay, const char *needle)
{
    size_t  n;

    for (n = 0; (hay = strstr(hay, needle)) != NULL; hay++) {
        n++;
    }

    return n;
}


static void
test_table(void)
{
    stats_snapshot  s;
    char           *t, *line;

    fill(&s);
    t = render(stats_print_table, &s);

    line = strndup(t, strcspn(t, "\n"));
    is_str(line, "queue                             3", "the first line");
    free(line);

    ok(strstr(t, "queue                             3\n") != NULL, "queue");
    ok(strstr(t, "retry                             5  (2 due now)\n")
       != NULL, "retry and due");
    ok(strstr(t, "consumers                         2  (1 live)\n") != NULL,
       "consumers");
    ok(strstr(t, "  a:1") != NULL && strstr(t, "2 in hand, live\n") != NULL,
       "a consumer");
    ok(strstr(t, "1 in hand, no heartbeat\n") != NULL, "one without");
    ok(strstr(t, "consumer_done                    10\n") != NULL,
       "a counter, no rate column without --rate");
    free(t);

    s.rate_window = 1.5;
    t = render(stats_print_table, &s);
    ok(strstr(t, "per second") != NULL, "with --rate: the column");
    ok(strstr(t, "consumer_done                    10        2.25\n") != NULL,
       "a rate");
    ok(strstr(t, "(rates over 1.5 s)") != NULL, "the window");
    free(t);
}


static void
test_json(void)
{
    stats_snapshot    s;
    json_arena        ar;
    const json_node  *j, *n;
    char             *t, reason[256];

    fill(&s);
    t = render(stats_print_json, &s);
    ar.head = NULL;
    ar.chunk = 8192;
    j = json_parse(&ar, t, strlen(t), reason, sizeof(reason));
    ok(j != NULL, "JSON");

    n = json_get(j, "queue");
    ok(n && n->type == JSON_INT && n->u.i == 3, "queue");
    n = json_get(j, "retry_due");
    ok(n && n->u.i == 2, "retry_due");
    n = json_get(j, "consumers_live");
    ok(n && n->u.i == 1, "consumers_live");
    n = json_at(j, "counters", "weird-name.x", NULL);
    ok(n && n->u.i == 9, "counters by their own names");
    n = json_at(json_first(json_get(j, "consumer_list")), "live", NULL);
    ok(n && n->type == JSON_TRUE, "consumer live: true");
    ok(json_get(j, "rates") == NULL, "no rates without --rate");
    if (!ok(t[strlen(t) - 1] == '\n', "one line")) {
        diag("%s", t);
    }
    json_arena_free(ar.head);
    free(t);

    s.rate_window = 1.0;
    t = render(stats_print_json, &s);
    ok(strstr(t, "\"rate_window\":1.000,\"rates\":{\"consumer_dead\":0.500,"
              "\"consumer_done\":2.250,") != NULL, "rates");
    ok(strstr(t, "\"backfill_pages\":0.") == NULL,
       "a counter without a rate has none");
    free(t);
}


static void
test_prometheus(void)
{
    stats_snapshot  s;
    char           *t;

    fill(&s);
    t = render(stats_print_prometheus, &s);

    ok(strstr(t, "# HELP stripe_sync_queue_length ") != NULL
       && strstr(t, "# TYPE stripe_sync_queue_length gauge\n"
                    "stripe_sync_queue_length{prefix=\"p\"} 3\n") != NULL,
       "a gauge");
    ok(strstr(t, "stripe_sync_dead_letters{prefix=\"p\"} 4\n") != NULL,
       "dead letters");
    ok(strstr(t, "# TYPE stripe_sync_consumer_jobs_total counter\n") != NULL,
       "jobs: a counter");
    ok(strstr(t, "stripe_sync_consumer_jobs_total{outcome=\"done\","
              "prefix=\"p\"} 10\n") != NULL, "done");
    ok(strstr(t, "stripe_sync_consumer_jobs_total{outcome=\"stale\","
              "prefix=\"p\"} 0\n") != NULL, "stale: 0, not missing");
    ok(strstr(t, "stripe_sync_ingest_events_total{result=\"queued\","
              "prefix=\"p\"} 25\n") != NULL, "ingest queued");
    ok(strstr(t, "stripe_sync_ingest_events_total{result=\"other\","
              "prefix=\"p\"} 1\n") != NULL, "an ingest_* we do not know");
    ok(strstr(t, "stripe_sync_dlq_purged_total{prefix=\"p\"} 0\n") != NULL,
       "dlq_purged 0");
    ok(strstr(t, "# TYPE stripe_sync_backfill_pages_total counter\n"
              "stripe_sync_backfill_pages_total{prefix=\"p\"} 2\n") != NULL,
       "another counter: its own metric");
    ok(strstr(t, "stripe_sync_weird_name_x_total{prefix=\"p\"} 9\n") != NULL,
       "a name made a metric name");
    is_int(count(t, "# TYPE stripe_sync_ingest_events_total"), 1,
           "one TYPE per family");
    is_int(count(t, "# HELP "), count(t, "# TYPE "), "a HELP per TYPE");
    ok(strstr(t, "consumer_done_total") == NULL,
       "consumer_done only in its family");
    free(t);

    snprintf(s.prefix, sizeof(s.prefix), "a\"b\\c");
    t = render(stats_print_prometheus, &s);
    ok(strstr(t, "stripe_sync_queue_length{prefix=\"a\\\"b\\\\c\"} 3\n")
       != NULL, "label values escaped");
    free(t);
}


int
main(void)
{
    test_table();
    test_json();
    test_prometheus();

    return tap_done();
}
