/*
 * store.h - the consumer's side of Redis (SPEC 4): one synchronous hiredis
 * connection, every key under "{P}:", every multi-key change one Lua script.
 *
 *   {P}:queue                 list: LPUSHed by the module, taken RIGHT
 *   {P}:processing:<id>       list: what consumer <id> holds (BLMOVE)
 *   {P}:retry                 zset: raw entry -> due time (unix ms)
 *   {P}:dead                  list: dead letters (JSON)
 *   {P}:job:<event id>        hash: attempts, step:<i> = done | sent;
 *                             7 days
 *   {P}:wm:<subscription>     string: "<created>:<event id>"; 40 days
 *   {P}:customers             hash: cus_... -> {"email","name"}
 *   {P}:consumer:<id>         string: pid, EX 3 heartbeats
 *   {P}:consumers             set: ids of consumers that may hold jobs
 *   {P}:order:<customer>      list: the customer's event ids in enqueue
 *                             order (the enqueue script pushes; a job's
 *                             end for good removes); 7 days
 *   {P}:parked:<customer>     hash: event id -> raw entry, jobs taken
 *                             before their turn (store_order_claim)
 *   {P}:parked                zset: customer -> when its head last moved
 *                             or was found alive (Redis's clock, ms), while
 *                             it has parked jobs
 *   {P}:stats                 hash: counters (consumer_done, ...)
 *
 * A lost connection is retried with backoff (100 ms doubling to 5 s) from
 * store_ready(); each change of state is logged once. A failed call leaves
 * Redis as it was or as after the whole script: callers just try again.
 */

#ifndef STORE_H
#define STORE_H

#include <stddef.h>

#include "config.h"

#define STORE_JOB_TTL        (7 * 24 * 3600)
#define STORE_DEAD_JOB_TTL   (90 * 24 * 3600)  /* kept for a dlq replay */
#define STORE_WATERMARK_TTL  (40 * 24 * 3600)  /* past Stripe's 30 days */

typedef struct store  store;

#define STORE_STEP_DONE  1
#define STORE_STEP_SENT  2     /* its request went out, no outcome known */

/* what Redis knows of a job as it starts (store_job_begin) */
typedef struct {
    long long       attempts;      /* this one included */
    unsigned char  *steps;         /* steps[i]: 0, STORE_STEP_DONE or
                                      STORE_STEP_SENT */
    size_t          nsteps;
    char           *watermark;     /* the subscription's, or NULL */
} store_job_state;

/* copies what it needs of c; connects later, from store_ready() */
store *store_create(const ss_config *c, char *err, size_t errlen);
void store_free(store *s);

/*
 * 1 when commands can be sent: connects (AUTH, SELECT, SCRIPT LOAD) when
 * not connected and the backoff allows; 0 while Redis is unavailable.
 */
int store_ready(store *s, long long now_ms);

/* no log lines (for "stripe-sync check", which prints its own) */
void store_set_quiet(store *s, int quiet);

/* counts successful connections: a change means "reconnected" */
unsigned store_generation(const store *s);

/* the last error, for logs: never holds the password */
const char *store_error(const store *s);
const char *store_consumer_id(const store *s);

/* the Redis as logs name it: as configured, or behind Sentinel the
   primary's name, "<name>@<host>:<port>" once looked up */
const char *store_address(const store *s);

/*
 * Takes the oldest queue entry into this consumer's processing list:
 * BLMOVE (waiting up to block_ms) when block_ms > 0, else LMOVE.
 * 1 with *raw (malloc'd) and *len, 0 when the queue is empty, -1 on error.
 */
int store_take(store *s, long long block_ms, char **raw, size_t *len);

/*
 * Counts an attempt (HINCRBY attempts), reads the steps done and, when
 * wm_object is not NULL, its watermark: one script. 0 or -1.
 */
int store_job_begin(store *s, const char *event_id, const char *wm_object,
    store_job_state *st);
void store_job_state_free(store_job_state *st);

/* takes back the attempt store_job_begin() counted: a graceful stop
   abandoned the job, which says nothing about the job itself */
int store_job_abandon(store *s, const char *event_id);

/* step i of the job's plan is done (skipped: also counted) */
int store_step_done(store *s, const char *event_id, size_t i, int skipped);

/* step i is about to send a request the platform does not dedupe (a
   purchase): "sent" until it is done, so a later attempt looks first */
int store_step_sent(store *s, const char *event_id, size_t i);

