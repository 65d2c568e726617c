/* berth.node: the few syscalls the engine itself needs from Node (DESIGN.md "Processes"):
 * safe file operations inside a root directory for unpacking layers, xattrs, mount,
 * umount2, flock, and id-mapped mounts (a user namespace holding maps, open_tree,
 * mount_setattr, move_mount). Loaded by src/common/native.ts in the Node host process.
 *
 * Every function is synchronous and small. A failure throws a JS Error shaped like Node's
 * fs errors: `code` ("ENOENT"), `errno` (negative, as Node's), `syscall` and `path`, so
 * src/common/errors.ts wrapSystemError() keeps them as context.
 *
 * Paths handed to the *at functions are single names or paths relative to a directory fd
 * the caller obtained with openat2() below; those functions never follow a symlink in the
 * last component (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW), which is what makes unpacking a hostile
 * layer safe (src/storage/unpack.ts). */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_ARGS 8
#define PATH_BUF 4096

/* ---- argument and error helpers ---------------------------------------------------- */

/* Throws Error("<CODE>: <strerror>, <syscall> '<path>'") with Node's fs error fields. */
static void
throw_errno (napi_env env, int err, const char *syscall_name, const char *path)
{
  const char *name = strerrorname_np (err);
  char msg[PATH_BUF + 256];
  napi_value error, message, code, v;

  if (name == NULL)
    name = "EUNKNOWN";
  if (path != NULL)
    snprintf (msg, sizeof msg, "%s: %s, %s '%s'", name, strerror (err), syscall_name, path);
  else
    snprintf (msg, sizeof msg, "%s: %s, %s", name, strerror (err), syscall_name);

  napi_create_string_utf8 (env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8 (env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error (env, code, message, &error);

  napi_create_int32 (env, -err, &v);
  napi_set_named_property (env, error, "errno", v);
  napi_set_named_property (env, error, "code", code);
  napi_create_string_utf8 (env, syscall_name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property (env, error, "syscall", v);
  if (path != NULL)
    {
      napi_create_string_utf8 (env, path, NAPI_AUTO_LENGTH, &v);
      napi_set_named_property (env, error, "path", v);
    }
  napi_throw (env, error);
}

static void
throw_type (napi_env env, const char *what)
{
  napi_throw_type_error (env, "ERR_INVALID_ARG_TYPE", what);
}

/* Reads the call's arguments; returns 0 and throws if fewer than MIN were given. */
static int
get_args (napi_env env, napi_callback_info info, size_t min, napi_value *argv, size_t *argc)
{
  size_t n = MAX_ARGS;

  if (napi_get_cb_info (env, info, &n, argv, NULL, NULL) != napi_ok)
    return 0;
  if (n < min)
    {
      throw_type (env, "missing arguments");
      return 0;
    }
  if (argc != NULL)
    *argc = n;
  return 1;
}

static int
get_int (napi_env env, napi_value v, int64_t *out)
{
  if (napi_get_value_int64 (env, v, out) != napi_ok)
    {
      throw_type (env, "expected a number");
      return 0;
    }
  return 1;
}

/* Copies a JS string into BUF; strings with a NUL byte or longer than PATH_BUF are refused
 * (a NUL would silently shorten the path the kernel sees). */
static int
get_str (napi_env env, napi_value v, char *buf, size_t size)
{
  size_t len;

  if (napi_get_value_string_utf8 (env, v, buf, size, &len) != napi_ok)
    {
      throw_type (env, "expected a string");
      return 0;
    }
  if (len >= size - 1 || strlen (buf) != len)
    {
      throw_errno (env, len >= size - 1 ? ENAMETOOLONG : EINVAL, "string argument", NULL);
      return 0;
    }
  return 1;
}

static int
is_nullish (napi_env env, napi_value v)
{
  napi_valuetype t;

  napi_typeof (env, v, &t);
  return t == napi_undefined || t == napi_null;
}

static napi_value
undefined (napi_env env)
{
  napi_value v;

  napi_get_undefined (env, &v);
  return v;
}

static napi_value
number (napi_env env, int64_t n)
{
  napi_value v;

  napi_create_int64 (env, n, &v);
  return v;
}

/* ---- files inside a root ------------------------------------------------------------ */

/* openat2(dirfd, path, flags, mode = 0, extraResolve = 0) -> fd
 * Resolves PATH with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: "..", absolute names and
 * symlinks (absolute or relative) are all resolved as if DIRFD were "/", so the result is
 * always inside it (openat2(2)). O_CLOEXEC is always added. EXTRA adds resolve flags, for
 * example RESOLVE_NO_SYMLINKS (0x04). The fd is a plain fd: fs.writeSync, fs.closeSync. */
static napi_value
js_openat2 (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  size_t argc;
  int64_t dirfd, flags, mode = 0, extra = 0;
  char path[PATH_BUF];
  struct open_how how;
  int fd;

  if (!get_args (env, info, 3, argv, &argc) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], path, sizeof path) || !get_int (env, argv[2], &flags))
    return NULL;
  if (argc > 3 && !is_nullish (env, argv[3]) && !get_int (env, argv[3], &mode))
    return NULL;
  if (argc > 4 && !is_nullish (env, argv[4]) && !get_int (env, argv[4], &extra))
    return NULL;

  memset (&how, 0, sizeof how);
  how.flags = (uint64_t) flags | O_CLOEXEC;
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? (uint64_t) mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (uint64_t) extra;
  fd = (int) syscall (SYS_openat2, (int) dirfd, path, &how, sizeof how);
  if (fd < 0)
    {
      throw_errno (env, errno, "openat2", path);
      return NULL;
    }
  return number (env, fd);
}

/* mkdirat(dirfd, name, mode) */
static napi_value
js_mkdirat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd, mode;
  char name[PATH_BUF];

  if (!get_args (env, info, 3, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_int (env, argv[2], &mode))
    return NULL;

  if (mkdirat ((int) dirfd, name, (mode_t) mode) < 0)
    throw_errno (env, errno, "mkdirat", name);
  return undefined (env);
}

/* mknodat(dirfd, name, mode, major, minor): MODE carries the type (S_IFCHR, S_IFBLK,
 * S_IFIFO) and the permission bits, as mknod(2). A 0:0 character device is an overlay
 * whiteout. */
static napi_value
js_mknodat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd, mode, major, minor;
  char name[PATH_BUF];

  if (!get_args (env, info, 5, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_int (env, argv[2], &mode)
      || !get_int (env, argv[3], &major) || !get_int (env, argv[4], &minor))
    return NULL;

  if (mknodat ((int) dirfd, name, (mode_t) mode, makedev ((unsigned) major, (unsigned) minor)) < 0)
    throw_errno (env, errno, "mknodat", name);
  return undefined (env);
}

/* symlinkat(target, dirfd, name): TARGET is stored as given; it is data, resolved later
 * inside the container's root, never by us. */
static napi_value
js_symlinkat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd;
  char target[PATH_BUF], name[PATH_BUF];

  if (!get_args (env, info, 3, argv, NULL) || !get_str (env, argv[0], target, sizeof target)
      || !get_int (env, argv[1], &dirfd) || !get_str (env, argv[2], name, sizeof name))
    return NULL;

  if (symlinkat (target, (int) dirfd, name) < 0)
    throw_errno (env, errno, "symlinkat", name);
  return undefined (env);
}

