/* The container's root filesystem: mounts, devices, symlinks, pivot_root, masked and
 * read-only paths. Runs in the container's child, inside its new mount namespace.
 * Every destination is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT), so a
 * symlink in an image cannot redirect a mount onto the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "init.h"
#include "sync.h"

static int root_fd = -1;
static const char *rootfs_path;

static int
openat2_in_root (int dirfd, const char *path, int flags)
{
  struct open_how how = { .flags = (unsigned long long) (flags | O_CLOEXEC),
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  return (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Creates every missing directory of PATH inside the root (like mkdir -p) and, when
 * IS_FILE, an empty file at the end. Returns an O_PATH fd on PATH. */
static int
make_in_root (const char *path, int is_file)
{
  char buf[4096], *p;
  int fd;

  fd = openat2_in_root (root_fd, path, O_PATH);
  if (fd >= 0)
    return fd;
  if (errno != ENOENT)
    berth_fail (errno, "resolve in rootfs", path);

  snprintf (buf, sizeof buf, "%s", path);
  for (p = buf + 1; ; p++)
    {
      int last = (*p == '\0');
      if (*p != '/' && !last)
        continue;
      *p = '\0';
      if (buf[0] != '\0')
        {
          int dfd = openat2_in_root (root_fd, buf, O_PATH);
          if (dfd < 0 && errno == ENOENT)
            {
              char *slash = strrchr (buf, '/');
              char parent[4096];
              int pfd;

              snprintf (parent, sizeof parent, "%.*s", (int) (slash - buf), buf);
              pfd = openat2_in_root (root_fd, parent[0] ? parent : "/", O_PATH | O_DIRECTORY);
              if (pfd < 0)
                berth_fail (errno, "resolve in rootfs", parent);
              if (last && is_file)
                {
                  int f = openat (pfd, slash + 1, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
                  if (f < 0 && errno != EEXIST)
                    berth_fail (errno, "create mount point", path);
                  if (f >= 0)
                    close (f);
                }
              else if (mkdirat (pfd, slash + 1, 0755) < 0 && errno != EEXIST)
                berth_fail (errno, "create mount point", buf);
              close (pfd);
            }
          else if (dfd < 0)
            berth_fail (errno, "resolve in rootfs", buf);
          else
            close (dfd);
        }
      if (last)
        break;
      *p = '/';
    }

  fd = openat2_in_root (root_fd, path, O_PATH);
  if (fd < 0)
    berth_fail (errno, "resolve in rootfs", path);
  return fd;
}

static void
fd_path (int fd, char *buf, size_t size)
{
  snprintf (buf, size, "/proc/self/fd/%d", fd);
}

static unsigned long
hexflags (const char *s)
{
  return strtoul (s, NULL, 16);
}

static void
do_mount (struct berth_record *r)
{
  const char *src = r->fields[0], *dst = r->fields[1], *type = r->fields[2];
  unsigned long flags = hexflags (r->fields[3]);
  const char *data = r->fields[4];
  int is_file = strcmp (r->fields[5], "file") == 0;
  char target[64];
  int fd;

  fd = make_in_root (dst, is_file);
  /* A destination that resolves to the root itself ("/", or an image symlink to it) would
   * stack the mount over the rootfs, where pivot_root never sees it: refuse it. */
  {
    struct stat a, b;
    if (fstat (fd, &a) == 0 && fstat (root_fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
      berth_fail (EINVAL, "refused: mount onto the container's root directory through", dst);
  }
  fd_path (fd, target, sizeof target);
  berth_log (3, "mount %s on %s type %s flags 0x%lx data %s", src, dst, type, flags, data);
  if (mount (src, target, type[0] ? type : NULL, flags, data[0] ? data : NULL) < 0)
    {
      char op[512];
      snprintf (op, sizeof op, "mount %s (type %s) on", src, type[0] ? type : "bind");
      berth_fail (errno, op, dst);
    }
  close (fd);
}

static void
do_remount (struct berth_record *r)
{
  const char *dst = r->fields[0];
  unsigned long flags = hexflags (r->fields[1]);
  char target[64];
  struct statvfs sv;
  int fd;

  fd = openat2_in_root (root_fd, dst, O_PATH);
  if (fd < 0)
    berth_fail (errno, "resolve in rootfs", dst);
  fd_path (fd, target, sizeof target);
  /* A bind remount must keep the flags the kernel locked on the mount (nosuid, nodev,
   * noexec inside a user namespace), or it fails with EPERM. */
  if ((flags & MS_REMOUNT) && fstatvfs (fd, &sv) == 0)
    {
      if (sv.f_flag & ST_NOSUID)
        flags |= MS_NOSUID;
      if (sv.f_flag & ST_NODEV)
        flags |= MS_NODEV;
      if (sv.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    }
  if (mount (NULL, target, NULL, flags, NULL) < 0)
    berth_fail (errno, "remount", dst);
  close (fd);
}

static void
do_mknod (struct berth_record *r)
{
  const char *path = r->fields[0];
  char type = r->fields[1][0];
  unsigned int major = (unsigned int) atoi (r->fields[2]), minor = (unsigned int) atoi (r->fields[3]);
  mode_t mode = (mode_t) strtoul (r->fields[4], NULL, 8);
  uid_t uid = (uid_t) atoi (r->fields[5]);
  gid_t gid = (gid_t) atoi (r->fields[6]);
  char parent[4096], *slash;
  int pfd;

  snprintf (parent, sizeof parent, "%s", path);
  slash = strrchr (parent, '/');
  *slash = '\0';
  close (make_in_root (parent[0] ? parent : "/", 0));
  pfd = openat2_in_root (root_fd, parent[0] ? parent : "/", O_PATH | O_DIRECTORY);
  if (pfd < 0)
    berth_fail (errno, "resolve in rootfs", parent);
  mode |= type == 'c' ? S_IFCHR : type == 'b' ? S_IFBLK : S_IFIFO;
  unlinkat (pfd, slash + 1, 0);
  if (mknodat (pfd, slash + 1, mode, makedev (major, minor)) < 0)
    berth_fail (errno, "mknod", path);
  if (fchownat (pfd, slash + 1, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    berth_fail (errno, "chown device", path);
  /* mknod applies the umask; the config's mode is exact. */
  {
    int f = openat (pfd, slash + 1, O_PATH | O_CLOEXEC | O_NOFOLLOW);
    char p[64];
    if (f >= 0)
      {
        fd_path (f, p, sizeof p);
        chmod (p, mode & 07777);
        close (f);
      }
  }
  close (pfd);
}

static void
do_bindnode (struct berth_record *r)
{
  char target[64];
  int fd = make_in_root (r->fields[1], 1);

  fd_path (fd, target, sizeof target);
  if (mount (r->fields[0], target, NULL, MS_BIND, NULL) < 0)
    berth_fail (errno, "bind device", r->fields[1]);
  close (fd);
}

static void
do_symlink (struct berth_record *r)
{
  const char *target = r->fields[0], *path = r->fields[1];
  char parent[4096], *slash;
  int pfd;

  snprintf (parent, sizeof parent, "%s", path);
  slash = strrchr (parent, '/');
  *slash = '\0';
  pfd = openat2_in_root (root_fd, parent[0] ? parent : "/", O_PATH | O_DIRECTORY);
  if (pfd < 0)
    berth_fail (errno, "resolve in rootfs", parent);
  if (symlinkat (target, pfd, slash + 1) < 0 && errno != EEXIST)
    berth_fail (errno, "symlink", path);
  close (pfd);
}

void
berth_setup_rootfs (struct berth_plan *plan)
{
  unsigned long rootprop = hexflags (berth_plan_get (plan, "rootprop", 0, "84000"));

  rootfs_path = berth_plan_get (plan, "rootfs", 0, NULL);
  if (rootfs_path == NULL)
    berth_fail (EINVAL, "plan has no rootfs", NULL);

  if (mount (NULL, "/", NULL, rootprop, NULL) < 0)
    berth_fail (errno, "set propagation of", "/");

  /* pivot_root needs the new root to be a mount point. */
  if (mount (rootfs_path, rootfs_path, NULL, MS_BIND | MS_REC, NULL) < 0)
    berth_fail (errno, "bind rootfs onto itself", rootfs_path);
  if (mount (NULL, rootfs_path, NULL, MS_PRIVATE, NULL) < 0)
    berth_fail (errno, "make rootfs private", rootfs_path);

  root_fd = open (rootfs_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0)
    berth_fail (errno, "open rootfs", rootfs_path);

  for (int i = 0; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      if (strcmp (r->tag, "mount") == 0 && r->nfields >= 6)
        do_mount (r);
      else if (strcmp (r->tag, "remount") == 0 && r->nfields >= 2)
        do_remount (r);
      else if (strcmp (r->tag, "mknod") == 0 && r->nfields >= 7)
        do_mknod (r);
      else if (strcmp (r->tag, "bindnode") == 0 && r->nfields >= 2)
        do_bindnode (r);
      else if (strcmp (r->tag, "symlink") == 0 && r->nfields >= 2)
        do_symlink (r);
    }
}

void
berth_pivot_root (struct berth_plan *plan)
{
  int nopivot = atoi (berth_plan_get (plan, "nopivot", 0, "0"));

  if (fchdir (root_fd) < 0)
    berth_fail (errno, "chdir to rootfs", rootfs_path);

  if (nopivot)
    {
      if (mount (rootfs_path, "/", NULL, MS_MOVE, NULL) < 0)
        berth_fail (errno, "move rootfs to", "/");
      if (chroot (".") < 0)
        berth_fail (errno, "chroot", rootfs_path);
    }
  else
    {
      /* pivot_root(".", ".") stacks the old root on top of the new one; unmounting "."
       * then removes the old root without needing a directory for it (pivot_root(2)). */
      if (syscall (SYS_pivot_root, ".", ".") < 0)
        berth_fail (errno, "pivot_root", rootfs_path);
      if (mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        berth_fail (errno, "make old root a slave", "/");
      if (umount2 (".", MNT_DETACH) < 0)
        berth_fail (errno, "unmount old root", "/");
    }
  if (chdir ("/") < 0)
    berth_fail (errno, "chdir", "/");
  close (root_fd);
  root_fd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void
mask_path (const char *path)
{
  struct stat st;
  char target[64];
  int fd = openat2_in_root (root_fd, path, O_PATH | O_NOFOLLOW);

  if (fd < 0)
    {
      if (errno == ENOENT)
        return;
      berth_fail (errno, "resolve masked path", path);
    }
  fd_path (fd, target, sizeof target);
  if (fstat (fd, &st) < 0)
    berth_fail (errno, "stat masked path", path);
  if (S_ISDIR (st.st_mode))
    {
      if (mount ("tmpfs", target, "tmpfs", MS_RDONLY, "size=0k") < 0)
        berth_fail (errno, "mask directory", path);
    }
  else if (mount ("/dev/null", target, NULL, MS_BIND, NULL) < 0)
    berth_fail (errno, "mask file", path);
  close (fd);
}

static void
readonly_path (const char *path)
{
  struct berth_record r;
  char *fields[2];
  char target[64];
  int fd = openat2_in_root (root_fd, path, O_PATH);

  if (fd < 0)
    {
      if (errno == ENOENT)
        return;
      berth_fail (errno, "resolve read-only path", path);
    }
  fd_path (fd, target, sizeof target);
  if (mount (target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
    berth_fail (errno, "bind read-only path", path);
  close (fd);
  fields[0] = (char *) path;
  fields[1] = (char *) "1021"; /* MS_BIND | MS_REMOUNT | MS_RDONLY */
  r.tag = (char *) "remount";
  r.nfields = 2;
  r.fields = fields;
  do_remount (&r);
}

void
berth_finish_rootfs (struct berth_plan *plan)
{
  /* sysctls first, as runc does: linux.readonlyPaths usually holds /proc/sys, and
   * writing after it is read-only fails with EROFS (podman sets
   * net.ipv4.ping_group_range on every container). */
  for (int i = 0; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      if (strcmp (r->tag, "sysctl") == 0 && r->nfields >= 2)
        {
          int fd = open (r->fields[0], O_WRONLY | O_CLOEXEC);
          if (fd < 0 || write (fd, r->fields[1], strlen (r->fields[1])) < 0)
            berth_fail (errno, "write sysctl", r->fields[0]);
          close (fd);
        }
    }
  for (int i = 0; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      if (strcmp (r->tag, "readonly") == 0)
        readonly_path (r->fields[0]);
    }
  for (int i = 0; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      if (strcmp (r->tag, "mask") == 0)
        mask_path (r->fields[0]);
    }

  if (atoi (berth_plan_get (plan, "rootreadonly", 0, "0")))
    {
      char *fields[2] = { (char *) "/", (char *) "1021" };
      struct berth_record r = { (char *) "remount", 2, fields };
      do_remount (&r);
    }
  if (atoi (berth_plan_get (plan, "rootshared", 0, "0"))
      && mount (NULL, "/", NULL, MS_SHARED | MS_REC, NULL) < 0)
    berth_fail (errno, "make root shared", "/");
}
