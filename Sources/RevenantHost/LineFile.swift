import Foundation

/// A file's lines, read in 1 MiB chunks: memory stays bounded by the longest line, not the file.
public struct LineFile: Sequence {
    public let path: String

    public init(path: String) { self.path = path }

    /// Whether the file can be opened for reading.
    public var readable: Bool { access(path, R_OK) == 0 }

    public func makeIterator() -> Iterator { Iterator(path: path) }

    public final class Iterator: IteratorProtocol {
        private let fd: Int32
        private var buffer: [UInt8] = []
        private var start = 0
        private var eof = false

        init(path: String) { fd = open(path, O_RDONLY | O_CLOEXEC) }
        deinit { if fd >= 0 { close(fd) } }

        public func next() -> String? {
            guard fd >= 0 else { return nil }
            while true {
                if let nl = buffer[start...].firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[start..<nl], as: UTF8.self)
                    start = nl + 1
                    return line
                }
                if eof {
                    guard start < buffer.count else { return nil }
                    let line = String(decoding: buffer[start...], as: UTF8.self)
                    start = buffer.count
                    return line
                }
                buffer.removeFirst(start)
                start = 0
                let old = buffer.count
                buffer.append(contentsOf: repeatElement(0, count: 1 << 20))
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + old, 1 << 20) }
                buffer.removeLast((1 << 20) - Swift.max(n, 0))
                if n <= 0 { eof = true }
            }
        }
    }
}
