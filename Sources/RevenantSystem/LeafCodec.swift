import RevenantCore

/// The byte form of leaves in a `leaf_batch` row: processes born and ended between two flushes
/// that forked nothing. Stored many to a row, they cost the store one row per flush instead of
/// two rows and four B-tree entries each. Varints, strings as length then UTF-8.
enum LeafCodec {
    struct Malformed: Error, CustomStringConvertible {
        var description: String { "a leaf batch's records are truncated or malformed" }
    }

    struct Writer {
        var bytes: [UInt8] = []
        /// The text segments `shortLived` wrote for the last exec texts box, with their ends in
        /// `textBytes`: a respawn loop's leaves share one box, and its texts are encoded once.
        private var lastTexts: ExecTexts?
        private var textBytes: [UInt8] = []
        private var textEnds = (0, 0, 0, 0)

        mutating func uint(_ v: UInt64) {
            if v < 0x80 { bytes.append(UInt8(v)); return }
            // Encoded on the stack, then appended at once: one capacity check, not one a byte.
            var buf: (UInt64, UInt16) = (0, 0)
            let n = withUnsafeMutableBytes(of: &buf) { p -> Int in
                var v = v, i = 0
                while v >= 0x80 { p[i] = UInt8(truncatingIfNeeded: v) | 0x80; v >>= 7; i += 1 }
                p[i] = UInt8(v)
                return i + 1
            }
            withUnsafeBytes(of: &buf) { p in
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: p.bindMemory(to: UInt8.self)[..<n]))
            }
        }
        mutating func int(_ v: Int64) { uint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
        mutating func string(_ s: String) {
            // Native strings are contiguous: no copy of the string to make it so.
            if let done: Void = s.utf8.withContiguousStorageIfAvailable({ u in uint(UInt64(u.count)); bytes.append(contentsOf: u) }) {
                return done
            }
            var s = s
            s.withUTF8 { u in uint(UInt64(u.count)); bytes.append(contentsOf: u) }
        }
        mutating func blob(_ b: [UInt8]) { uint(UInt64(b.count)); bytes.append(contentsOf: b) }
        /// nil as 0, a string as its length + 1.
        mutating func optional(_ s: String?) {
            guard let s else { uint(0); return }
            if let done: Void = s.utf8.withContiguousStorageIfAvailable({ u in uint(UInt64(u.count) + 1); bytes.append(contentsOf: u) }) {
                return done
            }
            var c = s
            c.withUTF8 { u in uint(UInt64(u.count) + 1); bytes.append(contentsOf: u) }
        }

        /// Read through a pointer: a record passed by value was copied for the call (every string retained).
        mutating func record(_ r: UnsafePointer<ProcessRecord>) {
            var flags: UInt64 = 0
            if r.pointee.parent != nil { flags |= 1 }
            if r.pointee.parentIsCurrentOnly { flags |= 2 }
            if r.pointee.adoptedBy != nil { flags |= 4 }
            if r.pointee.exitTime != nil { flags |= 8 }
            switch r.pointee.exitStatus {
            case .exited?: flags |= 16
            case .signaled(_, let core)?: flags |= core ? 96 : 32
            case nil: break
            }
            uint(UInt64(UInt32(bitPattern: r.pointee.id.pid))); uint(r.pointee.id.startNs); uint(flags)
            if let p = r.pointee.parent { uint(UInt64(UInt32(bitPattern: p.pid))); uint(p.startNs) }
            if let a = r.pointee.adoptedBy { uint(UInt64(UInt32(bitPattern: a.pid))); uint(a.startNs) }
            string(r.pointee.comm)
            if let t = r.pointee.exitTime { uint(t) }
            switch r.pointee.exitStatus {
            case .exited(let c)?: int(Int64(c))
            case .signaled(let s, _)?: int(Int64(s))
            case nil: break
            }
            uint(UInt64(r.pointee.imagesDropped)); uint(UInt64(r.pointee.images.count))
            // Fields read through a pointer: `for i in r.images`, and even a subscript of the
            // buffer, copied each image out, every string retained.
            r.pointee.images.withUnsafeBufferPointer { images in for k in images.indices { image(images.baseAddress! + k) } }
        }

        /// The bytes `record` writes for `ProcessRecord(s)`, without building it: one image,
        /// read from the exec where it lies.
        mutating func shortLived(_ s: UnsafePointer<ShortLived>) {
            var flags: UInt64 = 8
            if s.pointee.parent != nil { flags |= 1 }
            if s.pointee.parentIsCurrentOnly { flags |= 2 }
            if s.pointee.adoptedBy != nil { flags |= 4 }
            switch s.pointee.exit.status {
            case .exited: flags |= 16
            case .signaled(_, let core): flags |= core ? 96 : 32
            }
            let t = s.pointee.exec.texts
            if t !== lastTexts { encodeTexts(t) }
            let id = s.pointee.exit.process
            uint(UInt64(UInt32(bitPattern: id.pid))); uint(id.startNs); uint(flags)
            if let p = s.pointee.parent { uint(UInt64(UInt32(bitPattern: p.pid))); uint(p.startNs) }
            if let a = s.pointee.adoptedBy { uint(UInt64(UInt32(bitPattern: a.pid))); uint(a.startNs) }
            text(0, textEnds.0)   // comm
            uint(s.pointee.exit.time)
            switch s.pointee.exit.status {
            case .exited(let c): int(Int64(c))
            case .signaled(let sig, _): int(Int64(sig))
            }
            uint(0); uint(1)
            uint(s.pointee.exec.time)
            text(textEnds.0, textEnds.1)   // filename, interpreter
            uint(s.pointee.exec.exeDevice); uint(s.pointee.exec.exeInode)
            text(textEnds.1, textEnds.2)   // argv, its truncation, comm
            uint(UInt64(s.pointee.exec.uid)); uint(UInt64(s.pointee.exec.euid)); uint(UInt64(s.pointee.exec.gid))
            uint(s.pointee.exec.loginuid.map { UInt64($0) + 1 } ?? 0)
            uint(s.pointee.exec.cgroupId)
            text(textEnds.2, textEnds.3)   // cgroup, cwd
            uint(0) // no enforcement: a matched exec is never parked
        }

        private mutating func text(_ from: Int, _ to: Int) {
            textBytes.withUnsafeBufferPointer { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[from..<to])) }
        }

        /// The segments of `shortLived` that only the texts decide, as `image` writes them.
        private mutating func encodeTexts(_ t: ExecTexts) {
            var w = Writer()
            w.string(t.comm)
            let a = w.bytes.count
            w.string(t.filename); w.optional(t.interpreter)
            let b = w.bytes.count
            w.uint(UInt64(t.argv.count))
            for a in t.argv { w.string(a) }
            w.uint(t.argvTruncated ? 1 : 0); w.string(t.comm)
            let c = w.bytes.count
            w.string(t.cgroup); w.optional(t.cwd)
            textBytes = w.bytes
            textEnds = (a, b, c, w.bytes.count)
            lastTexts = t
        }

        private mutating func image(_ i: UnsafePointer<Image>) {
            uint(i.pointee.time); string(i.pointee.filename); optional(i.pointee.interpreter)
            uint(i.pointee.exeDevice); uint(i.pointee.exeInode)
            uint(UInt64(i.pointee.argv.count))
            i.pointee.argv.withUnsafeBufferPointer { argv in for a in argv.indices { string(argv[a]) } }
            uint(i.pointee.argvTruncated ? 1 : 0); string(i.pointee.comm)
            uint(UInt64(i.pointee.uid)); uint(UInt64(i.pointee.euid)); uint(UInt64(i.pointee.gid))
            uint(i.pointee.loginuid.map { UInt64($0) + 1 } ?? 0)
            uint(i.pointee.cgroupId); string(i.pointee.cgroup); optional(i.pointee.cwd); optional(i.pointee.enforcement)
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { at >= bytes.count }

        mutating func uint() throws(Malformed) -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard at < bytes.count, shift < 64 else { throw Malformed() }
                let b = bytes[at]; at += 1
                v |= UInt64(b & 0x7f) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        mutating func int() throws(Malformed) -> Int64 {
            let u = try uint()
            return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
        }
        mutating func u32() throws(Malformed) -> UInt32 {
            let v = try uint()
            guard v <= UInt32.max else { throw Malformed() }
            return UInt32(v)
        }
        mutating func pid() throws(Malformed) -> Int32 { Int32(bitPattern: try u32()) }
        private mutating func text(_ n: Int) throws(Malformed) -> String {
            guard n >= 0, n <= bytes.count - at else { throw Malformed() }
            defer { at += n }
            return String(decoding: bytes[at..<at + n], as: UTF8.self)
        }
        mutating func string() throws(Malformed) -> String { try text(Int(try u32())) }
        mutating func blob() throws(Malformed) -> ArraySlice<UInt8> {
            let n = Int(try u32())
            guard n <= bytes.count - at else { throw Malformed() }
            defer { at += n }
            return bytes[at..<at + n]
        }
        mutating func optional() throws(Malformed) -> String? {
            let n = try u32()
            return n == 0 ? nil : try text(Int(n) - 1)
        }

        mutating func record() throws(Malformed) -> ProcessRecord {
            let id = Identity(pid: try pid(), startNs: try uint())
            let flags = try uint()
            let parent = flags & 1 != 0 ? Identity(pid: try pid(), startNs: try uint()) : nil
            let adopted = flags & 4 != 0 ? Identity(pid: try pid(), startNs: try uint()) : nil
            var r = ProcessRecord(id: id, parent: parent, comm: try string())
            r.parentIsCurrentOnly = flags & 2 != 0
            r.adoptedBy = adopted
            if flags & 8 != 0 { r.exitTime = try uint() }
            if flags & 16 != 0 { r.exitStatus = .exited(Int32(truncatingIfNeeded: try int())) }
            if flags & 32 != 0 { r.exitStatus = .signaled(Int32(truncatingIfNeeded: try int()), coreDumped: flags & 64 != 0) }
            r.imagesDropped = Int(try u32())
            let n = try u32()
            guard n <= ProcessTable.maxImages else { throw Malformed() }
            for _ in 0..<n {
                let time = try uint(), filename = try string(), interpreter = try optional()
                let dev = try uint(), ino = try uint()
                let argc = try u32()
                guard argc <= bytes.count - at else { throw Malformed() }
                var argv: [String] = []
                argv.reserveCapacity(Int(argc))
                for _ in 0..<argc { argv.append(try string()) }
                let truncated = try uint() != 0
                let comm = try string()
                let uid = try u32(), euid = try u32(), gid = try u32()
                let login = try uint()
                var img = Image(time: time, filename: filename, interpreter: interpreter, exeDevice: dev, exeInode: ino,
                                argv: argv, argvTruncated: truncated, comm: comm, uid: uid, euid: euid, gid: gid,
                                loginuid: login == 0 ? nil : UInt32(truncatingIfNeeded: login - 1),
                                cgroupId: try uint(), cgroup: try string(), cwd: try optional())
                img.enforcement = try optional()
                r.images.append(img)
            }
            return r
        }
    }

    /// Every record in a batch's blob.
    static func decode(_ bytes: [UInt8]) throws(Malformed) -> [ProcessRecord] {
        var r = Reader(bytes)
        var out: [ProcessRecord] = []
        while !r.atEnd { out.append(try r.record()) }
        return out
    }
}

