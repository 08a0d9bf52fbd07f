import Foundation
import Glibc
import RevenantCore
import RevenantHost

public struct AuditLogError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var errno: Int32
    public var description: String { "audit log \(path): \(String(cString: strerror(errno)))" }
}

/// Append-only JSON-lines audit log with a SHA-256 chain that continues across restarts and
/// rotations. Bounds: rotated at `maxBytes`, `keep` old files (`audit.jsonl.1` is the newest).
///
/// Durability: each record is one write(2) on an O_APPEND descriptor, in the order the daemon
/// saw the events. Records marked `sync` (enforcement, daemon lifecycle) are fsync'd before
/// `append` returns; the others are fsync'd by `syncIfDirty()`, which the daemon calls every
/// flush (every second). A failed write is cut back to the last whole record, counted, and recorded
/// as an "audit gap" record once writing works again, so the chain stays verifiable.
public final class AuditLog: @unchecked Sendable {
    public static let defaultPath = "/var/log/revenant/audit.jsonl"
    public let path: String
    let maxBytes: Int
    let keep: Int
    private var fd: Int32 = -1
    private var size: Int = 0
    private var seq: Int
    private var lastHash: String
    private var dirty = false
    /// Records that could not be written since the last successful write.
    private var gap = 0
    private var gapError: Int32 = 0
    private let lock = NSLock()
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    public convenience init(path: String, maxBytes: Int = 64 << 20, keep: Int = 5) throws {
        self.init(opening: path, maxBytes: maxBytes, keep: keep)
        if let e = lastOpenError { throw e }
    }

    /// Never fails: a log that cannot be opened now is opened at the first write that can,
    /// after an "audit gap" record of what was lost meanwhile.
    public init(opening path: String, maxBytes: Int = 64 << 20, keep: Int = 5) {
        self.path = path; self.maxBytes = maxBytes; self.keep = keep
        // Continue the chain from the last record here, or in the newest rotated file.
        (seq, lastHash) = AuditLog.tail(path) ?? AuditLog.tail(path + ".1") ?? (0, AuditChain.genesis)
        do { try open() } catch { lastOpenError = error as? AuditLogError ?? AuditLogError(path: path, errno: EIO); gapError = lastOpenError!.errno }
    }

    private var lastOpenError: AuditLogError?
    public var isOpen: Bool { lock.withLock { fd >= 0 } }
    public var lastError: String? { lock.withLock { lastOpenError?.description } }

    private func open() throws {
        if (try? PrivateFiles.directory((path as NSString).deletingLastPathComponent)) == nil {
            throw AuditLogError(path: path, errno: errno == 0 ? EACCES : errno)
        }
        let f = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard f >= 0 else { throw AuditLogError(path: path, errno: errno) }
        fchmod(f, 0o640)   // whatever the umask: readable by the owner's group (log shippers), no one else
        fd = f
        lastOpenError = nil
        size = Int(lseek(f, 0, SEEK_END))
    }

    /// The last record's seq and hash, from the file's last 64 KiB.
    static func tail(_ path: String) -> (Int, String)? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        let end = (try? h.seekToEnd()) ?? 0
        try? h.seek(toOffset: end > 65_536 ? end - 65_536 : 0)
        guard let d = try? h.readToEnd(),
              let last = String(decoding: d, as: UTF8.self).split(separator: "\n").last.map(String.init),
              let obj = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
              let ext = (obj["unmapped"] as? [String: Any])?["revenant"] as? [String: Any] ?? obj["revenant"] as? [String: Any],
              let s = ext["seq"] as? Int else { return nil }
        return (s, AuditChain.hash(last))
    }

    /// Appends one record; `sync` makes it durable before returning. Throws when it could not
    /// be written (the record is then counted in the next "audit gap" record).
    /// Returns the line written (the record as chained), for forwarding.
    @discardableResult
    public func append(_ event: AuditEvent, sync: Bool = false) throws -> (line: String, event: AuditEvent) {
        lock.lock()
        defer { lock.unlock() }
        do { try writeGap() } catch { gap += 1; throw error }
        let written: (line: String, event: AuditEvent)
        do { written = try write(event) } catch { gap += 1; throw error }
        if sync { fsyncLocked() }
        return written
    }

    /// Records the gap, if any, as soon as the log takes writes again (called once a flush,
    /// so the gap is on record without waiting for the next event). Returns the records lost.
    @discardableResult
    public func recordGap() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        let lost = gap
        try writeGap()
        if lost > 0 { fsyncLocked() }
        return lost
    }

    private func writeGap() throws {
        guard gap > 0 else { return }
        var g = AuditEvent.daemon("audit gap", timeMs: Int64(Date().timeIntervalSince1970 * 1000),
                                  detail: "\(gap) records could not be written: \(String(cString: strerror(gapError)))",
                                  severity: 4)
        g.revenant.lost_records = gap
        try write(g)
        gap = 0
    }

    @discardableResult
    private func write(_ event: AuditEvent) throws -> (line: String, event: AuditEvent) {
        if fd < 0 { do { try open() } catch let e as AuditLogError { gapError = e.errno; lastOpenError = e; throw e } }
        var e = event
        e.chain(seq: seq + 1, prevHash: lastHash, device: HostIdentity.device)
        let line = String(decoding: try encoder.encode(e), as: UTF8.self)
        let bytes = Array((line + "\n").utf8)
        if size + bytes.count > maxBytes && size > 0 { rotate() }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let err = n < 0 ? errno : ENOSPC
                // Never leave half a record: the chain must stay checkable.
                _ = ftruncate(fd, off_t(size))
                gapError = err
                throw AuditLogError(path: path, errno: err)
            }
            off += n
        }
        size += bytes.count
        seq += 1
        lastHash = AuditChain.hash(line)
        dirty = true
        return (line, e)
    }

    /// Renames the files along; when that fails the current file simply grows.
    private func rotate() {
        let fm = FileManager.default
        try? fm.removeItem(atPath: "\(path).\(keep)")
        for i in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(i)") {
            try? fm.moveItem(atPath: "\(path).\(i)", toPath: "\(path).\(i + 1)")
        }
        guard rename(path, "\(path).1") == 0 else { return }
        fsyncLocked()
        let old = fd
        do { try open() } catch { fd = -1 }
        Glibc.close(old)
    }

    private func fsyncLocked() {
        if fd >= 0 && dirty { _ = fsync(fd); dirty = false }
    }

    /// Makes everything appended so far durable.
    public func syncIfDirty() {
        lock.lock()
        fsyncLocked()
        lock.unlock()
    }

    public func close() {
        lock.lock()
        fsyncLocked()
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        lock.unlock()
    }
}
