import Foundation
import Logging
import RevenantCore

/// One line per record on stderr. Under journald (stderr not a terminal) each line starts
/// with its syslog priority (`<4>`), which journald turns into the entry's level.
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
