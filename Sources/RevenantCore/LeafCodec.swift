import Glibc

/// The byte form of leaves in a `leaf_batch` row: processes born and ended between two flushes
/// that forked nothing. Stored many to a row, they cost the store one row per flush instead of
/// two rows and four B-tree entries each. Varints, strings as length then UTF-8.
///
/// Form 2 (a blob that starts with the bytes 0, 2; a form-1 blob starts with a PID, never 0):
/// each record is written against the one before it in the blob. Numbers are zigzag deltas (the
/// PID, start and parent from the previous record's, times from the process's start, device,
/// inode, ids and cgroup from the previous image's), and each text is 0 when it repeats the
/// previous record's text in that place, so a respawn loop's leaves take a fraction of the
/// bytes the store writes (twice, with its log) and keeps (docs/benchmarks.md).
package enum LeafCodec {
    package struct Malformed: Error, CustomStringConvertible {
        package var description: String { "a leaf batch's records are truncated or malformed" }
    }

    static let form2: [UInt8] = [0, 2]

    /// What the previous record of a form-2 blob wrote in each place.
    struct Context {
        var pid: UInt64 = 0, start: UInt64 = 0, parentPid: UInt64 = 0, parentStart: UInt64 = 0
        var adoptedPid: UInt64 = 0, adoptedStart: UInt64 = 0
        var dev: UInt64 = 0, ino: UInt64 = 0, cgroupId: UInt64 = 0
        var uid: UInt64 = 0, euid: UInt64 = 0, gid: UInt64 = 0, loginuid: UInt64 = 0
        var name = "", filename = "", interpreter: String? = nil, argv: [String] = [], comm = ""
        var cgroup = "", cwd: String? = nil, enforcement: String? = nil
    }

    package struct Writer {
        package var bytes: [UInt8] = []
        var context = Context()
        /// The exec texts box whose texts the context's text places hold: set by the leaf
        /// `shortLived` wrote last, cleared by `record`.
        private var boxInContext: ExecTexts?

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
        /// `v` as its difference from `base`, wrapping: any two values round-trip.
        mutating func delta(_ v: UInt64, from base: UInt64) { int(Int64(bitPattern: v &- base)) }
        /// The next value of a place: its delta from the previous value there.
        mutating func delta(_ v: UInt64, _ prev: UInt64) -> UInt64 { delta(v, from: prev); return v }
        private mutating func raw(_ s: String, plus: UInt64) {
            // Native strings are contiguous: no copy of the string to make it so.
            if let done: Void = s.utf8.withContiguousStorageIfAvailable({ u in uint(UInt64(u.count) + plus); bytes.append(contentsOf: u) }) {
                return done
            }
            var s = s
            s.withUTF8 { u in uint(UInt64(u.count) + plus); bytes.append(contentsOf: u) }
        }
        mutating func string(_ s: String) { raw(s, plus: 0) }
        mutating func blob(_ b: [UInt8]) { uint(UInt64(b.count)); bytes.append(contentsOf: b) }
        /// Byte for byte: `==` on strings is canonical equivalence ("é" precomposed equals "e"
        /// and a combining accent), and a record must read back with the bytes it was given.
        static func same(_ a: String, _ b: String) -> Bool {
            let r = a.utf8.withContiguousStorageIfAvailable { x in
                b.utf8.withContiguousStorageIfAvailable { y in
                    x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
                }
            }
            return (r ?? nil) ?? a.utf8.elementsEqual(b.utf8)
        }
        static func same(_ a: [String], _ b: [String]) -> Bool {
            a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
        }
        /// 0 when it repeats `prev`, else its length + 1.
        mutating func text(_ s: String, _ prev: String) -> String {
            if Writer.same(s, prev) { uint(0) } else { raw(s, plus: 1) }
            return s
        }
        /// 0 when it repeats `prev`, 1 for nil, else its length + 2.
        mutating func text(_ s: String?, _ prev: String?) -> String? {
            switch (s, prev) {
            case (nil, nil): uint(0)
            case (let s?, let p?) where Writer.same(s, p): uint(0)
            case (let s?, _): raw(s, plus: 2)
            case (nil, _?): uint(1)
            }
            return s
        }
        /// 0 when it repeats `prev`, else the count + 1 and each argument.
        mutating func argv(_ a: [String], _ prev: [String]) -> [String] {
            if Writer.same(a, prev) { uint(0); return a }
            uint(UInt64(a.count) + 1)
            a.withUnsafeBufferPointer { a in for k in a.indices { raw(a[k], plus: 0) } }
            return a
        }

        private mutating func head(id: Identity, flags: UInt64, parent: Identity?, adoptedBy: Identity?, name: String, repeats: Bool = false) {
            if bytes.isEmpty { bytes.append(contentsOf: LeafCodec.form2) }
            context.pid = delta(UInt64(UInt32(bitPattern: id.pid)), context.pid)
            context.start = delta(id.startNs, context.start)
            uint(flags)
            if let p = parent {
                context.parentPid = delta(UInt64(UInt32(bitPattern: p.pid)), context.parentPid)
                context.parentStart = delta(p.startNs, context.parentStart)
            }
            if let a = adoptedBy {
                context.adoptedPid = delta(UInt64(UInt32(bitPattern: a.pid)), context.adoptedPid)
                context.adoptedStart = delta(a.startNs, context.adoptedStart)
            }
            if repeats { uint(0) } else { context.name = text(name, context.name) }
        }

        private static func flags(parent: Bool, currentOnly: Bool, adopted: Bool, exited: Bool, status: ExitStatus?) -> UInt64 {
            var flags: UInt64 = 0
            if parent { flags |= 1 }
            if currentOnly { flags |= 2 }
            if adopted { flags |= 4 }
            if exited { flags |= 8 }
            switch status {
            case .exited?: flags |= 16
            case .signaled(_, let core)?: flags |= core ? 96 : 32
            case nil: break
            }
            return flags
        }

        private mutating func status(_ s: ExitStatus?) {
            switch s {
            case .exited(let c)?: int(Int64(c))
            case .signaled(let sig, _)?: int(Int64(sig))
            case nil: break
            }
        }

        /// Read through a pointer: a record passed by value was copied for the call (every string retained).
        mutating func record(_ r: UnsafePointer<ProcessRecord>) {
            boxInContext = nil
            let start = r.pointee.id.startNs
            head(id: r.pointee.id, flags: Writer.flags(parent: r.pointee.parent != nil, currentOnly: r.pointee.parentIsCurrentOnly,
                                                        adopted: r.pointee.adoptedBy != nil, exited: r.pointee.exitTime != nil,
                                                        status: r.pointee.exitStatus),
                 parent: r.pointee.parent, adoptedBy: r.pointee.adoptedBy, name: r.pointee.comm)
            if let t = r.pointee.exitTime { delta(t, from: start) }
            status(r.pointee.exitStatus)
            uint(UInt64(r.pointee.imagesDropped)); uint(UInt64(r.pointee.images.count))
            // Fields read through a pointer: `for i in r.images`, and even a subscript of the
            // buffer, copied each image out, every string retained.
            r.pointee.images.withUnsafeBufferPointer { images in
                for k in images.indices {
                    let i = images.baseAddress! + k
                    image(time: i.pointee.time, start: start, filename: i.pointee.filename, interpreter: i.pointee.interpreter,
                          dev: i.pointee.exeDevice, ino: i.pointee.exeInode, argv: i.pointee.argv, truncated: i.pointee.argvTruncated,
                          comm: i.pointee.comm, uid: i.pointee.uid, euid: i.pointee.euid, gid: i.pointee.gid,
                          loginuid: i.pointee.loginuid, cgroupId: i.pointee.cgroupId, cgroup: i.pointee.cgroup,
                          cwd: i.pointee.cwd, enforcement: i.pointee.enforcement?.encoded)
                }
            }
        }

        /// The bytes `record` writes for `ProcessRecord(s)`, without building it: one image,
        /// read from the exec where it lies.
        mutating func shortLived(_ s: UnsafePointer<ShortLived>) {
            let t = s.pointee.exec.texts
            // The previous leaf's texts box: every text place repeats, known without a compare.
            let repeats = t === boxInContext
            let id = s.pointee.exit.process
            head(id: id, flags: Writer.flags(parent: s.pointee.parent != nil, currentOnly: s.pointee.parentIsCurrentOnly,
                                             adopted: s.pointee.adoptedBy != nil, exited: true, status: s.pointee.exit.status),
                 parent: s.pointee.parent, adoptedBy: s.pointee.adoptedBy, name: t.comm, repeats: repeats)
            delta(s.pointee.exit.time, from: id.startNs)
            status(s.pointee.exit.status)
            uint(0); uint(1)
            image(time: s.pointee.exec.time, start: id.startNs, filename: t.filename, interpreter: t.interpreter,
                  dev: s.pointee.exec.exeDevice, ino: s.pointee.exec.exeInode, argv: t.argv, truncated: t.argvTruncated,
                  comm: t.comm, uid: s.pointee.exec.uid, euid: s.pointee.exec.euid, gid: s.pointee.exec.gid,
                  loginuid: s.pointee.exec.loginuid, cgroupId: s.pointee.exec.cgroupId, cgroup: t.cgroup, cwd: t.cwd,
                  enforcement: nil, repeats: repeats) // a matched exec is never parked
            boxInContext = t
        }

        private mutating func image(time: UInt64, start: UInt64, filename: String, interpreter: String?, dev: UInt64, ino: UInt64,
                                    argv a: [String], truncated: Bool, comm: String, uid: UInt32, euid: UInt32, gid: UInt32,
                                    loginuid: UInt32?, cgroupId: UInt64, cgroup: String, cwd: String?, enforcement: String?, repeats: Bool = false) {
            delta(time, from: start)
            if repeats { uint(0) } else { context.filename = text(filename, context.filename) }
            if repeats { uint(0) } else { context.interpreter = text(interpreter, context.interpreter) }
            context.dev = delta(dev, context.dev)
            context.ino = delta(ino, context.ino)
            if repeats { uint(0) } else { context.argv = argv(a, context.argv) }
            uint(truncated ? 1 : 0)
            if repeats { uint(0) } else { context.comm = text(comm, context.comm) }
            context.uid = delta(UInt64(uid), context.uid)
            context.euid = delta(UInt64(euid), context.euid)
            context.gid = delta(UInt64(gid), context.gid)
            context.loginuid = delta(loginuid.map { UInt64($0) + 1 } ?? 0, context.loginuid)
            context.cgroupId = delta(cgroupId, context.cgroupId)
            if repeats { uint(0) } else { context.cgroup = text(cgroup, context.cgroup) }
            if repeats { uint(0) } else { context.cwd = text(cwd, context.cwd) }
            if repeats { uint(0) } else { context.enforcement = text(enforcement, context.enforcement) }
        }
    }

    package struct Reader {
        let bytes: [UInt8]
        var at = 0
        package init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { at >= bytes.count }

        package mutating func uint() throws(Malformed) -> UInt64 {
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
        package mutating func blob() throws(Malformed) -> ArraySlice<UInt8> {
            let n = Int(try u32())
            guard n <= bytes.count - at else { throw Malformed() }
            defer { at += n }
            return bytes[at..<at + n]
        }
        mutating func optional() throws(Malformed) -> String? {
            let n = try u32()
            return n == 0 ? nil : try text(Int(n) - 1)
        }

        mutating func delta(from base: UInt64) throws(Malformed) -> UInt64 { base &+ UInt64(bitPattern: try int()) }
        mutating func delta(_ prev: inout UInt64) throws(Malformed) -> UInt64 {
            prev = try delta(from: prev)
            return prev
        }
        mutating func pid(_ prev: inout UInt64) throws(Malformed) -> Int32 {
            let v = try delta(&prev)
            guard v <= UInt32.max else { throw Malformed() }
            return Int32(bitPattern: UInt32(v))
        }
        mutating func u32(_ prev: inout UInt64) throws(Malformed) -> UInt32 {
            let v = try delta(&prev)
            guard v <= UInt32.max else { throw Malformed() }
            return UInt32(v)
        }
        mutating func text(_ prev: inout String) throws(Malformed) -> String {
            let n = try u32()
            if n > 0 { prev = try text(Int(n) - 1) }
            return prev
        }
        mutating func text(_ prev: inout String?) throws(Malformed) -> String? {
            switch try u32() {
            case 0: break
            case 1: prev = nil
            case let n: prev = try text(Int(n) - 2)
            }
            return prev
        }
        mutating func argv(_ prev: inout [String]) throws(Malformed) -> [String] {
            let n = try u32()
            guard n > 0 else { return prev }
            guard n - 1 <= bytes.count - at else { throw Malformed() }
            var argv: [String] = []
            argv.reserveCapacity(Int(n - 1))
            for _ in 1..<n { argv.append(try string()) }
            prev = argv
            return argv
        }

        /// One record of a form-2 blob, against what the previous one wrote (`c`).
        mutating func record(_ c: inout Context) throws(Malformed) -> ProcessRecord {
            let id = Identity(pid: try pid(&c.pid), startNs: try delta(&c.start))
            let flags = try uint()
            let parent = flags & 1 != 0 ? Identity(pid: try pid(&c.parentPid), startNs: try delta(&c.parentStart)) : nil
            let adopted = flags & 4 != 0 ? Identity(pid: try pid(&c.adoptedPid), startNs: try delta(&c.adoptedStart)) : nil
            var r = ProcessRecord(id: id, parent: parent, comm: try text(&c.name))
            r.parentIsCurrentOnly = flags & 2 != 0
            r.adoptedBy = adopted
            if flags & 8 != 0 { r.exitTime = try delta(from: id.startNs) }
            if flags & 16 != 0 { r.exitStatus = .exited(Int32(truncatingIfNeeded: try int())) }
            if flags & 32 != 0 { r.exitStatus = .signaled(Int32(truncatingIfNeeded: try int()), coreDumped: flags & 64 != 0) }
            r.imagesDropped = Int(try u32())
            let n = try u32()
            guard n <= ProcessTable.maxImages else { throw Malformed() }
            for _ in 0..<n {
                let time = try delta(from: id.startNs), filename = try text(&c.filename), interpreter = try text(&c.interpreter)
                let dev = try delta(&c.dev), ino = try delta(&c.ino)
                let argv = try argv(&c.argv)
                let truncated = try uint() != 0
                let comm = try text(&c.comm)
                let uid = try u32(&c.uid), euid = try u32(&c.euid), gid = try u32(&c.gid)
                let login = try delta(&c.loginuid)
                guard login <= UInt64(UInt32.max) + 1 else { throw Malformed() }
                var img = Image(time: time, filename: filename, interpreter: interpreter, exeDevice: dev, exeInode: ino,
                                argv: argv, argvTruncated: truncated, comm: comm, uid: uid, euid: euid, gid: gid,
                                loginuid: login == 0 ? nil : UInt32(truncatingIfNeeded: login - 1),
                                cgroupId: try delta(&c.cgroupId), cgroup: try text(&c.cgroup), cwd: try text(&c.cwd))
                img.enforcement = try text(&c.enforcement).map(Enforcement.init(stored:))
                r.images.append(img)
            }
            return r
        }

        /// One record of a form-1 blob (stores written before form 2).
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
                img.enforcement = try optional().map(Enforcement.init(stored:))
                r.images.append(img)
            }
            return r
        }
    }

    /// Every record in a batch's blob.
    package static func decode(_ bytes: [UInt8]) throws(Malformed) -> [ProcessRecord] {
        var out: [ProcessRecord] = []
        try forEach(bytes) { out.append($0); return true }
        return out
    }

    /// The records in order, decoded one at a time until `body` returns false: a reader after
    /// one record or the first few need not decode the rest of a batch.
    package static func forEach(_ bytes: [UInt8], _ body: (ProcessRecord) throws(Malformed) -> Bool) throws(Malformed) {
        var r = Reader(bytes)
        guard bytes.first == 0 else {
            while !r.atEnd { guard try body(try r.record()) else { return } }
            return
        }
        guard bytes.starts(with: form2) else { throw Malformed() }
        r.at = form2.count
        var c = Context()
        while !r.atEnd { guard try body(try r.record(&c)) else { return } }
    }
}
