import Dispatch
import Foundation
import Logging
import RevenantCore
import RevenantOutputs
import RevenantQuery
import RevenantStore
import RevenantKernel
import RevenantHost
import ServiceLifecycle
import Synchronization

/// Works out what respawns a matched program, off the ring-buffer thread: its configuration
/// reads may be slow, and the ingest must keep draining. One request at a time, each bounded
/// by `timeout`; while one overruns, later requests get the last answer instead of waiting.
///
/// Bounds: an answer per command line for at most 4,096 command lines, recomputed at most once
/// a second each (a blocked program respawned in a tight loop must not turn every exec into
/// configuration reads).
final class AttributionWorker: Service, @unchecked Sendable {
    struct Request: Sendable {
        /// The program's command line, NUL-joined.
        var key: String
        /// Its latest instances, newest last; empty when a fresh answer is cached.
        var instances: [Instance]
        /// How many instances were seen.
        var count: Int
        /// For the finding record.
        var process: ProcessRecord
        var ancestry: [ProcessRecord]
        var bootEpochNs: Int64
        var rules: [String]
    }

    struct Answer: Sendable {
        var respawn: AuditEvent.Respawn
        /// A finding record when the answer is new or has changed.
        var finding: AuditEvent?
    }

    let timeout: Duration
    private let log: Logger
    private let answers = Mutex<[String: (respawn: AuditEvent.Respawn, atNs: Int64)]>([:])
    private let queue = DispatchQueue(label: "revenant-attribution")
    /// Wall ns when the request in progress started; 0 when idle.
    private let busySince = Atomic<Int64>(0)

    /// Told each configuration file a new finding names (to watch who changes it).
    let sourceNamed = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Told the root of a namespaced manager a new finding read its configuration under.
    let rootSeen = Mutex<(@Sendable (String) -> Void)?>(nil)

    init(timeout: Duration = .seconds(2), logger: Logger) {
        self.timeout = timeout
        log = logger
    }

    func run() async throws {
        try? await gracefulShutdown()
    }

    /// Whether a request for `key` should carry instances: no answer younger than a second.
    func wantsInstances(_ key: String, nowNs: Int64) -> Bool {
        answers.withLock { m in m[key].map { nowNs - $0.atNs >= 1_000_000_000 } ?? true }
    }

    /// The answer for `r`, waiting at most `timeout`; nil when there is none yet.
    func attribute(_ r: Request) -> Answer? {
        let cached = answers.withLock { $0[r.key]?.respawn }.map { c -> AuditEvent.Respawn in var c = c; c.instances = r.count; return c }
        guard r.instances.count >= 2 else { return cached.map { Answer(respawn: $0, finding: nil) } }
        if busySince.load(ordering: .acquiring) != 0 {
            return cached.map { Answer(respawn: $0, finding: nil) }
        }
        let result = Mutex<Answer?>(nil)
        let done = DispatchSemaphore(value: 0)
        busySince.store(WallClock.nowNs(), ordering: .releasing)
        queue.async {
            defer { self.busySince.store(0, ordering: .releasing); done.signal() }
            result.withLock { $0 = self.analyze(r) }
        }
        let ms = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        if done.wait(timeout: .now() + .milliseconds(ms)) == .timedOut {
            log.warning("attribution timed out: the launch is recorded without it", metadata: [
                "timeout_ms": "\(ms)", "program": "\(r.key.replacingOccurrences(of: "\0", with: " "))"])
            return cached.map { Answer(respawn: $0, finding: nil) }
        }
        return result.withLock { $0 }
    }

    private func analyze(_ r: Request) -> Answer {
        let rep = Attributor.report(grouping: r.instances, target: r.process.id, root: "/", reader: ProcReader())
        let summary = AuditEvent.Respawn(
            mechanism: rep.mechanism, unit: rep.unit, spawner_pid: rep.spawner?.pid, spawner_uid: rep.spawner?.id,
            file: rep.source?.file, line: rep.source?.line, text: rep.source?.text, instances: rep.instances,
            confidence: rep.confidence, remediation: rep.remediation)
        let now = WallClock.nowNs()
        let old = answers.withLock { m -> AuditEvent.Respawn? in
            if m[r.key] == nil && m.count >= 4096 { m.removeAll() }
            let old = m[r.key]?.respawn
            m[r.key] = (summary, now)
            return old
        }
        let changed = old.map { $0.mechanism != summary.mechanism || $0.spawner_uid != summary.spawner_uid
            || $0.file != summary.file || $0.line != summary.line } ?? true
        guard changed else { return Answer(respawn: summary, finding: nil) }
        if let f = summary.file, let tell = sourceNamed.withLock({ $0 }) { tell(Attributor.hostPath(f, root: rep.config_root)) }
        if let root = rep.config_root, root != "/", let tell = rootSeen.withLock({ $0 }) { tell(root) }
        DaemonMetrics.shared.finding(mechanism: summary.mechanism.rawValue)
        log.notice("respawn finding: \(r.key.replacingOccurrences(of: "\0", with: " ")) is respawned by \(summary.mechanism.rawValue)", metadata: [
            "spawner": "\(summary.spawner_uid ?? "?")", "source": "\(summary.file.map { "\($0):\(summary.line ?? 0)" } ?? "not found")",
            "instances": "\(summary.instances)"])
        let finding = AuditEvent.finding(r.process, ancestry: r.ancestry, bootEpochNs: r.bootEpochNs, timeMs: WallClock.nowMs(),
                                         rules: r.rules, respawn: summary)
        return Answer(respawn: summary, finding: finding)
    }
}
