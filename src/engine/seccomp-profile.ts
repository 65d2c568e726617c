// berth's default seccomp profile, in Docker's JSON profile format (security-opts.ts turns
// it into config.json's linux.seccomp for the capabilities a container gets). Same effect
// as Docker's and Podman's defaults: an allow-list; namespace, mount, module, clock, reboot,
// tracing and keyring syscalls stay refused unless the capability that guards them is
// granted. Used by engine/spec.ts in the Node host process; tested by
// test/integration/security-seccomp.test.ts (against libseccomp) and security-escape.test.ts.
import type { DockerSeccompProfile, DockerSyscallRule } from './security-opts';

const EPERM = 1;
const ENOSYS = 38;

// Flags that make clone(2) create namespaces: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
// NEWUSER, NEWPID, NEWNET. CLONE_NEWTIME (0x80) cannot be passed to clone(), only to
// clone3 and unshare, which are refused without CAP_SYS_ADMIN anyway.
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
const AF_VSOCK = 40;

/** Syscalls every container may make: ordinary process work that stays inside its namespaces. */
const ALLOWED: Record<string, string[]> = {
  // Paths, files and directories: checked by ordinary permissions and the mount namespace.
  files: [
    'access', 'faccessat', 'faccessat2', 'chdir', 'fchdir', 'getcwd', 'chmod', 'fchmod', 'fchmodat', 'fchmodat2',
    'chown', 'fchown', 'fchownat', 'lchown', 'close', 'close_range', 'creat', 'dup', 'dup2', 'dup3', 'fcntl', 'flock',
    'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range', 'fallocate', 'truncate', 'ftruncate', 'getdents',
    'getdents64', 'link', 'linkat', 'symlink', 'symlinkat', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2',
    'mkdir', 'mkdirat', 'rmdir', 'open', 'openat', 'openat2', 'read', 'readv', 'pread64', 'preadv', 'preadv2',
    'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'lseek', 'readlink', 'readlinkat', 'stat', 'fstat',
    'lstat', 'newfstatat', 'statx', 'statfs', 'fstatfs', 'umask', 'utime', 'utimes', 'utimensat', 'futimesat',
    'readahead', 'fadvise64', 'copy_file_range', 'sendfile', 'splice', 'tee', 'vmsplice',
    // Device nodes: CAP_MKNOD and the devices cgroup decide which ones can be made and opened.
    'mknod', 'mknodat',
  ],
  xattrs: [
    'getxattr', 'lgetxattr', 'fgetxattr', 'getxattrat', 'setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat',
    'listxattr', 'llistxattr', 'flistxattr', 'listxattrat', 'removexattr', 'lremovexattr', 'fremovexattr',
    'removexattrat', 'file_getattr', 'file_setattr',
  ],
  memory: [
    'brk', 'mmap', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'mlock', 'mlock2', 'munlock',
    'mlockall', 'munlockall', 'memfd_create', 'membarrier', 'pkey_alloc', 'pkey_free', 'pkey_mprotect',
    'remap_file_pages', 'map_shadow_stack', 'mseal', 'cachestat',
  ],
  // Processes and threads. clone and personality are allowed only with safe arguments
  // (ARGUMENT_RULES); clone3's flags sit in memory that seccomp cannot read.
  processes: [
    'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'getpid', 'getppid', 'gettid',
    'getpgid', 'getpgrp', 'getsid', 'setpgid', 'setsid', 'set_tid_address', 'set_robust_list', 'get_robust_list',
    'rseq', 'prctl', 'capget', 'capset', 'uname', 'sysinfo', 'getrusage', 'times', 'getrlimit', 'setrlimit',
    'prlimit64', 'getpriority', 'setpriority', 'sched_yield', 'sched_getaffinity', 'sched_setaffinity',
    'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler', 'sched_get_priority_max',
    'sched_get_priority_min', 'sched_rr_get_interval', 'sched_getattr', 'sched_setattr', 'ioprio_get', 'ioprio_set',
    'getcpu', 'seccomp', 'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
    'lsm_get_self_attr', 'lsm_list_modules', 'process_mrelease',
  ],
  // Signals reach only processes the PID namespace shows, with the usual permission checks.
  signals: [
    'kill', 'tkill', 'tgkill', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending', 'rt_sigtimedwait',
    'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'rt_sigsuspend', 'sigaltstack', 'pause', 'pidfd_open', 'pidfd_send_signal',
    'restart_syscall',
  ],
  ids: [
    'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups', 'setuid', 'setgid', 'setreuid',
    'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid',
  ],
  // Reading clocks and timers. adjtimex only reads unless CAP_SYS_TIME is held.
  time: [
    'clock_gettime', 'clock_getres', 'clock_nanosleep', 'nanosleep', 'gettimeofday', 'time', 'alarm', 'getitimer',
    'setitimer', 'timer_create', 'timer_settime', 'timer_gettime', 'timer_getoverrun', 'timer_delete',
    'timerfd_create', 'timerfd_settime', 'timerfd_gettime', 'adjtimex',
  ],
  waiting: [
    'poll', 'ppoll', 'select', 'pselect6', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_wait', 'epoll_pwait',
    'epoll_pwait2', 'eventfd', 'eventfd2', 'signalfd', 'signalfd4', 'inotify_init', 'inotify_init1',
    'inotify_add_watch', 'inotify_rm_watch', 'fanotify_mark', 'pipe', 'pipe2', 'ioctl', 'io_setup', 'io_destroy',
    'io_getevents', 'io_pgetevents', 'io_submit', 'io_cancel', 'futex', 'futex_waitv', 'futex_wake', 'futex_wait',
    'futex_requeue', 'getrandom',
  ],
  // System V and POSIX IPC: private to the container's IPC namespace.
  ipc: [
    'shmget', 'shmat', 'shmctl', 'shmdt', 'semget', 'semop', 'semtimedop', 'semctl', 'msgget', 'msgsnd', 'msgrcv',
    'msgctl', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive', 'mq_notify', 'mq_getsetattr',
  ],
  // Sockets: the network namespace bounds them (socket(2) itself is in ARGUMENT_RULES).
  network: [
    'socketpair', 'bind', 'listen', 'accept', 'accept4', 'connect', 'getsockname', 'getpeername', 'sendto', 'recvfrom',
    'sendmsg', 'recvmsg', 'sendmmsg', 'recvmmsg', 'shutdown', 'setsockopt', 'getsockopt',
  ],
};

