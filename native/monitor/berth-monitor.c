/* berth-monitor: the per-container monitor (DESIGN.md "Processes"), like podman's conmon.
 * The engine (src/engine/detached.ts) spawns it in a new session; it runs berth-init with
 * its own pipes as stdio, becomes the parent of the container's init (a child subreaper
 * adopts it when stage 0 exits), writes the container's output to a CRI-format log, records
 * the exit status atomically, runs the exit command and exits. Single-threaded, static.
 *
 * Usage: berth-monitor --log FILE --exit-file FILE --pid-file FILE [--stdin]
 *          [--exit-command PATH [--exit-command-arg ARG]...] -- BERTH-INIT PLANFD SYNCFD
 * The exit command takes conmon's form (a path, then one flag per argument) rather than
 * "ARGV..." so that its arguments may hold any string, "--" included.
 *
 * Order of events:
 *   1. fork + exec berth-init (stage 0) with fds 0/1/2 = our pipes; PLANFD and SYNCFD are
 *      the engine's, inherited as they are and closed here right after the fork, so the
 *      engine sees EOF on the sync socket as soon as berth-init and its child are done.
 *   2. stage 0 exits: 0 means the container's init exists (and is now our child); anything
 *      else means create failed, which the engine reports from the sync socket: we exit
 *      and write nothing.
 *   3. the engine writes the pid file once create is complete; we poll for it.
 *   4. that pid exits: drain the pipes, write the exit file, run the exit command, exit.
 * If every child is gone and there is no pid file, create failed after stage 0 (the engine
 * killed the container's init): exit and write nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A line longer than this is written as partial ("P") records of this size, as conmon's
 * STDIO_BUF_SIZE does; it bounds the monitor's memory whatever the container prints. */
#define LINE_MAX_BYTES 8192
#define MAX_EXIT_ARGS 64
#define REAPED_MAX 16
/* While the container's pid is not known yet, how often to look at the pid file (ms). */
#define PID_POLL_MS 20
/* After the container's init exits, how long the pipes may stay quiet before we stop
 * waiting for their EOF (a process outside a pid namespace may still hold them). */
#define DRAIN_QUIET_MS 200

struct stream
{
  int fd;
  const char *name;
  size_t len;
  char buf[LINE_MAX_BYTES];
};

struct reaped
{
  pid_t pid;
  int status;
};

static struct stream out_stream = { -1, "stdout", 0, { 0 } };
static struct stream err_stream = { -1, "stderr", 0, { 0 } };
static int log_fd = -1;
static const char *log_path, *exit_path, *pid_path;
static const char *exit_argv[MAX_EXIT_ARGS + 2];
static int exit_argc;
static struct reaped reaped[REAPED_MAX];
static int nreaped;

static void
die (int err, const char *what, const char *path)
{
  char msg[512];
  int n = snprintf (msg, sizeof msg, "berth-monitor: %s%s%s%s%s\n", what, path ? " " : "",
                    path ? path : "", err ? ": " : "", err ? strerror (err) : "");
  if (n > 0 && write (2, msg, (size_t) n) < 0)
    _exit (1);
  _exit (1);
}

