/*
 * Unit tests for ratectl.c: how one receiver report is classified
 * (queueing delay, loss above the learned base loss, the two-window minimum
 * that learns the base loss) and how the rate moves per control interval
 * (multiplicative decrease at most once per hold time, the floor, additive
 * increase to the cap, the time pinned at the floor).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ratectl.h"

#define CAP 1000000000ull /* 1 Gbit/s */
#define FLOOR 10000000ull /* 10 Mbit/s */
#define HOLD 200

static void test_delay_means_congestion(void **state)
{
	struct rc_peer peer;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	/* A queue of RC_DELAY_CONGESTED_US or more is congestion, even without loss. */
	assert_true(rc_classify(&peer, 0, RC_DELAY_CONGESTED_US, 100000000, 0, 1000));
	assert_true(rc_classify(&peer, 0, UINT32_MAX, 100000000, 0, 1001));
	/* Just below, with no loss, it is not. */
	assert_false(rc_classify(&peer, 0, RC_DELAY_CONGESTED_US - 1, 100000000, 0, 1002));
	/* A queue that is building taught nothing about the base loss. */
	assert_false(peer.known);
	assert_int_equal(rc_base_loss(&peer), 0);
	/* An empty queue and no loss. */
	assert_false(rc_classify(&peer, 0, 0, 100000000, 0, 1003));
	assert_true(peer.known);
	assert_true(rc_classify(&peer, 0, RC_DELAY_CONGESTED_US, 100000000, 0, 1004));
}

static void test_loss_above_base(void **state)
{
	struct rc_peer peer;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	/* A link that loses 5 % with an empty queue: its base loss. */
	assert_false(rc_classify(&peer, 50, RC_DELAY_CLEAR_US, 100000000, 0, 1000));
	assert_int_equal(rc_base_loss(&peer), 50);
	/* That loss, or up to twice it and the margin, is not congestion. */
	assert_false(rc_classify(&peer, 50, 2000, 100000000, 0, 1100));
	assert_false(rc_classify(&peer, 100 + RC_LOSS_MARGIN, 2000, 100000000, 0, 1200));
	/* More than twice the base and the margin is. */
	assert_true(rc_classify(&peer, 100 + RC_LOSS_MARGIN + 1, 2000, 100000000, 0, 1300));
	assert_true(rc_classify(&peer, 1000, 0, 100000000, 0, 1400));
	/* An unknown base counts as zero: the margin alone. */
	memset(&peer, 0, sizeof(peer));
	assert_false(rc_classify(&peer, RC_LOSS_MARGIN, 2000, 100000000, 0, 1000));
	assert_true(rc_classify(&peer, RC_LOSS_MARGIN + 1, 2000, 100000000, 0, 1000));
}

/* Random loss is learned only from reports with an empty queue. */
static void test_base_learned_with_empty_queue_only(void **state)
{
	struct rc_peer peer;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	/* Loss while a queue builds is not the link's loss: nothing learned. */
	assert_true(rc_classify(&peer, 200, RC_DELAY_CLEAR_US + 1, 100000000, 0, 1000));
	assert_false(peer.known);
	assert_true(rc_classify(&peer, 200, RC_DELAY_CONGESTED_US + 5000, 100000000, 0, 1100));
	assert_false(peer.known);
	/* The same loss with an empty queue is random loss: learned, not congestion. */
	assert_false(rc_classify(&peer, 200, RC_DELAY_CLEAR_US, 100000000, 0, 1200));
	assert_true(peer.known);
	assert_int_equal(rc_base_loss(&peer), 200);
	/* Less loss under a queue does not lower the base... */
	assert_false(rc_classify(&peer, 10, 3000, 100000000, 0, 1300));
	assert_int_equal(rc_base_loss(&peer), 200);
	/* ...less loss with an empty queue does. */
	assert_false(rc_classify(&peer, 120, 0, 100000000, 0, 1400));
	assert_int_equal(rc_base_loss(&peer), 120);
	/* More loss with an empty queue does not raise it within the window. */
	assert_false(rc_classify(&peer, 140, 0, 100000000, 0, 1500));
	assert_int_equal(rc_base_loss(&peer), 120);
	assert_true(rc_classify(&peer, 240 + RC_LOSS_MARGIN + 1, 0, 100000000, 0, 1600));
	assert_int_equal(rc_base_loss(&peer), 120);
}

/*
 * The base loss is the minimum over the current and the previous window of
 * RC_BASE_WINDOW_MS, so a link that got better is followed at once and one
 * that got worse after two windows.
 */
