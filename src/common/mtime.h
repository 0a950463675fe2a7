/* Monotonic time. */
#ifndef ML_MTIME_H
#define ML_MTIME_H

#include <stdint.h>

uint64_t mtime_ns(void);
uint64_t mtime_us(void);
uint64_t mtime_ms(void);

#endif
