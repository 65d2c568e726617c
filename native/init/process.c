/* What the container's process carries into execve(2): rlimits, user and groups,
 * capabilities, no_new_privs, seccomp, umask, working directory, fds, environment.
 * Runs in the container's child after pivot_root (create) or after setns (exec). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "sync.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

void
berth_set_identity_early (struct berth_plan *plan)
{
  const char *v;

  if ((v = berth_plan_get (plan, "hostname", 0, NULL)) && sethostname (v, strlen (v)) < 0)
    berth_fail (errno, "sethostname", v);
  if ((v = berth_plan_get (plan, "domainname", 0, NULL)) && setdomainname (v, strlen (v)) < 0)
    berth_fail (errno, "setdomainname", v);
  if ((v = berth_plan_get (plan, "oomscoreadj", 0, NULL)))
    {
      int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write (fd, v, strlen (v)) < 0)
        berth_fail (errno, "write oom_score_adj", v);
      close (fd);
    }
}

/* A missing working directory is made (0755, as root), as runc and Docker do, so that
 * `-w /new/dir` works; chdir happens later, as the process's user. */
void
berth_ensure_cwd (struct berth_plan *plan)
{
  const char *cwd = berth_plan_get (plan, "cwd", 0, "/");
  char buf[4096];
  struct stat st;

  if (stat (cwd, &st) == 0)
    return;
  snprintf (buf, sizeof buf, "%s", cwd);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (buf, 0755) < 0 && errno != EEXIST)
          berth_fail (errno, "create the process cwd", buf);
        *p = '/';
      }
  if (mkdir (buf, 0755) < 0 && errno != EEXIST)
    berth_fail (errno, "create the process cwd", buf);
}

/* Applies the plan's rlimits in two steps. FINAL 0: every limit but RLIMIT_NOFILE, whose
 * hard limit is only raised when the plan asks for more (so that a limit this process may
 * not set fails here, before the container is reported ready). FINAL 1: RLIMIT_NOFILE, as
 * late as possible: the init still opens the exec fifo and runs hooks, which a tiny limit
 * (--ulimit nofile=1) would make fail with EMFILE. */
void
berth_apply_rlimits (struct berth_plan *plan, int final)
{
  for (int i = 0; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      struct rlimit rl, cur;
      char what[64];
      int resource;

      if (strcmp (r->tag, "rlimit") != 0 || r->nfields < 3)
        continue;
      resource = atoi (r->fields[0]);
      rl.rlim_cur = strcmp (r->fields[1], "-1") == 0 ? RLIM_INFINITY : strtoull (r->fields[1], NULL, 10);
      rl.rlim_max = strcmp (r->fields[2], "-1") == 0 ? RLIM_INFINITY : strtoull (r->fields[2], NULL, 10);
      snprintf (what, sizeof what, "resource %s", r->fields[0]);
      if (resource == RLIMIT_NOFILE && !final)
        {
          if (getrlimit (RLIMIT_NOFILE, &cur) < 0)
            berth_fail (errno, "getrlimit", what);
          if (rl.rlim_max <= cur.rlim_max)
            continue;
          if (rl.rlim_cur > rl.rlim_max)
            berth_fail (EINVAL, "setrlimit", what);
          rl.rlim_cur = cur.rlim_cur;
        }
      else if ((resource == RLIMIT_NOFILE) != !!final)
        continue;
      if (setrlimit (resource, &rl) < 0)
        berth_fail (errno, "setrlimit", what);
    }
}

static void
set_caps (uint64_t effective, uint64_t permitted, uint64_t inheritable)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];

  data[0].effective = (uint32_t) effective;
  data[1].effective = (uint32_t) (effective >> 32);
  data[0].permitted = (uint32_t) permitted;
  data[1].permitted = (uint32_t) (permitted >> 32);
  data[0].inheritable = (uint32_t) inheritable;
  data[1].inheritable = (uint32_t) (inheritable >> 32);
  if (syscall (SYS_capset, &hdr, data) < 0)
    berth_fail (errno, "capset", NULL);
}

