/// What the kernel maps hold for one policy: keys to rule bits, and per-rule needs.
public struct CompiledPolicy: Sendable, Equatable {
    /// Rule index (0-based in the policy) for each bit; `bitBase` offsets them in the kernel mask.
    public var rules: [PolicyRule]
    /// 0 or 32: which half of the 64-bit kernel mask this policy's rules occupy.
    public var bitBase: Int = 0
    public var exeKeys: [String: UInt64] = [:]       // exe path → rule mask (system resolves dev+inode)
    public var scriptKeys: [UInt64: UInt64] = [:]    // argv-element hash → rule mask
    public var commKeys: [String: UInt64] = [:]      // comm → rule mask
    public var needExe: UInt64 = 0
    public var needScript: UInt64 = 0
    public var needComm: UInt64 = 0
    public var audit: UInt64 = 0
    public var kill: UInt64 = 0
    public var deny: UInt64 = 0
    /// Rules with an argv glob: matched in userspace only.
    public var userspaceOnly: UInt64 = 0
}

/// Facts about this host that the safety rails need (gathered by the system layer).
public struct SafetyContext: Sendable {
    public var pid1Exe: String?
    public var selfExe: String?
    /// Paths equal to a given one once symlinks are resolved (e.g. /usr/bin/python3 → python3.11).
    public var resolve: @Sendable (String) -> String

    /// The kernel matches executables by device and inode: the host's protected programs by
    /// file identity, so a hard link or a bind mount under another name is still refused.
    public var protectedFiles: [FileKey: String] = [:]
    public var fileKey: @Sendable (String) -> FileKey? = { _ in nil }

    public struct FileKey: Hashable, Sendable {
        public var device: UInt64, inode: UInt64
        public init(device: UInt64, inode: UInt64) { self.device = device; self.inode = inode }
    }

    public init(pid1Exe: String?, selfExe: String?, resolve: @escaping @Sendable (String) -> String = { $0 }) {
        self.pid1Exe = pid1Exe; self.selfExe = selfExe; self.resolve = resolve
    }

    static var shells: Set<String> { ShellInvocation.shells }
    static let interpreterPrefixes = ["python", "perl", "ruby", "node", "php", "java", "lua", "Rscript", "tclsh", "pypy", "bun", "deno"]
    public static let critical: Set<String> = ["sshd", "sshd-session", "systemd", "init", "revenant", "sudo", "su", "login", "agetty",
                                               "systemd-logind", "systemd-journald", "dbus-daemon", "dbus-broker", "kubelet",
                                               "containerd", "containerd-shim-runc-v2", "dockerd", "runc", "conmon"]

    static func isShell(_ name: String) -> Bool { shells.contains(name) }
    static func isInterpreter(_ name: String) -> Bool {
        interpreterPrefixes.contains { name == $0 || (name.hasPrefix($0) && name.dropFirst($0.count).allSatisfy { $0.isNumber || $0 == "." }) }
    }
}

public enum PolicyCompiler {
    /// Why a rule is refused without `allow_dangerous: true`; nil when it is safe.
    public static func danger(_ r: PolicyRule, context: SafetyContext) -> String? {
        let m = r.match
        if let exe = m.exe {
            let real = context.resolve(exe)
            let base = basename(real), given = basename(exe)
            if let p1 = context.pid1Exe, real == context.resolve(p1) { return "exe \(exe) is PID 1's executable" }
            if let me = context.selfExe, real == context.resolve(me) { return "exe \(exe) is revenant itself" }
            if SafetyContext.critical.contains(base) || SafetyContext.critical.contains(given) { return "exe \(exe) is \(base), which the host needs" }
            if let k = context.fileKey(exe), let same = context.protectedFiles[k] {
                return "exe \(exe) is the same file as \(same) (a hard link or bind mount), which the host needs"
            }
            if m.script == nil && m.argv == nil {
                if SafetyContext.isShell(base) || SafetyContext.isShell(given) { return "exe \(exe) is a shell: without a script it would match every \(given) script" }
                if SafetyContext.isInterpreter(base) || SafetyContext.isInterpreter(given) { return "exe \(exe) is an interpreter: add `script:` to match one program" }
            }
        }
        if let comm = m.comm, m.script == nil, m.exe == nil || m.exe.map({ SafetyContext.isShell(basename($0)) || SafetyContext.isInterpreter(basename($0)) }) == true {
            if SafetyContext.critical.contains(comm) { return "comm \(comm) is a process the host needs" }
            if SafetyContext.isShell(comm) || SafetyContext.isInterpreter(comm) { return "comm \(comm) is a shell or interpreter: add `script:`" }
        }
        if let s = m.script, s.hasPrefix("-") || s.isEmpty {
            return "script \"\(s)\" is an option, not a script: it would match every command line that passes it (every `sh -c`)"
        }
        if let s = m.script, SafetyContext.isShell(basename(s)) || SafetyContext.critical.contains(basename(s)) {
            return "script \(s) names a shell or a host process"
        }
        return nil
    }

