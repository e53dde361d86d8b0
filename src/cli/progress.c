/* A one-line progress display for long syncs, on a terminal only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lib/clock.h"
#include "sync/sync.h"

struct cli_progress {
	bool active;
	bool shown;
	double start, last;
	const char *folder;
	uint64_t bytes_at_folder_start;
};

struct cli_progress *cli_progress_create(bool quiet)
{
	struct cli_progress *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->active = !quiet && isatty(STDERR_FILENO);
	p->start = clock_mono();
	return p;
}

void cli_progress_update(void *ctx, const struct sync_progress *sp)
{
	struct cli_progress *p = ctx;
	if (p == NULL || !p->active)
		return;
	double t = clock_mono();
	if (p->folder != sp->folder) {
		p->folder = sp->folder;
		p->start = t;
	}
	if (t - p->last < 0.2 && sp->msgs_done != sp->msgs_total)
		return;
	p->last = t;
	if (sp->msgs_total == 0)
		return;
	double elapsed = t - p->start;
	double rate = elapsed > 0 ? (double)sp->bytes_done / elapsed : 0;
	double left = rate > 0 && sp->bytes_total > sp->bytes_done
	                  ? (double)(sp->bytes_total - sp->bytes_done) / rate
	                  : 0;
	fprintf(stderr, "\r\033[K%.30s  %llu/%llu msgs  %.1f/%.1f MB  %.1f MB/s  %d:%02d left",
	        sp->folder, (unsigned long long)sp->msgs_done, (unsigned long long)sp->msgs_total,
	        (double)sp->bytes_done / 1e6, (double)sp->bytes_total / 1e6, rate / 1e6,
	        (int)left / 60, (int)left % 60);
	fflush(stderr);
	p->shown = true;
}

void cli_progress_done(struct cli_progress *p)
{
	if (p != NULL && p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->shown = false;
	}
}

void cli_progress_free(struct cli_progress **p)
{
	free(*p);
	*p = NULL;
}
