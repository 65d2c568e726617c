/* createContainer and startContainer hooks (OCI runtime spec, "POSIX-platform Hooks"):
 * run by the container's child, in the container's namespaces, with the state JSON on
 * stdin. createContainer runs before pivot_root, so PATH still names a host file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "sync.h"

static void
run_one (struct berth_plan *plan, int at, const char *state_json)
{
  struct berth_record *h = &plan->records[at];
  int timeout = atoi (h->fields[1]);
  const char *path = h->fields[2];
  char *argv[256], *envp[256];
  int na = 0, ne = 0, in[2], status;
  pid_t pid;
  time_t deadline;

  for (int i = at + 1; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      if (strcmp (r->tag, "hookarg") == 0 && na < 255)
        argv[na++] = r->fields[0];
      else if (strcmp (r->tag, "hookenv") == 0 && ne < 255)
        envp[ne++] = r->fields[0];
      else
        break;
    }
  if (na == 0)
    argv[na++] = (char *) path;
  argv[na] = NULL;
  envp[ne] = NULL;

  if (pipe2 (in, O_CLOEXEC) < 0)
    berth_fail (errno, "pipe for hook", path);
  pid = fork ();
  if (pid < 0)
    berth_fail (errno, "fork hook", path);
  if (pid == 0)
    {
      dup2 (in[0], 0);
      signal (SIGPIPE, SIG_DFL);
      execve (path, argv, envp);
      _exit (127);
    }
  close (in[0]);
  if (write (in[1], state_json, strlen (state_json)) < 0)
    berth_log (1, "hook %s did not read its state: %s", path, strerror (errno));
  close (in[1]);

  deadline = timeout > 0 ? time (NULL) + timeout : 0;
  for (;;)
    {
      pid_t w = waitpid (pid, &status, timeout > 0 ? WNOHANG : 0);
      if (w == pid)
        break;
      if (w < 0 && errno != EINTR)
        berth_fail (errno, "wait for hook", path);
      if (timeout > 0 && time (NULL) >= deadline)
        {
          kill (pid, SIGKILL);
          waitpid (pid, &status, 0);
          berth_fail (ETIMEDOUT, "hook timed out", path);
        }
      if (timeout > 0)
        poll (NULL, 0, 10);
    }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      char op[128];
      snprintf (op, sizeof op, "%s hook failed (status %d)", h->fields[0],
                WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
      berth_fail (0, op, path);
    }
}

void
berth_run_hooks (struct berth_plan *plan, const char *kind, const char *state_json)
{
  for (int i = 0; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      if (strcmp (r->tag, "hook") == 0 && r->nfields >= 3 && strcmp (r->fields[0], kind) == 0)
        run_one (plan, i, state_json);
    }
}
