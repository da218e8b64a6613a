/*
 * enqueue_script.h - the ONE Redis script that accepts an action: dedupe the
 * event id, dedupe the fact (once-per-object actions), remember the customer
 * and push the record, atomically (SPEC section 4).
 *
 * KEYS[1]  {P}:seen:<event id>        SET NX EX ttl
 * KEYS[2]  {P}:queue                  LPUSH record
 * KEYS[3]  {P}:customers              HSET customer id -> {email,name}
 * KEYS[4]  {P}:stats                  HINCRBY counters
 * KEYS[5]  {P}:once:<once key>        optional: SET NX EX ttl
 * KEYS[n]  {P}:order:<customer key>   optional, the last key, when ARGV[6]
 *                                     is "1": RPUSH the event id, EXPIRE
 *                                     7 days (a job record's life, store.h)
 * ARGV[1]  ttl in seconds
 * ARGV[2]  the record (JSON)
 * ARGV[3]  customer id, or ""
 * ARGV[4]  customer JSON, or ""
 * ARGV[5]  the event id (the value stored under the once key)
 * ARGV[6]  "1" when the last key is the customer's order list (optional)
 *
 * The customer key is the record's customer id, else its email (action.h
 * order_key); without either there is no order list. The order list is
 * the order in which the consumers may start the customer's jobs
 * (docs/consumer.md, "Many consumers"); a duplicate is never queued, so it
 * is never in it.
 *
 * Returns 1 queued, 0 event id already seen, 2 fact already seen.
 */

#ifndef ENQUEUE_SCRIPT_H
#define ENQUEUE_SCRIPT_H

#define ENQUEUE_SCRIPT                                                        \
    "local n = #KEYS\n"                                                       \
    "local order = nil\n"                                                     \
    "if ARGV[6] == '1' then order = KEYS[n]; n = n - 1 end\n"                 \
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then\n"      \
    "  redis.call('HINCRBY', KEYS[4], 'ingest_duplicate', 1)\n"               \
    "  return 0\n"                                                            \
    "end\n"                                                                   \
    "if n >= 5 and not redis.call('SET', KEYS[5], ARGV[5], 'NX', 'EX',"      \
    " ARGV[1]) then\n"                                                        \
    "  redis.call('HINCRBY', KEYS[4], 'ingest_duplicate_fact', 1)\n"          \
    "  return 2\n"                                                            \
    "end\n"                                                                   \
    "if ARGV[3] ~= '' and ARGV[4] ~= '' then\n"                               \
    "  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])\n"                       \
    "end\n"                                                                   \
    "redis.call('LPUSH', KEYS[2], ARGV[2])\n"                                 \
    "if order then\n"                                                         \
    "  redis.call('RPUSH', order, ARGV[5])\n"                                 \
    "  redis.call('EXPIRE', order, 604800)\n"                                \
    "end\n"                                                                   \
    "redis.call('HINCRBY', KEYS[4], 'ingest_queued', 1)\n"                    \
    "return 1\n"

#define ENQUEUE_QUEUED         1
#define ENQUEUE_DUPLICATE      0
#define ENQUEUE_DUPLICATE_FACT 2

#endif /* ENQUEUE_SCRIPT_H */
