/* pidfd_open(2) and pidfd_send_signal(2): glibc 2.36 has no wrappers for them. */
#include <signal.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "revenant_os.h"

int rv_pidfd_open(int pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int rv_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}
