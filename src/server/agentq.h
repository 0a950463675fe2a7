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

/* True when machine's agent polled or said hello within [agents] offline_after. */
bool agentq_online(struct srv *srv, int64_t machine);

#endif
