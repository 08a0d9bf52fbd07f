import Crypto
import Foundation

/// The audit log's integrity: each JSON line carries `seq` and `prev_hash`, the SHA-256 of the
/// previous line's exact bytes. Changing, removing or reordering a record breaks the chain at
/// the next one. (The last line has no successor: keep the log shipped, or compare its hash.)
public enum AuditChain {
    public static let genesis = String(repeating: "0", count: 64)

    public static func hash(_ line: String) -> String { hash(bytes: Array(line.utf8)) }

    public static func hash(bytes line: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        var h = SHA256()
        line.withUnsafeBytes { h.update(bufferPointer: $0) }
        for b in h.finalize() { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
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
        var v = Verifier()
        for f in files {
            for (i, line) in f.lines.enumerated() where !line.isEmpty {
                let p = v.check(line, file: f.name, line: i + 1) { n in
                    files.contains { $0.lines.contains { Verifier.seq(in: $0) == n } }
                }
                if let p { return p }
            }
        }
        return nil
    }

    /// The chain checked one line at a time, in constant memory: only the previous record's seq
    /// and hash are kept. A gap is told apart (a record moved elsewhere, or removed) by asking
    /// `holds` whether the missing seq is anywhere, which a streaming reader answers by reading
    /// the files again, once, at the first problem.
    public struct Verifier: Sendable {
        var prevHash: String?
        var prevSeq: Int?
        public private(set) var records = 0

        public init() {}

        public mutating func check(_ line: String, file: String, line n: Int, holds: (Int) -> Bool) -> Problem? {
            guard let (seq, ph) = Verifier.chainFields(line) else {
                return Problem(file: file, line: n, seq: nil, kind: .malformed, detail: "not a revenant audit record")
            }
            if let ps = prevSeq {
                if seq <= ps {
                    return Problem(file: file, line: n, seq: seq, kind: .reordered, detail: "sequence \(seq) after \(ps)")
                }
                if seq > ps + 1 {
                    return holds(ps + 1)
                        ? Problem(file: file, line: n, seq: seq, kind: .reordered, detail: "sequence \(seq) after \(ps): record \(ps + 1) was moved")
                        : Problem(file: file, line: n, seq: seq, kind: .removed, detail: "records \(ps + 1)…\(seq - 1) are missing before it")
                }
            }
            if let expected = prevHash, ph != expected {
                return Problem(file: file, line: n, seq: seq, kind: .changed,
                               detail: "prev_hash does not match record \(seq - 1): that record was changed")
            }
            prevHash = hash(line)
            prevSeq = seq
            records += 1
            return nil
        }

        /// `seq` and `prev_hash` of the line's `revenant` object, found without parsing the
        /// whole record: in JSON a quote inside a string is escaped, so these keys cannot be
        /// forged by a value, and the hash covers every other byte.
        static func chainFields(_ line: String) -> (Int, String)? {
            guard line.hasPrefix("{"), let ext = line.range(of: "\"revenant\":{") else { return nil }
            let rest = line[ext.upperBound...]
            guard let s = rest.range(of: "\"seq\":"), let seq = Int(rest[s.upperBound...].prefix { $0.isNumber }),
                  let h = rest.range(of: "\"prev_hash\":\"") else { return nil }
            let hash = rest[h.upperBound...].prefix(64)
            guard hash.count == 64, hash.allSatisfy(\.isHexDigit), rest[h.upperBound...].dropFirst(64).first == "\"" else { return nil }
            return (seq, String(hash))
        }

        /// The `"seq":N` a line carries, without parsing it.
        public static func seq(in line: String) -> Int? {
            guard let r = line.range(of: "\"seq\":") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
    }
}
