/* The plan: what berth's TypeScript side hands the C init on a pipe.
 * Read by native/init/plan.c; written by src/runtime/plan.ts. Change both in one commit.
 *
 * Format: text, one record per line. A record is a tag and fields separated by single
 * spaces. Every field is percent-encoded: any byte outside [A-Za-z0-9._/:,=+@^-] is
 * written as %XX, so fields never hold a space or newline. An empty field is "%". Numbers
 * are decimal unless the tag says hex. The plan ends at end of file.
 *
 * Records (in the order the init acts on them; mounts are carried out in plan order):
 *   mode create|exec            create: a new container; exec: a process in a running one
 *   foreground 0|1              stage 0 waits for the child and exits with its status
 *   loglevel N                  0 error, 1 warn, 2 info, 3 debug
 *   fifo PATH                   create: the exec fifo that `start` opens (made by stage 0)
 *   cgroup PATH                 a cgroup.procs file that stage 0 joins before cloning
 *   join NSFLAG PATH            setns(2) into PATH (NSFLAG hex CLONE_NEW*) before clone
 *   clone FLAGS                 hex CLONE_NEW* flags for the new namespaces
 *   uidmap IN OUT COUNT, gidmap IN OUT COUNT, setgroups allow|deny
 *   synchooks 0|1               child stops once for prestart/createRuntime hooks (sync 2)
 *   rootfs PATH                 host path of the root filesystem
 *   rootprop FLAGS              hex propagation flags applied to "/" first (MS_SLAVE|MS_REC)
 *   mount SRC DST TYPE FLAGS DATA KIND   KIND is dir or file: what to create at DST
 *   remount DST FLAGS           mount(NULL, DST, NULL, FLAGS, NULL) after DST's mount
 *   mknod PATH TYPE MAJOR MINOR MODE UID GID    TYPE c, b or p; MODE octal
 *   bindnode HOSTPATH PATH      bind a host device node (inside a user namespace)
 *   symlink TARGET PATH
 *   hook createContainer|startContainer TIMEOUT PATH   then hookarg S / hookenv S lines
 *   nopivot 0|1, rootreadonly 0|1, rootshared 0|1
 *   mask PATH, readonly PATH    after pivot_root, paths inside the container
 *   sysctl PATH VALUE           PATH under /proc/sys
 *   hostname NAME, domainname NAME
 *   oomscoreadj N
 *   rlimit RESOURCE SOFT HARD   RESOURCE is the RLIMIT_* number; -1 means infinity
 *   consolesocket PATH          send the pty master here (SCM_RIGHTS) when terminal is 1
 *   terminal 0|1
 *   caps BOUNDING EFFECTIVE PERMITTED INHERITABLE AMBIENT   hex 64-bit masks
 *   user UID GID GIDS           GIDS comma-separated, or % for none
 *   nonewprivs 0|1
 *   umask OCTAL
 *   cwd PATH
 *   seccomp HEX                 a struct sock_filter array, hex-encoded
 *   preservefds N
 *   env KEY=VALUE, arg S        in order
 *   targetpid PID               exec: the container's init, for /proc/PID/ns
 *
 * Sync points between Node and the init, numbered as in src/runtime/create.ts:
 *   1. stage 0 -> Node  {"type":"pid","pid":N}        the child exists, in its cgroup
 *   2. child -> Node    {"type":"hooks"}              only with synchooks 1; Node runs the
 *      Node -> child    "ok <state-json>\n"           hooks and answers with the state JSON
 *   3. child -> Node    {"type":"ready"}              create: about to block on the fifo
 *   any -> Node         {"type":"error",...}          then the sender exits non-zero
 *   any -> Node         {"type":"log",...}            forwarded into berth's logger
 * exec mode has no sync 3: the sync fd is close-on-exec, so EOF without an error means
 * the program was executed.
 */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#include <stddef.h>

struct berth_record {
  char *tag;
  int nfields;
  char **fields;
};

struct berth_plan {
  struct berth_record *records;
  int nrecords;
};

/* Reads the whole plan from FD and decodes it; exits through berth_fail on error. */
void berth_plan_read (int fd, struct berth_plan *plan);

/* The first record with TAG, or NULL. */
struct berth_record *berth_plan_find (struct berth_plan *plan, const char *tag);

/* Field I of the first record with TAG, or DEFAULT_VALUE. */
const char *berth_plan_get (struct berth_plan *plan, const char *tag, int i, const char *default_value);

#endif