/* linkat(olddirfd, oldname, newdirfd, newname): flags 0, so a symlink OLDNAME is linked
 * itself, never followed. */
static napi_value
js_linkat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t olddirfd, newdirfd;
  char oldname[PATH_BUF], newname[PATH_BUF];

  if (!get_args (env, info, 4, argv, NULL) || !get_int (env, argv[0], &olddirfd)
      || !get_str (env, argv[1], oldname, sizeof oldname) || !get_int (env, argv[2], &newdirfd)
      || !get_str (env, argv[3], newname, sizeof newname))
    return NULL;

  if (linkat ((int) olddirfd, oldname, (int) newdirfd, newname, 0) < 0)
    throw_errno (env, errno, "linkat", newname);
  return undefined (env);
}

/* unlinkat(dirfd, name, flags): flags 0 or AT_REMOVEDIR (0x200). */
static napi_value
js_unlinkat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd, flags;
  char name[PATH_BUF];

  if (!get_args (env, info, 3, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_int (env, argv[2], &flags))
    return NULL;

  if (unlinkat ((int) dirfd, name, (int) flags) < 0)
    throw_errno (env, errno, "unlinkat", name);
  return undefined (env);
}

/* fchownat(dirfd, name, uid, gid) with AT_SYMLINK_NOFOLLOW; NAME "" means DIRFD itself. */
static napi_value
js_fchownat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd, uid, gid;
  char name[PATH_BUF];
  int flags = AT_SYMLINK_NOFOLLOW;

  if (!get_args (env, info, 4, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_int (env, argv[2], &uid)
      || !get_int (env, argv[3], &gid))
    return NULL;

  if (name[0] == '\0')
    flags |= AT_EMPTY_PATH;
  if (fchownat ((int) dirfd, name, (uid_t) uid, (gid_t) gid, flags) < 0)
    throw_errno (env, errno, "fchownat", name);
  return undefined (env);
}