static void test_window_rotation(void **state)
{
	struct rc_peer peer;
	const uint64_t t0 = 50000, w = RC_BASE_WINDOW_MS;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	rc_classify(&peer, 20, 0, 100000000, 0, t0);
	assert_int_equal(rc_base_loss(&peer), 20);
	/* Later in the first window: a worse loss does not count yet. */
	rc_classify(&peer, 80, 0, 100000000, 0, t0 + w - 1);
	assert_int_equal(rc_base_loss(&peer), 20);
	/* The window ends: the new window starts with this report. */
	rc_classify(&peer, 80, 0, 100000000, 0, t0 + w);
	assert_int_equal(peer.prev_min, 20);
	assert_int_equal(peer.cur_min, 80);
	assert_int_equal(rc_base_loss(&peer), 20);
	/* Reports with a queue never rotate the window. */
	rc_classify(&peer, 80, 3000, 100000000, 0, t0 + 3 * w);
	assert_int_equal(peer.prev_min, 20);
	assert_int_equal(rc_base_loss(&peer), 20);
	/* Two windows later the old minimum is gone: the link got worse. */
	rc_classify(&peer, 80, 0, 100000000, 0, t0 + 3 * w + 1);
	assert_int_equal(peer.prev_min, 80);
	assert_int_equal(peer.cur_min, 80);
	assert_int_equal(rc_base_loss(&peer), 80);
	assert_false(rc_classify(&peer, 160 + RC_LOSS_MARGIN, 0, 100000000, 0, t0 + 3 * w + 2));
	/* A better link shows at once. */
	rc_classify(&peer, 5, 0, 100000000, 0, t0 + 3 * w + 3);
	assert_int_equal(rc_base_loss(&peer), 5);
	assert_true(rc_classify(&peer, 80, 0, 100000000, 0, t0 + 3 * w + 4));
}

static void test_init(void **state)
{
	struct ratectl rc;

	(void)state;
	rc_init(&rc, CAP, FLOOR);
	assert_true(rc.rate == CAP);
	assert_true(rc.cap == CAP);
	assert_true(rc.floor == FLOOR);
	assert_false(rc.congested);
	assert_true(rc_floor_time(&rc, 12345) == 0);
	/* A floor above the cap is the cap. */
	rc_init(&rc, FLOOR, CAP);
	assert_true(rc.floor == FLOOR);
	assert_true(rc.rate == FLOOR);
}

static void test_report(void **state)
{
	struct ratectl rc;

	(void)state;
	rc_init(&rc, CAP, FLOOR);
	rc_report(&rc, false);
	assert_false(rc.congested);
	rc_report(&rc, true);
	rc_report(&rc, false); /* one congested report in the interval is enough */
	assert_true(rc.congested);
	assert_true(rc_tick(&rc, 1000, HOLD) == CAP - CAP / 5);
	/* The tick starts a new interval. */
	assert_false(rc.congested);
}

/* Decrease by a fifth, at most once per hold time, however many reports. */
static void test_decrease_once_per_hold(void **state)
{
	struct ratectl rc;
	uint64_t r;

	(void)state;
	rc_init(&rc, CAP, FLOOR);
	rc_report(&rc, true);
	r = rc_tick(&rc, 1000, HOLD);
	assert_true(r == 800000000ull);
	assert_true(rc.hold_until_ms == 1000 + HOLD);
	/* Congested again within the hold: no second decrease, no increase either. */
	for (uint64_t t = 1100; t < 1000 + HOLD; t += 50) {
		rc_report(&rc, true);
		assert_true(rc_tick(&rc, t, HOLD) == 800000000ull);
	}
	assert_true(rc.hold_until_ms == 1000 + HOLD);
	/* At the end of the hold: the next decrease. */
	rc_report(&rc, true);
	assert_true(rc_tick(&rc, 1000 + HOLD, HOLD) == 640000000ull);
	assert_true(rc.hold_until_ms == 1000 + 2 * HOLD);
}

static void test_floor(void **state)
{
	struct ratectl rc;
	uint64_t t = 1000, prev = CAP;
	int steps = 0;

	(void)state;
	rc_init(&rc, CAP, FLOOR);
	while (rc.rate > FLOOR) {
		rc_report(&rc, true);
		rc_tick(&rc, t, HOLD);
		assert_true(rc.rate >= FLOOR);
		assert_true(rc.rate < prev);
		/* Never more than a fifth at a time. */
		assert_true(rc.rate >= prev - prev / 5);
		prev = rc.rate;
		t += HOLD;
		steps++;
	}
	/* 0.8^n * 1e9 <= 1e7 first at n = 21 (0.8^21 = 0.0092). */
	assert_int_equal(steps, 21);
	assert_true(rc.rate == FLOOR);
	/* More congestion does not go below. */
	for (int i = 0; i < 10; i++) {
		rc_report(&rc, true);
		assert_true(rc_tick(&rc, t, HOLD) == FLOOR);
		t += HOLD;
	}
}

