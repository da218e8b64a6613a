/*
 * check.h - "stripe-sync check": is this configuration ready to run?
 *
 *   ok   config /etc/stripe-sync/stripe-sync.conf: provider kit, 5 rule(s)
 *   ok   redis 127.0.0.1:6379
 *   ok   stripe: API key accepted
 *   ok   upsert: credentials accepted
 *   ok   tag "Course buyer": exists
 *   ok   tag "dunning": will be created
 *   FAIL sequence "Win-back": not found
 *   warn track "Paid": not supported by kit, will be skipped
 *
 * Every distinct operation of the preset and the rules runs once through
 * the provider in check mode (provider.h): names are resolved, nothing is
 * changed. Lines go to out; config errors ("FILE:LINE: ...") to err.
 */

#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>

/* the exit status: 0 all ok, 1 a FAIL or a config error */
int check_run(const char *path, FILE *out, FILE *err);

#endif /* CHECK_H */
