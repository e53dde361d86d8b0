/* The hub's audit log under concurrency: many writers, each with its own hub
 * handle (threads of one process, as serve's request threads and its outbox
 * thread are, and other processes, as a CLI next to serve is), append
 * entries and open credentials at the same time. None may fail, and the
 * recorded head must match the log afterwards. Real SQLite, real files. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/hub.h"
#include "test.h"

#define THREADS 8
#define PER_THREAD 60
#define PROCESSES 2
#define PER_PROCESS 40

static char dir[64];
static atomic_int failures;

/* One writer: its own hub handle, PER audit entries, each followed by
 * opening the account's password (as a sync or the outbox does). */
static int writer(int rounds)
{
	struct hub *hub = NULL;
	struct hub_user u;
	struct hub_account *a = NULL;
	size_t n = 0;
	struct vault_kek *kek = NULL;
	const char *err;
	int failed = 0;
	if (hub_open(dir, true, &hub, &err) < 0 || hub_user_get(hub, "alice", &u, &err) < 0 ||
	    hub_account_list(hub, u.id, &a, &n, &err) < 0 || n != 1 ||
	    hub_user_kek(hub, &u, NULL, &kek, &err) < 0) {
		fprintf(stderr, "writer setup: %s\n", err);
		hub_close(&hub);
		return rounds;
	}
	for (int i = 0; i < rounds; i++) {
		struct audit_detail d[] = {{"purpose", "send"}, {"kind", "smtp-password"}};
		char *secret = NULL;
		if (hub_audit(hub, &u, AUDIT_CREDENTIAL_DECRYPT, a[0].id, d, 2, &err) < 0 ||
		    hub_account_open_secret(hub, &u, &a[0], kek, "smtp-password", &secret, &err) <
		        0) {
			fprintf(stderr, "writer: %s\n", err);
			failed++;
			continue;
		}
		if (strcmp(secret, "hunter2") != 0)
			failed++;
		vault_secret_free(&secret);
	}
	vault_kek_free(&kek);
	hub_accounts_free(&a, n);
	hub_close(&hub);
	return failed;
}

static atomic_bool writers_done;

/* Verifies the log again and again while the writers append: an append in
 * progress is never taken for tampering. */
static void *verifier_thread(void *arg)
{
	struct hub *hub = NULL;
	struct hub_user u;
	const char *err, *note;
	uint64_t count;
	(void)arg;
	if (hub_open(dir, false, &hub, &err) < 0 || hub_user_get(hub, "alice", &u, &err) < 0) {
		atomic_fetch_add(&failures, 1);
		hub_close(&hub);
		return NULL;
	}
	while (!atomic_load(&writers_done)) {
		if (hub_audit_verify(hub, &u, &count, &note, &err) < 0) {
			fprintf(stderr, "verify during appends: %s\n", err);
			atomic_fetch_add(&failures, 1);
		}
		usleep(20000);
	}
	hub_close(&hub);
	return NULL;
}

static void *writer_thread(void *arg)
{
	(void)arg;
	atomic_fetch_add(&failures, writer(PER_THREAD));
	return NULL;
}

int main(void)
{
	const char *err;
	struct hub *hub;
	struct hub_user u;
	bool existed;
	snprintf(dir, sizeof(dir), "/tmp/mk-hub-audit-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	CHECK(rmdir(dir) == 0);
	CHECK(hub_create(dir, NULL, &existed, &err) == 0);
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	CHECK(hub_user_add(hub, "alice", NULL, false, NULL, &err) == 0);
	CHECK(hub_user_get(hub, "alice", &u, &err) == 0);
	struct vault_kek *kek;
	int64_t id;
	CHECK(hub_user_kek(hub, &u, NULL, &kek, &err) == 0);
	CHECK(hub_account_add(hub, &u, kek, "imaps://127.0.0.1:1", "submissions://127.0.0.1:1",
	                      "alice@example.com", NULL, "hunter2", &id, &err) == 0);
	vault_kek_free(&kek);

	/* Other processes and threads of this one, all at once. */
	pid_t kids[PROCESSES];
	for (int i = 0; i < PROCESSES; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0)
			_exit(writer(PER_PROCESS) == 0 ? 0 : 1);
	}
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, writer_thread, NULL) == 0);
	pthread_t verifier;
	CHECK(pthread_create(&verifier, NULL, verifier_thread, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < PROCESSES; i++) {
		int status;
		CHECK(waitpid(kids[i], &status, 0) == kids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			atomic_fetch_add(&failures, 1);
	}
	atomic_store(&writers_done, true);
	pthread_join(verifier, NULL);
	if (atomic_load(&failures) != 0)
		fprintf(stderr, "%d concurrent writes failed\n", atomic_load(&failures));
	CHECK(atomic_load(&failures) == 0);

	/* Every entry is in the log, and the recorded head is its end. */
	uint64_t count = 0;
	const char *note = NULL;
	if (hub_audit_verify(hub, &u, &count, &note, &err) < 0)
		fprintf(stderr, "verify: %s\n", err);
	CHECK(hub_audit_verify(hub, &u, &count, &note, &err) == 0);
	CHECK(note == NULL);
	CHECK(count == 1 + THREADS * PER_THREAD + PROCESSES * PER_PROCESS);
	hub_close(&hub);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	TEST_DONE("test-hub-audit");
}
