/* A tiny test harness: CHECK() reports file:line and fails the binary. */
#ifndef MK_TEST_H
#define MK_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int test_failures;

#define CHECK(cond)                                                                       \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			test_failures++;                                                   \
		}                                                                          \
	} while (0)

/* Ends main(): prints the summary line and returns the exit status. */
#define TEST_DONE(checks_name)                                                            \
	do {                                                                               \
		printf("%s: %s\n", checks_name, test_failures == 0 ? "ok" : "FAILED");     \
		return test_failures == 0 ? 0 : 1;                                         \
	} while (0)

#endif
