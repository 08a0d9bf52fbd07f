import Glibc

/// A failure of the kernel side, with the step, the errno and libbpf's own words.
public struct BPFError: Error, CustomStringConvertible, Sendable {
    public enum Stage: String, Sendable { case open, load, attach, ringbuf, counters, poll, preflight, policy, pin }
    public let stage: Stage
    public let errno: Int32
    public let message: String

    public init(stage: Stage, errno: Int32, message: String) {
        self.stage = stage; self.errno = errno; self.message = message
    }

    public var description: String {
        var s = "BPF \(stage.rawValue) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        if let hint { s += "\n  \(hint)" }
        let lines = message.split(separator: "\n").map { $0.hasPrefix("libbpf: ") ? $0.dropFirst(8) : $0 }.suffix(8)
        if !lines.isEmpty { s += "\n  libbpf: " + lines.joined(separator: "\n  libbpf: ") }
        return s
    }

    /// What an operator can do about it.
    public var hint: String? {
        switch (stage, errno) {
        case (_, EPERM), (_, EACCES):
            return geteuid() == 0
                ? "the kernel refused the BPF program (lockdown, or tracing programs not permitted); run `revenant doctor`"
                : "revenant needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): run it with sudo"
        case (.open, ENOENT), (.load, ENOENT):
            return "the kernel has no BTF (/sys/kernel/btf/vmlinux): CONFIG_DEBUG_INFO_BTF=y is needed"
        case (.attach, _):
            return "tp_btf tracepoints need kernel ≥ 5.5 with BTF"
        default:
            return nil
        }
    }
}
