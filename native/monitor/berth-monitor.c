/* berth-monitor: the per-container monitor (DESIGN.md "Processes"), like podman's conmon.
 * The engine (src/engine/detached.ts) spawns it in a new session; it runs berth-init with
 * its own pipes as stdio, becomes the parent of the container's init (a child subreaper
 * adopts it when stage 0 exits), writes the container's output to a CRI-format log, records
 * the exit status atomically, runs the exit command and exits. Single-threaded, static.
 * With a terminal (-t) it holds the pty's master, which the container's init sends over
 * the console socket; it serves `berth attach` clients on the attach socket.
 *
 * Usage: berth-monitor --log FILE --exit-file FILE --pid-file FILE [--stdin]
 *          [--console-socket PATH] [--attach-socket PATH]
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
 * killed the container's init): exit and write nothing.
 *
 * The attach protocol (src/engine/attach.ts is the other end), on a stream socket that
 * only root can open (mode 0600), in frames of TYPE (1 byte), LENGTH (2 bytes, big
 * endian) and LENGTH bytes of payload:
 *   client -> monitor  'i' input for the container (ignored without --stdin)
 *                      'w' window size: rows, columns (2 bytes each, big endian)
 *   monitor -> client  'o' stdout (a terminal's output too), 'e' stderr
 *                      'x' the exit code in decimal, last, once the exit file is written
 * Every client gets all output from the moment it connects. Input that the container does
 * not read yet waits here (one buffer) and the clients are not read meanwhile; a client
 * that cannot take output for CLIENT_STALL_MS is dropped rather than stalling the log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
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
/* Attach clients served at once; more are closed at once. */
#define MAX_CLIENTS 8
/* Input from attach clients waiting for the container to read it. */
#define INPUT_MAX 4096
/* How long output may wait for a client whose socket buffer is full (ms). */
#define CLIENT_STALL_MS 1000

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

/* A terminal's output, logged as stdout as Docker does (with its \r\n kept). */
static struct stream tty_stream; /* zero-initialized (.bss): untouched without -t */
/* The pty master, open for the container's whole life once it arrives: closing it would
 * hang up the container's terminal. tty_stream.fd is -1 once every slave is closed. */
static int tty_fd = -1;
static int console_listen = -1, console_conn = -1, attach_listen = -1;
static const char *console_path, *attach_path;

struct client
{
  int fd;
  unsigned char head[3];
  int head_len;
  unsigned need;
  unsigned char ws[4];
  unsigned ws_len;
};

static struct client clients[MAX_CLIENTS];
/* Where attach input goes (the pty master or the stdin pipe), -1 when nowhere. */
static int input_fd = -1;
static int accept_input;
static char pending[INPUT_MAX];
static size_t pending_len;
static struct winsize winsize;
static int have_winsize;

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

static void broadcast (char type, const char *data, size_t len);

/* Reads what S's pipe (or the pty master) has; returns 0 at EOF (and closes a pipe), 1
 * otherwise. A master reads EIO once no slave is open: its EOF, but it stays open. */
static int
read_stream (struct stream *s)
{
  ssize_t r = read (s->fd, s->buf + s->len, sizeof s->buf - s->len);

  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return 1;
  if (r <= 0)
    {
      flush_lines (s, 1);
      if (s->fd != tty_fd)
        close (s->fd);
      s->fd = -1;
      return 0;
    }
  broadcast (s == &err_stream ? 'e' : 'o', s->buf + s->len, (size_t) r);
  s->len += (size_t) r;
  flush_lines (s, 0);
  return 1;
}

/* A unix socket address for PATH. sun_path holds 107 bytes and container directories can
 * be longer: then the directory is opened and named through /proc/self/fd (*DIRFD, to
 * close after bind or connect). */
