import CRevenantBPF
import Foundation
import RevenantCore

/// Reads and compiles a policy file against this host's safety facts.
public enum PolicyLoader {
    public static let defaultPath = "/etc/revenant/policy.yaml"

    public static func safetyContext() -> SafetyContext {
        SafetyContext(
            pid1Exe: readLink("/proc/1/exe"),
            selfExe: readLink("/proc/self/exe"),
            resolve: { path in
                guard let r = realpath(path, nil) else { return path }
                defer { free(r) }
                return String(cString: r)
            })
    }

    public static func read(_ path: String) throws(PolicyError) -> Policy {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw PolicyError(file: path, line: 0, column: 0, message: why)
        }
        return try PolicyParser.parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func load(_ path: String, bitBase: Int = 0) throws(PolicyError) -> CompiledPolicy {
        try PolicyCompiler.compile(read(path), context: safetyContext(), bitBase: bitBase)
    }
}

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
