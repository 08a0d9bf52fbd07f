import CRevenantABI
import RevenantTestSupport
import Testing
@testable import RevenantCore

/// Builds records byte for byte as the BPF program writes them.
enum Records {
    static func ident(_ pid: UInt32, _ ns: UInt64) -> rv_ident { rv_ident(tgid: pid, _pad: 0, start_ns: ns) }

    static func bytes<T>(_ v: T, count: Int? = nil) -> [UInt8] {
        withUnsafeBytes(of: v) { Array($0.prefix(count ?? MemoryLayout<T>.size)) }
    }

    static func fork(pid: UInt32, start: UInt64, parent: UInt32, parentStart: UInt64) -> [UInt8] {
        var e = rv_fork_event()
        e.h.type = UInt32(RV_EVENT_FORK.rawValue)
        e.h.size = UInt32(MemoryLayout<rv_fork_event>.size)
        e.h.time_ns = start
        e.h.proc = ident(pid, start)
        e.parent = ident(parent, parentStart)
        e.parent_thread = parent
        return bytes(e)
    }

    static func setString<T>(_ field: inout T, _ s: String) {
        withUnsafeMutableBytes(of: &field) { raw in
            let u = Array(s.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: u)
            raw[u.count] = 0
        }
    }

    static func exec(pid: UInt32, start: UInt64, time: UInt64, parent: (UInt32, UInt64)?, realParent: (UInt32, UInt64),
                     filename: String, argv: [String], comm: String, cwdLeafFirst: [String] = [],
                     argvBytes: [UInt8]? = nil, flags: UInt32 = 0, interp: String? = nil, cgroup: String? = nil) -> [UInt8] {
        var e = rv_exec_event()
        e.h.type = UInt32(RV_EVENT_EXEC.rawValue)
        e.h.time_ns = time
        e.h.proc = ident(pid, start)
        if let parent { e.parent = ident(parent.0, parent.1) } else { e.flags |= RV_F_PARENT_UNKNOWN.rawValue }
        e.flags |= flags
        e.real_parent = ident(realParent.0, realParent.1)
        e.old_pid = pid
        setString(&e.comm, comm)
        // Packed as the BPF program packs them: path, interpreter, cwd, cgroup, argv.
        func z(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }
        let fn = filename.isEmpty ? [] : z(filename)
        let ip = interp.map(z) ?? []
        let cw = cwdLeafFirst.flatMap(z)
        let cg = cgroup.map(z) ?? []
        let av = argvBytes ?? argv.flatMap(z)
        e.filename_len = UInt16(fn.count)
        e.interp_len = UInt16(ip.count)
        e.cwd_len = UInt16(cw.count)
        e.cgroup_len = UInt16(cg.count)
        let data = fn + ip + cw + cg + av
        withUnsafeMutableBytes(of: &e.data) { $0.copyBytes(from: data) }
        e.argv_len = UInt32(av.count)
        e.argc = UInt32(argv.count)
        let size = 160 + data.count
        e.h.size = UInt32(size)
        return bytes(e, count: size)
    }

    static func exit(pid: UInt32, start: UInt64, time: UInt64, parent: (UInt32, UInt64)?, realParent: (UInt32, UInt64), code: UInt32) -> [UInt8] {
        var e = rv_exit_event()
        e.h.type = UInt32(RV_EVENT_EXIT.rawValue)
        e.h.size = UInt32(MemoryLayout<rv_exit_event>.size)
        e.h.time_ns = time
        e.h.proc = ident(pid, start)
        if let parent { e.parent = ident(parent.0, parent.1) } else { e.flags = RV_F_PARENT_UNKNOWN.rawValue }
        e.real_parent = ident(realParent.0, realParent.1)
        e.exit_code = code
        return bytes(e)
    }
}

@Suite struct EventDecoderTests {
    @Test func decodesFork() throws {
        let ev = try EventDecoder.decode(Records.fork(pid: 42, start: 5_000_000_000, parent: 7, parentStart: 1_000_000_000))
        guard case .fork(let f) = ev else { Issue.record("not a fork: \(ev)"); return }
        #expect(f.process == Identity(pid: 42, startNs: 5_000_000_000))
        #expect(f.parent == Identity(pid: 7, startNs: 1_000_000_000))
        #expect(f.parentThread == 7)
    }

