/*
 * enqueue_script.h - the ONE Redis script that accepts actions: for each
 * event it is given, in order, dedupe the event id, dedupe the fact
 * (once-per-object actions), remember the customer and push the record
 * (SPEC section 4). Each event is handled exactly as if it came alone; a
 * call carries several so that a busy nginx worker pays Redis's per-call
 * cost once for all the events it read in one pass of its event loop.
 *
 * KEYS[1]  {P}:queue                  LPUSH record
 * KEYS[2]  {P}:customers              HSET customer id -> {email,name}
 * KEYS[3]  {P}:stats                  HINCRBY counters, once per call
 * then, for each event, its own keys:
 *          {P}:seen:<event id>        SET NX EX ttl
 *          {P}:once:<once key>        when its flags say so: SET NX EX ttl
 *          {P}:order:<customer key>   when its flags say so: RPUSH the
 *                                     event id, EXPIRE 7 days (a job
 *                                     record's life, store.h)
 * ARGV[1]  ttl in seconds
 * then, for each event, 5 arguments:
 *          flags: two characters, '1' or '0': has a once key, has an
 *                 order key
 *          the record (JSON)
 *          customer id, or ""
 *          customer JSON, or ""
 *          the event id (the value stored under the once key, and pushed
 *          to the order list)
 *
 * The customer key is the record's customer id, else its email (action.h
 * order_key); without either there is no order list. The order list is
 * the order in which the consumers may start the customer's jobs
 * (docs/consumer.md, "Many consumers"); a duplicate is never queued, so it
 * is never in it.
 *
 * Keys and arguments that do not add up are refused before anything is
 * written. Returns an array, one answer per event in the order given:
 * 1 queued, 0 event id already seen, 2 fact already seen. The same event
 * twice in one call is queued once: the second copy finds it seen.
 */

#ifndef ENQUEUE_SCRIPT_H
#define ENQUEUE_SCRIPT_H

#define ENQUEUE_SCRIPT                                                        \
    "local nargs = #ARGV - 1\n"                                               \
    "if nargs < 5 or nargs % 5 ~= 0 then\n"                                   \
    "  return redis.error_reply('ERR stripe-sync enqueue: want a ttl and 5 '" \
    " .. 'arguments per event, got ' .. #ARGV .. ' arguments')\n"            \
    "end\n"                                                                   \
    "local nkeys = 3\n"                                                       \
    "for i = 2, #ARGV, 5 do\n"                                                \
    "  local f = ARGV[i]\n"                                                   \
    "  nkeys = nkeys + 1 + (string.byte(f, 1) == 49 and 1 or 0)"              \
    " + (string.byte(f, 2) == 49 and 1 or 0)\n"                               \
    "end\n"                                                                   \
    "if nkeys ~= #KEYS then\n"                                                \
    "  return redis.error_reply('ERR stripe-sync enqueue: the flags name '"   \
    " .. nkeys .. ' keys, got ' .. #KEYS)\n"                                  \
    "end\n"                                                                   \
    "local ttl = ARGV[1]\n"                                                   \
    "local k = 4\n"                                                           \
    "local res = {}\n"                                                        \
    "local queued, dup, fact = 0, 0, 0\n"                                     \
    "for i = 2, #ARGV, 5 do\n"                                                \
    "  local f = ARGV[i]\n"                                                   \
    "  local seen, once, order = KEYS[k], nil, nil\n"                         \
    "  k = k + 1\n"                                                           \
    "  if string.byte(f, 1) == 49 then once = KEYS[k]; k = k + 1 end\n"       \
    "  if string.byte(f, 2) == 49 then order = KEYS[k]; k = k + 1 end\n"      \
    "  if not redis.call('SET', seen, '1', 'NX', 'EX', ttl) then\n"           \
    "    dup = dup + 1\n"                                                     \
    "    res[#res + 1] = 0\n"                                                 \
    "  elseif once and not redis.call('SET', once, ARGV[i + 4], 'NX', 'EX',"  \
    " ttl) then\n"                                                            \
    "    fact = fact + 1\n"                                                   \
    "    res[#res + 1] = 2\n"                                                 \
    "  else\n"                                                                \
    "    if ARGV[i + 2] ~= '' and ARGV[i + 3] ~= '' then\n"                   \
    "      redis.call('HSET', KEYS[2], ARGV[i + 2], ARGV[i + 3])\n"           \
    "    end\n"                                                               \
    "    redis.call('LPUSH', KEYS[1], ARGV[i + 1])\n"                         \
    "    if order then\n"                                                     \
    "      redis.call('RPUSH', order, ARGV[i + 4])\n"                         \
    "      redis.call('EXPIRE', order, '604800')\n"                           \
    "    end\n"                                                               \
    "    queued = queued + 1\n"                                               \
    "    res[#res + 1] = 1\n"                                                 \
    "  end\n"                                                                 \
    "end\n"                                                                   \
    "if queued > 0 then redis.call('HINCRBY', KEYS[3], 'ingest_queued',"      \
    " queued) end\n"                                                          \
    "if dup > 0 then redis.call('HINCRBY', KEYS[3], 'ingest_duplicate',"      \
    " dup) end\n"                                                             \
    "if fact > 0 then redis.call('HINCRBY', KEYS[3],"                         \
    " 'ingest_duplicate_fact', fact) end\n"                                   \
    "return res\n"

/* the most events one call carries (the module's batches) */
#define ENQUEUE_BATCH_MAX      64

/* arguments of one event, and its keys at most */
#define ENQUEUE_EVENT_ARGS     5
#define ENQUEUE_EVENT_KEYS     3

#define ENQUEUE_QUEUED         1
#define ENQUEUE_DUPLICATE      0
#define ENQUEUE_DUPLICATE_FACT 2

#endif /* ENQUEUE_SCRIPT_H */
