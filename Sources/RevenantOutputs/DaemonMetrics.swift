import CoreMetrics
import Foundation
import Glibc
import Prometheus
import Synchronization

/// The daemon's numbers, recorded through swift-metrics into a Prometheus registry and served
/// only when asked (`run --metrics`). Counters are added per flush or per rare event, never
/// per exec: the ingest loop keeps plain integers and hands over their deltas.
public final class DaemonMetrics: Sendable {
    public static let shared = DaemonMetrics()

    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let storeWrite: CoreMetrics.Timer
    private let storeBytes: CoreMetrics.Gauge
    private let cpu: CoreMetrics.Gauge
    private let rss: CoreMetrics.Gauge
    private let ringFill: CoreMetrics.Gauge
    private let ringBytes: CoreMetrics.Gauge
    private let rules: CoreMetrics.Gauge
    /// Read at each scrape: the ring buffer's unconsumed and total bytes.
    package let ringProbe = Mutex<(@Sendable () -> (fill: Int, size: Int)?)?>(nil)

    init() {
        var f = PrometheusMetricsFactory(registry: registry)
        f.durationHistogramBuckets["revenant_store_write_seconds"] =
            [.milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10)]
        factory = f
        storeWrite = CoreMetrics.Timer(label: "revenant_store_write_seconds", dimensions: [], factory: f)
        storeBytes = CoreMetrics.Gauge(label: "revenant_store_bytes", dimensions: [], factory: f)
        cpu = CoreMetrics.Gauge(label: "revenant_process_cpu_seconds", dimensions: [], factory: f)
        rss = CoreMetrics.Gauge(label: "revenant_process_resident_bytes", dimensions: [], factory: f)
        ringFill = CoreMetrics.Gauge(label: "revenant_ringbuf_fill_ratio", dimensions: [], factory: f)
        ringBytes = CoreMetrics.Gauge(label: "revenant_ringbuf_bytes", dimensions: [], factory: f)
        rules = CoreMetrics.Gauge(label: "revenant_policy_rules", dimensions: [], factory: f)
    }

    private func counter(_ label: String, _ dims: [(String, String)] = []) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: label, dimensions: dims, factory: factory)
    }

    /// Records from the kernel, by type (fork, exec, exit, deny).
    package func events(_ type: String, _ n: Int) { if n > 0 { counter("revenant_events_total", [("type", type)]).increment(by: n) } }
    /// Records the kernel dropped (ring buffer full) and processes it could not track (map full).
    package func lost(_ reason: String, _ n: Int) { if n > 0 { counter("revenant_events_lost_total", [("reason", reason)]).increment(by: n) } }
    package func malformed(_ n: Int) { if n > 0 { counter("revenant_events_malformed_total").increment(by: n) } }
    /// A launch a rule acted on: the kill or denial by rule and tier, or a match it only audited.
    package func enforced(rules: [String], tier: String?, blocked: Bool) {
        for r in rules {
            counter(blocked ? "revenant_blocked_total" : "revenant_matched_total", [("rule", r), ("tier", tier ?? "none")]).increment()
        }
    }
    package func finding(mechanism: String) { counter("revenant_respawn_findings_total", [("mechanism", mechanism)]).increment() }
    package func storeWritten(seconds: Double, bytes: Int64?) {
        storeWrite.recordNanoseconds(Int64(seconds * 1e9))
        if let bytes { storeBytes.record(Double(bytes)) }
    }
    package func storeFailure() { counter("revenant_store_write_failures_total").increment() }
    func forwardDropped() { counter("revenant_forward_dropped_total").increment() }
    package func auditFailure() { counter("revenant_audit_write_failures_total").increment() }
    package func configChange(_ kind: String) { counter("revenant_config_changes_total", [("kind", kind)]).increment() }
    package func policy(rules n: Int) { rules.record(Double(n)) }

    /// The Prometheus text exposition, with the process's CPU, RSS and ring fill read now.
    public func exposition() -> [UInt8] {
        var ru = rusage()
        getrusage(RUSAGE_SELF.rawValue, &ru)
        cpu.record(Double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + Double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6)
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
           let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            rss.record(pages * Double(sysconf(Int32(_SC_PAGESIZE))))
        }
        if let probe = ringProbe.withLock({ $0 }), let r = probe(), r.size > 0 {
            ringFill.record(Double(r.fill) / Double(r.size))
            ringBytes.record(Double(r.size))
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
