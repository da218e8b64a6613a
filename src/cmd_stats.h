/*
 * cmd_stats.h - "stripe-sync stats": what is in Redis right now.
 *
 *   stripe-sync stats [-c FILE] [--rate[=S]] [--json | --prometheus]
 *
 * Queue length, jobs held in processing lists (summed over the consumers
 * in {P}:consumers), retries waiting and already due, dead letters,
 * consumers and how many have a live heartbeat, the customer map's size,
 * and every counter of {P}:stats (the module's ingest_*, the consumer's
 * consumer_*, dlq's dlq_*). --rate reads the counters twice, S seconds
 * apart (default 1), and adds per-second rates. Nothing is written.
 *
 * Output: a table (default), one JSON object (--json), or Prometheus
 * text for node_exporter's textfile collector (--prometheus; rates are
 * left to Prometheus). Exit 0, 1 (config, Redis), 2 (usage).
 */

#ifndef CMD_STATS_H
#define CMD_STATS_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    char        *name;
    long long    value;
    double       rate;          /* per second; with has_rate */
    int          has_rate;
} stats_counter;

typedef struct {
    char        *id;
    long long    processing;    /* entries in its processing list */
    int          live;          /* its heartbeat key exists */
} stats_consumer;

typedef struct {
    char             prefix[256];
    long long        time;          /* unix seconds of the reading */
    long long        queue;
    long long        processing;    /* summed over consumers */
    long long        retry;
    long long        retry_due;     /* due now: a consumer moves them */
    long long        dead;
    long long        customers;
    stats_consumer  *consumers;
    size_t           nconsumers;
    size_t           live;
    stats_counter   *counters;      /* sorted by name */
    size_t           ncounters;
    double           rate_window;   /* seconds; 0 without --rate */
} stats_snapshot;

void stats_print_table(const stats_snapshot *s, FILE *f);
void stats_print_json(const stats_snapshot *s, FILE *f);
void stats_print_prometheus(const stats_snapshot *s, FILE *f);

void stats_snapshot_free(stats_snapshot *s);

/* the subcommand: argv[0] is "stats" */
int cmd_stats(int argc, char **argv);

#endif /* CMD_STATS_H */
