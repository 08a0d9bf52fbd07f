import Crypto
import Foundation

/// The audit log's integrity: each JSON line carries `seq` and `prev_hash`, the SHA-256 of the
/// previous line's exact bytes. Changing, removing or reordering a record breaks the chain at
/// the next one. (The last line has no successor: keep the log shipped, or compare its hash.)
public enum AuditChain {
    public static let genesis = String(repeating: "0", count: 64)

    public static func hash(_ line: String) -> String {
        SHA256.hash(data: Data(line.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public struct Problem: Equatable, Sendable, CustomStringConvertible {
        public enum Kind: String, Sendable { case changed, removed, reordered, malformed }
        public var file: String
        public var line: Int
        public var seq: Int?
        public var kind: Kind
        public var detail: String

        public var description: String { "\(file):\(line): record \(seq.map(String.init) ?? "?") \(kind.rawValue): \(detail)" }
    }

    /// Checks lines (possibly across rotated files, oldest first). Returns the first problem.
    public static func verify(_ files: [(name: String, lines: [String])]) -> Problem? {
        var prevHash: String?
        var prevSeq: Int?
        // Every sequence number present, to tell a record moved from one removed.
        var present: Set<Int> = []
        for f in files {
            for line in f.lines where !line.isEmpty {
                if let r = line.range(of: #""seq":(\d+)"#, options: .regularExpression),
                   let n = Int(line[r].dropFirst(6)) { present.insert(n) }
            }
        }
        for f in files {
            for (i, line) in f.lines.enumerated() where !line.isEmpty {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let ext = obj["revenant"] as? [String: Any],
                      let seq = ext["seq"] as? Int, let ph = ext["prev_hash"] as? String else {
                    return Problem(file: f.name, line: i + 1, seq: nil, kind: .malformed, detail: "not a revenant audit record")
                }
                if let ps = prevSeq {
                    if seq <= ps {
                        return Problem(file: f.name, line: i + 1, seq: seq, kind: .reordered, detail: "sequence \(seq) after \(ps)")
                    }
                    if seq > ps + 1 && present.contains(ps + 1) {
                        return Problem(file: f.name, line: i + 1, seq: seq, kind: .reordered,
                                       detail: "sequence \(seq) after \(ps): record \(ps + 1) was moved")
                    }
                    if seq > ps + 1 {
                        return Problem(file: f.name, line: i + 1, seq: seq, kind: .removed,
                                       detail: "records \(ps + 1)…\(seq - 1) are missing before it")
                    }
                }
                if let expected = prevHash, ph != expected {
                    return Problem(file: f.name, line: i + 1, seq: seq, kind: .changed,
                                   detail: "prev_hash does not match record \(seq - 1): that record was changed")
                }
                prevHash = hash(line)
                prevSeq = seq
            }
        }
        return nil
    }
}
