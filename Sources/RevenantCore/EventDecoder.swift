import CRevenantABI
#if canImport(Glibc)
import Glibc
#endif

/// Why a ring-buffer record could not be decoded.
public enum DecodeError: Error, Equatable, CustomStringConvertible {
    case tooShort(got: Int, need: Int)
    case unknownType(UInt32)
    case sizeMismatch(type: UInt32, declared: Int, got: Int)
    case argvLength(declared: Int, available: Int)
    case textLength(declared: Int, available: Int)

    public var description: String {
        switch self {
        case .tooShort(let got, let need): return "record of \(got) bytes is shorter than the \(need) it needs"
        case .unknownType(let t): return "unknown record type \(t)"
        case .sizeMismatch(let t, let d, let g): return "record type \(t) declares \(d) bytes but \(g) arrived"
        case .argvLength(let d, let a): return "argv length \(d) exceeds the \(a) bytes present"
        case .textLength(let d, let a): return "exec text length \(d) exceeds the \(a) bytes it may have"
        }
    }
}

/// Decodes the records of `revenant_abi.h`. Pure: bytes in, values out.
public enum EventDecoder {
    public static let headerSize = MemoryLayout<rv_header>.size
    public static let exitSize = MemoryLayout<rv_exit_event>.size
    public static let execFixedSize = MemoryLayout<rv_exec_event>.offset(of: \rv_exec_event.data)!
    public static let execMaxSize = MemoryLayout<rv_exec_event>.size

    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> Event {
        var memo = Memo()
        return try decode(bytes, memo: &memo)
    }

    /// The last text decoded from each exec field, with the bytes it came from. A program
    /// respawned in a loop sends the same path, cwd, cgroup and command line each time:
    /// comparing bytes costs less than building strings, and the strings are then shared.
    /// One per reader; bounded by one record's fields.
    public struct Memo {
        struct Entry<Value> {
            var raw: [UInt8] = []
            var flag: UInt8 = 0
            var value: Value?

            func hit(_ r: UnsafeRawBufferPointer, flag f: UInt8) -> Value? {
                guard let value, f == flag, r.count == raw.count,
                      r.count == 0 || raw.withUnsafeBytes({ memcmp($0.baseAddress!, r.baseAddress!, r.count) }) == 0
                else { return nil }
                return value
            }

            mutating func store(_ r: UnsafeRawBufferPointer, flag f: UInt8, _ v: Value) {
                raw.removeAll(keepingCapacity: true)
                raw.append(contentsOf: r); flag = f; value = v
            }

            mutating func get(_ r: UnsafeRawBufferPointer, flag f: UInt8 = 0, _ make: (UnsafeRawBufferPointer) -> Value) -> Value {
                if let v = hit(r, flag: f) { return v }
                let v = make(r)
                store(r, flag: f, v)
                return v
            }
        }
        var filename = Entry<String>(), interp = Entry<String>(), comm = Entry<String>()
        var cgroup = Entry<String>(), cwd = Entry<String?>(), argv = Entry<[String]>()
        /// All the texts at once, by the record's bytes from comm to the end of argv (lengths
        /// included) and its two truncation flags: a respawn loop's execs share one box.
        var texts = Entry<ExecTexts>()
        public init() {}
    }

    /// What a record is, by its header: a reader that handles execs and exits apart takes them
    /// straight from `exec(_:memo:)` and `exit(_:)`, never through `Event` (each move of one
    /// is a 168-byte copy).
    public enum Kind: Sendable { case exec, exit, other }

