/* System calls Swift cannot reach through Glibc: pidfds, openat2, fanotify with file handles. */
#ifndef REVENANT_OS_H
#define REVENANT_OS_H

/* pidfd_open(2) and pidfd_send_signal(2): -1 with errno on failure. */
int rv_pidfd_open(int pid);
int rv_pidfd_send_signal(int pidfd, int sig);

/* openat2(2) for reading a file under a root as that root sees it: RESOLVE_IN_ROOT and
 * RESOLVE_NO_MAGICLINKS, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC. -1 with errno on
 * failure; errno ENOSYS where the kernel has no openat2 (before 5.6). */
int rv_open_in_root(int dirfd, const char *path);

/* Configuration watch (fanotify, FAN_REPORT_DFID_NAME). rv_fan_init: an fd or -errno.
 * rv_fan_mark_dir: watches dir's entries (create, delete, rename, write, attrib) and copies
 * its file handle (type, then bytes) to handle; returns the handle's length or -errno.
 * rv_fan_read: blocks for events and calls fn for each with the writer's tgid, the fanotify
 * mask, its directory's handle and the entry's name; returns events or -errno. */
typedef void (*rv_fan_fn)(void *ctx, int pid, unsigned long long mask, const unsigned char *handle, int hlen, const char *name);
int rv_fan_init(void);
int rv_fan_mark_dir(int fd, const char *dir, unsigned char *handle, int cap);
int rv_fan_read(int fd, rv_fan_fn fn, void *ctx);

#endif
