import Glibc
extension Image {
    /// Whether this image runs the program named by `text`: its exe path, its argv[0], or one
    /// of its arguments contains the text. A whole command line passed as one argument (a
    /// shell's `-c` string, `pgrep -f`'s pattern) names the program, it does not run it.
    /// The one rule every command (`timeline --match`, `verify --match`) selects programs by.
    public func runsProgram(matching text: String) -> Bool {
        if ByteSearch.contains(filename, text) { return true }
        if let first = argv.first, ByteSearch.contains(first, text) { return true }
        return argv.dropFirst().contains { ByteSearch.contains($0, text) && !hasWhitespace($0) }
    }

    private func hasWhitespace(_ s: String) -> Bool {
        var ascii = true
        for b in s.utf8 {
            if b == 32 || (9...13).contains(b) { return true }
            if b >= 0x80 { ascii = false }
        }
        return ascii ? false : s.contains(where: \.isWhitespace)
    }
}

/// Substring search on UTF-8 bytes (as SQLite's `instr`, which selected the rows): memchr and memcmp,
/// not `String.contains`, which compares Characters.
public enum ByteSearch {
    public static func contains(_ haystack: String, _ needle: String) -> Bool {
        var h = haystack, n = needle
        return h.withUTF8 { hb in n.withUTF8 { nb in contains(hb, nb) } }
    }

    public static func contains(_ h: UnsafeBufferPointer<UInt8>, _ n: UnsafeBufferPointer<UInt8>) -> Bool {
        if n.isEmpty { return true }
        guard h.count >= n.count, let hp = h.baseAddress, let np = n.baseAddress else { return false }
        // memchr to each candidate first byte, then memcmp (memmem is not exported to Swift).
        var at = 0
        let last = h.count - n.count
        while at <= last {
            guard let hit = memchr(hp + at, Int32(np[0]), last - at + 1) else { return false }
            let k = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - hp
            if memcmp(hp + k, np, n.count) == 0 { return true }
            at = k + 1
        }
        return false
    }

    public static func contains(_ h: [UInt8], _ n: [UInt8]) -> Bool {
        h.withUnsafeBufferPointer { hb in n.withUnsafeBufferPointer { nb in contains(hb, nb) } }
    }
}