/*
 * Ends a job taken by this consumer; each is one script that first removes
 * raw from the processing list and does nothing more when it was not there
 * (another consumer recovered it): returns 1 done, 0 not ours, -1 error.
 *
 * done:  DEL the job key, HINCRBY counter ("consumer_done" or
 *        "consumer_stale"); with wm_object, raise its watermark to
 *        (created, event id) if newer
 * retry: ZADD {P}:retry due_ms raw, HINCRBY consumer_retried (the job key
 *        stays: it holds the steps done and the attempts; the job keeps
 *        its place in its customer's order)
 * dead:  LPUSH {P}:dead letter, DEL the job key (event_id may be NULL),
 *        HINCRBY consumer_dead
 *
 * done and dead, with a customer (its order key: the record's customer id,
 * else its email; NULL or "" for none), also take the event id out of the
 * customer's order and move the parked job now at its head (and a parked
 * copy of this one) back to the take end of the queue.
 */
int store_job_done(store *s, const char *raw, size_t len,
    const char *event_id, const char *counter, const char *wm_object,
    long long created, const char *customer);
int store_job_retry(store *s, const char *raw, size_t len, long long due_ms);
int store_job_dead(store *s, const char *raw, size_t len,
    const char *event_id, const char *letter, const char *customer);

/* moves up to limit due retries (score <= now_ms) to the take end of the
   queue, earliest first; how many, or -1 */
int store_move_due(store *s, long long now_ms, int limit);

/* SET {P}:consumer:<id> <pid> EX 3*heartbeat, SADD {P}:consumers <id> */
int store_heartbeat(store *s, int heartbeat);

/*
 * Moves every entry of this consumer's processing list that is not one of
 * the n held ones back to the take end of the queue, oldest next: at start
 * (nothing held) and after a reconnect (a lost BLMOVE reply). Moved count,
 * or -1.
 */
int store_requeue_unheld(store *s, char *const *held, const size_t *lens,
    size_t n);

/*
 * For each other consumer in {P}:consumers whose heartbeat key is gone:
 * moves its processing list back to the queue and forgets it, atomically
 * per consumer. *jobs gets how many entries moved. 0 or -1.
 */
int store_recover_dead(store *s, long long *consumers, long long *jobs);

/* graceful exit: DEL the heartbeat (so others recover what is left at
   once) and SREM the id when nothing is left */
int store_leave(store *s);

/*
 * The customer's order across consumers (docs/consumer.md, "Many
 * consumers"). Before a job of customer starts, one script: when its event
 * id is at the head of {P}:order:<customer>, or not in it at all (queued
 * before ordering existed, a replayed dead letter, an expired list), the
 * job may start (STORE_ORDER_START); otherwise it leaves the processing
 * list for {P}:parked:<customer> (STORE_ORDER_PARKED) and goes back to the
 * queue when the jobs before it have ended; STORE_ORDER_GONE: it was no
 * longer in this consumer's processing list. head gets the event id at the
 * head ("" when none). -1 on error.
 */
#define STORE_ORDER_PARKED  0
#define STORE_ORDER_START   1
#define STORE_ORDER_GONE    2

int store_order_claim(store *s, const char *customer, const char *event_id,
    const char *raw, size_t len, char *head, size_t headlen);

/* the customers (malloc'd, store_strings_free) whose parked jobs have
   waited stuck_ms or more without their head moving; at most limit */
int store_order_stuck(store *s, long long stuck_ms, int limit,
    char ***customers, size_t *n);
void store_strings_free(char **v, size_t n);

/* the head of the customer's order: 1 with *head (malloc'd) and *done (1:
   its job finished, the done marker), 0 when it has none, -1 on error */
int store_order_head(store *s, const char *customer, char **head,
    int *done);

/* more entries than this in the queue or the retry set: not looked at */
#define STORE_FIND_MAX  10000

/*
 * found[i] = 1 when the job of event ids[i] is in the queue, the retry
 * set or a processing list of a consumer in {P}:consumers (or when the
 * queue or the retry set holds more than STORE_FIND_MAX entries: it cannot
 * be told), else 0. One script. 0 or -1.
 */
int store_jobs_find(store *s, char *const *ids, size_t n, int *found);

/*
 * One script: skip_head (not NULL) leaves the customer's order if it is
 * still its head and not parked (*skipped = 1; consumer_order_skipped
 * counted), then every parked job at the head of the order or no longer in
 * it goes back to the queue (*moved). alive: the head was found, so the
 * customer goes to the back of {P}:parked (the next looks see others
 * first). 0 or -1.
 */
int store_order_heal(store *s, const char *customer, const char *skip_head,
    int alive, int *skipped, int *moved);

/* {P}:customers: 1 with *json (malloc'd), 0 when absent, -1 on error */
int store_customer_get(store *s, const char *customer_id, char **json);
int store_customer_set(store *s, const char *customer_id, const char *json);

int store_ping(store *s);

#endif /* STORE_H */
