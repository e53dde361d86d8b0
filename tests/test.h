/* The test harness shared by the tests/test-*.c binaries. */
#ifndef MK_TEST_H
#define MK_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Failures counted by checks that let a test go on (see TEST_DONE). */
static int test_failures __attribute__((unused));

/* A failed CHECK reports file:line and ends the test binary. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define CHECK_STR(got, want)                                                                       \
	do {                                                                                       \
		const char *got_ = (got), *want_ = (want);                                         \
		if (strcmp(got_, want_) != 0) {                                                    \
			fprintf(stderr, "%s:%d: mismatch\n  got:  '%s'\n  want: '%s'\n", __FILE__, \
			        __LINE__, got_, want_);                                            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

/* OK and REFUSED expect "const char *error" in scope, the error_r of the
 * call: OK(call) must return 0; REFUSED(call, fragment) must return -1 with
 * an error that contains fragment. */
#define OK(call)                                                                                   \
	do {                                                                                       \
		error = NULL;                                                                      \
		if ((call) != 0) {                                                                 \
			fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,       \
			        error != NULL ? error : "(no error)");                             \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define REFUSED(call, fragment)                                                                    \
	do {                                                                                       \
		error = NULL;                                                                      \
		CHECK((call) == -1);                                                               \
		CHECK(error != NULL);                                                              \
		if (strstr(error, fragment) == NULL) {                                             \
			fprintf(stderr, "%s:%d: error '%s' lacks '%s'\n", __FILE__, __LINE__,      \
			        error, fragment);                                                  \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

/* Ends main(): prints the summary line and returns the exit status. */
#define TEST_DONE(name)                                                                            \
	do {                                                                                       \
		printf("%s: %s\n", name, test_failures == 0 ? "ok" : "FAILED");                    \
		return test_failures == 0 ? 0 : 1;                                                 \
	} while (0)

#endif