    @Test func decodesExecWithCwdAndArgv() throws {
        let raw = Records.exec(pid: 42, start: 5, time: 9, parent: (7, 1), realParent: (1, 0),
                               filename: "/usr/bin/python3", argv: ["python3", "/opt/w/worker.py", ""],
                               comm: "python3", cwdLeafFirst: ["workers", "opt"])
        guard case .exec(let e) = try EventDecoder.decode(raw) else { Issue.record("not exec"); return }
        #expect(e.argv == ["python3", "/opt/w/worker.py", ""])
        #expect(e.filename == "/usr/bin/python3")
        #expect(e.comm == "python3")
        #expect(e.cwd == "/opt/workers")
        #expect(e.parent == Identity(pid: 7, startNs: 1))
        #expect(e.realParent.pid == 1)
        #expect(e.interpreter == nil)
        #expect(e.cgroup == "/")
        #expect(!e.argvTruncated)
    }

    /// The four texts are packed one after another, then argv: each read from its own place.
    @Test func decodesPackedTexts() throws {
        let raw = Records.exec(pid: 42, start: 5, time: 9, parent: (7, 1), realParent: (1, 0),
                               filename: "/opt/w/run.sh", argv: ["/opt/w/run.sh", "-x"], comm: "run.sh",
                               cwdLeafFirst: ["w", "opt"], interp: "/bin/bash", cgroup: "worker.service")
        #expect(raw.count == 160 + 14 + 10 + 6 + 15 + 17)
        guard case .exec(let e) = try EventDecoder.decode(raw) else { Issue.record("not exec"); return }
        #expect(e.filename == "/opt/w/run.sh")
        #expect(e.interpreter == "/bin/bash")
        #expect(e.cwd == "/opt/w")
        #expect(e.cgroup == "worker.service")
        #expect(e.argv == ["/opt/w/run.sh", "-x"])
    }

