/* berth-init: the C side of berth's OCI runtime. Node spawns it with the plan on one fd
 * and the sync socket on another (argv[1], argv[2]). Stage 0 joins cgroups and existing
 * namespaces, clones the child into new ones, writes its id maps and reports its pid;
 * the child builds the container and execs the process. See ../plan.h for the protocol. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"
#include "sync.h"

static struct berth_plan plan;
static pid_t child_pid;

static void
write_file (const char *path, const char *data)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  if (fd < 0)
    berth_fail (errno, "open", path);
  if (write (fd, data, strlen (data)) < 0)
    berth_fail (errno, "write", path);
  close (fd);
}

static void
join_cgroups (void)
{
  for (int i = 0; i < plan.nrecords; i++)
    if (strcmp (plan.records[i].tag, "cgroup") == 0)
      write_file (plan.records[i].fields[0], "0");
}

/* setns(2) into every `join` record. The user namespace grants the capabilities that
 * namespaces it owns are checked against, so those are joined after it; but once in it we
 * have none over the namespaces the host's user namespace owns (a container in its own
 * user namespace whose network namespace the engine made beforehand, --userns): so every
 * other namespace is tried first, and one refused with EPERM is tried again after. */
static void
join_namespaces (void)
{
  int fds[16], flags[16], n = 0, pending[16] = { 0 };

  for (int i = 0; i < plan.nrecords && n < 16; i++)
    {
      struct berth_record *r = &plan.records[i];
      if (strcmp (r->tag, "join") != 0)
        continue;
      flags[n] = (int) strtol (r->fields[0], NULL, 16);
      fds[n] = open (r->fields[1], O_RDONLY | O_CLOEXEC);
      if (fds[n] < 0)
        berth_fail (errno, "open namespace", r->fields[1]);
      n++;
    }
  for (int i = 0; i < n; i++)
    {
      pending[i] = 1;
      if (flags[i] == CLONE_NEWUSER)
        continue;
      if (setns (fds[i], flags[i]) == 0)
        pending[i] = 0, close (fds[i]);
      else if (errno != EPERM)
        berth_fail (errno, "setns", NULL);
    }
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++)
      {
        if (!pending[i] || (pass == 0) != (flags[i] == CLONE_NEWUSER))
          continue;
        if (setns (fds[i], flags[i]) < 0)
          berth_fail (errno, "setns", NULL);
        close (fds[i]);
      }
}

static void
write_id_maps (pid_t pid)
{
  char path[64], buf[4096];
  size_t len;

  for (int pass = 0; pass < 2; pass++)
    {
      const char *tag = pass == 0 ? "uidmap" : "gidmap";
      len = 0;
      buf[0] = '\0';
      for (int i = 0; i < plan.nrecords; i++)
        {
          struct berth_record *r = &plan.records[i];
          int n;

          if (strcmp (r->tag, tag) != 0 || r->nfields < 3)
            continue;
          n = snprintf (buf + len, sizeof buf - len, "%s %s %s\n", r->fields[0], r->fields[1],
                        r->fields[2]);
          /* The kernel takes a map of less than a page in one write; a longer one must not
           * run LEN past BUF (the next snprintf would write beyond it). */
          if (n < 0 || (size_t) n >= sizeof buf - len)
            berth_fail (E2BIG, pass == 0 ? "uid_map too long" : "gid_map too long", NULL);
          len += (size_t) n;
        }
      if (len == 0)
        continue;
      if (pass == 1)
        {
          snprintf (path, sizeof path, "/proc/%d/setgroups", pid);
          write_file (path, berth_plan_get (&plan, "setgroups", 0, "allow"));
        }
      snprintf (path, sizeof path, "/proc/%d/%s", pid, pass == 0 ? "uid_map" : "gid_map");
      write_file (path, buf);
    }
}

static int
recv_fd (int sock)
{
  char data[256], cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf };
  struct cmsghdr *c;
  int fd = -1;

  if (recvmsg (sock, &msg, MSG_CMSG_CLOEXEC) <= 0)
    return -1;
  c = CMSG_FIRSTHDR (&msg);
  if (c && c->cmsg_type == SCM_RIGHTS)
    memcpy (&fd, CMSG_DATA (c), sizeof (int));
  return fd;
}

static volatile sig_atomic_t winch;

static void
on_winch (int sig)
{
  (void) sig;
  winch = 1;
}

