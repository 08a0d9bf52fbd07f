import Foundation
import RevenantCore

/// `verify`: watches for a while and collects every start of a program, through the store of
/// a running daemon or, without one, with BPF programs of its own.
public struct VerifyWatch {
    public struct Start: Sendable {
        public var record: ProcessRecord
        public var startWallNs: Int64
        /// Killed at exec or denied: it never ran. The enforcement's message.
        public var blocked: String?
    }

    public struct Outcome: Sendable {
        public var starts: [Start]
        /// What respawns the program, from the starts that ran.
        public var respawn: RespawnReport?
        /// Events lost or not written during the window: a start may be missing.
        public var gaps: [TraceGap] = []
        public var ran: [Start] { starts.filter { $0.blocked == nil } }
    }

    public enum Via: Sendable { case store(Store), ownTracer }

    public var match: String
    public var startWallNs: Int64
    public var endWallNs: Int64
    /// The verifying binary: its own execs are not the program.
    public var ownExe: String?

    public init(match: String, startWallNs: Int64, endWallNs: Int64, ownExe: String?) {
        self.match = match; self.startWallNs = startWallNs; self.endWallNs = endWallNs; self.ownExe = ownExe
    }

    /// The store at `db` when a daemon is writing it now (its run is open and flushed in the
    /// last 10 s); nil otherwise.
    public static func liveStore(_ db: String) -> Store? {
        guard FileManager.default.fileExists(atPath: db), let s = try? Store(path: db, readOnly: true),
              s.daemonIsWriting() else { return nil }
        return s
    }

    public func isProgram(_ r: ProcessRecord) -> Bool {
        guard let img = r.image, img.filename != ownExe else { return false }
        return img.runsProgram(matching: match)
    }

    /// Polls what the daemon flushes until the window's end plus the store's lag.
    /// `progress` is called about twice a second with the starts so far.
    public func throughStore(_ store: Store, progress: ([Start]) -> Void) async throws -> Outcome {
        var starts: [Start] = []
        var seen: Set<Identity> = []
        var last: StoredProcess?
        while WallClock.nowNs() < endWallNs + Int64(FlushRequest.storeLagMs + 250) * 1_000_000 {
            for p in (try? store.matching(match)) ?? [] where p.startWallNs >= startWallNs && p.startWallNs < endWallNs && !seen.contains(p.record.id) {
                guard isProgram(p.record) else { continue }
                seen.insert(p.record.id)
                let blocked = p.record.image?.enforcement.flatMap { $0.blocked ? $0.message : nil }
                starts.append(Start(record: p.record, startWallNs: p.startWallNs, blocked: blocked))
                if blocked == nil { last = p }
            }
            progress(starts)
            try await Task.sleep(for: .milliseconds(WallClock.nowNs() < endWallNs ? 500 : 450))
        }
        return Outcome(starts: starts, respawn: last.flatMap { try? Attributor.report(for: $0, store: store) },
                       gaps: (try? store.gaps(fromWallNs: startWallNs, toWallNs: endWallNs)) ?? [])
    }

    /// Attaches its own BPF programs until the window's end or `tracer.stop()`. `attached`
    /// gets the tracer (to stop it on a signal).
    public func ownTracer(attached: (Tracer) -> Void) async throws -> Outcome {
        let tracer = try Tracer(options: Tracer.Options())
        attached(tracer)
        var table = ProcessTable()
        for r in ProcReader().all() { table.seed(r) }
        let clock = BootClock()
        let end = endWallNs
        let stopper = Task {
            while WallClock.nowNs() < end {
                try? await Task.sleep(for: .milliseconds(min(1000, max(1, Int((end - WallClock.nowNs()) / 1_000_000)))))
            }
            tracer.stop()
        }
        defer { stopper.cancel() }
        var starts: [Start] = []
        var ids: [Identity] = []
        for await item in tracer.events {
            guard case .event(let e) = item else { continue }
            table.apply(e)
            if case .exec(let x) = e, let r = table[table.canonical(x.process)], isProgram(r) {
                starts.append(Start(record: r, startWallNs: clock.bootEpochNs + Int64(x.time), blocked: nil))
                ids.append(r.id)
            }
        }
        // Instances of the same program seen here, for attribution.
        // The store's records are redacted by the daemon; these come raw from the kernel.
        var respawn: RespawnReport?
        let instances = table.instances(ids, bootEpochNs: clock.bootEpochNs).map {
            var i = $0
            i.process = Attributor.redactor.apply(i.process)
            i.ancestry = i.ancestry.map(Attributor.redactor.apply)
            return i
        }
        if let latest = instances.last {
            let same = instances.filter { $0.process.image?.argv == latest.process.image?.argv }
            respawn = Attributor.report(grouping: same, target: latest.process.id, root: "/", reader: ProcReader())
        }
        // Kill at exec shows as a SIGKILL exit at once: it never ran.
        for i in starts.indices {
            if let r = table[starts[i].record.id], case .signaled(9, _)? = r.exitStatus, let x = r.exitTime,
               let t = r.image?.time, x >= t, x - t < 50_000_000 {
                starts[i].blocked = "killed at exec"
            }
            starts[i].record = Attributor.redactor.apply(starts[i].record)
        }
        var gaps: [TraceGap] = []
        if let c = try? tracer.counters(), c.ringbufFull + c.procMapFull > 0 {
            gaps.append(TraceGap(kind: .eventsLost, fromWallNs: startWallNs, toWallNs: endWallNs, lost: Int64(c.ringbufFull + c.procMapFull),
                                 detail: "\(c.ringbufFull) events dropped (ring buffer full), \(c.procMapFull) processes untracked (process map full)"))
        }
        return Outcome(starts: starts, respawn: respawn, gaps: gaps)
    }
}
