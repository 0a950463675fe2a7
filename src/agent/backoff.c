/*
 * Reconnect delays (docs/agent-protocol.md): after an error the agent waits
 * 1 s, doubling up to 60 s, each delay scaled by a random factor in [0.8,
 * 1.2] so that a room of agents restarted together does not poll in step.
 * Pure: the caller gives the random number, so tests can pin it.
 */
#include "agent.h"

void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms)
{
	b->min_ms = min_ms ? min_ms : 1;
	b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
	b->next_ms = b->min_ms;
}

uint32_t backoff_next(struct backoff *b, uint32_t rnd)
{
	uint64_t base = b->next_ms ? b->next_ms : b->min_ms;
	/* 0.8 + 0.4 * rnd / 2^32-1, in integer arithmetic. */
	uint64_t d = base * 8 / 10 + (base * 4 / 10) * rnd / UINT32_MAX;
	uint64_t next = base * 2;
	b->next_ms = (uint32_t)(next > b->max_ms ? b->max_ms : next);
	return (uint32_t)d;
}

void backoff_reset(struct backoff *b)
{
	b->next_ms = b->min_ms;
}