    package static func kind(_ bytes: UnsafeRawBufferPointer) -> Kind {
        guard bytes.count >= headerSize else { return .other }
        switch bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self) {
        case UInt32(RV_EVENT_EXEC.rawValue): return .exec
        case UInt32(RV_EVENT_EXIT.rawValue): return .exit
        default: return .other
        }
    }

    /// The record's type and declared size, checked against the bytes that arrived.
    private static func header(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> (type: UInt32, declared: Int) {
        guard bytes.count >= headerSize else { throw .tooShort(got: bytes.count, need: headerSize) }
        let type = bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
        let declared = Int(bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard declared <= bytes.count else { throw .sizeMismatch(type: type, declared: declared, got: bytes.count) }
        return (type, declared)
    }

    /// An exec record (`kind` said so); throws as `decode` would.
    package static func exec(_ bytes: UnsafeRawBufferPointer, memo: inout Memo) throws(DecodeError) -> ExecEvent {
        let (type, declared) = try header(bytes)
        guard type == UInt32(RV_EVENT_EXEC.rawValue) else { throw .unknownType(type) }
        return try exec(bytes, declared: declared, memo: &memo)
    }

    /// An exit record (`kind` said so); throws as `decode` would.
    package static func exit(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> ExitEvent {
        let (type, declared) = try header(bytes)
        guard type == UInt32(RV_EVENT_EXIT.rawValue) else { throw .unknownType(type) }
        return try exit(bytes, declared: declared)
    }

    private static func exit(_ bytes: UnsafeRawBufferPointer, declared: Int) throws(DecodeError) -> ExitEvent {
        let e: rv_exit_event = try fixed(bytes, type: UInt32(RV_EVENT_EXIT.rawValue), declared: declared)
        return ExitEvent(
            time: e.h.time_ns, process: ident(e.h.proc),
            parent: e.flags & RV_F_PARENT_UNKNOWN.rawValue != 0 ? nil : ident(e.parent),
            realParent: ident(e.real_parent), status: ExitStatus(waitStatus: e.exit_code),
            leftChildren: e.flags & RV_F_LEFT_CHILDREN.rawValue != 0)
    }

    package static func decode(_ bytes: UnsafeRawBufferPointer, memo: inout Memo) throws(DecodeError) -> Event {
        let (type, declared) = try header(bytes)
        switch type {
        case UInt32(RV_EVENT_FORK.rawValue):
            let e: rv_fork_event = try fixed(bytes, type: type, declared: declared)
            return .fork(ForkEvent(
                time: e.h.time_ns, process: ident(e.h.proc), parent: ident(e.parent),
                parentThread: Int32(bitPattern: e.parent_thread)))
        case UInt32(RV_EVENT_EXIT.rawValue):
            return .exit(try exit(bytes, declared: declared))
        case UInt32(RV_EVENT_EXEC.rawValue):
            return .exec(try exec(bytes, declared: declared, memo: &memo))
        case UInt32(RV_EVENT_DENY.rawValue):
            let e: rv_deny_event = try fixed(bytes, type: type, declared: declared)
            return .deny(DenyEvent(
                time: e.h.time_ns, process: ident(e.h.proc),
                parent: e.flags & RV_F_PARENT_UNKNOWN.rawValue != 0 ? nil : ident(e.parent),
                filename: cString(e.filename), exeDevice: e.exe_dev, exeInode: e.exe_ino, matched: e.matched,
                uid: e.uid, comm: cString(e.comm)))
        default:
            throw .unknownType(type)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Event {
        let r: Result<Event, DecodeError> = bytes.withUnsafeBytes { b in
            do throws(DecodeError) { return .success(try decode(b)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    private static func fixed<T>(_ bytes: UnsafeRawBufferPointer, type: UInt32, declared: Int) throws(DecodeError) -> T {
        let size = MemoryLayout<T>.size
        guard declared == size, bytes.count >= size else {
            throw .sizeMismatch(type: type, declared: declared, got: bytes.count)
        }
        return bytes.loadUnaligned(as: T.self)
    }

    /// Field offsets of rv_exec_event, computed once: the record is read in place (copying the
    /// 3 KiB struct and its char arrays was most of the decoding cost).
    private enum X {
        typealias E = rv_exec_event
        static let parent = MemoryLayout<E>.offset(of: \E.parent)!
        static let realParent = MemoryLayout<E>.offset(of: \E.real_parent)!
        static let exeDev = MemoryLayout<E>.offset(of: \E.exe_dev)!
        static let exeIno = MemoryLayout<E>.offset(of: \E.exe_ino)!
        static let cgroupId = MemoryLayout<E>.offset(of: \E.cgroup_id)!
        static let oldPid = MemoryLayout<E>.offset(of: \E.old_pid)!
        static let uid = MemoryLayout<E>.offset(of: \E.uid)!
        static let euid = MemoryLayout<E>.offset(of: \E.euid)!
        static let gid = MemoryLayout<E>.offset(of: \E.gid)!
        static let loginuid = MemoryLayout<E>.offset(of: \E.loginuid)!
        static let flags = MemoryLayout<E>.offset(of: \E.flags)!
        static let argc = MemoryLayout<E>.offset(of: \E.argc)!
        static let argvLen = MemoryLayout<E>.offset(of: \E.argv_len)!
        static let matched = MemoryLayout<E>.offset(of: \E.matched)!
        static let action = MemoryLayout<E>.offset(of: \E.action)!
        static let comm = (MemoryLayout<E>.offset(of: \E.comm)!, Int(RV_COMM_BYTES))
        static let filenameLen = MemoryLayout<E>.offset(of: \E.filename_len)!
        static let interpLen = MemoryLayout<E>.offset(of: \E.interp_len)!
        static let cwdLen = MemoryLayout<E>.offset(of: \E.cwd_len)!
        static let cgroupLen = MemoryLayout<E>.offset(of: \E.cgroup_len)!
    }

    private static func exec(_ bytes: UnsafeRawBufferPointer, declared: Int, memo: inout Memo) throws(DecodeError) -> ExecEvent {
        guard declared >= execFixedSize, declared <= execMaxSize else {
            throw .sizeMismatch(type: UInt32(RV_EVENT_EXEC.rawValue), declared: declared, got: bytes.count)
        }
        func u16(_ o: Int) -> Int { Int(bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        func u32(_ o: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
        func u64(_ o: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self) }
        /// Bytes up to the first NUL.
        func text(_ r: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
            guard let base = r.baseAddress, let z = memchr(base, 0, r.count) else { return r }
            return UnsafeRawBufferPointer(start: base, count: z - UnsafeMutableRawPointer(mutating: base))
        }
        func string(_ r: UnsafeRawBufferPointer) -> String { String(decoding: r, as: UTF8.self) }
        let h = bytes.loadUnaligned(as: rv_header.self)
        // The packed texts, then argv: each within its bound, all within the record.
        var at = execFixedSize
        func take(_ len: Int, _ bound: Int) throws(DecodeError) -> UnsafeRawBufferPointer {
            guard len <= bound, len <= declared - at else {
                throw .textLength(declared: len, available: min(bound, declared - at))
            }
            defer { at += len }
            return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + len)])
        }
        let filenameRaw = try take(u16(X.filenameLen), Int(RV_PATH_BYTES))
        let interpRaw = try take(u16(X.interpLen), Int(RV_PATH_BYTES))
        let cwdRaw = try take(u16(X.cwdLen), Int(RV_CWD_BYTES))
        let cgroupRaw = try take(u16(X.cgroupLen), Int(RV_CGROUP_BYTES))
        let argvLen = Int(u32(X.argvLen))
        guard argvLen <= declared - at else {
            throw .argvLength(declared: argvLen, available: declared - at)
        }
        let flags = u32(X.flags)
        let truncated = flags & RV_F_ARGV_TRUNCATED.rawValue != 0
        let cwdCut = flags & RV_F_CWD_TRUNCATED.rawValue != 0
        let argvRaw = UnsafeRawBufferPointer(rebasing: bytes[at..<(at + argvLen)])
        let comm = UnsafeRawBufferPointer(rebasing: bytes[X.comm.0..<(X.comm.0 + X.comm.1)])
        let all = UnsafeRawBufferPointer(rebasing: bytes[X.comm.0..<(at + argvLen)])
        let cuts: UInt8 = (truncated ? 1 : 0) | (cwdCut ? 2 : 0)
        let texts: ExecTexts
        if let t = memo.texts.hit(all, flag: cuts) {
            texts = t
        } else {
            let interp = memo.interp.get(text(interpRaw), string)
            let cgroup = memo.cgroup.get(text(cgroupRaw), string)
            texts = ExecTexts(
                filename: memo.filename.get(text(filenameRaw), string), interpreter: interp.isEmpty ? nil : interp,
                argv: memo.argv.get(argvRaw, flag: cuts & 1) { splitArgv($0, truncated: truncated) },
                argvTruncated: truncated, comm: memo.comm.get(text(comm), string),
                cgroup: cgroup.isEmpty ? "/" : cgroup,
                cwd: memo.cwd.get(cwdRaw, flag: cuts & 2) { cwdPath($0, truncated: cwdCut) }, cwdTruncated: cwdCut)
            memo.texts.store(all, flag: cuts, texts)
        }
        let rawLoginuid = u32(X.loginuid)
        return ExecEvent(
            time: h.time_ns, process: ident(h.proc),
            parent: flags & RV_F_PARENT_UNKNOWN.rawValue != 0 ? nil : ident(bytes.loadUnaligned(fromByteOffset: X.parent, as: rv_ident.self)),
            realParent: ident(bytes.loadUnaligned(fromByteOffset: X.realParent, as: rv_ident.self)),
            oldPid: Int32(bitPattern: u32(X.oldPid)), texts: texts,
            exeDevice: u64(X.exeDev), exeInode: u64(X.exeIno), argc: Int(u32(X.argc)),
            uid: u32(X.uid), euid: u32(X.euid), gid: u32(X.gid),
            loginuid: rawLoginuid == UInt32.max ? nil : rawLoginuid, cgroupId: u64(X.cgroupId),
            flags: flags, matched: u64(X.matched), action: KernelAction(rawValue: u32(X.action)) ?? .none)
    }

    static func ident(_ i: rv_ident) -> Identity {
        Identity(pid: Int32(bitPattern: i.tgid), startNs: i.start_ns)
    }

    /// A fixed C char array up to its first NUL.
    static func cString<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { cString($0) }
    }

    static func cString(_ raw: UnsafeRawBufferPointer) -> String {
        let end = raw.firstIndex(of: 0) ?? raw.count
        return String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<end]), as: UTF8.self)
    }

    /// NUL-separated arguments; a cut last argument is kept and marked with "…".
    package static func splitArgv(_ raw: UnsafeRawBufferPointer, truncated: Bool) -> [String] {
        var out: [String] = []
        var start = 0
        for i in 0..<raw.count where raw[i] == 0 {
            out.append(String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<i]), as: UTF8.self))
            start = i + 1
        }
        if start < raw.count {
            let tail = String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<raw.count]), as: UTF8.self)
            out.append(truncated ? tail + "…" : tail)
        }
        return out
    }

    /// cwd arrives leaf first as NUL-terminated components; an empty list is "/".
    /// Cut short (deeper than RV_CWD_DEPTH, or unreadable above some component), what was read
    /// follows "…": it must not read as a path from the root. Nothing read at all is "…".
    package static func cwdPath(_ raw: UnsafeRawBufferPointer, truncated: Bool) -> String? {
        guard truncated else { return cwdPath(raw) }
        let read = cwdPath(raw) ?? "/"
        return read == "/" ? "…" : "…" + read
    }

    /// The components as read, root first.
    package static func cwdPath(_ raw: UnsafeRawBufferPointer) -> String? {
        // Component ranges, then one string built root first: no string per component.
        var ends: [Range<Int>] = []
        var start = 0
        var bytes = 0
        for i in 0..<raw.count where raw[i] == 0 {
            if i == start { break }
            ends.append(start..<i)
            bytes += i - start + 1
            start = i + 1
        }
        if ends.isEmpty { return "/" }
        return String(unsafeUninitializedCapacity: bytes) { out in
            var o = 0
            for r in ends.reversed() {
                out[o] = UInt8(ascii: "/"); o += 1
                for j in r { out[o] = raw[j]; o += 1 }
            }
            return o
        }
    }
}