/** Allowed only on one architecture (Docker's arch names, as in its profiles). */
const ARCH_SPECIFIC: DockerSyscallRule[] = [
  // Thread-local storage and segment setup on x86; 32-bit programs and wine need the LDT.
  { names: ['arch_prctl', 'modify_ldt', 'get_thread_area', 'set_thread_area'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32', '386'] } },
];

/** Allowed with some argument values only. */
const ARGUMENT_RULES: DockerSyscallRule[] = [
  // personality(2): Linux, the 32-bit and uname-2.6 variants, and the query value; not
  // READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE, which weaken memory protections for exploits.
  ...[0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((v): DockerSyscallRule => ({
    names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: v, valueTwo: 0, op: 'SCMP_CMP_EQ' }],
  })),
  // Threads and processes, but no new namespaces without CAP_SYS_ADMIN (x86_64 and arm64
  // take the flags in argument 0).
  {
    names: ['clone'], action: 'SCMP_ACT_ALLOW',
    args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    excludes: { caps: ['CAP_SYS_ADMIN'] },
  },
  // ENOSYS, not EPERM: C libraries then fall back to clone, whose flags can be checked.
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  // Every address family but vsock, which reaches the hypervisor host, outside any namespace.
  { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, valueTwo: 0, op: 'SCMP_CMP_NE' }] },
];

/** Syscalls a granted capability unlocks (--cap-add, --privileged is unconfined anyway). */
const BY_CAPABILITY: [string, string[]][] = [
  // Mounts, namespaces, hostname, kernel log, BPF and perf: the bulk of container escapes.
  ['CAP_SYS_ADMIN', [
    'mount', 'umount', 'umount2', 'mount_setattr', 'move_mount', 'open_tree', 'open_tree_attr', 'fsopen', 'fsconfig',
    'fsmount', 'fspick', 'statmount', 'listmount', 'pivot_root', 'unshare', 'setns', 'clone', 'clone3',
    'sethostname', 'setdomainname', 'quotactl', 'quotactl_fd', 'fanotify_init', 'lookup_dcookie', 'syslog', 'bpf',
    'perf_event_open',
  ]],
  ['CAP_BPF', ['bpf']],
  ['CAP_PERFMON', ['perf_event_open']],
  ['CAP_SYSLOG', ['syslog']],
  ['CAP_SYS_BOOT', ['reboot']],
  ['CAP_SYS_CHROOT', ['chroot']],
  ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
  ['CAP_SYS_PACCT', ['acct']],
  // Reading or changing another process's memory, even with the same uid.
  ['CAP_SYS_PTRACE', ['ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'kcmp', 'pidfd_getfd', 'userfaultfd']],
  ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
  ['CAP_SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_adjtime']],
  ['CAP_SYS_TTY_CONFIG', ['vhangup']],
  ['CAP_SYS_NICE', ['mbind', 'set_mempolicy', 'get_mempolicy', 'set_mempolicy_home_node', 'migrate_pages', 'move_pages']],
  // File handles bypass path lookup, hence the mount namespace (the "shocker" escape).
  ['CAP_DAC_READ_SEARCH', ['open_by_handle_at', 'name_to_handle_at']],
];

/**
 * Refused whatever the capabilities: not namespaced (the keyring, swap, kexec), obsolete,
 * or a large kernel surface few programs need (io_uring). Listed so that the tests can
 * check that every syscall of the architecture was decided on; the default action
 * (EPERM) is what refuses them.
 */
export const ALWAYS_REFUSED = [
  'add_key', 'request_key', 'keyctl', 'kexec_load', 'kexec_file_load', 'swapon', 'swapoff', 'uselib', 'ustat',
  'sysfs', '_sysctl', 'nfsservctl', 'create_module', 'get_kernel_syms', 'query_module', 'io_uring_setup',
  'io_uring_enter', 'io_uring_register', 'memfd_secret', 'lsm_set_self_attr', 'vserver', 'afs_syscall', 'tuxcall',
  'security', 'getpmsg', 'putpmsg', 'epoll_ctl_old', 'epoll_wait_old',
];

/** The default profile, in Docker's format (security-opts.ts compiles it per container). */
export const DEFAULT_SECCOMP_PROFILE: DockerSeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: EPERM,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    { names: Object.values(ALLOWED).flat(), action: 'SCMP_ACT_ALLOW' },
    ...ARCH_SPECIFIC,
    ...ARGUMENT_RULES,
    ...BY_CAPABILITY.map(([cap, names]): DockerSyscallRule => ({ names, action: 'SCMP_ACT_ALLOW', includes: { caps: [cap] } })),
  ],
};