static void
unix_address (const char *path, struct sockaddr_un *addr, int *dirfd)
{
  const char *slash = strrchr (path, '/');
  char dir[PATH_MAX];

  *dirfd = -1;
  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen (path) < sizeof addr->sun_path)
    {
      strcpy (addr->sun_path, path);
      return;
    }
  if (slash == NULL || (size_t) (slash - path) >= sizeof dir)
    die (ENAMETOOLONG, "socket path", path);
  memcpy (dir, path, (size_t) (slash - path));
  dir[slash - path] = '\0';
  *dirfd = open (slash == path ? "/" : dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*dirfd < 0)
    die (errno, "open", dir);
  if ((size_t) snprintf (addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", *dirfd,
                         slash + 1)
      >= sizeof addr->sun_path)
    die (ENAMETOOLONG, "socket path", path);
}

/* Listens on PATH, a socket only its owner (root) can connect to. A file left there by an
 * earlier monitor of the same container (restart) is replaced. */
static int
listen_unix (const char *path)
{
  struct sockaddr_un addr;
  int dirfd, fd;
  mode_t old;

  unix_address (path, &addr, &dirfd);
  unlink (path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    die (errno, "socket for", path);
  old = umask (0177);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (fd, MAX_CLIENTS) < 0)
    die (errno, "listen on", path);
  umask (old);
  if (dirfd >= 0)
    close (dirfd);
  return fd;
}

static void
apply_winsize (void)
{
  if (tty_fd >= 0 && have_winsize)
    ioctl (tty_fd, TIOCSWINSZ, &winsize);
}

/* The console socket's one message: the pty's name as data, its master as SCM_RIGHTS
 * (native/init/terminal.c). */
static void
take_console (void)
{
  char name[64], cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { name, sizeof name };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf };
  struct cmsghdr *c;
  ssize_t r = recvmsg (console_conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  c = r > 0 ? CMSG_FIRSTHDR (&msg) : NULL;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
    {
      memcpy (&tty_fd, CMSG_DATA (c), sizeof (int));
      fcntl (tty_fd, F_SETFL, fcntl (tty_fd, F_GETFL) | O_NONBLOCK);
      tty_stream.fd = tty_fd;
      if (accept_input)
        input_fd = tty_fd;
      apply_winsize ();
    }
  /* One master per container: the socket's work is done, whatever came. */
  close (console_conn);
  console_conn = -1;
  unlink (console_path);
}

static void
drop_client (struct client *c)
{
  close (c->fd);
  c->fd = -1;
}

/* One frame to C; drops C when it cannot take it in CLIENT_STALL_MS. */
static void
send_frame (struct client *c, char type, const char *data, size_t len)
{
  unsigned char head[3] = { (unsigned char) type, (unsigned char) (len >> 8),
                            (unsigned char) len };
  size_t done = 0, total = len + 3;

  while (done < total)
    {
      struct iovec iov[2];
      struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 0 };
      ssize_t w;

      if (done < 3)
        iov[msg.msg_iovlen++] = (struct iovec){ head + done, 3 - done };
      iov[msg.msg_iovlen++] = (struct iovec){ (char *) data + (done > 3 ? done - 3 : 0),
                                              len - (done > 3 ? done - 3 : 0) };
      w = sendmsg (c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        {
          struct pollfd p = { c->fd, POLLOUT, 0 };
          if (poll (&p, 1, CLIENT_STALL_MS) > 0 && !(p.revents & (POLLERR | POLLHUP)))
            continue;
        }
      if (w < 0)
        {
          drop_client (c);
          return;
        }
      done += (size_t) w;
    }
}

static void
broadcast (char type, const char *data, size_t len)
{
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0)
      send_frame (&clients[i], type, data, len);
}

static void
add_client (void)
{
  int fd = accept4 (attach_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

  if (fd < 0)
    return;
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd < 0)
      {
        memset (&clients[i], 0, sizeof clients[i]);
        clients[i].fd = fd;
        return;
      }
  close (fd); /* too many: that client sees EOF at once */
}

/* Writes what input is pending without blocking; what the container does not take now
 * waits for POLLOUT. Input nobody can read any more (EIO, EPIPE) is dropped. */
