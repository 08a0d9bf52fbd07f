import ArgumentParser
import Dispatch
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct Trace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace", abstract: "Stream exec and exit events live, each with its fork-time ancestry.",
        discussion: """
            Examples:
              revenant trace
              revenant trace --exe training_worker --json
              revenant trace --pid 812 --forks --count 100
            """
    )

    @Flag(help: "JSON lines instead of text.") var json = false
    @Flag(help: "Also print fork events.") var forks = false
    @Option(help: "Only programs whose path or command line contains this text.") var exe: String?
    @Option(help: "Only processes whose name (comm) contains this text.") var comm: String?
    @Option(help: "Only this PID and its fork-time descendants.") var pid: Int32?
    @Option(help: "Stop after this many printed events.") var count: Int?
    @Option(help: "Ring buffer size in MiB (power of two).") var ringbufMib: UInt32 = 8
    @Flag(help: "Print no events; on exit print one JSON summary (events read, lost). For benchmarks.")
    var stats = false

    func run() async throws {
        try Preflight.requireTracing()
        let tracer: LiveTrace
        do {
            tracer = try LiveTrace(ringbufBytes: ringbufMib << 20)
        } catch {
            throw Failure(error.description)
        }
        // Seed after attaching, so nothing starts in a gap between the two.
        var table = tracer.seededTable()
        let root: Identity? = try pid.map { p in
            guard let r = table.latest(pid: p) else { throw Failure("no process with PID \(p)") }
            return r.id
        }

        let signals = SignalWatcher([SIGINT, SIGTERM]) { tracer.stop() }
        let out = LineWriter.stdout
        let clock = BootClock()
        let json = self.json
        let lossWatch = Task {
            var last = LiveTrace.Losses.zero
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                guard let c = tracer.losses() else { continue }
                if c.ringbufFull != last.ringbufFull || c.procMapFull != last.procMapFull {
                    LossReport(c, since: last).print(to: out, json: json, clock: clock)
                    last = c
                }
            }
        }

        var printed = 0
        var malformed = 0
        var read = 0
        for await item in tracer.events {
            guard case .event(let event) = item else {
                malformed += 1
                if case .malformed(let err) = item { warn("skipped a malformed record: \(err)") }
                continue
            }
            table.apply(event)
            read += 1
            if stats { continue }
            guard matches(event, table: table, root: root) else { continue }
            if case .fork = event, !forks { continue }
            let rec = TraceRecord(event, table: table, clock: clock)
            if json { out.json(rec) } else { out.line(rec.text) }
            printed += 1
            if let count, printed >= count { tracer.stop() }
        }
        lossWatch.cancel()
        let c = tracer.losses()
        tracer.stop()
        _ = signals
        if stats {
            out.json(TraceStats(events_read: read, malformed: malformed, kernel_events: c?.events ?? 0,
                                ringbuf_full: c?.ringbufFull ?? 0, procmap_full: c?.procMapFull ?? 0,
                                processes_tracked: table.count))
        } else if let c, c.ringbufFull + c.procMapFull > 0 {
            LossReport(c, since: LiveTrace.Losses.zero).print(to: out, json: json, clock: clock)
        }
    }

    private func matches(_ event: Event, table: ProcessTable, root: Identity?) -> Bool {
        let r = table[event.process]
        if let root, !table.isInSubtree(event.process, of: root) { return false }
        if let exe {
            guard let img = r?.image, img.filename.contains(exe) || img.argv.joined(separator: " ").contains(exe) else { return false }
        }
        if let comm {
            guard let r, r.name.contains(comm) else { return false }
        }
        return true
    }
}

struct TraceStats: Encodable {
    let type = "stats"
    let events_read: Int
    let malformed: Int
    let kernel_events: UInt64
    let ringbuf_full: UInt64
    let procmap_full: UInt64
    let processes_tracked: Int
}

/// A non-zero loss counter, as a warning line or a JSON record.
struct LossReport: Encodable {
    let type = "lost"
    let time: String
    let ringbuf_full: UInt64
    let procmap_full: UInt64
    let ringbuf_full_new: UInt64
    let procmap_full_new: UInt64

    init(_ c: LiveTrace.Losses, since last: LiveTrace.Losses) {
        time = Fmt.iso(WallClock.nowNs())
        ringbuf_full = c.ringbufFull
        procmap_full = c.procMapFull
        ringbuf_full_new = c.ringbufFull - last.ringbufFull
        procmap_full_new = c.procMapFull - last.procMapFull
    }

    func print(to out: LineWriter, json: Bool, clock: BootClock) {
        if json { out.json(self); return }
        var parts: [String] = []
        if ringbuf_full_new > 0 { parts.append("\(ringbuf_full_new) events lost: ring buffer full (total \(ringbuf_full)); raise --ringbuf-mib") }
        if procmap_full_new > 0 { parts.append("\(procmap_full_new) processes not tracked: kernel process map full (total \(procmap_full))") }
        out.line("WARNING " + parts.joined(separator: "; "))
        warn(parts.joined(separator: "; "))
    }
}
