import CRevenantOS
import Foundation
import Glibc

/// Reads a configuration file as the process that uses it sees it, and nothing else: under
/// that process's root (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, so a
/// container's absolute symlink stays in the container), regular files only, opened
/// non-blocking (a FIFO never hangs the reader), at most `maxBytes`.
public enum SafeRead {
    public static let maxBytes = 1 << 20

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case missing
        case notRegular(String)
        case tooLarge
        case escapesRoot
        case notReadableBy(UInt32)
        case failed(Int32)

        public var description: String {
            switch self {
            case .missing: "no such file"
            case .notRegular(let kind): "not a regular file (\(kind))"
            case .tooLarge: "larger than \(SafeRead.maxBytes >> 20) MiB"
            case .escapesRoot: "a symlink on the way leaves the process's root (this kernel has no openat2)"
            case .notReadableBy(let uid): "its user (uid \(uid)) could not read it"
            case .failed(let e): String(cString: strerror(e))
            }
        }
    }

    /// The lines of `path` (absolute as `root` sees it) under `root`. `user`: the path came
    /// from that user's command line, so it is read only if that user could read it.
    public static func lines(_ path: String, root: String = "/", user: (uid: UInt32, gid: UInt32)? = nil) -> Result<[String], Refusal> {
        bytes(path, root: root, user: user).map { String(decoding: $0, as: UTF8.self).components(separatedBy: "\n") }
    }

    public static func bytes(_ path: String, root: String = "/", user: (uid: UInt32, gid: UInt32)? = nil) -> Result<[UInt8], Refusal> {
        let dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return .failure(errno == ENOENT ? .missing : .failed(errno)) }
        defer { close(dir) }
        var fd = rv_open_in_root(dir, path)
        if fd < 0, errno == ENOSYS {
            guard !leavesRoot(dir, path) else { return .failure(.escapesRoot) }
            fd = openat(dir, String(path.drop { $0 == "/" }), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        }
        guard fd >= 0 else { return .failure(errno == ENOENT || errno == ENOTDIR ? .missing : .failed(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.failed(errno)) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFIFO: return .failure(.notRegular("a FIFO"))
        case S_IFCHR: return .failure(.notRegular("a character device"))
        case S_IFBLK: return .failure(.notRegular("a block device"))
        case S_IFSOCK: return .failure(.notRegular("a socket"))
        case S_IFDIR: return .failure(.notRegular("a directory"))
        default: return .failure(.notRegular("not a plain file"))
        }
        if let user, !canRead(st, uid: user.uid, gid: user.gid) { return .failure(.notReadableBy(user.uid)) }
        guard st.st_size <= maxBytes else { return .failure(.tooLarge) }
        var out = [UInt8](repeating: 0, count: maxBytes + 1)
        var n = 0
        while n < out.count {
            let r = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + n, $0.count - n) }
            if r < 0 { if errno == EINTR { continue }; return .failure(.failed(errno)) }
            if r == 0 { break }
            n += r
        }
        guard n <= maxBytes else { return .failure(.tooLarge) }
        return .success(Array(out[..<n]))
    }

    /// The file's mode bits for that user; root reads anything.
    static func canRead(_ st: stat, uid: UInt32, gid: UInt32) -> Bool {
        if uid == 0 { return true }
        if st.st_uid == uid { return st.st_mode & S_IRUSR != 0 }
        if st.st_gid == gid { return st.st_mode & S_IRGRP != 0 }
        return st.st_mode & S_IROTH != 0
    }

    /// Without openat2: whether a component of `path` is a symlink with an absolute target,
    /// which opening through the root's directory would resolve against the reader's root.
    private static func leavesRoot(_ dir: Int32, _ path: String) -> Bool {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlinkat(dir, prefix, &buf, buf.count - 1)
            if n > 0, buf[0] == CChar(UInt8(ascii: "/")) { return true }
            if n > 0, String(cString: buf).contains("..") { return true }
        }
        return false
    }
}
