import Foundation

/// Checks what tracing needs before touching the kernel, to say plainly what is missing.
enum Preflight {
    static func requireTracing() throws {
        if geteuid() != 0 {
            throw Failure("tracing needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN): run with sudo", status: 2)
        }
        if !FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") {
            throw Failure("this kernel has no BTF (/sys/kernel/btf/vmlinux missing): revenant needs CONFIG_DEBUG_INFO_BTF=y", status: 2)
        }
    }
}