/// Leaves for one `leaf_batch` row, encoded as they are added (see `StoreBatch.leaves`).
public struct LeafBatch: Sendable, ExpressibleByArrayLiteral {
    var records = LeafCodec.Writer()
    /// ",pid,pid,": what `instr` finds a PID in.
    var pids: [UInt8] = [UInt8(ascii: ",")]
    /// Distinct command lines with how many leaves ran each, then distinct exe paths.
    var argvs: [[String]: Int] = [:]
    var exes = Set<String>()
    private var lastArgv: [String]? = nil, lastCount = 0
    private var lastExe = ""
    var first = UInt64.max, last: UInt64 = 0
    public private(set) var count = 0

    public init() {}
    public init(arrayLiteral elements: ProcessRecord...) { self.init(elements) }
    public init(_ records: some Sequence<ProcessRecord>) { for r in records { append(r) } }

    public var isEmpty: Bool { count == 0 }

    public mutating func append(_ r: borrowing ProcessRecord) {
        withUnsafePointer(to: r) { append($0) }
    }

    /// Reads the record where it lies (the process table's slab at a flush).
    public mutating func append(_ r: UnsafePointer<ProcessRecord>) {
        if count == 0 { records.bytes.reserveCapacity(256 * 192) }
        records.record(r)
        added(r.pointee.id, end: r.pointee.exitTime ?? r.pointee.id.startNs)
        for k in r.pointee.images.indices {
            // A process counts once per command line, however often it exec'd it.
            if k > 0, r.pointee.images[..<k].contains(where: { $0.argv == r.pointee.images[k].argv }) { continue }
            ran(r.pointee.images[k].argv, r.pointee.images[k].filename)
        }
    }

