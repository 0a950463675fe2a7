/*
 * Machines in the store: the one place that turns machine rows into the JSON
 * of docs/api.md ("Machines") and writes a validated struct match_machine
 * (match.h) into the machines, machine_macs and machine_tags tables. The
 * machines API, the importers' API, target sets and (later) agent
 * registration all go through here, so a machine looks the same wherever it
 * is shown and is written by the same rules wherever it comes from.
 *
 * Every call takes the store lock itself; the writing calls belong inside a
 * transaction (store_begin) that the caller commits, together with its
 * audit record. Return values: 0 or a negative store code (store.h), with
 * -ENOENT for "no such machine" where a machine is looked up by id.
 */
#ifndef ML_MACHINES_H
#define ML_MACHINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "match.h"

struct store;

/*
 * The machines with these ids as a JSON array of machine objects, in the
 * order of ids; ids that name no machine are left out. Each object is
 * {"id", "name", "macs", "ip", "subnet", "room", "tags", "notes", "source",
 * "created_at", "updated_at", "last_seen_at"}, MACs and tags sorted. It
 * costs three queries per MACHINES_BATCH ids, whatever n is, so a page of
 * machines never costs a query per machine. NULL on error or out of memory.
 */
#define MACHINES_BATCH 500
json_t *machines_page_json(struct store *s, const int64_t *ids, size_t n);

/* One machine as above plus "groups" (ids, sorted). NULL: *found false (no such id), or error. */
json_t *machines_json(struct store *s, int64_t id, bool *found);

/* Reads a stored machine back into a struct match_machine (line 0). 0, -ENOENT or < 0. */
int machines_load(struct store *s, int64_t id, struct match_machine *m);

/* The id of the machine called name: 0, -ENOENT or < 0. */
int machines_by_name(struct store *s, const char *name, int64_t *id);

/*
 * Does a MAC address of m belong to a machine other than self (0: any
 * machine)? Returns 1 with the first such address in mac, its owner's id
 * and name, 0 when none does, or < 0.
 */
int machines_mac_owner(struct store *s, const struct match_machine *m, int64_t self,
                       char mac[MATCH_MAC_SIZE], int64_t *owner, char name[MATCH_NAME_SIZE]);

/*
 * Inserts m (with its MACs and tags) with source "manual", "import" or
 * "agent"; *id gets the new id. -EEXIST when the name or a MAC is taken.
 */
int machines_insert(struct store *s, const struct match_machine *m, const char *source,
                    int64_t *id);

/*
 * Writes m over machine id: its name, ip, subnet, room and notes always;
 * its MACs and tags (replaced whole) only when macs / tags are true.
 * -ENOENT when there is no such machine, -EEXIST when the name or a MAC is
 * taken.
 */
int machines_update(struct store *s, int64_t id, const struct match_machine *m, bool macs,
                    bool tags);

/*
 * Checks that every id names a machine: 0 when all do, 1 with the first
 * one that does not in *missing, or < 0.
 */
int machines_missing(struct store *s, const int64_t *ids, size_t n, int64_t *missing);

/* Are the two records the same machine data (name, addresses, room, notes, MAC and tag sets)? */
bool machines_same(const struct match_machine *a, const struct match_machine *b);

#endif
