/* JSON-line messages from the C init to Node (sync points are listed in ../plan.h).
 * Runs in stage 0 and in the container's child before execve. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sync.h"

int berth_sync_fd = -1;
int berth_log_level = 1;
const char *berth_stage = "stage0";

static size_t
json_escape (char *out, size_t size, const char *in)
{
  size_t n = 0;

  for (; *in && n + 7 < size; in++)
    {
      unsigned char c = (unsigned char) *in;
      if (c == '"' || c == '\\')
        {
          out[n++] = '\\';
          out[n++] = (char) c;
        }
      else if (c < 0x20)
        n += (size_t) snprintf (out + n, size - n, "\\u%04x", c);
      else
        out[n++] = (char) c;
    }
  out[n] = '\0';
  return n;
}

static int
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, buf, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -1;
      buf += w;
      len -= (size_t) w;
    }
  return 0;
}

int
berth_sync_send (const char *type, const char *extra_json)
{
  char line[8192];
  int n;

  if (berth_sync_fd < 0)
    return 0;
  n = snprintf (line, sizeof line, "{\"type\":\"%s\",\"stage\":\"%s\",\"pid\":%d%s%s}\n", type,
                berth_stage, getpid (), extra_json ? "," : "", extra_json ? extra_json : "");
  if (n < 0 || (size_t) n >= sizeof line)
    return -1;
  return write_all (berth_sync_fd, line, (size_t) n);
}

void
berth_fail (int errnum, const char *op, const char *path)
{
  char eop[1024], epath[4200], extra[5400];

  json_escape (eop, sizeof eop, op);
  json_escape (epath, sizeof epath, path ? path : "");
  snprintf (extra, sizeof extra, "\"op\":\"%s\",\"path\":\"%s\",\"errno\":%d", eop, epath, errnum);
  if (berth_sync_send ("error", extra) < 0 || berth_sync_fd < 0)
    fprintf (stderr, "berth-init: %s %s: %s\n", op, path ? path : "", strerror (errnum));
  /* Docker's statuses for a process that cannot run (runtime/native.ts, nativeError, maps
   * the same ops): what its monitor records when this happens after start. */
  if (strcmp (op, "find executable in $PATH") == 0 || (strcmp (op, "exec") == 0 && errnum == ENOENT))
    _exit (127);
  if (strcmp (op, "exec") == 0 || strcmp (op, "chdir to the process cwd") == 0)
    _exit (126);
  _exit (1);
}

void
berth_log (int level, const char *fmt, ...)
{
  static const char *names[] = { "error", "warn", "info", "debug" };
  char msg[2048], emsg[4200], extra[4400];
  va_list ap;

  if (level > berth_log_level)
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  json_escape (emsg, sizeof emsg, msg);
  snprintf (extra, sizeof extra, "\"level\":\"%s\",\"msg\":\"%s\"", names[level & 3], emsg);
  berth_sync_send ("log", extra);
}

ssize_t
berth_sync_read_line (char *buf, size_t size)
{
  size_t n = 0;

  while (n + 1 < size)
    {
      char c;
      ssize_t r = read (berth_sync_fd, &c, 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return -1;
      if (c == '\n')
        break;
      buf[n++] = c;
    }
  buf[n] = '\0';
  return (ssize_t) n;
}
