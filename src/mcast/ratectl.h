/*
 * The sender's rate controller. It paces between a floor and a cap and
 * reacts to congestion, not to loss as such: random loss on a link does not
 * fall when the sender slows down, so reacting to it would only waste the
 * link. Congestion shows as queueing delay growing at a receiver (a queue
 * filling in front of its bottleneck) or as loss clearly above the loss that
 * receiver sees when its queue is empty (its base loss). Pure logic, no I/O.
 */
#ifndef MC_RATECTL_H
#define MC_RATECTL_H

#include <stdbool.h>
#include <stdint.h>

#define RC_DELAY_CONGESTED_US 8000 /* queueing delay that means a queue is building */
#define RC_DELAY_CLEAR_US 1500     /* below this a queue is empty: loss then is base loss */
#define RC_MIN_SAMPLE 200          /* packets in a report below which loss is not judged */
#define RC_BASE_SAMPLE 1000        /* packets in a report needed to learn base loss */
#define RC_LOSS_MARGIN 60          /* per mille above twice the base loss: congestion */

/*
 * A receiver's base loss is the least loss it reported with an empty queue
 * over the last two windows of RC_BASE_WINDOW_MS: random link loss does not
 * depend on the rate, so its minimum over time is a fair estimate, and a
 * window lets it follow a link that got better or worse.
 */
#define RC_BASE_WINDOW_MS 5000

struct rc_peer {
	uint16_t cur_min, prev_min; /* per mille */
	uint64_t window_start_ms;
	bool known;
};

/* The peer's current base loss in per mille (0 when unknown). */
uint16_t rc_base_loss(const struct rc_peer *peer);

struct ratectl {
	uint64_t cap, floor, rate; /* bits per second */
	uint64_t hold_until_ms;    /* no further decrease before this */
	bool congested;            /* seen in the current interval */
	uint64_t floor_since_ms;   /* congested at the floor since; 0 if not */
};

void rc_init(struct ratectl *rc, uint64_t cap, uint64_t floor);
/*
 * Classifies one receiver report (npkts packets received in its interval,
 * overflows dropped by its socket):
 * returns true when it signals congestion. Updates the peer's base loss. Does not change the rate.
 */
bool rc_classify(struct rc_peer *peer, uint16_t loss_permille, uint32_t delay_us, uint32_t npkts,
                 uint32_t overflows, uint64_t now_ms);
/* Notes a report from a receiver that counts for the rate (an active one). */
void rc_report(struct ratectl *rc, bool congested);
/*
 * Called once per control interval: decreases the rate multiplicatively
 * after congestion (at most once per hold time), increases it additively
 * otherwise. Returns the new rate.
 */
uint64_t rc_tick(struct ratectl *rc, uint64_t now_ms, uint32_t hold_ms);
/* Milliseconds the rate has been pinned at the floor under congestion. */
uint64_t rc_floor_time(const struct ratectl *rc, uint64_t now_ms);

#endif
