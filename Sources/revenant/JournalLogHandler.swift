import Foundation
import Glibc
import Logging
import RevenantCore

/// One record per log event. Under systemd (JOURNAL_STREAM names our stderr) it goes to
/// journald natively, with its fields: PRIORITY, SYSLOG_IDENTIFIER=revenant, each metadata
/// key as REVENANT_KEY (REVENANT_RULE, REVENANT_TIER, REVENANT_PID…) and OBJECT_PID for the
/// process it is about, so `journalctl REVENANT_RULE=block-v1` finds the kills. Otherwise one
/// line on stderr, starting with its syslog priority (`<4>`) when stderr is not a terminal.
struct JournalLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String
    static let tty = isatty(STDERR_FILENO) != 0

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        // One record, one line: a newline in argv must not start an entry of its own priority.
        let text = Visible.escape(event.message.description + (fields.isEmpty ? "" : " " + fields))
        if let j = JournalSocket.shared, j.send(message: text, priority: JournalLogHandler.priority(event.level), fields: all) { return }
        let line: String
        if JournalLogHandler.tty {
            line = "\(Clock.hms.string(from: Date())) \(event.level.rawValue.uppercased()) \(text)\n"
        } else {
            line = "<\(JournalLogHandler.priority(event.level))>\(text)\n"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func priority(_ l: Logger.Level) -> Int {
        switch l {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}

/// journald's native protocol: one datagram of `KEY=value` lines per entry.
final class JournalSocket: Sendable {
    static let shared: JournalSocket? = JournalSocket()
    private let fd: Int32
    private let address: sockaddr_un

    /// Only when systemd connected our stderr to the journal: JOURNAL_STREAM is its `dev:ino`.
    private init?(path: String = "/run/systemd/journal/socket") {
        guard let stream = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return nil }
        var st = stat()
        guard fstat(STDERR_FILENO, &st) == 0, stream == "\(st.st_dev):\(st.st_ino)" else { return nil }
        let s = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return nil }
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { p in
            for (i, b) in path.utf8.prefix(p.count - 1).enumerated() { p[i] = b }
        }
        fd = s
        address = a
    }

    /// Field names journald accepts: upper case, digits and `_`, not starting with `_`.
    static func fieldName(_ key: String) -> String {
        "REVENANT_" + String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    func send(message: String, priority: Int, fields: Logger.Metadata) -> Bool {
        var text = "MESSAGE=\(message)\nPRIORITY=\(priority)\nSYSLOG_IDENTIFIER=revenant\n"
        for (k, v) in fields.sorted(by: { $0.key < $1.key }) {
            let value = Visible.escape("\(v)")
            text += "\(JournalSocket.fieldName(k))=\(value)\n"
            if k == "pid", Int32(value) != nil { text += "OBJECT_PID=\(value)\n" }
        }
        var a = address
        let n = text.utf8CString.withUnsafeBufferPointer { b in
            withUnsafePointer(to: &a) { ap in
                ap.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count - 1, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        return n > 0
    }
}
