import CRevenantOS
import Glibc
import RevenantCore
import RevenantHost

/// Kills processes through pidfds, so a PID reused in between is never hit.
public enum PidfdKiller {
    /// Sends SIGKILL to `id` if it is still that process. Returns false when it was gone.
    public static func kill(_ id: Identity, reader: ProcReader = ProcReader()) -> Bool {
        guard id.pid > 1, id.pid != getpid() else { return false }
        let fd = rv_pidfd_open(id.pid)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // The pidfd now pins this PID's process: check it is the one we mean.
        guard let now = reader.identity(id.pid), now.sameTick(id) else { return false }
        return rv_pidfd_send_signal(fd, SIGKILL) == 0
    }
}
