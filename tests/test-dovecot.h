/*
 * A real Dovecot on loopback for C tests (tests/fixture/dovecot.sh): start
 * one in a fresh directory, read the env file it writes, log in to it, stop
 * it. Header-only (static), like test.h; include after test.h.
 */
#ifndef MK_TEST_DOVECOT_H
#define MK_TEST_DOVECOT_H

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap/imap-client.h"

/* The running Dovecot's directory ("" when none) and its env values. */
static char dovecot_dir[64];
static char env_port[16], env_ca[256], env_pass_file[256], env_user[64];

static void dovecot_stop(void)
{
	if (dovecot_dir[0] == '\0')
		return;
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "bash tests/fixture/dovecot.sh stop %s >/dev/null 2>&1 </dev/null; rm -rf %s",
	         dovecot_dir, dovecot_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not stop Dovecot in %s\n", dovecot_dir);
	dovecot_dir[0] = '\0';
}

static void dovecot_env_value(const char *line, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
		CHECK(snprintf(out, size, "%s", line + kl + 1) < (int)size);
		out[strcspn(out, "\r\n")] = '\0';
	}
}

/* Start a Dovecot in /tmp/<name>-XXXXXX, with caps as its imap_capability
 * when not NULL; exits the test when it does not start. */
static void dovecot_start(const char *name, const char *caps)
{
	CHECK(snprintf(dovecot_dir, sizeof(dovecot_dir), "/tmp/%s-XXXXXX", name) <
	      (int)sizeof(dovecot_dir));
	CHECK(mkdtemp(dovecot_dir) != NULL);
	CHECK(chmod(dovecot_dir, 0755) == 0);
	char cmd[1024], path[256];
	CHECK(snprintf(cmd, sizeof(cmd),
	               "bash tests/fixture/dovecot.sh start %s %s%s%s >/dev/null 2>%s.log "
	               "</dev/null",
	               dovecot_dir, caps != NULL ? "--capability '" : "", caps != NULL ? caps : "",
	               caps != NULL ? "'" : "", dovecot_dir) < (int)sizeof(cmd));
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s.log >&2; rm -f %s.log", dovecot_dir,
		         dovecot_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "no log\n");
		fprintf(stderr, "dovecot.sh start failed\n");
		exit(1);
	}
	snprintf(cmd, sizeof(cmd), "%s.log", dovecot_dir);
	unlink(cmd);
	snprintf(path, sizeof(path), "%s/env", dovecot_dir);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	char line[512];
	while (fgets(line, sizeof(line), f) != NULL) {
		dovecot_env_value(line, "IMAPS_PORT", env_port, sizeof(env_port));
		dovecot_env_value(line, "CA_FILE", env_ca, sizeof(env_ca));
		dovecot_env_value(line, "PASS_FILE", env_pass_file, sizeof(env_pass_file));
		dovecot_env_value(line, "IMAP_USER", env_user, sizeof(env_user));
	}
	fclose(f);
	CHECK(env_port[0] != '\0' && env_ca[0] != '\0' && env_pass_file[0] != '\0' &&
	      env_user[0] != '\0');
}

/* A new session logged in as the fixture's user (TLS, no COMPRESS). */
static struct imap_client *dovecot_login(void)
{
	char pass[256];
	FILE *f = fopen(env_pass_file, "r");
	CHECK(f != NULL);
	size_t n = fread(pass, 1, sizeof(pass) - 1, f);
	fclose(f);
	pass[n] = '\0';
	struct imap_client_settings set = {
	    .host = "127.0.0.1",
	    .port = env_port,
	    .security = IMAP_SECURITY_TLS,
	    .ca_file = env_ca,
	    .timeout_ms = 10000,
	    .compress = IMAP_COMPRESS_NO,
	};
	const char *error;
	struct imap_client *c = NULL;
	OK(imap_client_connect(&set, &c, &error));
	OK(imap_client_login(c, env_user, pass, &error));
	sodium_memzero(pass, sizeof(pass));
	return c;
}

#endif
