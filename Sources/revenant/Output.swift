import Foundation
import Synchronization

/// Whole lines to stdout from any task, never interleaved.
final class LineWriter: Sendable {
    static let stdout = LineWriter(FileHandle.standardOutput)
    private let handle: Mutex<FileHandle>
    init(_ h: FileHandle) { handle = Mutex(h) }

    func line(_ s: String) {
        handle.withLock { $0.write(Data((s + "\n").utf8)) }
    }

    func json<T: Encodable>(_ value: T) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let data = try? enc.encode(value) { line(String(decoding: data, as: UTF8.self)) }
    }
}

func warn(_ s: String) {
    FileHandle.standardError.write(Data(("revenant: " + s + "\n").utf8))
}

enum Clock {
    // Formatters are thread-safe in swift-corelibs-foundation; shared to avoid rebuilding per line.
    static let hms: DateFormatter = {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss.SSS"
        return f
    }()

    nonisolated(unsafe) static let iso: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
}

/// Exit with a one-line message and a status.
struct Failure: Error, CustomStringConvertible {
    let description: String
    let status: Int32
    init(_ message: String, status: Int32 = 1) { description = message; self.status = status }
}
