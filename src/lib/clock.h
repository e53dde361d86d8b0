#ifndef MK_CLOCK_H
#define MK_CLOCK_H

/* Seconds on the monotonic clock, for durations and rate limits. */
double clock_mono(void);

#endif
