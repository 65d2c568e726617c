/* berth-tini: the init `berth run --init` puts at PID 1 of a container (like Docker's
 * docker-init, which is tini). src/engine/spec.ts bind-mounts it read-only at /dev/init and
 * prepends it to the process args: /dev/init -- CMD [ARG...]. Runs inside the container,
 * after pivot_root, as the container's process.
 *
 * What it does, as tini does:
 *   1. blocks every signal it can, forks, and execs CMD in the child with the signal mask
 *      and dispositions restored (the child sees the signals the user sends);
 *   2. waits for signals with sigwaitinfo(2): SIGCHLD reaps every exited child (orphans
 *      re-parented to PID 1 included, so no zombie stays); any other signal is forwarded
 *      to the child. Blocked signals reach PID 1 of a pid namespace even without a
 *      handler: the kernel drops only unblocked SIG_DFL ones (sig_task_ignored);
 *   3. when the child exits, exits with its status (128+n for signal n, as a shell says).
 * CMD that cannot be executed: 126, or 127 when it is not found (Docker's convention). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void
usage (void)
{
  fprintf (stderr, "usage: berth-tini -- COMMAND [ARG...]\n");
  _exit (125);
}

/* The child: back to an empty mask and default dispositions, then CMD. */
static void
exec_child (char **argv, const sigset_t *old_mask)
{
  int err;

  sigprocmask (SIG_SETMASK, old_mask, NULL);
  execvp (argv[0], argv);
  err = errno;
  fprintf (stderr, "berth-init: exec %s: %s\n", argv[0], strerror (err));
  _exit (err == ENOENT ? 127 : 126);
}

/* Reaps every exited child; returns 1 and sets *STATUS once CHILD is among them. */
static int
reap_all (pid_t child, int *status)
{
  int st, found = 0;
  pid_t pid;

  for (;;)
    {
      pid = waitpid (-1, &st, WNOHANG);
      if (pid < 0 && errno == EINTR)
        continue;
      if (pid <= 0)
        return found;
      if (pid == child)
        {
          *status = st;
          found = 1;
        }
    }
}

int
main (int argc, char **argv)
{
  sigset_t all, old;
  siginfo_t info;
  pid_t child;
  int status = 0;

  if (argc > 1 && strcmp (argv[1], "--") == 0)
    {
      argv++;
      argc--;
    }
  if (argc < 2)
    usage ();

  /* SIGKILL and SIGSTOP cannot be blocked; the synchronous faults must stay deliverable
   * so a bug here crashes rather than spins. */
  sigfillset (&all);
  sigdelset (&all, SIGFPE);
  sigdelset (&all, SIGILL);
  sigdelset (&all, SIGSEGV);
  sigdelset (&all, SIGBUS);
  sigdelset (&all, SIGABRT);
  sigdelset (&all, SIGTRAP);
  sigdelset (&all, SIGSYS);
  if (sigprocmask (SIG_SETMASK, &all, &old) < 0)
    {
      perror ("berth-init: sigprocmask");
      return 125;
    }

  child = fork ();
  if (child < 0)
    {
      perror ("berth-init: fork");
      return 125;
    }
  if (child == 0)
    exec_child (argv + 1, &old);
  prctl (PR_SET_NAME, "berth:[tini]", 0, 0, 0);

  for (;;)
    {
      int sig = sigwaitinfo (&all, &info);

      if (sig < 0)
        {
          if (errno == EINTR)
            continue;
          perror ("berth-init: sigwaitinfo");
          return 125;
        }
      if (sig != SIGCHLD)
        {
          /* The child may have exited a moment ago (ESRCH): its SIGCHLD is queued. */
          kill (child, sig);
          continue;
        }
      if (reap_all (child, &status))
        break;
    }

  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WEXITSTATUS (status);
}
