/*
 * plan.h - what a job must do at the email platform: an ordered list of
 * operations, built by the rules (rules.h) from a job, run by a provider
 * (provider.h) one step at a time.
 *
 * Step i of a plan is recorded as done in Redis once finished, so a retry
 * or a restarted consumer resumes at the first unfinished step and never
 * repeats a non-idempotent one (a purchase, an order, an automation).
 */

#ifndef PLAN_H
#define PLAN_H

#include <stddef.h>

typedef enum {
    OP_UPSERT = 0,   /* create/update the contact: email, names, fields */
    OP_TAG,          /* name: tag name (created when missing) */
    OP_UNTAG,        /* name: tag name; absent tag counts as done */
    OP_SEQUENCE,     /* name: Kit sequence / AC automation */
    OP_FORM,         /* name: Kit form */
    OP_LIST,         /* name: AC list / Klaviyo list */
    OP_FIELDS,       /* fields: custom field values */
    OP_PURCHASE,     /* Kit purchase / AC Deep Data order / Klaviyo event */
    OP_TRACK,        /* name: event or metric name; properties from job */
    OP_FIND_EMAIL,   /* never from rules: the consumer's last email source,
                        the contact carrying the job's Stripe customer id;
                        DONE with the email in x->scratch ("" not found) */
    OP_KINDS
} op_kind;

typedef struct {
    char *key;
    char *value;      /* templates already expanded */
} plan_field;

typedef struct {
    op_kind      kind;
    char        *name;     /* tag, sequence, form, list, metric; or NULL */
    plan_field  *fields;   /* OP_UPSERT / OP_FIELDS / OP_TRACK properties */
    size_t       nfields;
    int          rule;     /* index of the rule that asked for it, -1 preset */
} plan_op;

typedef struct {
    plan_op  *ops;
    size_t    nops;
} plan;

const char *op_kind_name(op_kind k);   /* "tag", "untag", ... */

/* Appends an op (copies name and fields); 0 or -1 on allocation failure. */
int plan_add(plan *p, op_kind kind, const char *name,
    const plan_field *fields, size_t nfields, int rule);
void plan_free(plan *p);

/* The plan as one JSON array, for the log provider and the webhook. */
char *plan_to_json(const plan *p);

#endif /* PLAN_H */
