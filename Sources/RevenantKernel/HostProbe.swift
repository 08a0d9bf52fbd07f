import Foundation
import RevenantCore
import RevenantHost

/// What this kernel and host allow, probed by loading the real programs (bpftool's feature
/// probe is unreliable for tracing/LSM types).
public struct HostProbe: Sendable, Encodable {
    public struct Check: Sendable, Encodable {
        public var name: String
        public var ok: Bool
        public var value: String
        /// What it means, and how to fix it when not ok.
        public var advice: String
    }

    public var checks: [Check] = []
    public var tier: String = "none"
    public var cgroupLayout: String = "unknown"

    public static func run() -> HostProbe {
        var p = HostProbe()
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        p.add("kernel", true, release, "tp_btf needs ≥ 5.5, bpf_loop ≥ 5.17, BPF LSM ≥ 5.7")
        let root = geteuid() == 0
        p.add("root", root, root ? "yes" : "uid \(geteuid())", root ? "" : "run as root: loading BPF needs CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN")
        let btf = FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux")
        p.add("BTF", btf, btf ? "/sys/kernel/btf/vmlinux" : "missing",
              btf ? "CO-RE relocations work" : "a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed")

        let secfs = mounted(type: "securityfs")
        p.add("securityfs", secfs != nil, secfs ?? "not mounted",
              secfs != nil ? "" : "mount -t securityfs securityfs /sys/kernel/security (to read the LSM list and lockdown)")
        let lsmList = (try? String(contentsOfFile: "/sys/kernel/security/lsm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let lockdown = (try? String(contentsOfFile: "/sys/kernel/security/lockdown", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        p.add("lockdown", lockdown.map { !$0.contains("[confidentiality]") } ?? true, lockdown ?? "unknown (securityfs not mounted)",
              "confidentiality mode forbids reading kernel memory from BPF; integrity is fine")
        let bpffs = mounted(type: "bpf")
        p.add("bpffs", true, bpffs ?? "not mounted", bpffs != nil ? "" : "not needed by revenant (no pinning); mount -t bpf bpf /sys/fs/bpf for bpftool")
        p.cgroupLayout = cgroupLayout()
        p.add("cgroups", true, p.cgroupLayout, p.cgroupLayout == "v2" ? "unit names come from the cgroup-v2 path"
              : "hybrid/v1: unit names are read from the cgroup-v2 (unified) hierarchy when systemd mirrors them there")

        guard root && btf else {
            p.add("tracing", false, "not probed", "needs root and BTF")
            p.tier = "none: tracing cannot load"
            return p
        }
        var o = Tracer.Options()
        o.tryLSM = true
        o.ringbufBytes = 1 << 16
        do {
            let t = try Tracer(options: o)
            p.add("BPF syscall", true, "works", "")
            p.add("tp_btf", true, "sched_process_fork/exec/exit attached", "")
            p.add("ring buffer", true, "works", "")
            p.add("bpf_send_signal", true, "verified in the exec program", "kill at exec is available")
            let lsmOn = lsmList?.split(separator: ",").contains("bpf")
            p.add("BPF LSM", t.lsmActive, t.lsmActive ? "deny program attached" : (lsmOn == false ? "bpf not in \(lsmList ?? "")" : t.lsmStatus),
                  t.lsmActive ? "execve of a denied program fails with EPERM"
                  : "boot with lsm=…,bpf (e.g. lsm=lockdown,capability,landlock,yama,apparmor,bpf) and CONFIG_BPF_LSM=y; until then deny rules are killed at exec")
            p.tier = t.lsmActive ? EnforcementTier.deny.label : EnforcementTier.killAtExec.label
            t.stop()
        } catch {
            p.add("tracing", false, "\(error.stage.rawValue) failed: errno \(error.errno)", error.description)
            p.tier = EnforcementTier.userspaceKill.label + " (tracing failed: none in fact)"
        }
        return p
    }

    mutating func add(_ name: String, _ ok: Bool, _ value: String, _ advice: String) {
        checks.append(Check(name: name, ok: ok, value: value, advice: advice))
    }

    static func mounted(type: String) -> String? {
        guard let m = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return nil }
        for line in m.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 2 && f[2] == type { return String(f[1]) }
        }
        return nil
    }

    static func cgroupLayout() -> String {
        guard let m = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return "unknown" }
        var v2At: String?, v1 = false
        for line in m.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 2 else { continue }
            if f[2] == "cgroup2" { v2At = String(f[1]) }
            if f[2] == "cgroup" { v1 = true }
        }
        switch (v2At, v1) {
        case (.some("/sys/fs/cgroup"), false): return "v2"
        case (.some(let at), true): return "hybrid (v1 controllers, cgroup2 at \(at))"
        case (nil, true): return "v1"
        default: return v2At.map { "v2 at \($0)" } ?? "none"
        }
    }
}