/* Additive increase: cap / 32 per uncongested interval, up to the cap exactly. */
static void test_additive_increase(void **state)
{
	struct ratectl rc;
	uint64_t t = 1000;
	int ticks = 0;

	(void)state;
	rc_init(&rc, CAP, FLOOR);
	rc.rate = FLOOR;
	while (rc.rate < CAP) {
		uint64_t before = rc.rate;

		rc_tick(&rc, t, HOLD);
		assert_true(rc.rate == (before + CAP / 32 < CAP ? before + CAP / 32 : CAP));
		t += 100;
		ticks++;
	}
	/* From 1 % to 100 % in 32 intervals (3.2 s at the sender's 100 ms tick). */
	assert_int_equal(ticks, 32);
	assert_true(rc_tick(&rc, t, HOLD) == CAP);
	/* An increase may come right after a decrease: the hold only limits decreases. */
	rc_report(&rc, true);
	assert_true(rc_tick(&rc, t + 100, HOLD) == CAP - CAP / 5);
	assert_true(rc_tick(&rc, t + 200, HOLD) == CAP - CAP / 5 + CAP / 32);
}

/* rc_floor_time counts only while pinned at the floor under congestion. */
static void test_floor_time(void **state)
{
	struct ratectl rc;
	uint64_t t = 1000;

	(void)state;
	rc_init(&rc, CAP, FLOOR);
	/* Congested above the floor: not counting. */
	rc_report(&rc, true);
	rc_tick(&rc, t, HOLD);
	assert_true(rc_floor_time(&rc, t + 5000) == 0);
	/* Reach the floor. */
	while (rc.rate > FLOOR) {
		t += HOLD;
		rc_report(&rc, true);
		rc_tick(&rc, t, HOLD);
	}
	/* Counting from the tick that reached it. */
	assert_true(rc.floor_since_ms == t);
	assert_true(rc_floor_time(&rc, t) == 0);
	assert_true(rc_floor_time(&rc, t + 750) == 750);
	/* Congested ticks inside the hold keep it counting from the same start. */
	rc_report(&rc, true);
	rc_tick(&rc, t + 100, HOLD);
	rc_report(&rc, true);
	rc_tick(&rc, t + 200, HOLD);
	assert_true(rc_floor_time(&rc, t + 10000) == 10000);
	/* One interval without congestion: the rate rises and the count stops. */
	rc_tick(&rc, t + 300, HOLD);
	assert_true(rc.rate > FLOOR);
	assert_true(rc_floor_time(&rc, t + 20000) == 0);
	/* Back at the floor: it counts again, from the tick that reached it. */
	t += 400;
	while (rc.rate > FLOOR) {
		rc_report(&rc, true);
		rc_tick(&rc, t, HOLD);
		t += HOLD;
	}
	assert_true(rc_floor_time(&rc, t - HOLD + 1000) == 1000);
	/* At the floor without congestion the rate rises at once: never counted. */
	rc_init(&rc, CAP, FLOOR);
	rc.rate = FLOOR;
	rc_tick(&rc, t, HOLD);
	assert_true(rc_floor_time(&rc, t + 1000) == 0);
	/* Floor equal to the cap: congestion pins it at once. */
	rc_init(&rc, FLOOR, FLOOR);
	rc_report(&rc, true);
	assert_true(rc_tick(&rc, t, HOLD) == FLOOR);
	assert_true(rc_floor_time(&rc, t + 300) == 300);
}

/* Random loss measured over few packets must not read as congestion. */
static void test_small_samples(void **state)
{
	struct rc_peer peer = {0};

	(void)state;
	/* A base loss of 5 % learned over big reports. */
	assert_false(rc_classify(&peer, 50, 0, 100000, 0, 1000));
	assert_int_equal(rc_base_loss(&peer), 50);
	/* A report of 90 packets: loss is not judged at all, nor learned. */
	assert_false(rc_classify(&peer, 0, 0, 90, 0, 1100));
	assert_false(rc_classify(&peer, 300, 0, 90, 0, 1200));
	assert_int_equal(rc_base_loss(&peer), 50);
	/* 500 packets at 15 % (a burst of link loss): not congestion. */
	assert_false(rc_classify(&peer, 150, 0, 500, 0, 1300));
	/* 500 packets at 20 %: congestion. */
	assert_true(rc_classify(&peer, 200, 0, 500, 0, 1400));
	/* Delay always counts, and so does a socket that overflowed. */
	assert_true(rc_classify(&peer, 0, RC_DELAY_CONGESTED_US, 10, 0, 1500));
	assert_true(rc_classify(&peer, 0, 0, 10, 1, 1600));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_samples),
	    cmocka_unit_test(test_delay_means_congestion),
	    cmocka_unit_test(test_loss_above_base),
	    cmocka_unit_test(test_base_learned_with_empty_queue_only),
	    cmocka_unit_test(test_window_rotation),
	    cmocka_unit_test(test_init),
	    cmocka_unit_test(test_report),
	    cmocka_unit_test(test_decrease_once_per_hold),
	    cmocka_unit_test(test_floor),
	    cmocka_unit_test(test_additive_increase),
	    cmocka_unit_test(test_floor_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
