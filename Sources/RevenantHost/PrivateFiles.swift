import Foundation

/// The store and the audit log hold every command line on the host: owner-only files in a
/// directory others cannot list, whatever the umask of whoever started the daemon.
package enum PrivateFiles {
    /// Creates the directory (and its parents) if missing; the last one created is 0750.
    package static func directory(_ dir: String) throws {
        guard !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o750)
    }

    /// Creates `path` if missing and sets `mode` on it and on its SQLite companions that exist.
    package static func file(_ path: String, mode: mode_t, companions: [String] = []) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode)
        if fd >= 0 { fchmod(fd, mode); close(fd) }
        for c in companions where FileManager.default.fileExists(atPath: path + c) { chmod(path + c, mode) }
    }
}
