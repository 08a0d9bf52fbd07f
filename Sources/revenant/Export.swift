import ArgumentParser
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export the recorded execs and exits from the store.",
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
            // Into a pipe (a shipper, gzip): a larger buffer than the kernel's 64 KiB lets export
            // and reader run without waking each other every chunk. Refused above the system's
            // pipe-max-size: the default buffer stays.
            var st = stat()
            let setPipeSize: Int32 = 1031   // F_SETPIPE_SZ: glibc declares it only under _GNU_SOURCE
            if fstat(1, &st) == 0, st.st_mode & S_IFMT == S_IFIFO { _ = fcntl(1, setPipeSize, Int32(1 << 20)) }
        }
        let showProgress = progress || isatty(2) == 1
        var lastReport = Date()
        var rows = 0, records = 0
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func emit(_ line: String) { sink.write(line); records += 1 }
        func emit(bytes line: [UInt8]) { sink.write(bytes: line); records += 1 }
        // Written by hand (`AuditEvent.json()`, `ExportFormat.jsonl`): JSONEncoder was most of an
        // export's time. OCSF records are chained and written on a second thread, in batches.
        let chained = format == .ocsf ? ChainedWriter(device: HostIdentity.device) { sink.write(bytes: $0) } : nil
        var batch: [AuditEvent] = []
        func emitOCSF(_ e: AuditEvent) {
            batch.append(e)
            records += 1
            if batch.count == 256 { chained?.put(batch); batch.removeAll(keepingCapacity: true) }
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
                case .ocsf: emitOCSF(.daemon("trace gap", timeMs: g.fromWallNs / 1_000_000, detail: ExportFormat.text(g), severity: 4))
                }
            }
        }
        do {
            try store.export(f) { r in
                try emitGaps(before: r.wallNs)
                rows += 1
                switch format {
                case .jsonl: emit(bytes: ExportFormat.jsonl(r))
                case .csv: emit(bytes: ExportFormat.csv(r))
                case .ocsf: for e in ExportFormat.ocsf(r) { emitOCSF(e) }
                }
                if showProgress, rows % 10_000 == 0, Date().timeIntervalSince(lastReport) > 1 {
                    lastReport = Date()
                    FileHandle.standardError.write(Data("revenant export: \(rows) execs…\n".utf8))
                }
            }
            try emitGaps(before: .max)
        } catch {
            chained?.put(batch)
            _ = chained?.finish()
            sink.flush()
            throw Failure("\(error)", status: 2)
        }
        chained?.put(batch)
        _ = chained?.finish()
        sink.flush()
        if showProgress || out != nil {
            FileHandle.standardError.write(Data("revenant export: \(rows) execs, \(records) records\(out.map { " to \($0)" } ?? "")\n".utf8))
        }
    }
}

/// Whole lines, written in 64 KiB chunks. Used by one thread at a time (an OCSF export's
/// writer thread until it finishes, then the caller's).
final class BufferedOutput: @unchecked Sendable {
    private let handle: FileHandle
    private var buf = Data()
    init(_ h: FileHandle) { handle = h; buf.reserveCapacity(1 << 16) }
    func write(_ line: String) {
        var line = line
        line.withUTF8 { buf.append(contentsOf: $0) }
        buf.append(0x0a)
        if buf.count >= 1 << 16 { flush() }
    }
    func write(bytes line: [UInt8]) {
        buf.append(contentsOf: line)
        buf.append(0x0a)
        if buf.count >= 1 << 16 { flush() }
    }
    func flush() {
        handle.write(buf)
        buf.removeAll(keepingCapacity: true)
    }
}
