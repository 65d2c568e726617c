/* The process's pseudo-terminal. The child opens a pty inside the container (after
 * pivot_root, from the container's devpts) and sends the master over a unix socket:
 * the console socket given to `create`, or stage 0's own socket for a foreground run.
 * The message carries the pty's name as data and the fd as SCM_RIGHTS, as runc's does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"
#include "sync.h"

int
berth_connect_console (struct berth_plan *plan)
{
  const char *path = berth_plan_get (plan, "consolesocket", 0, NULL);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  const char *slash;
  int dirfd = -1, fd;

  if (path == NULL || !atoi (berth_plan_get (plan, "terminal", 0, "0")))
    return -1;
  slash = strrchr (path, '/');
  if (strlen (path) < sizeof addr.sun_path)
    strcpy (addr.sun_path, path);
  else
    {
      /* sun_path holds 107 bytes; a longer path (berth's per-container console socket
       * under a deep --root) is reached through its directory's /proc/self/fd entry. */
      char dir[4096];
      if (slash == NULL || slash == path || (size_t) (slash - path) >= sizeof dir)
        berth_fail (ENAMETOOLONG, "connect console socket", path);
      memcpy (dir, path, (size_t) (slash - path));
      dir[slash - path] = '\0';
      dirfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        berth_fail (errno, "connect console socket", path);
      if ((size_t) snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd,
                             slash + 1)
          >= sizeof addr.sun_path)
        berth_fail (ENAMETOOLONG, "connect console socket", path);
    }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    berth_fail (errno, "connect console socket", path);
  if (dirfd >= 0)
    close (dirfd);
  return fd;
}

static void
send_fd (int sock, int fd, const char *name)
{
  char cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { .iov_base = (void *) name, .iov_len = strlen (name) };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf };
  struct cmsghdr *c = CMSG_FIRSTHDR (&msg);

  memset (cbuf, 0, sizeof cbuf);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof (int));
  if (sendmsg (sock, &msg, MSG_NOSIGNAL) < 0)
    berth_fail (errno, "send pty master to console socket", NULL);
}

void
berth_setup_terminal (struct berth_plan *plan, int console_fd)
{
  int master, slave, unlock = 0, n;
  char name[64];

  if (!atoi (berth_plan_get (plan, "terminal", 0, "0")))
    return;
  if (console_fd < 0)
    berth_fail (EINVAL, "process.terminal is set but there is no console socket", NULL);

  master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    berth_fail (errno, "open pty master", "/dev/ptmx");
  if (ioctl (master, TIOCSPTLCK, &unlock) < 0)
    berth_fail (errno, "unlock pty", "/dev/ptmx");
  if (ioctl (master, TIOCGPTN, &n) < 0)
    berth_fail (errno, "get pty number", "/dev/ptmx");
  snprintf (name, sizeof name, "/dev/pts/%d", n);
  slave = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0)
    berth_fail (errno, "open pty slave", name);

  send_fd (console_fd, master, name);
  close (master);
  close (console_fd);

  if (setsid () < 0)
    berth_fail (errno, "setsid", NULL);
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    berth_fail (errno, "set controlling terminal", name);
  for (int fd = 0; fd < 3; fd++)
    if (dup2 (slave, fd) < 0)
      berth_fail (errno, "dup pty slave", name);
  if (slave > 2)
    close (slave);
}