/* fchmodat(dirfd, name, mode) that never follows a symlink: glibc implements
 * AT_SYMLINK_NOFOLLOW with an O_PATH fd and /proc/self/fd, and fails on a symlink
 * (whose mode Linux ignores anyway). MODE may include setuid, setgid and sticky bits. */
static napi_value
js_fchmodat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd, mode;
  char name[PATH_BUF];

  if (!get_args (env, info, 3, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_int (env, argv[2], &mode))
    return NULL;

  if (fchmodat ((int) dirfd, name, (mode_t) mode, AT_SYMLINK_NOFOLLOW) < 0)
    throw_errno (env, errno, "fchmodat", name);
  return undefined (env);
}

/* utimensat(dirfd, name, atimeSec, atimeNsec, mtimeSec, mtimeNsec), AT_SYMLINK_NOFOLLOW:
 * nanosecond times, as PAX headers carry them. */
static napi_value
js_utimensat (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd, as, an, ms, mn;
  char name[PATH_BUF];
  struct timespec ts[2];

  if (!get_args (env, info, 6, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_int (env, argv[2], &as)
      || !get_int (env, argv[3], &an) || !get_int (env, argv[4], &ms) || !get_int (env, argv[5], &mn))
    return NULL;

  ts[0].tv_sec = (time_t) as;
  ts[0].tv_nsec = (long) an;
  ts[1].tv_sec = (time_t) ms;
  ts[1].tv_nsec = (long) mn;
  if (utimensat ((int) dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    throw_errno (env, errno, "utimensat", name);
  return undefined (env);
}

/* Opens NAME under DIRFD without following it, as "/proc/self/fd/N" in BUF. The xattr
 * calls take paths, and an O_PATH fd reached through /proc names exactly the inode we
 * opened, even if NAME is a symlink (the magic link jumps to the symlink itself). */
static int
open_proc_path (int dirfd, const char *name, char *buf, size_t size)
{
  int fd = openat (dirfd, name[0] ? name : ".", O_PATH | O_NOFOLLOW | O_CLOEXEC);

  if (fd >= 0)
    snprintf (buf, size, "/proc/self/fd/%d", fd);
  return fd;
}

/* lsetxattr(dirfd, name, key, value: Buffer) */
static napi_value
js_lsetxattr (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t dirfd;
  char name[PATH_BUF], key[256], proc[64];
  void *data;
  size_t len;
  int fd, err = 0;

  if (!get_args (env, info, 4, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_str (env, argv[2], key, sizeof key))
    return NULL;
  if (napi_get_buffer_info (env, argv[3], &data, &len) != napi_ok)
    {
      throw_type (env, "expected a Buffer");
      return NULL;
    }

  fd = open_proc_path ((int) dirfd, name, proc, sizeof proc);
  if (fd < 0)
    {
      throw_errno (env, errno, "open", name);
      return NULL;
    }
  if (setxattr (proc, key, data, len, 0) < 0)
    err = errno;
  close (fd);
  if (err)
    throw_errno (env, err, "lsetxattr", name);
  return undefined (env);
}

/* lgetxattr(dirfd, name, key) -> Buffer, or null when the attribute is not set. */
static napi_value
js_lgetxattr (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS], result;
  int64_t dirfd;
  char name[PATH_BUF], key[256], proc[64], value[65536];
  ssize_t len;
  int fd, err = 0;
  void *copy;

  if (!get_args (env, info, 3, argv, NULL) || !get_int (env, argv[0], &dirfd)
      || !get_str (env, argv[1], name, sizeof name) || !get_str (env, argv[2], key, sizeof key))
    return NULL;

  fd = open_proc_path ((int) dirfd, name, proc, sizeof proc);
  if (fd < 0)
    {
      throw_errno (env, errno, "open", name);
      return NULL;
    }
  len = getxattr (proc, key, value, sizeof value);
  if (len < 0)
    err = errno;
  close (fd);
  if (err == ENODATA)
    {
      napi_get_null (env, &result);
      return result;
    }
  if (err)
    {
      throw_errno (env, err, "lgetxattr", name);
      return NULL;
    }
  napi_create_buffer_copy (env, (size_t) len, value, &copy, &result);
  return result;
}

/* ---- mounts and locks --------------------------------------------------------------- */

struct mount_call
{
  const char *source, *target, *fstype, *data;
  unsigned long flags;
  int cwd_fd;
  int err;
};

/* Runs on a thread of its own: unshare(CLONE_FS) gives it a private cwd, so the fchdir
 * that lets DATA name directories relatively never moves the cwd of Node's other threads
 * (the libuv pool may be resolving relative paths at that moment). */
static void *
mount_thread (void *arg)
{
  struct mount_call *c = arg;

  if (unshare (CLONE_FS) < 0 || fchdir (c->cwd_fd) < 0)
    {
      c->err = errno;
      return NULL;
    }
  if (mount (c->source, c->target, c->fstype, c->flags, c->data) < 0)
    c->err = errno;
  return NULL;
}

/* mount(source, target, fstype, flags, data, cwdFd = -1)
 * With CWDFD >= 0 the call runs in that directory, so relative paths in DATA (overlay's
 * lowerdir) resolve there; TARGET should then be absolute. */
static napi_value
js_mount (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  size_t argc;
  int64_t flags, cwd_fd = -1;
  char source[PATH_BUF], target[PATH_BUF], fstype[64];
  char *data = NULL;
  size_t dlen = 0;
  struct mount_call c;
  pthread_t t;

  if (!get_args (env, info, 4, argv, &argc) || !get_str (env, argv[0], source, sizeof source)
      || !get_str (env, argv[1], target, sizeof target) || !get_str (env, argv[2], fstype, sizeof fstype)
      || !get_int (env, argv[3], &flags))
    return NULL;
  if (argc > 5 && !is_nullish (env, argv[5]) && !get_int (env, argv[5], &cwd_fd))
    return NULL;
  if (argc > 4 && !is_nullish (env, argv[4]))
    {
      /* The kernel takes at most one page of options; a longer string fails there with
       * EINVAL, not here. */
      if (napi_get_value_string_utf8 (env, argv[4], NULL, 0, &dlen) != napi_ok)
        {
          throw_type (env, "expected a string");
          return NULL;
        }
      data = malloc (dlen + 1);
      if (data == NULL)
        {
          throw_errno (env, ENOMEM, "mount", target);
          return NULL;
        }
      napi_get_value_string_utf8 (env, argv[4], data, dlen + 1, &dlen);
    }

  c = (struct mount_call) { .source = source, .target = target, .fstype = fstype, .data = data,
                            .flags = (unsigned long) flags, .cwd_fd = (int) cwd_fd, .err = 0 };
  if (cwd_fd < 0)
    {
      if (mount (source, target, fstype, c.flags, data) < 0)
        c.err = errno;
    }
  else if ((c.err = pthread_create (&t, NULL, mount_thread, &c)) == 0)
    pthread_join (t, NULL);

  free (data);
  if (c.err)
    throw_errno (env, c.err, "mount", target);
  return undefined (env);
}

/* umount2(target, flags): flags as umount2(2), e.g. MNT_DETACH (2). */
static napi_value
js_umount2 (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t flags;
  char target[PATH_BUF];

  if (!get_args (env, info, 2, argv, NULL) || !get_str (env, argv[0], target, sizeof target)
      || !get_int (env, argv[1], &flags))
    return NULL;

  if (umount2 (target, (int) flags) < 0)
    throw_errno (env, errno, "umount2", target);
  return undefined (env);
}

/* flock(fd, op): op as flock(2): LOCK_SH 1, LOCK_EX 2, LOCK_NB 4, LOCK_UN 8. Without
 * LOCK_NB it blocks the calling (main) thread until the lock is free. */
static napi_value
js_flock (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t fd, op;
  int r;

  if (!get_args (env, info, 2, argv, NULL) || !get_int (env, argv[0], &fd) || !get_int (env, argv[1], &op))
    return NULL;

  do
    r = flock ((int) fd, (int) op);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    throw_errno (env, errno, "flock", NULL);
  return undefined (env);
}

/* netnsCreate(path): a new network namespace, bind-mounted on PATH (an existing empty
 * file), with lo up as Docker's containers have it; the engine then names PATH in
 * config.json (src/network/index.ts). unshare(CLONE_NEWNET) moves only the calling thread
 * (Node's main thread), which goes back with setns() before returning, so no other thread
 * ever runs in the new namespace and no process is spawned for it. A socket made while in
 * the namespace belongs to it, which is how lo is brought up without `ip`. */
static napi_value
js_netns_create (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  char target[PATH_BUF];
  struct ifreq ifr;
  int self, sock, err = 0;
  const char *op = NULL;

  if (!get_args (env, info, 1, argv, NULL) || !get_str (env, argv[0], target, sizeof target))
    return NULL;

  self = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0)
    {
      throw_errno (env, errno, "open", "/proc/thread-self/ns/net");
      return NULL;
    }
  if (unshare (CLONE_NEWNET) < 0)
    {
      err = errno;
      close (self);
      throw_errno (env, err, "unshare", NULL);
      return NULL;
    }

  if (mount ("/proc/thread-self/ns/net", target, NULL, MS_BIND, NULL) < 0)
    err = errno, op = "mount";
  else
    {
      sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      memset (&ifr, 0, sizeof ifr);
      strcpy (ifr.ifr_name, "lo");
      if (sock < 0)
        err = errno, op = "socket";
      else if (ioctl (sock, SIOCGIFFLAGS, &ifr) < 0)
        err = errno, op = "ioctl SIOCGIFFLAGS lo";
      else
        {
          ifr.ifr_flags |= IFF_UP;
          if (ioctl (sock, SIOCSIFFLAGS, &ifr) < 0)
            err = errno, op = "ioctl SIOCSIFFLAGS lo";
        }
      if (sock >= 0)
        close (sock);
      if (err)
        umount2 (target, MNT_DETACH);
    }

  /* Back to the namespace we came from; if even that fails, this thread would do all of
   * Node's later work in the wrong namespace, so stop here rather than go on. */
  if (setns (self, CLONE_NEWNET) < 0)
    abort ();
  close (self);
  if (err)
    throw_errno (env, err, op, target);
  return err ? NULL : undefined (env);
}

/* ---- user namespaces and id-mapped mounts (src/storage/idmap.ts) -------------------- */

/* Writes TEXT to /proc/PID/NAME (uid_map or gid_map) in one write(2), as the kernel wants. */
static int
write_map (pid_t pid, const char *name, const char *text, char *path, size_t size)
{
  ssize_t len = (ssize_t) strlen (text), n;
  int fd, err = 0;

  snprintf (path, size, "/proc/%d/%s", (int) pid, name);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  n = write (fd, text, (size_t) len);
  if (n < 0)
    err = errno;
  else if (n != len)
    err = EIO;
  close (fd);
  return err;
}

/* usernsCreate(uidMap, gidMap) -> fd of a new user namespace with those maps, each in
 * /proc/PID/uid_map's format ("inside outside count" lines). An id-mapped mount needs the
 * namespace only as the holder of a mapping (mount_setattr(2) MOUNT_ATTR_IDMAP), so it is
 * made by a child that does nothing: clone(2) with CLONE_NEWUSER (unshare would refuse:
 * Node's process has threads), which blocks on a pipe until we have written its maps and
 * opened /proc/PID/ns/user, then exits when we close the pipe. The fd keeps the namespace
 * alive after the child is gone. The child runs only read(2) and _exit(2), both safe
 * after a fork of a threaded process; it is reaped by pid, so libuv's own children are
 * untouched. */
static napi_value
js_userns_create (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  char uidmap[PATH_BUF], gidmap[PATH_BUF], path[64];
  const char *op = NULL;
  int p[2], fd = -1, err = 0, status;
  pid_t pid;

  if (!get_args (env, info, 2, argv, NULL) || !get_str (env, argv[0], uidmap, sizeof uidmap)
      || !get_str (env, argv[1], gidmap, sizeof gidmap))
    return NULL;

  if (pipe2 (p, O_CLOEXEC) < 0)
    {
      throw_errno (env, errno, "pipe2", NULL);
      return NULL;
    }
  pid = (pid_t) syscall (SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0)
    {
      err = errno;
      close (p[0]);
      close (p[1]);
      throw_errno (env, err, "clone CLONE_NEWUSER", NULL);
      return NULL;
    }
  if (pid == 0)
    {
      char c;

      close (p[1]);
      while (read (p[0], &c, 1) < 0 && errno == EINTR)
        ;
      _exit (0);
    }
  close (p[0]);

  /* As root in the parent namespace (CAP_SETUID, CAP_SETGID there) any range may be
   * mapped, and gid_map needs no "deny" in setgroups first (user_namespaces(7)). */
  if ((err = write_map (pid, "uid_map", uidmap, path, sizeof path)) != 0)
    op = "write";
  else if ((err = write_map (pid, "gid_map", gidmap, path, sizeof path)) != 0)
    op = "write";
  else
    {
      snprintf (path, sizeof path, "/proc/%d/ns/user", (int) pid);
      fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        err = errno, op = "open";
    }

  close (p[1]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (err)
    {
      throw_errno (env, err, op, path);
      return NULL;
    }
  return number (env, fd);
}

/* openTree(path, flags) -> fd: open_tree(2) with OPEN_TREE_CLOEXEC added; FLAGS
 * OPEN_TREE_CLONE (1) | AT_RECURSIVE (0x8000) gives a detached copy of the mount at PATH,
 * which no one else sees until move_mount(2) attaches it. */
static napi_value
js_open_tree (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  char path[PATH_BUF];
  int64_t flags;
  int fd;

  if (!get_args (env, info, 2, argv, NULL) || !get_str (env, argv[0], path, sizeof path)
      || !get_int (env, argv[1], &flags))
    return NULL;

  fd = (int) syscall (SYS_open_tree, AT_FDCWD, path, (unsigned) flags | OPEN_TREE_CLOEXEC);
  if (fd < 0)
    {
      throw_errno (env, errno, "open_tree", path);
      return NULL;
    }
  return number (env, fd);
}

/* mountSetattr(fd, attrSet, attrClr, usernsFd = -1): mount_setattr(2) on the mount FD
 * itself (AT_EMPTY_PATH). With MOUNT_ATTR_IDMAP (0x100000) in ATTRSET the mount shows
 * its files through USERNSFD's maps; the kernel allows that only on a detached mount that
 * was never id-mapped, and only on filesystems that support it (EINVAL otherwise). */
static napi_value
js_mount_setattr (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  size_t argc;
  int64_t fd, set, clr, userns = -1;
  struct mount_attr attr;

  if (!get_args (env, info, 3, argv, &argc) || !get_int (env, argv[0], &fd) || !get_int (env, argv[1], &set)
      || !get_int (env, argv[2], &clr))
    return NULL;
  if (argc > 3 && !is_nullish (env, argv[3]) && !get_int (env, argv[3], &userns))
    return NULL;

  memset (&attr, 0, sizeof attr);
  attr.attr_set = (uint64_t) set;
  attr.attr_clr = (uint64_t) clr;
  attr.userns_fd = (uint64_t) userns;
  if (syscall (SYS_mount_setattr, (int) fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    throw_errno (env, errno, "mount_setattr", NULL);
  return undefined (env);
}

/* moveMount(fd, target): move_mount(2) of the detached mount FD onto the directory TARGET. */
static napi_value
js_move_mount (napi_env env, napi_callback_info info)
{
  napi_value argv[MAX_ARGS];
  int64_t fd;
  char target[PATH_BUF];

  if (!get_args (env, info, 2, argv, NULL) || !get_int (env, argv[0], &fd)
      || !get_str (env, argv[1], target, sizeof target))
    return NULL;

  if (syscall (SYS_move_mount, (int) fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    throw_errno (env, errno, "move_mount", target);
  return undefined (env);
}

/* ---- module ------------------------------------------------------------------------- */

static napi_value
init (napi_env env, napi_value exports)
{
  static const struct
  {
    const char *name;
    napi_callback fn;
  } fns[] = {
    { "openat2", js_openat2 },     { "mkdirat", js_mkdirat },       { "mknodat", js_mknodat },
    { "symlinkat", js_symlinkat }, { "linkat", js_linkat },         { "unlinkat", js_unlinkat },
    { "fchownat", js_fchownat },   { "fchmodat", js_fchmodat },     { "utimensat", js_utimensat },
    { "lsetxattr", js_lsetxattr }, { "lgetxattr", js_lgetxattr },   { "mount", js_mount },
    { "umount2", js_umount2 },     { "flock", js_flock },           { "netnsCreate", js_netns_create },
    { "usernsCreate", js_userns_create }, { "openTree", js_open_tree }, { "mountSetattr", js_mount_setattr },
    { "moveMount", js_move_mount },
  };
  size_t i;

  for (i = 0; i < sizeof fns / sizeof fns[0]; i++)
    {
      napi_value f;

      if (napi_create_function (env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok
          || napi_set_named_property (env, exports, fns[i].name, f) != napi_ok)
        return NULL;
    }
  return exports;
}

NAPI_MODULE (berth, init)