static void
flush_input (void)
{
  while (pending_len > 0)
    {
      ssize_t w = write (input_fd, pending, pending_len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        return;
      if (w <= 0)
        {
          pending_len = 0;
          return;
        }
      memmove (pending, pending + w, pending_len - (size_t) w);
      pending_len -= (size_t) w;
    }
}

/* Reads C's frames (only while no input is pending, so what is read fits in PENDING). */
static void
read_client (struct client *c)
{
  unsigned char buf[INPUT_MAX];
  ssize_t r = read (c->fd, buf, sizeof buf);
  ssize_t i = 0;

  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (r <= 0)
    {
      drop_client (c);
      return;
    }
  while (i < r)
    {
      size_t n;

      if (c->head_len < 3)
        {
          c->head[c->head_len++] = buf[i++];
          if (c->head_len == 3)
            {
              c->need = (unsigned) c->head[1] << 8 | c->head[2];
              c->ws_len = 0;
            }
        }
      else
        {
          n = (size_t) (r - i) < c->need ? (size_t) (r - i) : c->need;
          if (c->head[0] == 'i' && input_fd >= 0)
            {
              memcpy (pending + pending_len, buf + i, n);
              pending_len += n;
            }
          else if (c->head[0] == 'w')
            for (size_t k = 0; k < n && c->ws_len < 4; k++)
              c->ws[c->ws_len++] = buf[i + (ssize_t) k];
          i += (ssize_t) n;
          c->need -= (unsigned) n;
        }
      if (c->head_len == 3 && c->need == 0)
        {
          if (c->head[0] == 'w' && c->ws_len == 4)
            {
              winsize.ws_row = (unsigned short) (c->ws[0] << 8 | c->ws[1]);
              winsize.ws_col = (unsigned short) (c->ws[2] << 8 | c->ws[3]);
              have_winsize = 1;
              apply_winsize ();
            }
          c->head_len = 0;
        }
    }
  if (pending_len > 0)
    flush_input ();
}

static void
remove_sockets (void)
{
  if (attach_path)
    unlink (attach_path);
  if (console_path)
    unlink (console_path);
}

static int
add_poll (struct pollfd *p, nfds_t *n, int fd, short events)
{
  if (fd < 0)
    return -1;
  p[*n] = (struct pollfd){ fd, events, 0 };
  return (int) (*n)++;
}

static int
ready (struct pollfd *p, int ix, short events)
{
  return ix >= 0 && (p[ix].revents & (events | POLLHUP | POLLERR));
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
          "[--console-socket PATH] [--attach-socket PATH] "
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
      else if (strcmp (argv[i], "--console-socket") == 0)
        console_path = argv[++i];
      else if (strcmp (argv[i], "--attach-socket") == 0)
        attach_path = argv[++i];
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
  /* With a terminal, input goes to the pty master (once it is here), not to a pipe. */
  if (keep_stdin && !console_path && pipe2 (in_pipe, O_CLOEXEC) < 0)
    die (errno, "pipe", NULL);
  accept_input = keep_stdin;
  tty_stream.fd = -1;
  tty_stream.name = "stdout";
  for (i = 0; i < MAX_CLIENTS; i++)
    clients[i].fd = -1;
  /* Both listen before berth-init runs: it connects to the console socket in stage 0,
   * and `berth attach` may come as soon as `berth run -d` has returned. */
  if (console_path)
    console_listen = listen_unix (console_path);
  if (attach_path)
    attach_listen = listen_unix (attach_path);

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
      int in = in_pipe[0] >= 0 ? in_pipe[0] : open ("/dev/null", O_RDONLY | O_CLOEXEC);

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
  if (in_pipe[0] >= 0)
    {
      close (in_pipe[0]); /* in_pipe[1] stays open: the container's stdin never sees EOF */
      fcntl (in_pipe[1], F_SETFL, O_NONBLOCK);
      input_fd = in_pipe[1];
    }
  out_stream.fd = out_pipe[0];
  err_stream.fd = err_pipe[0];
  if (chdir ("/") < 0)
    die (errno, "chdir", "/");

  for (;;)
    {
      struct pollfd p[8 + MAX_CLIENTS];
      int ix_client[MAX_CLIENTS], ix_sig, ix_out, ix_err, ix_tty, ix_in = -1, ix_cl = -1, ix_cc = -1;
      int ix_al = -1, timeout = -1, r;
      nfds_t n = 0;

      /* Input for a terminal whose every slave is closed can never be written. */
      if (pending_len && input_fd == tty_fd && tty_stream.fd < 0)
        pending_len = 0;
      ix_sig = add_poll (p, &n, sfd, POLLIN);
      ix_out = add_poll (p, &n, out_stream.fd, POLLIN);
      ix_err = add_poll (p, &n, err_stream.fd, POLLIN);
      ix_tty = add_poll (p, &n, tty_stream.fd,
                         POLLIN | (pending_len && input_fd == tty_fd ? POLLOUT : 0));
      for (i = 0; i < MAX_CLIENTS; i++)
        ix_client[i] = -1;
      if (!exited)
        {
          if (pending_len && input_fd != tty_fd)
            ix_in = add_poll (p, &n, input_fd, POLLOUT);
          ix_cl = add_poll (p, &n, console_listen, POLLIN);
          ix_cc = add_poll (p, &n, console_conn, POLLIN);
          ix_al = add_poll (p, &n, attach_listen, POLLIN);
          for (i = 0; i < MAX_CLIENTS; i++)
            ix_client[i] = add_poll (p, &n, clients[i].fd, pending_len ? 0 : POLLIN);
        }

      if (exited)
        timeout = DRAIN_QUIET_MS;
      else if (stage0_done && container == 0)
        timeout = PID_POLL_MS;
      r = poll (p, n, timeout);
      if (r < 0 && errno != EINTR)
        die (errno, "poll", NULL);
      if (r > 0 && ready (p, ix_out, POLLIN))
        read_stream (&out_stream);
      if (r > 0 && ready (p, ix_err, POLLIN))
        read_stream (&err_stream);
      if (r > 0 && ready (p, ix_tty, POLLIN))
        read_stream (&tty_stream);
      if (exited && (r == 0 || (out_stream.fd < 0 && err_stream.fd < 0 && tty_stream.fd < 0)))
        break;
      if (exited)
        continue;

      if (r > 0 && ready (p, ix_cl, POLLIN))
        {
          console_conn = accept4 (console_listen, NULL, NULL, SOCK_CLOEXEC);
          if (console_conn >= 0)
            {
              close (console_listen);
              console_listen = -1;
            }
        }
      if (r > 0 && ready (p, ix_cc, POLLIN))
        take_console ();
      if (r > 0 && pending_len && (ready (p, ix_in, POLLOUT) || ready (p, ix_tty, POLLOUT)))
        flush_input ();
      if (r > 0 && ready (p, ix_al, POLLIN))
        add_client ();
      for (i = 0; r > 0 && i < MAX_CLIENTS; i++)
        if (ready (p, ix_client[i], POLLIN) && clients[i].fd >= 0)
          {
            if (pending_len == 0)
              read_client (&clients[i]);
            else if (p[ix_client[i]].revents & (POLLHUP | POLLERR))
              drop_client (&clients[i]);
          }

      if (r > 0 && (p[ix_sig].revents & POLLIN))
        {
          struct signalfd_siginfo si;
          while (read (sfd, &si, sizeof si) > 0)
            ;
        }
      switch (reap (stage0, &stage0_done, container, &status, &none_left))
        {
        case -1:
          remove_sockets ();
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
            {
              remove_sockets ();
              return 1; /* create failed after stage 0 and took the container's init down */
            }
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
  if (tty_stream.fd >= 0)
    flush_lines (&tty_stream, 1);
  write_exit_file (status);
  /* Attached clients end with the exit code, as `docker attach` does; the socket goes,
   * so a late client finds nothing rather than a monitor that no longer answers. */
  remove_sockets ();
  if (attach_path)
    {
      char code[16];
      int len = snprintf (code, sizeof code, "%d",
                          WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status));
      broadcast ('x', code, (size_t) len);
    }
  close (log_fd);
  run_exit_command ();
  return 0;
}
