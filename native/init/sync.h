/* Messages from the C init to berth's Node side over the sync socket (see ../plan.h).
 * Used by every stage of berth-init. */
#ifndef BERTH_SYNC_H
#define BERTH_SYNC_H

#include <sys/types.h>

extern int berth_sync_fd;
extern int berth_log_level;
extern const char *berth_stage;

/* Writes one JSON line; returns -1 (errno set) if Node is gone. */
int berth_sync_send (const char *type, const char *extra_json);

/* Reports {stage, op, path, errno} and exits 1. ERRNUM 0 means no errno. */
void berth_fail (int errnum, const char *op, const char *path) __attribute__ ((noreturn));

/* Sends a log line at LEVEL (0 error .. 3 debug) if the threshold allows it. */
void berth_log (int level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Reads one line from the sync socket into BUF (NUL-terminated, newline removed). */
ssize_t berth_sync_read_line (char *buf, size_t size);

#endif
