import Foundation
import RevenantCore

/// Reads and compiles a policy file against this host's safety facts.
public enum PolicyLoader {
    public static let defaultPath = "/etc/revenant/policy.yaml"

    public static func safetyContext() -> SafetyContext {
        var c = SafetyContext(
            pid1Exe: readLink("/proc/1/exe"),
            selfExe: readLink("/proc/self/exe"),
            resolve: { path in
                guard let r = realpath(path, nil) else { return path }
                defer { free(r) }
                return String(cString: r)
            })
        c.fileKey = fileKey
        var protected: [SafetyContext.FileKey: String] = [:]
        let named = SafetyContext.critical.flatMap { n in protectedDirs.map { "\($0)/\(n)" } }
        for p in named + ["/proc/1/exe", "/proc/self/exe"] {
            if let k = fileKey(p), protected[k] == nil { protected[k] = readLink(p) ?? p }
        }
        c.protectedFiles = protected
        return c
    }

    static let protectedDirs = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/lib/systemd", "/lib/systemd",
                                "/usr/lib/openssh", "/usr/libexec", "/usr/local/bin", "/usr/local/sbin"]

    @Sendable static func fileKey(_ path: String) -> SafetyContext.FileKey? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return SafetyContext.FileKey(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    public static func read(_ path: String) throws(PolicyError) -> Policy {
        if geteuid() == 0, let why = untrusted(path) { throw PolicyError(file: path, line: 0, column: 0, message: why) }
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw PolicyError(file: path, line: 0, column: 0, message: why)
        }
        return try PolicyParser.parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// Why a root daemon must not enforce this file (sshd's StrictModes): it, or a directory on
    /// its path, could be changed by someone other than root. A root-owned sticky directory
    /// (/tmp) is allowed: others cannot replace a file root owns in it. nil when trusted.
    public static func untrusted(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }   // missing: read() says so
        let resolved = String(cString: real)
        free(real)
        var st = stat()
        guard stat(resolved, &st) == 0 else { return nil }
        if st.st_uid != 0 {
            return "refused: owned by uid \(st.st_uid), not root, so that user can change what root enforces; fix: chown root \(shellQuote(resolved))"
        }
        if st.st_mode & 0o022 != 0 {
            return "refused: writable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); fix: chmod go-w \(shellQuote(resolved))"
        }
        var dir = (resolved as NSString).deletingLastPathComponent
        while true {
            guard stat(dir, &st) == 0 else { break }
            let sticky = st.st_mode & UInt32(S_ISVTX) != 0
            if st.st_uid != 0 {
                return "refused: directory \(dir) is owned by uid \(st.st_uid), who could swap the policy; fix: chown root \(shellQuote(dir)), or keep the policy under /etc/revenant"
            }
            if st.st_mode & 0o022 != 0 && !sticky {
                return "refused: directory \(dir) is writable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); fix: chmod go-w \(shellQuote(dir))"
            }
            if dir == "/" || dir.isEmpty { break }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }

    public static func load(_ path: String, bitBase: Int = 0) throws(PolicyError) -> CompiledPolicy {
        try PolicyCompiler.compile(read(path), context: safetyContext(), bitBase: bitBase)
    }
}
