"""The namespace backend's seccomp filter: Docker's default profile, a little stricter.

An allowlist (everything else fails with EPERM), compiled to a classic-BPF program with
libseccomp (ctypes over libseccomp.so.2) once per process and handed to bubblewrap on a file
descriptor (`bwrap --seccomp FD`). It is Docker's default list for a container with every
capability dropped, minus ptrace, process_vm_readv/writev, name_to_handle_at, adjtimex,
clock_adjtime and io_uring; clone may not create namespaces, clone3 answers ENOSYS (so libc
falls back to clone, whose flags can be checked), personality takes only Docker's values, and
socket refuses AF_VSOCK. So keyctl/add_key/request_key, mount, unshare, setns, bpf,
perf_event_open, userfaultfd, kexec, modules, reboot, swap, clock setting and the rest of the
host-changing calls are refused.
"""

from __future__ import annotations

import ctypes
import errno
import os
from functools import cache

# Docker's default-profile allowlist (moby profiles/seccomp/default.json, the unconditional
# part), without the calls this sandbox refuses on top (see the module docstring).
_ALLOWED = """
accept accept4 access alarm bind brk capget capset chdir chmod chown chown32
clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe
pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev arch_prctl modify_ldt
"""
ALLOWED = tuple(_ALLOWED.split())
# Calls refused outright that matter most here (all of them also fall outside ALLOWED; listed so
# that tests and `rft sandbox status` can name them).
_DENIED = (
    "keyctl add_key request_key ptrace personality mount umount2 pivot_root swapon swapoff reboot "
    "kexec_load kexec_file_load init_module finit_module delete_module bpf perf_event_open "
    "userfaultfd unshare setns clock_settime settimeofday adjtimex acct quotactl lookup_dcookie "
    "open_by_handle_at name_to_handle_at iopl ioperm vm86 process_vm_readv io_uring_setup"
)
DENIED = tuple(_DENIED.split())
PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)  # Docker's: PER_LINUX and friends, query
CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
AF_VSOCK = 40

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE, SCMP_CMP_EQ, SCMP_CMP_MASKED_EQ = 1, 4, 7


def errno_action(code: int) -> int:
    """libseccomp's errno_action(code): fail the call with this errno."""
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class SeccompUnavailable(RuntimeError):
    """libseccomp cannot be loaded or cannot build the filter; the message says how to fix it."""


@cache
def _lib() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise SeccompUnavailable(
            f"libseccomp cannot be loaded ({exc}); install it (Debian: apt-get install libseccomp2)"
        ) from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def syscall_number(name: str) -> int | None:
    """The native architecture's number for a system call, or None where it has none."""
    number = _lib().seccomp_syscall_resolve_name(name.encode())
    return number if number >= 0 else None


@cache
def bpf_program() -> bytes:
    """The compiled filter (classic BPF, as `bwrap --seccomp` reads it); built once per process."""
    return build_program()


def build_program(*, strict: bool = True) -> bytes:
    """Compile the filter; `strict=False` gives one that allows everything (for tests of the rest)."""
    lib = _lib()
    ctx = lib.seccomp_init(errno_action(errno.EPERM) if strict else SCMP_ACT_ALLOW)
    if not ctx:
        raise SeccompUnavailable("libseccomp could not create a filter (seccomp_init failed)")
    try:

        def rule(action: int, name: str, *conditions: tuple[int, int, int, int]) -> None:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number == -1:  # __NR_SCMP_ERROR: no such call on this architecture
                return
            array = (_ArgCmp * max(1, len(conditions)))(*(_ArgCmp(*c) for c in conditions))
            rc = lib.seccomp_rule_add_array(ctx, action, number, len(conditions), array)
            if rc < 0 and number >= 0:  # pseudo calls (negative numbers) may be refused: harmless
                raise SeccompUnavailable(f"libseccomp refused the rule for {name}: {os.strerror(-rc)}")

        for name in ALLOWED if strict else ():
            rule(SCMP_ACT_ALLOW, name)
        if strict:
            for value in PERSONALITIES:
                rule(SCMP_ACT_ALLOW, "personality", (0, SCMP_CMP_EQ, value, 0))
            rule(SCMP_ACT_ALLOW, "socket", (0, SCMP_CMP_NE, AF_VSOCK, 0))
            rule(SCMP_ACT_ALLOW, "clone", (0, SCMP_CMP_MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0))
            rule(errno_action(errno.ENOSYS), "clone3")
        fd = os.memfd_create("rftkit-seccomp", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise SeccompUnavailable(f"libseccomp could not export the filter: {os.strerror(-rc)}")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def problem() -> str | None:
    """Why the filter cannot be built here, or None."""
    try:
        program = bpf_program()
    except SeccompUnavailable as exc:
        return str(exc)
    if not program or len(program) % 8:
        return f"libseccomp exported a malformed filter ({len(program)} bytes)"
    return None
