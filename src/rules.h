/*
 * rules.h - from a job to a plan: the preset's rules, then the config's,
 * every matching rule applying in order (SPEC 6).
 *
 * Pure: no I/O. The consumer enriches the job first (email, line items,
 * subscription start) where rules_needs() says a rule could use it.
 */

#ifndef RULES_H
#define RULES_H

#include <stddef.h>

#include "config.h"
#include "job.h"
#include "plan.h"

#define RULES_NEED_LINE_ITEMS  0x1   /* a rule matches on product/price */
#define RULES_NEED_TENURE      0x2   /* a rule has min_tenure_days */

/* A preset's built-in rules; NULL (and *n = 0) for an unknown name. */
const cfg_rule *preset_rules(const char *name, size_t *n);

/* 1 if the rule's conditions all hold for the job */
int rule_matches(const cfg_rule *r, const job *j);

/* What enrichment could change the plan of this job (RULES_NEED_*). */
int rules_needs(const ss_config *c, const job *j);

/*
 * Builds the plan: OP_UPSERT first (with the fields of matching rules'
 * "fields"), then every matching rule's operations in rule order; an empty
 * plan when no rule matches (the job is done with nothing to do). Returns
 * 0, or -1 with err (a template that names an absent value is not an error:
 * it expands to "" and the field is left out).
 */
int rules_plan(const ss_config *c, const job *j, plan *out,
    char *err, size_t errlen);

/*
 * Expands "{path}" references in tpl with job_lookup(); "{{" is a literal
 * brace. Returns 0, or -1 when a referenced value is absent or out does
 * not fit.
 */
int template_expand(const char *tpl, const job *j, char *out, size_t len);

/*
 * Checks a template when the config is loaded: -1 for bad syntax (a "{"
 * without its "}", an empty "{}"), 1 when a reference starts with a name no
 * action record has (likely a typo: worth a warning), else 0. err says
 * which, quoting the template.
 */
int template_check(const char *tpl, char *err, size_t errlen);

#endif /* RULES_H */
