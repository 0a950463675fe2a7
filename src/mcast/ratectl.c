/* Rate control for the sender (see ratectl.h). */
#include "ratectl.h"

void rc_init(struct ratectl *rc, uint64_t cap, uint64_t floor)
{
	rc->cap = cap;
	rc->floor = floor < cap ? floor : cap;
	rc->rate = cap;
	rc->hold_until_ms = 0;
	rc->congested = false;
	rc->floor_since_ms = 0;
}

uint16_t rc_base_loss(const struct rc_peer *peer)
{
	if (!peer->known)
		return 0;
	return peer->cur_min < peer->prev_min ? peer->cur_min : peer->prev_min;
}

bool rc_classify(struct rc_peer *peer, uint16_t loss_permille, uint32_t delay_us, uint32_t npkts,
                 uint32_t overflows, uint64_t now_ms)
{
	uint16_t base;

	/* A queue building in front of the receiver, or its socket overflowing. */
	if (delay_us >= RC_DELAY_CONGESTED_US || overflows > 0)
		return true;
	/* Too few packets to say anything about loss: only the above count. */
	if (npkts < RC_MIN_SAMPLE)
		return false;
	if (delay_us <= RC_DELAY_CLEAR_US && npkts >= RC_BASE_SAMPLE) {
		/* An empty queue: what this receiver loses now is its link's loss. */
		if (!peer->known) {
			peer->cur_min = peer->prev_min = loss_permille;
			peer->window_start_ms = now_ms;
			peer->known = true;
		} else if (now_ms - peer->window_start_ms >= RC_BASE_WINDOW_MS) {
			peer->prev_min = peer->cur_min;
			peer->cur_min = loss_permille;
			peer->window_start_ms = now_ms;
		} else if (loss_permille < peer->cur_min) {
			peer->cur_min = loss_permille;
		}
	}
	/*
	 * Loss alone counts as congestion only far above the base loss: twice
	 * it and the margin more. Link loss comes in bursts (a dropped GSO
	 * train, a noisy cable), so a report can show twice the average without
	 * any queue; a path that really cannot take the rate loses far more.
	 */
	base = rc_base_loss(peer);
	return loss_permille > 2u * base + RC_LOSS_MARGIN;
}

void rc_report(struct ratectl *rc, bool congested)
{
	if (congested)
		rc->congested = true;
}

uint64_t rc_tick(struct ratectl *rc, uint64_t now_ms, uint32_t hold_ms)
{
	if (rc->congested) {
		if (now_ms >= rc->hold_until_ms) {
			uint64_t r = rc->rate - rc->rate / 5;

			rc->rate = r > rc->floor ? r : rc->floor;
			rc->hold_until_ms = now_ms + hold_ms;
		}
		if (rc->rate == rc->floor && rc->floor_since_ms == 0)
			rc->floor_since_ms = now_ms ? now_ms : 1;
	} else {
		uint64_t step = rc->cap / 32;

		rc->rate = rc->rate + step < rc->cap ? rc->rate + step : rc->cap;
		rc->floor_since_ms = 0;
	}
	if (rc->rate > rc->floor)
		rc->floor_since_ms = 0;
	rc->congested = false;
	return rc->rate;
}

uint64_t rc_floor_time(const struct ratectl *rc, uint64_t now_ms)
{
	return rc->floor_since_ms ? now_ms - rc->floor_since_ms : 0;
}
