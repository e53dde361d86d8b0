/* DIR/hub.anchor after crashes and full disks: a creation cut short before
 * its header, and a line cut short, neither stop the hub nor turn into a
 * line of their own (a cut "removed 12" must never read as "removed 1").
 * The next writer cuts the fragment off. Real files, no server. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub-private.h"
#include "test.h"

static char dir[64], path[128];

static void put(const char *text, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static char *slurp(void)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	CHECK(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

int main(void)
{
	const char *error;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-hub-anchor-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/hub.anchor", dir);
	struct hub *hub;
	bool existed;
	OK(hub_create(dir, NULL, &existed, &error));
	OK(hub_open(dir, false, &hub, &error));
	struct hub_anchor a;

	/* Created, killed before the header: read as empty, repaired by the
	 * next note. */
	put("", O_TRUNC);
	OK(hub_anchor_read(hub, 1, &a, &error));
	CHECK(a.secret_version == 0 && !a.removed);
	put("mailkeep-anc", O_TRUNC);
	OK(hub_anchor_read(hub, 1, &a, &error));
	OK(hub_anchor_note(hub, "secret", 1, 3, &error));
	CHECK_STR(slurp(), "mailkeep-anchor 1\nsecret 1 3\n");

	/* A line cut short: ignored, then cut off, never completed into
	 * another line. */
	put("removed 1", O_APPEND);
	OK(hub_anchor_read(hub, 1, &a, &error));
	CHECK(a.secret_version == 3 && !a.removed);
	OK(hub_anchor_note(hub, "removed", 12, 0, &error));
	CHECK_STR(slurp(), "mailkeep-anchor 1\nsecret 1 3\nremoved 12\n");
	OK(hub_anchor_read(hub, 1, &a, &error));
	CHECK(a.secret_version == 3 && !a.removed);
	OK(hub_anchor_read(hub, 12, &a, &error));
	CHECK(a.removed);

	/* What is not a cut-off append is damage, and says so. */
	put("bogus line\n", O_APPEND);
	REFUSED(hub_anchor_read(hub, 1, &a, &error), "damaged");

	hub_close(&hub);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
