/*
 * The agents' command queues and presence (docs/agent-protocol.md), as the
 * rest of mlserver sees them. The queue lives in the store (agent_commands);
 * this module also owns the long polls that wait on it, and wakes a
 * machine's waiting poll when a command is queued for it.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef ML_AGENTQ_H
#define ML_AGENTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct srv;
struct store;

/* Sets up the waiters' registry on srv. 0 or a negative code with a reason. */
int agentq_start(struct srv *srv, char *err, size_t errsz);
/* Answers every waiting poll (empty) and frees the registry. Accepts a server without one. */
void agentq_stop(struct srv *srv);

/*
 * Queues a command of kind ("receive", "wol", "rollback", "cancel") with
 * args (not stolen) for machine, tied to run (0: none), expiring ttl_s
 * seconds from now (0: never; an expired command is never sent and ends
 * "expired"). Wakes the machine's waiting poll. Returns 0 with the new
 * command's id in *id, or a negative store code.
 */
int agentq_push(struct srv *srv, int64_t machine, int64_t run, const char *kind, json_t *args,
                int64_t ttl_s, int64_t *id);

/*
 * Ends the unfinished commands of run (all of them when machine is 0, else
 * only that machine's): queued ones become "cancelled" at once; for sent or
 * running ones a "cancel" command is queued so the agent stops them, and
 * they end when the agent says so. Returns the number of commands touched,
 * or a negative store code.
 */
int agentq_cancel_run(struct srv *srv, int64_t run, int64_t machine);

/*
 * Wakes machine's waiting poll, if any, which then checks its credential
 * again: after a revocation it answers 401 at once instead of waiting.
 */
void agentq_kick(struct srv *srv, int64_t machine);

/*
 * Ends every unfinished command of machine ("cancelled"): its credential
 * was revoked or replaced, so no agent will finish them, and a new one
 * must not run the old identity's commands. Call it inside the
 * transaction that revokes. Returns how many, or a negative store code.
 */
int agentq_drop_machine(struct store *s, int64_t machine);

/* True when machine's agent polled or said hello within [agents] offline_after. */
bool agentq_online(struct srv *srv, int64_t machine);

/*
 * Added for the agent API (api_agent.c, api_agents.c, api.c).
 */

struct req;

/* Enrollment tokens ("mle_") and credentials ("mla_") are auth.h's secrets. */

/*
 * Checks an agent credential ("mla_..."): 0 with its machine and
 * credential ids, -EACCES when it is malformed, unknown or revoked (or its
 * machine deleted), -EIO when the store fails.
 */
int agentq_cred_check(struct srv *srv, const char *token, int64_t *machine, int64_t *cred);

/*
 * Records that machine's agent (credential cred, from address peer) was
 * seen now: machines.last_seen_at and the credential's last_seen_at and
 * last_addr. Writes at most once every AGENTQ_TOUCH_S seconds per machine
 * unless force (a hello always writes). 0 or a negative store code.
 */
#define AGENTQ_TOUCH_S 5
int agentq_touch(struct srv *srv, int64_t machine, int64_t cred, const char *peer, bool force);

/*
 * The commands to hand machine's agent now: first its queued commands past
 * their expiry become "expired"; then every unfinished one (queued, sent,
 * running), oldest first, as the protocol's COMMAND objects, and the
 * queued ones become "sent"; how many did is in *fresh (may be NULL).
 * Returns a new JSON array, or NULL on error.
 */
json_t *agentq_take(struct srv *srv, int64_t machine, int *fresh);

/*
 * The long poll of machine's agent on request r, waiting at most wait_ms.
 * Returns 0 with *out (a new array) to answer with; or 1 when r is parked
 * (r->suspend is set; the front end calls the handler again, which calls
 * this again, when a command is pushed for machine, the wait ends, a
 * newer poll of the same machine replaces this one (it then answers an
 * empty list) or the server stops); or a negative code. A request that
 * cannot park (r->park NULL) or was resumed answers at once, with every
 * unfinished command. A new poll answers at once only when a command was
 * queued since the last answer, or when all is set (the agent's first
 * poll after a start or a lost connection) and a command is unfinished.
 */
int agentq_poll(struct req *r, int64_t machine, int64_t wait_ms, bool all, json_t **out);

/* The number of polls waiting right now (tests, diagnostics). */
unsigned agentq_waiting(struct srv *srv);

#endif