    @Test func execWithUnknownParentAndRootCwd() throws {
        let raw = Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0),
                               filename: "/bin/true", argv: ["true"], comm: "true")
        guard case .exec(let e) = try EventDecoder.decode(raw) else { Issue.record("not exec"); return }
        #expect(e.parent == nil)
        #expect(e.cwd == "/")
    }

    @Test func aCwdCutShortDoesNotReadAsAPathFromTheRoot() throws {
        let deep = Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), filename: "/bin/true", argv: ["true"],
                                comm: "true", cwdLeafFirst: ["17", "16"], flags: RV_F_CWD_TRUNCATED.rawValue)
        guard case .exec(let e) = try EventDecoder.decode(deep) else { Issue.record("not exec"); return }
        #expect(e.cwd == "…/16/17")
        #expect(e.cwdTruncated)
        let unread = Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), filename: "/bin/true", argv: ["true"],
                                  comm: "true", flags: RV_F_CWD_TRUNCATED.rawValue)
        guard case .exec(let u) = try EventDecoder.decode(unread) else { Issue.record("not exec"); return }
        #expect(u.cwd == "…")
    }

    /// One reader's memo returns the text of the record at hand, never the previous record's.
    @Test func aMemoNeverServesTheLastRecordsText() throws {
        let records: [[UInt8]] = [
            Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), filename: "/bin/true", argv: ["true"],
                         comm: "true", cwdLeafFirst: ["w", "tmp"]),
            Records.exec(pid: 4, start: 6, time: 10, parent: nil, realParent: (1, 0), filename: "/bin/true", argv: ["true"],
                         comm: "true", cwdLeafFirst: ["w", "tmp"]),
            // the same bytes, then cut short: the flags decide
            Records.exec(pid: 5, start: 7, time: 11, parent: nil, realParent: (1, 0), filename: "/bin/true", argv: ["tr"],
                         comm: "true", cwdLeafFirst: ["w", "tmp"], argvBytes: Array("tr".utf8)),
            Records.exec(pid: 5, start: 7, time: 11, parent: nil, realParent: (1, 0), filename: "/bin/true", argv: ["tr"],
                         comm: "true", cwdLeafFirst: ["w", "tmp"], argvBytes: Array("tr".utf8),
                         flags: RV_F_CWD_TRUNCATED.rawValue | RV_F_ARGV_TRUNCATED.rawValue),
            Records.exec(pid: 6, start: 8, time: 12, parent: nil, realParent: (1, 0), filename: "/bin/truer", argv: ["true", ""],
                         comm: "tru", cwdLeafFirst: ["w"]),
            Records.exec(pid: 7, start: 9, time: 13, parent: nil, realParent: (1, 0), filename: "", argv: [],
                         comm: "", cwdLeafFirst: []),
            Records.exec(pid: 8, start: 10, time: 14, parent: nil, realParent: (1, 0), filename: "/bin/true", argv: ["true"],
                         comm: "true", cwdLeafFirst: ["w", "tmp"]),
        ]
        var memo = EventDecoder.Memo()
        var boxes: [ExecTexts] = []
        for r in records {
            let fresh = try EventDecoder.decode(r)
            let memoed = try r.withUnsafeBytes { b throws(DecodeError) in try EventDecoder.decode(b, memo: &memo) }
            #expect(memoed == fresh)
            guard case .exec(let e) = memoed else { Issue.record("not exec"); return }
            boxes.append(e.texts)
        }
        // A respawn's repeated texts are one shared box; any other record gets its own.
        #expect(boxes[1] === boxes[0])
        #expect(boxes[2] !== boxes[1] && boxes[3] !== boxes[2] && boxes[6] !== boxes[0])
        guard case .exec(let whole) = try EventDecoder.decode(records[2]),
              case .exec(let cut) = try EventDecoder.decode(records[3]) else { Issue.record("not exec"); return }
        #expect(whole.cwd == "/tmp/w" && whole.argv == ["tr"])
        #expect(cut.cwd == "…/tmp/w" && cut.argv == ["tr…"])
    }

    @Test func truncatedArgvIsMarked() throws {
        let cut = Array("python3\0/opt/very/long".utf8)
        let raw = Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), filename: "/x",
                               argv: ["python3", "/opt/very/long/path.py"], comm: "x", argvBytes: cut,
                               flags: RV_F_ARGV_TRUNCATED.rawValue)
        guard case .exec(let e) = try EventDecoder.decode(raw) else { Issue.record("not exec"); return }
        #expect(e.argvTruncated)
        #expect(e.argv == ["python3", "/opt/very/long…"])
        #expect(e.argc == 2)
    }

    @Test func decodesExitStatus() throws {
        let killed = try EventDecoder.decode(Records.exit(pid: 3, start: 5, time: 9, parent: (2, 1), realParent: (1, 0), code: 9))
        guard case .exit(let k) = killed else { Issue.record("not exit"); return }
        #expect(k.status == .signaled(9, coreDumped: false))
        #expect(k.status.description == "signal 9 (SIGKILL)")
        let normal = try EventDecoder.decode(Records.exit(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), code: 3 << 8))
        guard case .exit(let n) = normal else { Issue.record("not exit"); return }
        #expect(n.status == .exited(3))
        #expect(n.parent == nil)
    }

    @Test func shortRecordIsAnError() {
        #expect(throws: DecodeError.tooShort(got: 10, need: 32)) {
            try EventDecoder.decode([UInt8](repeating: 0, count: 10))
        }
        #expect(throws: DecodeError.tooShort(got: 0, need: 32)) { try EventDecoder.decode([]) }
    }

    @Test func unknownTypeIsAnError() {
        var raw = Records.fork(pid: 1, start: 1, parent: 0, parentStart: 0)
        raw[0] = 99
        #expect(throws: DecodeError.unknownType(99)) { try EventDecoder.decode(raw) }
    }

    @Test func sizeLiesAreErrors() {
        // A fork record cut short, though its header claims the full size.
        let raw = Array(Records.fork(pid: 1, start: 1, parent: 0, parentStart: 0).prefix(40))
        #expect(throws: DecodeError.sizeMismatch(type: 1, declared: 56, got: 40)) { try EventDecoder.decode(raw) }
        // An exec record whose argv_len points past its end.
        var exec = Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), filename: "/x", argv: ["a"], comm: "x")
        exec[116] = 200  // argv_len
        #expect(throws: DecodeError.argvLength(declared: 200, available: 2)) { try EventDecoder.decode(exec) }
        // A text length past the record's end, or past its own bound.
        var text = Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), filename: "/x", argv: ["a"], comm: "x")
        text[152] = 6  // filename_len: 5 bytes follow the fixed part
        #expect(throws: DecodeError.textLength(declared: 6, available: 5)) { try EventDecoder.decode(text) }
        var long = Records.exec(pid: 3, start: 5, time: 9, parent: nil, realParent: (1, 0), filename: "/x", argv: ["a"],
                                comm: "x", argvBytes: [UInt8](repeating: 0x61, count: 400))
        long[156] = 0x01; long[157] = 0x01  // cwd_len 257, one past RV_CWD_BYTES
        #expect(throws: DecodeError.textLength(declared: 257, available: 256)) { try EventDecoder.decode(long) }
        // An exec record shorter than its fixed part.
        var short = Array(exec.prefix(100))
        short[4] = 100; short[5] = 0  // size 100
        #expect(throws: DecodeError.sizeMismatch(type: 2, declared: 100, got: 100)) { try EventDecoder.decode(short) }
    }

    /// The daemon's way, `kind` then `exec` or `exit`, gives what `decode` gives: value or error.
    @Test func theKindWayDecodesAsDecodeDoes() {
        func viaKind(_ raw: [UInt8]) -> Result<Event, DecodeError> {
            raw.withUnsafeBytes { b in
                var memo = EventDecoder.Memo()
                do throws(DecodeError) {
                    switch EventDecoder.kind(b) {
                    case .exec: return .success(.exec(try EventDecoder.exec(b, memo: &memo)))
                    case .exit: return .success(.exit(try EventDecoder.exit(b)))
                    case .other: return .success(try EventDecoder.decode(b, memo: &memo))
                    }
                } catch { return .failure(error) }
            }
        }
        func viaDecode(_ raw: [UInt8]) -> Result<Event, DecodeError> {
            do throws(DecodeError) { return .success(try EventDecoder.decode(raw)) } catch { return .failure(error) }
        }
        let exec = Records.exec(pid: 3, start: 5, time: 9, parent: (1, 2), realParent: (1, 2), filename: "/usr/bin/python3",
                                argv: ["python3", "w.py"], comm: "python3", cwdLeafFirst: ["opt"], interp: "/usr/bin/python3", cgroup: "w.service")
        let exit = Records.exit(pid: 3, start: 5, time: 10, parent: (1, 2), realParent: (1, 2), code: 256)
        let fork = Records.fork(pid: 3, start: 5, parent: 1, parentStart: 2)
        var argvPastEnd = exec; argvPastEnd[116] = 250
        var textPastEnd = exec; textPastEnd[152] = 250
        var exitCut = exit; exitCut[4] = 200
        var shortExec = Array(exec.prefix(100)); shortExec[4] = 100; shortExec[5] = 0
        let cases = [exec, exit, fork, argvPastEnd, textPastEnd, exitCut, shortExec, Array(exit.prefix(40)),
                     Array(exec.prefix(8)), [], Array(exit.prefix(EventDecoder.exitSize - 1))]
        #expect(viaKind(exec) == viaDecode(exec))
        #expect((try? viaKind(exec).get()).map { if case .exec = $0 { true } else { false } } == true)
        #expect((try? viaKind(exit).get()).map { if case .exit = $0 { true } else { false } } == true)
        for raw in cases { #expect(viaKind(raw) == viaDecode(raw), "\(raw.count) bytes") }
        var rng = SeededGenerator.fromEnvironment()
        for _ in 0..<2000 {
            var raw = (0..<Int.random(in: 0...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if raw.count >= 8 {
                raw[0] = UInt8.random(in: 1...4, using: &rng); raw[1] = 0; raw[2] = 0; raw[3] = 0
                raw[4] = UInt8(truncatingIfNeeded: raw.count); raw[5] = UInt8(raw.count >> 8); raw[6] = 0; raw[7] = 0
            }
            #expect(viaKind(raw) == viaDecode(raw), "\(rng)")
        }
    }

    /// Garbage never crashes, and what cannot be a record is refused: shorter than a header,
    /// or of a type the kernel never writes.
    @Test func garbageNeverCrashes() {
        var rng = SeededGenerator.fromEnvironment()
        var decoded = 0
        for _ in 0..<2000 {
            let n = Int.random(in: 0...1200, using: &rng)
            var raw = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if n >= 4 { raw[0] = UInt8.random(in: 0...4, using: &rng); raw[1] = 0; raw[2] = 0; raw[3] = 0 }
            let result = Result { () throws(DecodeError) in try EventDecoder.decode(raw) }
            if n < EventDecoder.headerSize || raw[0] == 0 {
                #expect((try? result.get()) == nil, "\(n) bytes of type \(raw.first ?? 0) decoded; \(rng)")
            }
            if case .success = result { decoded += 1 }
        }
        #expect(decoded < 2000, "random bytes all decoded as records; \(rng)")
    }
}
