/* serve's settings in DIR/mailkeep.conf (hub/hub-settings.h): defaults,
 * every key, bad values and unknown keys named with file and line, and the
 * hub's own reader leaving serve's keys alone. Real files, no server. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub-settings.h"
#include "hub/hub.h"
#include "test.h"

static char dir[64], path[128];

static void conf(const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	CHECK(fclose(f) == 0);
}

int main(void)
{
	const char *error;
	struct hub_serve_settings set;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-settings-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/mailkeep.conf", dir);

	/* No file: the embedded defaults. */
	OK(hub_serve_settings_read(dir, &set, &error));
	CHECK_STR(set.listen, "127.0.0.1:8080");
	CHECK(set.public_url[0] == '\0' && set.tls_cert[0] == '\0' && set.tls_key[0] == '\0');
	CHECK(set.sync_interval == 300 && set.max_connections == 128);
	CHECK(set.max_connections_per_address == 16 && set.header_timeout == 10);
	CHECK(set.max_body_memory == 64u * 1024 * 1024);
	CHECK(set.access_log[0] == '\0' && set.trusted_proxy[0] == '\0');
	CHECK(set.push == 1 && set.full_sync_interval == 86400 && set.push_sweep_interval == 300);
	CHECK(set.push_connect_rate == 50 && set.push_idle_restart == 1680 && set.push_notify == 1);
	CHECK(set.sync_keep_seconds == 120 && set.sync_keep_max == 64);

	/* Every key, with the hub's own settings, comments and blanks. */
	conf("# hub\n"
	     "inactive_purge_days = 400\n"
	     "\n"
	     "  listen = [::1]:9090  \n"
	     "public_url=https://mail.example.org/\n"
	     "tls_cert = /etc/ssl/c.pem\n"
	     "tls_key\t=\t/etc/ssl/k.pem\n"
	     "sync_interval = 0\n"
	     "access_log = /var/log/mailkeep/access.log\n"
	     "trusted_proxy = 127.0.0.1\n"
	     "max_connections = 4096\n"
	     "max_connections_per_address = 1\n"
	     "header_timeout = 3600\n"
	     "max_body_memory = 256M\n"
	     "push = off\n"
	     "full_sync_interval = 3600\n"
	     "push_sweep_interval = 10\n"
	     "push_connect_rate = 10000\n"
	     "push_idle_restart = 1740\n"
	     "push_notify = off\n"
	     "sync_keep_seconds = 0\n"
	     "sync_keep_max = 4096\n");
	OK(hub_serve_settings_read(dir, &set, &error));
	CHECK_STR(set.listen, "[::1]:9090");
	CHECK_STR(set.public_url, "https://mail.example.org/");
	CHECK_STR(set.tls_cert, "/etc/ssl/c.pem");
	CHECK_STR(set.tls_key, "/etc/ssl/k.pem");
	CHECK_STR(set.access_log, "/var/log/mailkeep/access.log");
	CHECK_STR(set.trusted_proxy, "127.0.0.1");
	CHECK(set.sync_interval == 0 && set.max_connections == 4096);
	CHECK(set.max_connections_per_address == 1 && set.header_timeout == 3600);
	CHECK(set.max_body_memory == 256u * 1024 * 1024);
	CHECK(set.push == 0 && set.full_sync_interval == 3600 && set.push_sweep_interval == 10);
	CHECK(set.push_connect_rate == 10000 && set.push_idle_restart == 1740 &&
	      set.push_notify == 0);
	CHECK(set.sync_keep_seconds == 0 && set.sync_keep_max == 4096);

	/* The hub reads the same file: serve's keys are not unknown to it. */
	bool existed;
	CHECK(unlink(path) == 0);
	OK(hub_create(dir, NULL, &existed, &error));
	CHECK(existed == false);
	conf("inactive_purge_days = 400\nlisten = 0.0.0.0:8080\nmax_body_memory = 11M\n");
	struct hub *hub = NULL;
	OK(hub_open(dir, false, &hub, &error));
	CHECK(hub_get_settings(hub)->inactive_purge_days == 400);
	hub_close(&hub);
	OK(hub_serve_settings_read(dir, &set, &error));
	CHECK(set.max_body_memory == 11u * 1024 * 1024);
	/* ... but a typo is, with file, line and where to look. */
	conf("listen = 0.0.0.0:8080\n# x\nmax_conections = 5\n");
	CHECK(hub_open(dir, false, &hub, &error) < 0);
	CHECK(strstr(error, "mailkeep.conf:3:") != NULL && strstr(error, "max_conections") != NULL);
	CHECK(strstr(error, "man mailkeep") != NULL);

	/* master_key_credential: the service (systemd set $CREDENTIALS_DIRECTORY)
	 * reads the credential; a command run by hand (none set) the master_key
	 * file, which is still checked against hub.db. */
	conf("master_key_credential = master.key\n");
	CHECK(unsetenv("CREDENTIALS_DIRECTORY") == 0);
	OK(hub_open(dir, true, &hub, &error));
	hub_close(&hub);
	char creds[128], from[160], to[160];
	snprintf(creds, sizeof(creds), "%s/creds", dir);
	CHECK(mkdir(creds, 0700) == 0);
	CHECK(setenv("CREDENTIALS_DIRECTORY", creds, 1) == 0);
	REFUSED(hub_open(dir, true, &hub, &error), "master.key");
	snprintf(from, sizeof(from), "%s/master.key", dir);
	snprintf(to, sizeof(to), "%s/master.key", creds);
	CHECK(rename(from, to) == 0);
	OK(hub_open(dir, true, &hub, &error));
	hub_close(&hub);
	CHECK(unsetenv("CREDENTIALS_DIRECTORY") == 0);
	REFUSED(hub_open(dir, true, &hub, &error), "outside the systemd unit the master_key file");

	/* Bad values: file, line, key and what to use. */
	static const struct {
		const char *text, *fragment;
	} bad[] = {
	    {"listen = 8080\n", ":1: bad listen '8080': use ADDR:PORT"},
	    {"listen = 1.2.3.4:70000\n", ":1: bad listen"},
	    {"listen =\n", ":1: bad listen ''"},
	    {"public_url = mail.example.org\n", "use the http:// or https:// URL"},
	    {"sync_interval = -1\n", "use 0 to 604800 seconds"},
	    {"sync_interval = 604801\n", "bad sync_interval"},
	    {"sync_interval = 5m\n", "bad sync_interval '5m'"},
	    {"max_connections = 0\n", "bad max_connections '0': use 1 to 4096"},
	    {"max_connections_per_address = 4097\n", "bad max_connections_per_address"},
	    {"header_timeout = 0\n", "bad header_timeout"},
	    {"max_body_memory = 10M\n", "bad max_body_memory '10M': use more than 10M"},
	    {"max_body_memory = 2T\n", "bad max_body_memory"},
	    {"max_body_memory = 64X\n", "bad max_body_memory"},
	    {"max_body_memory = 99999999999999999999\n", "bad max_body_memory"},
	    {"tls_cert = /c.pem\n", "tls_cert and tls_key go together"},
	    {"# c\nlisten = 1.2.3.4:1\nlisten = 1.2.3.4:2\n",
	     ":3: listen is already set on line 2; keep one of them"},
	    {"listen 1.2.3.4:1\n", ":1: expected 'key = value'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf(bad[i].text);
		error = NULL;
		if (hub_serve_settings_read(dir, &set, &error) != -1 || error == NULL ||
		    strstr(error, bad[i].fragment) == NULL || strstr(error, path) == NULL) {
			fprintf(stderr, "case %zu '%s': got '%s', want '%s'\n", i, bad[i].text,
			        error != NULL ? error : "(none)", bad[i].fragment);
			return 1;
		}
	}
	/* One setting from its text, as the command line would. */
	hub_serve_settings_default(&set);
	OK(hub_serve_setting_set(&set, "max_body_memory", "1G", &error));
	CHECK(set.max_body_memory == 1024u * 1024 * 1024);
	REFUSED(hub_serve_setting_set(&set, "nope", "1", &error), "unknown serve setting 'nope'");
	OK(hub_serve_setting_set(&set, "push", "off", &error));
	CHECK(set.push == 0);
	OK(hub_serve_setting_set(&set, "push", "on", &error));
	CHECK(set.push == 1);
	REFUSED(hub_serve_setting_set(&set, "push_notify", "maybe", &error), "push_notify");
	REFUSED(hub_serve_setting_set(&set, "sync_keep_seconds", "3601", &error),
	        "sync_keep_seconds");
	REFUSED(hub_serve_setting_set(&set, "sync_keep_max", "4097", &error), "sync_keep_max");
	CHECK(hub_serve_setting_known("header_timeout") && !hub_serve_setting_known("master_key"));

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	printf("hub-settings: ok\n");
	return 0;
}