static void
copy_winsize (int master)
{
  struct winsize ws;

  if (ioctl (0, TIOCGWINSZ, &ws) == 0)
    ioctl (master, TIOCSWINSZ, &ws);
}

/* Writes all of BUF to FD. A write can be cut short (a SIGWINCH in the middle of a
 * large write to a pipe) or find the fd non-blocking (a file description shared with
 * whoever started berth): without this loop the proxy lost output or stopped. */
static int
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, buf, len);
      if (w < 0 && errno == EAGAIN)
        {
          struct pollfd p = { fd, POLLOUT, 0 };
          poll (&p, 1, -1);
          continue;
        }
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return -1;
      buf += w;
      len -= (size_t) w;
    }
  return 0;
}

/* Foreground run with a terminal and no console socket: stage 0 holds the pty master
 * and copies bytes between it and its own stdio until the child's side closes. */
static void
proxy_terminal (int master)
{
  struct termios saved, raw;
  int is_tty = isatty (0) && tcgetattr (0, &saved) == 0;
  char buf[8192];
  int stdin_open = 1;
  sigset_t winch_set, wait_mask;

  /* SIGWINCH stays blocked except inside ppoll: one that came between the check of
   * `winch` and a plain poll() waited for the next byte of I/O to take effect. */
  sigemptyset (&winch_set);
  sigaddset (&winch_set, SIGWINCH);
  sigprocmask (SIG_BLOCK, &winch_set, &wait_mask);
  sigdelset (&wait_mask, SIGWINCH);
  if (is_tty)
    {
      raw = saved;
      cfmakeraw (&raw);
      tcsetattr (0, TCSANOW, &raw);
      signal (SIGWINCH, on_winch);
      copy_winsize (master);
    }
  for (;;)
    {
      struct pollfd p[2] = { { master, POLLIN, 0 }, { 0, POLLIN, 0 } };
      int n = ppoll (p, stdin_open ? 2 : 1, NULL, &wait_mask);
      if (winch)
        {
          winch = 0;
          copy_winsize (master);
        }
      if (n < 0)
        continue;
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          ssize_t r = read (master, buf, sizeof buf);
          if (r <= 0)
            break;
          if (write_all (1, buf, (size_t) r) < 0)
            break;
        }
      if (stdin_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        {
          ssize_t r = read (0, buf, sizeof buf);
          /* EOF or EIO on a terminal in raw mode is a hangup (the window was closed):
           * stop, and the caller's close of the master hangs up the container's pty,
           * as a real terminal would. Before, berth and the container lived on. */
          if (r <= 0 && is_tty)
            break;
          if (r <= 0)
            stdin_open = 0;
          else if (write_all (master, buf, (size_t) r) < 0)
            break;
        }
    }
  if (is_tty)
    tcsetattr (0, TCSANOW, &saved);
}

/* Set in stage 0 (and so in the child) when stage 0 proxies the terminal. */
static int terminal_proxied;

/* berth_setup_terminal, and with the proxy the pty gets the size of our own terminal
 * before the process runs: the proxy sets it only once it has the master, which can be
 * after the exec, and a program that reads the size once at start saw 0x0. */
static void
setup_terminal (int console_fd)
{
  struct winsize ws;
  int have = terminal_proxied && ioctl (0, TIOCGWINSZ, &ws) == 0;

  berth_setup_terminal (&plan, console_fd);
  if (have)
    ioctl (0, TIOCSWINSZ, &ws);
}

static int
wait_status (pid_t pid)
{
  int status;

  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return 255;
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WEXITSTATUS (status);
}

/* The container's child (create) or the exec'd process's child (exec). TTY_SOCK is
 * where the pty master goes: stage 0's proxy socket or the connected console socket. */