static int
last_cap (void)
{
  static int last = -1;
  FILE *f;

  if (last >= 0)
    return last;
  f = fopen ("/proc/sys/kernel/cap_last_cap", "re");
  if (f == NULL || fscanf (f, "%d", &last) != 1)
    last = 40;
  if (f)
    fclose (f);
  return last;
}

void
berth_apply_user_and_caps (struct berth_plan *plan)
{
  struct berth_record *caps = berth_plan_find (plan, "caps");
  struct berth_record *user = berth_plan_find (plan, "user");
  uid_t uid = user ? (uid_t) strtoul (user->fields[0], NULL, 10) : 0;
  gid_t gid = user ? (gid_t) strtoul (user->fields[1], NULL, 10) : 0;
  uint64_t bounding = ~0ULL, effective = ~0ULL, permitted = ~0ULL, inheritable = 0, ambient = 0;
  int max = last_cap ();

  if (caps)
    {
      bounding = strtoull (caps->fields[0], NULL, 16);
      effective = strtoull (caps->fields[1], NULL, 16);
      permitted = strtoull (caps->fields[2], NULL, 16);
      inheritable = strtoull (caps->fields[3], NULL, 16);
      ambient = strtoull (caps->fields[4], NULL, 16);
    }

  /* The bounding set can only shrink, and only while CAP_SETPCAP is still ours. */
  for (int c = 0; caps && c <= max; c++)
    if (!(bounding & (1ULL << c)) && prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      berth_fail (errno, "drop bounding capability", NULL);

  if (user)
    {
      size_t n = 0, max = 1;
      char *list = user->fields[2], *save = NULL, *tok;
      gid_t *groups;

      for (const char *c = list; *c; c++)
        max += *c == ',';
      groups = calloc (max, sizeof (gid_t));
      if (groups == NULL)
        berth_fail (ENOMEM, "setgroups", NULL);
      for (tok = strtok_r (list, ",", &save); tok && n < max; tok = strtok_r (NULL, ",", &save))
        groups[n++] = (gid_t) strtoul (tok, NULL, 10);
      /* setgroups is refused inside a user namespace whose setgroups file says deny. */
      if (setgroups (n, groups) < 0 && !(errno == EPERM && n == 0))
        berth_fail (errno, "setgroups", NULL);
    }

  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    berth_fail (errno, "prctl keepcaps", NULL);
  if (setresgid (gid, gid, gid) < 0)
    berth_fail (errno, "setresgid", user ? user->fields[1] : "0");
  if (setresuid (uid, uid, uid) < 0)
    berth_fail (errno, "setresuid", user ? user->fields[0] : "0");
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    berth_fail (errno, "prctl keepcaps", NULL);

  if (caps)
    {
      set_caps (effective, permitted, inheritable);
      prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
      /* capabilities(7): an ambient capability must be permitted and inheritable. runc
       * and crun skip the others rather than fail, and configs rely on that. */
      for (int c = 0; c <= max; c++)
        if ((ambient & (1ULL << c)) && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
          berth_log (3, "ambient capability %d skipped: not both permitted and inheritable", c);
    }

  {
    const char *cwd = berth_plan_get (plan, "cwd", 0, "/");
    if (chdir (cwd) < 0)
      berth_fail (errno, "chdir to the process cwd", cwd);
  }
  if (berth_plan_find (plan, "umask"))
    umask ((mode_t) strtoul (berth_plan_get (plan, "umask", 0, "22"), NULL, 8));
  if (atoi (berth_plan_get (plan, "nonewprivs", 0, "0")) && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    berth_fail (errno, "prctl no_new_privs", NULL);
}

static const char *
env_value (struct berth_plan *plan, const char *key)
{
  size_t klen = strlen (key);

  for (int i = 0; i < plan->nrecords; i++)
    {
      struct berth_record *r = &plan->records[i];
      if (strcmp (r->tag, "env") == 0 && strncmp (r->fields[0], key, klen) == 0 && r->fields[0][klen] == '=')
        return r->fields[0] + klen + 1;
    }
  return NULL;
}

static int
is_executable_file (const char *path)
{
  struct stat st;

  return stat (path, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0111);
}

/* Looks argv[0] up in the process's PATH, inside the container, as execvp would, so
 * that a missing command is reported at create time rather than after start. */
const char *
berth_find_executable (struct berth_plan *plan)
{
  const char *arg0 = berth_plan_get (plan, "arg", 0, NULL);
  const char *path = env_value (plan, "PATH");
  static char found[4096];
  char *dirs, *save = NULL, *dir;
  struct stat st;

  if (arg0 == NULL || arg0[0] == '\0')
    berth_fail (EINVAL, "no process args", NULL);
  if (strchr (arg0, '/'))
    {
      if (stat (arg0, &st) < 0)
        berth_fail (errno, "exec", arg0);
      if (S_ISDIR (st.st_mode))
        berth_fail (EACCES, "exec", arg0);
      return arg0;
    }
  dirs = strdup (path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  for (dir = strtok_r (dirs, ":", &save); dir; dir = strtok_r (NULL, ":", &save))
    {
      snprintf (found, sizeof found, "%s/%s", dir[0] ? dir : ".", arg0);
      if (is_executable_file (found))
        return found;
    }
  errno = ENOENT;
  berth_fail (ENOENT, "find executable in $PATH", arg0);
}

void
berth_apply_seccomp (struct berth_plan *plan)
{
  const char *hex = berth_plan_get (plan, "seccomp", 0, NULL);
  struct sock_fprog prog;
  size_t len, n;
  unsigned char *bytes;

  if (hex == NULL)
    return;
  len = strlen (hex) / 2;
  bytes = malloc (len);
  for (size_t i = 0; i < len; i++)
    {
      unsigned int b;
      sscanf (hex + 2 * i, "%2x", &b);
      bytes[i] = (unsigned char) b;
    }
  n = len / sizeof (struct sock_filter);
  prog.len = (unsigned short) n;
  prog.filter = (struct sock_filter *) bytes;
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    berth_fail (errno, "load seccomp filter", NULL);
}

void
berth_mark_fds_cloexec (struct berth_plan *plan)
{
  unsigned int first = 3 + (unsigned int) atoi (berth_plan_get (plan, "preservefds", 0, "0"));

  /* Nothing of berth's may reach the container: CVE-2024-21626 leaked a host fd. */
  if (syscall (SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    for (int fd = (int) first; fd < 65536; fd++)
      fcntl (fd, F_SETFD, FD_CLOEXEC);
}

void
berth_exec (struct berth_plan *plan, const char *path)
{
  char **argv, **envp;
  int nargs = 0, nenv = 0;
  sigset_t all;

  for (int i = 0; i < plan->nrecords; i++)
    {
      if (strcmp (plan->records[i].tag, "arg") == 0)
        nargs++;
      else if (strcmp (plan->records[i].tag, "env") == 0)
        nenv++;
    }
  argv = calloc ((size_t) nargs + 1, sizeof (char *));
  envp = calloc ((size_t) nenv + 1, sizeof (char *));
  nargs = nenv = 0;
  for (int i = 0; i < plan->nrecords; i++)
    {
      if (strcmp (plan->records[i].tag, "arg") == 0)
        argv[nargs++] = plan->records[i].fields[0];
      else if (strcmp (plan->records[i].tag, "env") == 0)
        envp[nenv++] = plan->records[i].fields[0];
    }

  for (int s = 1; s < NSIG; s++)
    signal (s, SIG_DFL);
  sigemptyset (&all);
  sigprocmask (SIG_SETMASK, &all, NULL);

  execve (path, argv, envp);
  berth_fail (errno, "exec", path);
}
