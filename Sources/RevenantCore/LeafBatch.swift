import Glibc

/// Leaves for one `leaf_batch` row, encoded as they are added (see `StoreBatch.leaves`).
public struct LeafBatch: Sendable, ExpressibleByArrayLiteral {
    package var records = LeafCodec.Writer()
    /// ",pid,pid,": what `instr` finds a PID in.
    package var pids: [UInt8] = [UInt8(ascii: ",")]
    /// Distinct command lines with how many leaves ran each, then distinct exe paths; by their
    /// bytes (String keys would merge canonically equal texts that the store searches byte for byte).
    var argvs: [[UInt8]: Int] = [:]
    var exes = Set<[UInt8]>()
    private var lastArgv: [String]? = nil, lastCount = 0
    private var lastExe = ""
    /// The texts box of the last leaf `append(_: UnsafePointer<ShortLived>)` counted, if that was the last one counted.
    private var lastBox: ExecTexts?
    package var first = UInt64.max, last: UInt64 = 0
    /// The distinct `pid >> LeafBatch.bucketShift` of its leaves: the store's PID index.
    package var buckets = Set<Int32>()
    private var lastBucket = Int32.min
    public private(set) var count = 0

    /// 64 PIDs a bucket: PIDs are handed out in order, so one flush's leaves fill a few dozen.
    package static let bucketShift: Int32 = 6

    public init() {}
    public init(arrayLiteral elements: ProcessRecord...) { self.init(elements) }
    public init(_ records: some Sequence<ProcessRecord>) { for r in records { append(r) } }

    public var isEmpty: Bool { count == 0 }

    public mutating func append(_ r: borrowing ProcessRecord) {
        withUnsafePointer(to: r) { append($0) }
    }

    /// Reads the record where it lies (the process table's slab at a flush).
    mutating func append(_ r: UnsafePointer<ProcessRecord>) {
        if count == 0 { records.bytes.reserveCapacity(256 * 192) }
        records.record(r)
        lastBox = nil
        added(r.pointee.id, end: r.pointee.exitTime ?? r.pointee.id.startNs)
        for k in r.pointee.images.indices {
            // A process counts once per command line, however often it exec'd it.
            if k > 0, r.pointee.images[..<k].contains(where: { LeafCodec.Writer.same($0.argv, r.pointee.images[k].argv) }) { continue }
            ran(r.pointee.images[k].argv, r.pointee.images[k].filename)
        }
    }

    /// A process the table never filed (`ProcessTable.leaf(exiting:_:)`): the same bytes as
    /// `append(ProcessRecord(s))`, encoded from the exec and exit themselves.
    mutating func append(_ s: UnsafePointer<ShortLived>) {
        if count == 0 { records.bytes.reserveCapacity(256 * 192) }
        records.shortLived(s)
        added(s.pointee.exit.process, end: s.pointee.exit.time)
        let t = s.pointee.exec.texts
        // The previous leaf's texts box: the same command line and exe, known without a compare.
        if t === lastBox { lastCount += 1; return }
        ran(t.argv, t.filename)
        lastBox = t
    }

    private mutating func added(_ id: Identity, end: UInt64) {
        count += 1
        LeafBatch.decimal(id.pid, to: &pids); pids.append(UInt8(ascii: ","))
        let bucket = id.pid >> LeafBatch.bucketShift
        if bucket != lastBucket { lastBucket = bucket; buckets.insert(bucket) }
        first = min(first, id.startNs)
        last = max(last, end)
    }

    /// The digits of a PID, written in place: `String(pid)` allocated once per leaf.
    static func decimal(_ v: Int32, to out: inout [UInt8]) {
        var m = v.magnitude
        if v < 0 { out.append(UInt8(ascii: "-")) }
        var d = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        var n = 0
        withUnsafeMutableBytes(of: &d) { b in
            repeat { b[9 - n] = UInt8(ascii: "0") + UInt8(m % 10); m /= 10; n += 1 } while m > 0
            out.append(contentsOf: b[(10 - n)...])
        }
    }

    private mutating func ran(_ argv: [String], _ filename: String) {
        // Consecutive leaves mostly ran the same thing: count those without hashing.
        if let l = lastArgv, LeafCodec.Writer.same(l, argv) {
            lastCount += 1
        } else {
            if let l = lastArgv { argvs[ArgvBytes.join(l), default: 0] += lastCount }
            lastArgv = argv; lastCount = 1
        }
        if !LeafCodec.Writer.same(filename, lastExe) { lastExe = filename; exes.insert(Array(filename.utf8)) }
    }

    /// The batch's search keys: each distinct command line with its count, a 0, then each exe.
    package func keys() -> [UInt8] {
        var argvs = argvs
        if let l = lastArgv { argvs[ArgvBytes.join(l), default: 0] += lastCount }
        var keys = LeafCodec.Writer()
        for (argv, n) in argvs { keys.uint(UInt64(n)); keys.blob(argv) }
        keys.uint(0)
        for e in exes { keys.blob(e) }
        return keys.bytes
    }
}

/// A command line as the store keeps it: arguments joined by NUL bytes.
package enum ArgvBytes {
    package static func join(_ argv: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, a) in argv.enumerated() {
            if i > 0 { out.append(0) }
            out.append(contentsOf: a.utf8)
        }
        return out
    }

    package static func split(_ b: [UInt8]) -> [String] {
        guard !b.isEmpty else { return [] }
        return b.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }
}