    /// A process the table never filed (`ProcessTable.leaf(exiting:_:)`): the same bytes as
    /// `append(ProcessRecord(s))`, encoded from the exec and exit themselves.
    public mutating func append(_ s: UnsafePointer<ShortLived>) {
        if count == 0 { records.bytes.reserveCapacity(256 * 192) }
        records.shortLived(s)
        added(s.pointee.exit.process, end: s.pointee.exit.time)
        let t = s.pointee.exec.texts
        ran(t.argv, t.filename)
    }

    private mutating func added(_ id: Identity, end: UInt64) {
        count += 1
        pids.append(contentsOf: String(id.pid).utf8); pids.append(UInt8(ascii: ","))
        first = min(first, id.startNs)
        last = max(last, end)
    }

    private mutating func ran(_ argv: [String], _ filename: String) {
        // Consecutive leaves mostly ran the same thing: count those without hashing.
        if argv == lastArgv {
            lastCount += 1
        } else {
            if let l = lastArgv { argvs[l, default: 0] += lastCount }
            lastArgv = argv; lastCount = 1
        }
        if filename != lastExe { lastExe = filename; exes.insert(lastExe) }
    }

    /// The batch's search keys: each distinct command line with its count, a 0, then each exe.
    func keys() -> [UInt8] {
        var argvs = argvs
        if let l = lastArgv { argvs[l, default: 0] += lastCount }
        var keys = LeafCodec.Writer()
        for (argv, n) in argvs { keys.uint(UInt64(n)); keys.blob(Store.joinArgv(argv)) }
        keys.uint(0)
        for e in exes { keys.string(e) }
        return keys.bytes
    }
}