static void
rfc3339_now (char *out, size_t size)
{
  struct timespec ts;
  struct tm tm;
  size_t n;

  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  n = strftime (out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (out + n, size - n, ".%09ldZ", ts.tv_nsec);
}

/* One CRI log record: "<time> <stream> <F|P> <text>\n". A log that cannot be written
 * loses the record; the container must not stop because its log's disk is full. */
static void
write_record (struct stream *s, const char *text, size_t len, int full)
{
  char head[64];
  struct iovec iov[3];
  int n;

  rfc3339_now (head, sizeof head);
  n = (int) strlen (head);
  n += snprintf (head + n, sizeof head - (size_t) n, " %s %c ", s->name, full ? 'F' : 'P');
  iov[0] = (struct iovec){ head, (size_t) n };
  iov[1] = (struct iovec){ (void *) text, len };
  iov[2] = (struct iovec){ "\n", 1 };
  while (writev (log_fd, iov, 3) < 0 && errno == EINTR)
    ;
}

/* Writes every complete line in S's buffer, and the rest too when it fills the buffer or
 * AT_EOF (then as a partial record: the output did not end with a newline). */
static void
flush_lines (struct stream *s, int at_eof)
{
  size_t start = 0;
  char *nl;

  while (start < s->len && (nl = memchr (s->buf + start, '\n', s->len - start)) != NULL)
    {
      write_record (s, s->buf + start, (size_t) (nl - (s->buf + start)), 1);
      start = (size_t) (nl - s->buf) + 1;
    }
  if (start < s->len && (at_eof || (start == 0 && s->len == sizeof s->buf)))
    {
      write_record (s, s->buf + start, s->len - start, 0);
      start = s->len;
    }
  memmove (s->buf, s->buf + start, s->len - start);
  s->len -= start;
}

/* Reads what S's pipe has; returns 0 at EOF (and closes it), 1 otherwise. */
static int
read_stream (struct stream *s)
{
  ssize_t r = read (s->fd, s->buf + s->len, sizeof s->buf - s->len);

  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return 1;
  if (r <= 0)
    {
      flush_lines (s, 1);
      close (s->fd);
      s->fd = -1;
      return 0;
    }
  s->len += (size_t) r;
  flush_lines (s, 0);
  return 1;
}

/* Reads the container's pid from the pid file the engine writes (atomically) after
 * create; 0 while it is not there. */
static pid_t
read_pid_file (void)
{
  char buf[32];
  int fd = open (pid_path, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return 0;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  return (pid_t) strtol (buf, NULL, 10);
}

static void
write_exit_file (int status)
{
  char tmp[PATH_MAX], json[256], when[64];
  int fd, n, code, sig = 0;

  if (WIFSIGNALED (status))
    {
      sig = WTERMSIG (status);
      code = 128 + sig;
    }
  else
    code = WEXITSTATUS (status);
  rfc3339_now (when, sizeof when);
  if (sig)
    n = snprintf (json, sizeof json, "{\"exitCode\":%d,\"signal\":%d,\"finishedAt\":\"%s\"}\n", code,
                  sig, when);
  else
    n = snprintf (json, sizeof json, "{\"exitCode\":%d,\"signal\":null,\"finishedAt\":\"%s\"}\n",
                  code, when);

  snprintf (tmp, sizeof tmp, "%s.tmp", exit_path);
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    die (errno, "create", tmp);
  if (write (fd, json, (size_t) n) != n)
    die (errno, "write", tmp);
  if (fsync (fd) < 0)
    die (errno, "fsync", tmp);
  close (fd);
  if (rename (tmp, exit_path) < 0)
    die (errno, "rename to", exit_path);
}

/* Runs the exit command in its own process and does not wait: it may take the container
 * away, and nothing here depends on how it ends. Its stdio is ours (/dev/null). */
static void
run_exit_command (void)
{
  pid_t pid;
  sigset_t none;

  if (exit_argc == 0)
    return;
  pid = fork ();
  if (pid != 0)
    return;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  setsid ();
  execv (exit_argv[0], (char *const *) exit_argv);
  die (errno, "exec exit command", exit_argv[0]);
}

static void
usage (void)
{
  die (0, "usage: berth-monitor --log FILE --exit-file FILE --pid-file FILE [--stdin] "
          "[--exit-command PATH [--exit-command-arg ARG]...] -- BERTH-INIT PLANFD SYNCFD",
       NULL);
}

/* Reaps every child that has exited. Returns 1 when the container's init was among them
 * (its status in *STATUS), -1 when stage 0 failed, 0 otherwise; *NONE_LEFT is set when no
 * child remains. */
static int
reap (pid_t stage0, int *stage0_done, pid_t container, int *status, int *none_left)
{
  int st, result = 0;
  pid_t pid;

  *none_left = 0;
  for (;;)
    {
      pid = waitpid (-1, &st, WNOHANG);
      if (pid < 0 && errno == EINTR)
        continue;
      if (pid < 0)
        {
          *none_left = errno == ECHILD;
          return result;
        }
      if (pid == 0)
        return result;
      if (pid == stage0)
        {
          *stage0_done = 1;
          if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
            return -1;
        }
      else if (container && pid == container)
        {
          *status = st;
          result = 1;
        }
      else if (nreaped < REAPED_MAX)
        {
          /* Maybe the container's init, dying before its pid file was read. */
          reaped[nreaped].pid = pid;
          reaped[nreaped++].status = st;
        }
    }
}

int
main (int argc, char **argv)
{
  int i, out_pipe[2], err_pipe[2], in_pipe[2] = { -1, -1 }, keep_stdin = 0, sfd;
  int stage0_done = 0, exited = 0, status = 0, none_left;
  char **init_argv = NULL;
  pid_t stage0, container = 0;
  sigset_t mask, old;

  for (i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--") == 0)
        {
          init_argv = argv + i + 1;
          break;
        }
      else if (strcmp (argv[i], "--stdin") == 0)
        keep_stdin = 1;
      else if (i + 1 >= argc)
        usage ();
      else if (strcmp (argv[i], "--log") == 0)
        log_path = argv[++i];
      else if (strcmp (argv[i], "--exit-file") == 0)
        exit_path = argv[++i];
      else if (strcmp (argv[i], "--pid-file") == 0)
        pid_path = argv[++i];
      else if (strcmp (argv[i], "--exit-command") == 0 && exit_argc == 0)
        exit_argv[exit_argc++] = argv[++i];
      else if (strcmp (argv[i], "--exit-command-arg") == 0 && exit_argc > 0
               && exit_argc < MAX_EXIT_ARGS)
        exit_argv[exit_argc++] = argv[++i];
      else
        usage ();
    }
  if (!init_argv || !init_argv[0] || !log_path || !exit_path || !pid_path)
    usage ();

  /* The container's init is stage 0's child: when stage 0 exits, a subreaper adopts it. */
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    die (errno, "prctl PR_SET_CHILD_SUBREAPER", NULL);
  prctl (PR_SET_NAME, "berth:[monitor]", 0, 0, 0);
  signal (SIGPIPE, SIG_IGN);
  signal (SIGHUP, SIG_IGN);

  log_fd = open (log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log_fd < 0)
    die (errno, "open log", log_path);
  if (pipe2 (out_pipe, O_CLOEXEC) < 0 || pipe2 (err_pipe, O_CLOEXEC) < 0)
    die (errno, "pipe", NULL);
  if (keep_stdin && pipe2 (in_pipe, O_CLOEXEC) < 0)
    die (errno, "pipe", NULL);

  /* SIGCHLD through a signalfd, so one poll(2) waits for output and exits alike. */
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigprocmask (SIG_BLOCK, &mask, &old);
  sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    die (errno, "signalfd", NULL);

  stage0 = fork ();
  if (stage0 < 0)
    die (errno, "fork", NULL);
  if (stage0 == 0)
    {
      int in = keep_stdin ? in_pipe[0] : open ("/dev/null", O_RDONLY | O_CLOEXEC);

      sigprocmask (SIG_SETMASK, &old, NULL);
      signal (SIGPIPE, SIG_DFL);
      signal (SIGHUP, SIG_DFL);
      /* dup2 clears close-on-exec on the copies; PLANFD and SYNCFD pass through as the
       * engine gave them. */
      if (in < 0 || dup2 (in, 0) < 0 || dup2 (out_pipe[1], 1) < 0 || dup2 (err_pipe[1], 2) < 0)
        die (errno, "set up stdio for", init_argv[0]);
      execv (init_argv[0], init_argv);
      die (errno, "exec", init_argv[0]);
    }

  /* Only berth-init may hold the engine's plan and sync fds, or the engine would never
   * see their EOF. */
  for (i = 1; init_argv[i]; i++)
    close (atoi (init_argv[i]));
  close (out_pipe[1]);
  close (err_pipe[1]);
  if (keep_stdin)
    close (in_pipe[0]); /* in_pipe[1] stays open: the container's stdin never sees EOF */
  out_stream.fd = out_pipe[0];
  err_stream.fd = err_pipe[0];
  if (chdir ("/") < 0)
    die (errno, "chdir", "/");

  for (;;)
    {
      struct pollfd p[3] = { { sfd, POLLIN, 0 }, { out_stream.fd, POLLIN, 0 },
                             { err_stream.fd, POLLIN, 0 } };
      int timeout = -1, r;

      if (exited)
        timeout = DRAIN_QUIET_MS;
      else if (stage0_done && container == 0)
        timeout = PID_POLL_MS;
      r = poll (p, 3, timeout);
      if (r < 0 && errno != EINTR)
        die (errno, "poll", NULL);
      if (r > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        read_stream (&out_stream);
      if (r > 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
        read_stream (&err_stream);
      if (exited && (r == 0 || (out_stream.fd < 0 && err_stream.fd < 0)))
        break;
      if (exited)
        continue;

      if (r > 0 && (p[0].revents & POLLIN))
        {
          struct signalfd_siginfo si;
          while (read (sfd, &si, sizeof si) > 0)
            ;
        }
      switch (reap (stage0, &stage0_done, container, &status, &none_left))
        {
        case -1:
          return 1; /* stage 0 failed: the engine reports why */
        case 1:
          exited = 1;
          continue;
        }
      if (stage0_done && container == 0)
        {
          container = read_pid_file ();
          for (i = 0; container && i < nreaped; i++)
            if (reaped[i].pid == container)
              {
                status = reaped[i].status;
                exited = 1;
              }
          if (container == 0 && none_left)
            return 1; /* create failed after stage 0 and took the container's init down */
        }
      if (container && !exited && none_left)
        {
          /* Its status went where we cannot see it (more early orphans than REAPED_MAX). */
          status = 255 << 8;
          exited = 1;
        }
    }

  if (out_stream.fd >= 0)
    flush_lines (&out_stream, 1);
  if (err_stream.fd >= 0)
    flush_lines (&err_stream, 1);
  write_exit_file (status);
  close (log_fd);
  run_exit_command ();
  return 0;
}