static void
child_main (int map_pipe, int tty_sock)
{
  const char *mode = berth_plan_get (&plan, "mode", 0, "create");
  int is_create = strcmp (mode, "create") == 0;
  int console_fd, fifo_fd = -1;
  const char *exe;
  char buf[65536];

  berth_stage = is_create ? "child" : "exec";
  /* Before the id maps apply: the state directory belongs to the host's root, which this
   * process still is until it becomes root of its new user namespace. */
  if (is_create && berth_plan_get (&plan, "fifo", 0, NULL))
    {
      fifo_fd = open (berth_plan_get (&plan, "fifo", 0, NULL), O_PATH | O_CLOEXEC);
      if (fifo_fd < 0)
        berth_fail (errno, "open exec fifo", berth_plan_get (&plan, "fifo", 0, NULL));
    }
  if (map_pipe >= 0)
    {
      char c;
      if (read (map_pipe, &c, 1) != 1)
        _exit (1);
      close (map_pipe);
      /* Root in the new user namespace, if the maps name it. */
      if ((strtoul (berth_plan_get (&plan, "clone", 0, "0"), NULL, 16) & CLONE_NEWUSER)
          && (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0))
        berth_log (3, "uid 0 is not mapped in the new user namespace");
    }

  console_fd = tty_sock;

  if (is_create)
    {
      const char *state = "";

      /* Sync 2: Node runs prestart and createRuntime hooks now. */
      if (atoi (berth_plan_get (&plan, "synchooks", 0, "0")))
        {
          berth_sync_send ("hooks", NULL);
          if (berth_sync_read_line (buf, sizeof buf) < 0 || strncmp (buf, "ok ", 3) != 0)
            berth_fail (EPIPE, "wait for createRuntime hooks", NULL);
          state = buf + 3;
        }

      berth_setup_rootfs (&plan);
      berth_run_hooks (&plan, "createContainer", state);
      berth_pivot_root (&plan);
      berth_finish_rootfs (&plan);
      berth_set_identity_early (&plan);
      setup_terminal (console_fd);
      berth_apply_rlimits (&plan, 0);
      berth_ensure_cwd (&plan);
      exe = berth_find_executable (&plan);
      berth_mark_fds_cloexec (&plan);

      /* Sync 3: ready; `start` opens the fifo's read end, which unblocks this open. The
       * fifo is opened while still root: /proc/self/fd is not ours after setuid. */
      if (fifo_fd >= 0)
        {
          char path[64];
          int w;

          if (berth_sync_send ("ready", NULL) < 0)
            _exit (1);
          snprintf (path, sizeof path, "/proc/self/fd/%d", fifo_fd);
          w = open (path, O_WRONLY | O_CLOEXEC);
          if (w < 0 || write (w, "0", 1) != 1)
            _exit (1);
          close (w);
          close (fifo_fd);
        }
      berth_run_hooks (&plan, "startContainer", state);
    }
  else
    {
      setup_terminal (console_fd);
      berth_apply_rlimits (&plan, 0);
      exe = berth_find_executable (&plan);
      berth_mark_fds_cloexec (&plan);
    }

  berth_apply_rlimits (&plan, 1);
  if (!atoi (berth_plan_get (&plan, "nonewprivs", 0, "0")))
    berth_apply_seccomp (&plan);
  berth_apply_user_and_caps (&plan);
  if (atoi (berth_plan_get (&plan, "nonewprivs", 0, "0")))
    berth_apply_seccomp (&plan);
  berth_exec (&plan, exe);
}


