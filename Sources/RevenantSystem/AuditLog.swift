import Foundation
import RevenantCore

/// Append-only JSON-lines audit log with a SHA-256 chain that continues across restarts and
/// rotations. Bounds: rotated at `maxBytes`, `keep` old files (`audit.jsonl.1` is the newest).
public final class AuditLog: @unchecked Sendable {
    public static let defaultPath = "/var/log/revenant/audit.jsonl"
    public let path: String
    let maxBytes: Int
    let keep: Int
    private var handle: FileHandle
    private var size: Int
    private var seq: Int
    private var lastHash: String
    private let lock = NSLock()
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    public init(path: String, maxBytes: Int = 64 << 20, keep: Int = 5) throws {
        self.path = path; self.maxBytes = maxBytes; self.keep = keep
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        // Continue the chain from the last record here, or in the newest rotated file.
        (seq, lastHash) = AuditLog.tail(path) ?? AuditLog.tail(path + ".1") ?? (0, AuditChain.genesis)
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        handle = h
        size = Int(try h.seekToEnd())
    }

    static func tail(_ path: String) -> (Int, String)? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        guard let last = String(decoding: d, as: UTF8.self).split(separator: "\n").last.map(String.init),
              let obj = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
              let ext = obj["revenant"] as? [String: Any], let s = ext["seq"] as? Int else { return nil }
        return (s, AuditChain.hash(last))
    }

    public func append(_ event: AuditEvent) throws {
        lock.lock()
        defer { lock.unlock() }
        var e = event
        e.revenant.seq = seq + 1
        e.revenant.prev_hash = lastHash
        let line = String(decoding: try encoder.encode(e), as: UTF8.self)
        if size + line.utf8.count + 1 > maxBytes && size > 0 { try rotate() }
        try handle.write(contentsOf: Data((line + "\n").utf8))
        size += line.utf8.count + 1
        seq += 1
        lastHash = AuditChain.hash(line)
    }

    private func rotate() throws {
        try handle.close()
        let fm = FileManager.default
        try? fm.removeItem(atPath: "\(path).\(keep)")
        for i in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(i)") {
            try fm.moveItem(atPath: "\(path).\(i)", toPath: "\(path).\(i + 1)")
        }
        try fm.moveItem(atPath: path, toPath: "\(path).1")
        fm.createFile(atPath: path, contents: nil)
        guard let h = FileHandle(forWritingAtPath: path) else { throw CocoaError(.fileWriteNoPermission) }
        handle = h
        size = 0
    }

    public func close() {
        lock.lock()
        try? handle.synchronize()
        try? handle.close()
        lock.unlock()
    }
}