    /// Checks the rails and computes kernel keys. `bitBase` is 0 or 32 (the half this load uses).
    public static func compile(_ p: Policy, context: SafetyContext, bitBase: Int = 0) throws(PolicyError) -> CompiledPolicy {
        precondition(bitBase == 0 || bitBase == 32)
        var c = CompiledPolicy(rules: p.rules, bitBase: bitBase)
        for (i, r) in p.rules.enumerated() {
            if !r.allowDangerous, let why = danger(r, context: context) {
                throw PolicyError(file: p.file, line: r.line, column: 5,
                                  message: "rule \"\(r.name)\" refused: \(why); if you mean it, add `allow_dangerous: true`")
            }
            let bit = UInt64(1) << UInt64(bitBase + i)
            if let e = r.match.exe { c.exeKeys[e, default: 0] |= bit; c.needExe |= bit }
            if let s = r.match.script {
                // A rule naming a path through a symlink also matches the path the kernel sees from a cwd.
                let real = s.hasPrefix("/") ? context.resolve(s) : s
                for k in Set(ScriptHash.keys(forRule: s) + ScriptHash.keys(forRule: real)) { c.scriptKeys[k, default: 0] |= bit }
                c.needScript |= bit
            }
            if let comm = r.match.comm { c.commKeys[comm, default: 0] |= bit; c.needComm |= bit }
            if r.match.argv != nil { c.userspaceOnly |= bit }
            switch r.action {
            case .audit: c.audit |= bit
            case .kill: c.kill |= bit
            case .deny: c.deny |= bit
            }
        }
        return c
    }

    static func basename(_ p: String) -> String { String(p.split(separator: "/").last ?? Substring(p)) }
}

/// The kernel's per-slot prefilter of exe keys (RV_EXE_FILTER_WORDS words): a key (kernel
/// dev_t, inode) sets the bit given by the top bits of (ino ^ dev) * RV_EXE_MUL.
public enum ExeHash {
    public static let filterWords = 16
    public static let filterShift: UInt64 = 54
    public static let mul: UInt64 = 0x9e37_79b9_7f4a_7c15

    public static func bit(dev: UInt64, ino: UInt64) -> Int { Int(((ino ^ dev) &* mul) >> filterShift) }

    public static func filter<S: Sequence>(_ keys: S) -> [UInt64] where S.Element == (dev: UInt64, ino: UInt64) {
        bitFilter(words: filterWords, bits: keys.lazy.map { bit(dev: $0.dev, ino: $0.ino) })
    }
}

/// A filter of `words` 64-bit words with the given bits set (the kernel's layout: bit b is
/// word b / 64, bit b % 64).
func bitFilter<S: Sequence<Int>>(words: Int, bits: S) -> [UInt64] {
    var f = [UInt64](repeating: 0, count: words)
    for b in bits { f[b >> 6] |= 1 << UInt64(b & 63) }
    return f
}

