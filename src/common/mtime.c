/*
 * Monotonic time. CLOCK_MONOTONIC never jumps with the wall clock, so
 * timeouts and rates stay right across NTP steps. It cannot fail on Linux
 * with a valid clock id; if it ever does, nothing time-based can be trusted,
 * so that aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mtime.h"

uint64_t mtime_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("clock_gettime(CLOCK_MONOTONIC)");
		abort();
	}
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mtime_us(void)
{
	return mtime_ns() / 1000u;
}

uint64_t mtime_ms(void)
{
	return mtime_ns() / 1000000u;
}
