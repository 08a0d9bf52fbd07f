import Foundation
import RevenantCore
import RevenantOutputs
import RevenantHost
import RevenantKernel
import RevenantQuery
import RevenantStore

extension VerifyWatch {
    /// Attaches its own BPF programs until the window's end, or until the stop function
    /// `attached` is given is called (on a signal).
    public func ownTracer(attached: (@escaping @Sendable () -> Void) -> Void) async throws -> Outcome {
        let tracer = try LiveTrace(ringbufBytes: Tracer.Options().ringbufBytes)
        attached { tracer.stop() }
        var table = tracer.seededTable()
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
        if let c = tracer.losses(), c.ringbufFull + c.procMapFull > 0 {
            gaps.append(TraceGap(kind: .eventsLost, fromWallNs: startWallNs, toWallNs: endWallNs, lost: Int64(c.ringbufFull + c.procMapFull),
                                 detail: "\(c.ringbufFull) events dropped (ring buffer full), \(c.procMapFull) processes untracked (process map full)"))
        }
        return Outcome(starts: starts, respawn: respawn, gaps: gaps)
    }
}