/// The argv-element hashes the BPF program computes (FNV-1a, 64 bit), reproduced here.
///
/// For each element e of argv (and the exec path): full(e); base(basename(e)); and
/// rel(cwd, e) — cwd as the kernel captures it, components leaf first, each followed by NUL.
/// A rule's full path gives the full and rel keys of the spellings `keys(forRule:)` lists; a
/// bare name the base key.
public enum ScriptHash {
    public static let offset: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x0000_0100_0000_01b3
    static let baseTag: UInt8 = 0x02
    static let relTag: UInt8 = 0x01

    public static func fnv<S: Sequence>(_ bytes: S, seed: UInt64 = offset) -> UInt64 where S.Element == UInt8 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
        return h
    }

    /// The kernel's per-slot prefilter of script keys (RV_SCRIPT_FILTER_WORDS words; a key sets
    /// the bit given by its top RV_SCRIPT_FILTER_SHIFT..63 bits).
    public static let filterWords = 32
    public static let filterShift: UInt64 = 53

    public static func filter<C: Collection>(_ keys: C) -> [UInt64] where C.Element == UInt64 {
        bitFilter(words: filterWords, bits: keys.lazy.map { Int($0 >> filterShift) })
    }

    public static func full(_ e: String) -> UInt64 { fnv(e.utf8) }
    public static func base(_ name: String) -> UInt64 { fnv(name.utf8, seed: fnv([baseTag])) }
    public static func rel(cwd: String, _ e: String) -> UInt64 {
        var bytes: [UInt8] = [relTag]
        for comp in cwd.split(separator: "/").reversed() { bytes += Array(comp.utf8) + [0] }
        return fnv(e.utf8, seed: fnv(bytes))
    }

    public static func keys(forRule script: String) -> [UInt64] {
        guard script.hasPrefix("/") else { return [base(script)] }
        let comps = script.split(separator: "/")
        let dir = "/" + comps.dropLast().joined(separator: "/")
        let name = String(comps.last ?? "")
        // The kernel hashes text, it does not resolve paths: the spellings a shell or a unit
        // commonly uses are keys of their own.
        return [full(script), full("/" + script), rel(cwd: dir, name), rel(cwd: dir, "./" + name), rel(cwd: dir, "././" + name)]
    }

    /// Keys an exec produces, as the kernel computes them (for tests and the userspace tier).
    public static func keys(forExec argv: [String], filename: String, cwd: String?) -> Set<UInt64> {
        var out: Set<UInt64> = []
        for e in argv + [filename] {
            out.insert(full(e))
            out.insert(base(PolicyCompiler.basename(e)))
            if let cwd { out.insert(rel(cwd: cwd, e)) }
        }
        return out
    }
}

extension CompiledPolicy {
    /// Userspace evaluation of the same masks the kernel uses (userspace tier, audit, tests).
    public func matches(exeMask: UInt64, scriptKeys keys: Set<UInt64>, comm: String, argv: [String]) -> UInt64 {
        var script: UInt64 = 0
        for k in keys { script |= scriptKeys[k] ?? 0 }
        let commMask = commKeys[comm] ?? 0
        var m = (exeMask | ~needExe) & (script | ~needScript) & (commMask | ~needComm)
        m &= (audit | kill | deny)
        // argv globs are a userspace refinement.
        for (i, r) in rules.enumerated() {
            guard let g = r.match.argv else { continue }
            let bit = bitFor(i)
            if m & bit != 0, !Glob.match(g, argv.joined(separator: " ")) { m &= ~bit }
        }
        return m
    }

    public func bitFor(_ i: Int) -> UInt64 { UInt64(1) << UInt64(bitBase + i) }

    /// Rules whose bit is set in a kernel mask.
    public func rules(in mask: UInt64) -> [PolicyRule] {
        rules.enumerated().filter { mask & bitFor($0.offset) != 0 }.map(\.element)
    }
}

/// Shell-style glob: `*` any run, `?` one character.
public enum Glob {
    public static func match(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) { pi += 1; ti += 1 }
            else if pi < p.count && p[pi] == "*" { star = pi; mark = ti; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
