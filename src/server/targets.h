/*
 * Target sets: the machines a right or a deployment applies to, named as
 * machines, groups and criteria (docs/api.md, "Targets"). This module parses
 * them from a request, stores them in right_targets or deployment_targets,
 * reads them back, and resolves them to machine ids. Criteria resolve here
 * too, so every part of the server agrees on what a rule matches.
 */
#ifndef ML_TARGETS_H
#define ML_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct req;
struct store;

#define TARGETS_MAX 10000 /* ids in one list */

struct targets {
	int64_t *machines, *groups, *criteria;
	size_t nm, ng, nc;
};

/* Where a set lives: one of these two. */
enum targets_table { TARGETS_RIGHT, TARGETS_DEPLOYMENT };

/*
 * Parses body field `field` ({"machines": [ids], "groups": [ids],
 * "criteria": [ids]}, unknown keys refused, at least one id in all) and
 * checks that every id exists. Returns 1 (parsed), 0 (absent, not required),
 * or -1 with a 400 response naming the field ("targets.groups: no group with
 * id 7"). Free with targets_free().
 */
int targets_parse(struct req *r, const char *field, bool required, struct targets *t);
void targets_free(struct targets *t);

/* Replaces the stored set of owner (a right or deployment id). Call inside a transaction. */
int targets_save(struct store *s, enum targets_table tab, int64_t owner, const struct targets *t);

/* The stored set as {"machines": [...], "groups": [...], "criteria": [...]}; NULL on error. */
json_t *targets_json(struct store *s, enum targets_table tab, int64_t owner);

/*
 * The machines a stored set covers now: sorted, without duplicates, in a
 * malloc'ed array (free it). Returns 0 or a negative store code.
 */
int targets_resolve(struct store *s, enum targets_table tab, int64_t owner, int64_t **ids,
                    size_t *n);

/* The machines criterion id matches now (sorted). 0, -ENOENT (no such criterion), or < 0. */
int targets_criterion(struct store *s, int64_t id, int64_t **ids, size_t *n);

/*
 * Replies with a page of the machines in ids ({"items": [machines...]}), in
 * the machine JSON shape of docs/api.md. Used by .../targets and
 * /criteria/:id/machines.
 */
int targets_reply_machines(struct req *r, const int64_t *ids, size_t n);

#endif