#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* CVE-2019-5736: a process in the container can reach this binary through
 * /proc/PID/exe (of an exec'd berth-init, or of one it re-ran with "#!/proc/self/exe")
 * and rewrite it on the host once it stops running. So berth-init always runs from a
 * sealed, in-memory copy of itself: re-execute from a memfd unless already in one. */
static void
run_from_sealed_copy (char **argv)
{
  const int want = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  int exe, mfd, seals;
  struct stat st;
  off_t off = 0;

  exe = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (exe < 0)
    berth_fail (errno, "open", "/proc/self/exe");
  seals = fcntl (exe, F_GET_SEALS);
  if (seals >= 0 && (seals & want) == want)
    {
      close (exe);
      return;
    }
  mfd = memfd_create ("berth-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 have no MFD_EXEC */
    mfd = memfd_create ("berth-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    berth_fail (errno, "memfd_create", "berth-init");
  if (fstat (exe, &st) < 0)
    berth_fail (errno, "stat", "/proc/self/exe");
  while (off < st.st_size)
    {
      ssize_t n = sendfile (mfd, exe, &off, (size_t) (st.st_size - off));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        berth_fail (n < 0 ? errno : EIO, "copy", "/proc/self/exe");
    }
  close (exe);
  if (fcntl (mfd, F_ADD_SEALS, want) < 0)
    berth_fail (errno, "seal the copy of", "/proc/self/exe");
  syscall (SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
  berth_fail (errno, "re-execute from a sealed copy of", "/proc/self/exe");
}

int
main (int argc, char **argv)
{
  int plan_fd, map_pipe[2] = { -1, -1 }, tty_pair[2] = { -1, -1 }, console_sock;
  unsigned long clone_flags;
  int foreground, terminal_proxy;
  const char *fifo;
  char extra[64];
  sigset_t fwd, old;

  if (argc < 3)
    {
      fprintf (stderr, "berth-init is started by berth-runtime, not by hand\n");
      return 2;
    }
  plan_fd = atoi (argv[1]);
  berth_sync_fd = atoi (argv[2]);
  run_from_sealed_copy (argv);
  prctl (PR_SET_NAME, "berth:[init]", 0, 0, 0);
  fcntl (berth_sync_fd, F_SETFD, FD_CLOEXEC);
  signal (SIGPIPE, SIG_IGN);

  berth_plan_read (plan_fd, &plan);
  close (plan_fd);
  berth_log_level = atoi (berth_plan_get (&plan, "loglevel", 0, "1"));
  clone_flags = strtoul (berth_plan_get (&plan, "clone", 0, "0"), NULL, 16);
  foreground = atoi (berth_plan_get (&plan, "foreground", 0, "0"));
  terminal_proxy = foreground && atoi (berth_plan_get (&plan, "terminal", 0, "0"))
                   && berth_plan_find (&plan, "consolesocket") == NULL;
  terminal_proxied = terminal_proxy;

  if ((fifo = berth_plan_get (&plan, "fifo", 0, NULL)) != NULL)
    {
      if (mkfifo (fifo, 0622) < 0)
        berth_fail (errno, "mkfifo", fifo);
      chmod (fifo, 0622);
    }
  join_cgroups ();
  /* The console socket is a host path: connect before setns into the container's mount
   * namespace (exec), which hides it; the child inherits the fd (runc does the same). */
  console_sock = berth_connect_console (&plan);
  join_namespaces ();

  /* The child waits on this pipe until its id maps are written and sync 1 (its pid) is
   * sent: otherwise a quick child could report "ready" before Node knows its pid. */
  if (pipe2 (map_pipe, O_CLOEXEC) < 0)
    berth_fail (errno, "pipe", NULL);
  if (terminal_proxy && socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tty_pair) < 0)
    berth_fail (errno, "socketpair", NULL);

  /* Signals meant for the container are forwarded by Node; stage 0 must outlive them. */
  sigemptyset (&fwd);
  sigaddset (&fwd, SIGINT);
  sigaddset (&fwd, SIGTERM);
  sigaddset (&fwd, SIGHUP);
  sigaddset (&fwd, SIGQUIT);
  sigprocmask (SIG_BLOCK, &fwd, &old);

  child_pid = (pid_t) syscall (SYS_clone, clone_flags | SIGCHLD, 0, 0, 0, 0);
  if (child_pid < 0)
    berth_fail (errno, "clone", NULL);
  if (child_pid == 0)
    {
      sigprocmask (SIG_SETMASK, &old, NULL);
      if (map_pipe[1] >= 0)
        close (map_pipe[1]);
      if (tty_pair[0] >= 0)
        close (tty_pair[0]);
      child_main (map_pipe[0], tty_pair[1] >= 0 ? tty_pair[1] : console_sock);
    }
  if (console_sock >= 0)
    close (console_sock);

  close (map_pipe[0]);
  if (clone_flags & CLONE_NEWUSER)
    write_id_maps (child_pid);

  /* Sync 1. If Node is gone, nobody will ever know this child: take it down. */
  snprintf (extra, sizeof extra, "\"child\":%d", child_pid);
  if (berth_sync_send ("pid", extra) < 0)
    {
      kill (child_pid, SIGKILL);
      _exit (1);
    }
  if (write (map_pipe[1], "1", 1) != 1)
    berth_fail (errno, "release child", NULL);
  close (map_pipe[1]);
  if (!foreground)
    _exit (0);

  close (berth_sync_fd);
  if (terminal_proxy)
    {
      int master;
      close (tty_pair[1]);
      master = recv_fd (tty_pair[0]);
      if (master >= 0)
        {
          proxy_terminal (master);
          close (master); /* the last reference: the container's side sees a hangup */
        }
    }
  return wait_status (child_pid);
}
