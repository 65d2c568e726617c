/* Steps of the container's child between clone(2) and execve(2), split by phase.
 * All run single-threaded in the child, in the order main.c calls them. */
#ifndef BERTH_INIT_H
#define BERTH_INIT_H

#include "../plan.h"

/* mounts.c: the root filesystem, its mounts and devices, then pivot_root. */
void berth_setup_rootfs (struct berth_plan *plan);
void berth_pivot_root (struct berth_plan *plan);
void berth_finish_rootfs (struct berth_plan *plan);

/* process.c: what the process carries into execve. */
void berth_set_identity_early (struct berth_plan *plan);
void berth_apply_rlimits (struct berth_plan *plan, int final);
void berth_ensure_cwd (struct berth_plan *plan);
void berth_apply_user_and_caps (struct berth_plan *plan);
const char *berth_find_executable (struct berth_plan *plan);
void berth_apply_seccomp (struct berth_plan *plan);
void berth_exec (struct berth_plan *plan, const char *path) __attribute__ ((noreturn));
void berth_mark_fds_cloexec (struct berth_plan *plan);

/* hooks.c: createContainer and startContainer hooks, run from the container's child. */
void berth_run_hooks (struct berth_plan *plan, const char *kind, const char *state_json);

/* terminal.c: a pty for the process; returns the master fd to stage 0 or a console socket. */
void berth_setup_terminal (struct berth_plan *plan, int console_fd);
int berth_connect_console (struct berth_plan *plan);

#endif
