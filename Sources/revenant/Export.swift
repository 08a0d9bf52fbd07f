import ArgumentParser
import Foundation
import RevenantCore
import RevenantSystem

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export the recorded execs and exits from the store.",
        discussion: """
            Streams in time order with constant memory. ocsf: a Process Activity Launch per exec, \
            followed by the process's Terminate once it has exited, hash-chained like the audit log \
            (`revenant audit verify` checks an export). jsonl: one flat object per exec. csv: the same \
            columns with a header row.

            Examples:
              revenant export --format csv --since 2h --match training_worker.py --out /tmp/worker.csv
              revenant export --format ocsf --rule block-training-v1 | gzip > blocked.jsonl.gz
              revenant export --pid 7085 --since 2026-11-29T08:00:00Z --until 2026-11-29T09:00:00Z
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case ocsf, jsonl, csv }

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "ocsf, jsonl or csv.") var format: Format = .jsonl
    @Option(help: "Execs at or after this time (ISO 8601, HH:MM[:SS] today, Unix seconds, or an age such as 90m, 2h, 7d).") var since: String?
    @Option(help: "Execs before this time (same forms as --since).") var until: String?
    @Option(help: "Only this PID (every incarnation).") var pid: Int32?
    @Option(help: "Only execs a policy rule of this name matched.") var rule: String?
    @Option(help: "Only execs whose command line or exe path contains this text.") var match: String?
    @Option(help: "Write here instead of stdout.") var out: String?
    @Flag(help: "Progress on stderr even when it is not a terminal.") var progress = false

    func run() throws {
        var f = ExportFilter()
        f.sinceWallNs = try since.map { try TimeArgument.wallNs($0, flag: "--since") }
        f.untilWallNs = try until.map { try TimeArgument.wallNs($0, flag: "--until") }
        f.pid = pid; f.rule = rule; f.match = match
        let store: Store
        do { store = try Store(path: storeOptions.db, readOnly: true) } catch { throw Failure(error.description, status: 2) }
        let sink: BufferedOutput
        if let out {
            guard FileManager.default.createFile(atPath: out, contents: nil), let h = FileHandle(forWritingAtPath: out) else {
                throw Failure("cannot write \(out)", status: 2)
            }
            sink = BufferedOutput(h)
        } else {
            sink = BufferedOutput(FileHandle.standardOutput)
        }
        let showProgress = progress || isatty(2) == 1
        var lastReport = Date()
        var rows = 0, records = 0
        var chain = (seq: 0, hash: AuditChain.genesis)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func emit(_ line: String) { sink.write(line); records += 1 }
        func emitOCSF(_ e: AuditEvent) throws {
            var e = e
            e.chain(seq: chain.seq + 1, prevHash: chain.hash, device: HostProbe.device)
            let line = String(decoding: try enc.encode(e), as: UTF8.self)
            chain = (chain.seq + 1, AuditChain.hash(line))
            emit(line)
        }
        if format == .csv { emit(ExportFormat.csvHeader) }
        // Trace gaps go in where they fell: execs may be missing there, whatever the filter.
        var gaps: ArraySlice<TraceGap>
        do { gaps = try store.gaps(fromWallNs: f.sinceWallNs ?? .min, toWallNs: f.untilWallNs ?? .max)[...] } catch { throw Failure(error.description, status: 2) }
        func emitGaps(before t: Int64) throws {
            while let g = gaps.first, g.fromWallNs <= t {
                gaps = gaps.dropFirst()
                switch format {
                case .jsonl: emit(String(decoding: try enc.encode(GapJSON(g)), as: UTF8.self))
                case .csv: emit(ExportFormat.csv(g))
                case .ocsf: try emitOCSF(.daemon("trace gap", timeMs: g.fromWallNs / 1_000_000, detail: ExportFormat.text(g), severity: 4))
                }
            }
        }
        do {
            try store.export(f) { r in
                try emitGaps(before: r.wallNs)
                rows += 1
                switch format {
                case .jsonl: emit(String(decoding: try enc.encode(ExportFormat.flat(r)), as: UTF8.self))
                case .csv: emit(ExportFormat.csv(r))
                case .ocsf: for e in ExportFormat.ocsf(r) { try emitOCSF(e) }
                }
                if showProgress, rows % 10_000 == 0, Date().timeIntervalSince(lastReport) > 1 {
                    lastReport = Date()
                    FileHandle.standardError.write(Data("revenant export: \(rows) execs…\n".utf8))
                }
            }
            try emitGaps(before: .max)
        } catch {
            throw Failure("\(error)", status: 2)
        }
        sink.flush()
        if showProgress || out != nil {
            FileHandle.standardError.write(Data("revenant export: \(rows) execs, \(records) records\(out.map { " to \($0)" } ?? "")\n".utf8))
        }
    }
}

/// Whole lines, written in 64 KiB chunks.
final class BufferedOutput {
    private let handle: FileHandle
    private var buf = Data()
    init(_ h: FileHandle) { handle = h; buf.reserveCapacity(1 << 16) }
    func write(_ line: String) {
        buf.append(contentsOf: Array(line.utf8))
        buf.append(0x0a)
        if buf.count >= 1 << 16 { flush() }
    }
    func flush() {
        handle.write(buf)
        buf.removeAll(keepingCapacity: true)
    }
}

enum ExportFormat {
    struct Flat: Encodable {
        var time: String
        var boot: String
        var pid: Int32
        var id: String
        var parent_pid: Int32?
        var parent_id: String?
        var parent_comm: String?
        var exe: String
        var argv: [String]
        var cwd: String?
        var uid: UInt32
        var cgroup: String
        var seeded: Bool
        var enforcement: String?
        var exit_time: String?
        var exit_code: Int32?
        var signal: Int32?
    }

    static func flat(_ r: ExportRow) -> Flat {
        var code: Int32?, sig: Int32?
        switch r.exitStatus {
        case .exited(let c): code = c
        case .signaled(let s, _): sig = s
        case nil: break
        }
        return Flat(time: Fmt.iso(r.wallNs), boot: r.boot, pid: r.id.pid, id: r.id.description, parent_pid: r.parent?.pid,
                    parent_id: r.parent?.description, parent_comm: r.parentComm, exe: r.image.filename, argv: r.image.argv,
                    cwd: r.image.cwd, uid: r.image.uid, cgroup: r.image.cgroup, seeded: r.seeded, enforcement: r.enforcement?.message,
                    exit_time: r.exitWallNs.map(Fmt.iso), exit_code: code, signal: sig)
    }

    static func text(_ g: TraceGap) -> String { "trace gap (\(g.kind.rawValue)) until \(Fmt.iso(g.toWallNs)): \(g.detail)" }

    /// A trace gap in csv: its time, and the text in the enforcement column.
    static func csv(_ g: TraceGap) -> String {
        var cols = [String](repeating: "", count: csvHeader.split(separator: ",").count)
        cols[0] = Fmt.iso(g.fromWallNs)
        cols[13] = text(g)
        return cols.map { quote(Visible.csvCell(Visible.escape($0))) }.joined(separator: ",")
    }

    static let csvHeader = "time,boot,pid,id,parent_pid,parent_id,parent_comm,exe,cmd_line,cwd,uid,cgroup,seeded,enforcement,exit_time,exit_code,signal"

    static func csv(_ r: ExportRow) -> String {
        let f = flat(r)
        let cols: [String?] = [f.time, f.boot, "\(f.pid)", f.id, f.parent_pid.map { "\($0)" }, f.parent_id, f.parent_comm, f.exe,
                               f.argv.joined(separator: " "), f.cwd, "\(f.uid)", f.cgroup, f.seeded ? "1" : "0", f.enforcement,
                               f.exit_time, f.exit_code.map { "\($0)" }, f.signal.map { "\($0)" }]
        return cols.map { quote(Visible.csvCell(Visible.escape($0 ?? ""))) }.joined(separator: ",")
    }

    /// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
    static func quote(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func ocsf(_ r: ExportRow) -> [AuditEvent] {
        var p = ProcessRecord(id: r.id, parent: r.parent, comm: r.comm)
        p.images = [r.image]
        p.exitStatus = r.exitStatus
        var ancestry: [ProcessRecord] = []
        if let pid = r.parent {
            var pr = ProcessRecord(id: pid, parent: nil, comm: r.parentComm ?? "?")
            if let a = r.parentArgv { pr.images = [Image(time: 0, filename: a.first ?? "", argv: a, comm: pr.comm)] }
            ancestry = [pr]
        }
        let bootEpochNs = r.wallNs - Int64(r.image.time)
        let e = r.enforcement
        var out = [AuditEvent.launch(p, ancestry: ancestry, bootEpochNs: bootEpochNs, timeMs: r.wallNs / 1_000_000,
                                     rules: e?.rules ?? [], tier: e?.tier?.rawValue, blocked: e?.blocked ?? false,
                                     message: e?.message ?? "exec \(r.image.argv.joined(separator: " "))")]
        if r.isLast, let x = r.exitWallNs {
            out.append(.terminate(p, ancestry: ancestry, bootEpochNs: bootEpochNs, timeMs: x / 1_000_000, rules: e?.rules ?? []))
        }
        return out
    }
}

extension TimeArgument {
    /// A point in time, or an age (`90s`, `15m`, `2h`, `7d`) counted back from now.
    static func wallNs(_ s: String, flag: String) throws -> Int64 {
        if let secs = duration(s), !s.allSatisfy(\.isNumber) { return Int64((Date().timeIntervalSince1970 - secs) * 1e9) }
        guard let d = parse(s) else { throw Failure("\(flag) \(s): expected ISO 8601, HH:MM[:SS], Unix seconds or an age like 2h") }
        return Int64(d.timeIntervalSince1970 * 1e9)
    }

    /// `300`, `90s`, `15m`, `2h`, `7d` in seconds.
    static func duration(_ s: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        if let u = s.last, let mul = units[u], let n = Double(s.dropLast()), n >= 0 { return n * mul }
        return Double(s).flatMap { $0 >= 0 ? $0 : nil }
    }
}
