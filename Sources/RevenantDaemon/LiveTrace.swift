import RevenantCore
import RevenantHost
import RevenantKernel

/// The BPF programs could not be loaded or attached (daemon, trace, verify); the description
/// names the step and errno.
public struct KernelLoadError: Error, CustomStringConvertible {
    public let description: String
}

/// `revenant trace`: its own BPF programs and a process table seeded from /proc, so the CLI
/// streams events without touching the kernel module.
public final class LiveTrace: Sendable {
    /// Kernel-side losses: records the full ring dropped, processes the full map could not track.
    public struct Losses: Sendable, Equatable {
        public var ringbufFull: UInt64
        public var procMapFull: UInt64
        /// Records the kernel wrote.
        public var events: UInt64
        public static let zero = Losses(ringbufFull: 0, procMapFull: 0, events: 0)
    }

    private let tracer: Tracer

    public init(ringbufBytes: UInt32) throws(KernelLoadError) {
        var options = Tracer.Options()
        options.ringbufBytes = ringbufBytes
        do { tracer = try Tracer(options: options) } catch { throw KernelLoadError(description: error.description) }
    }

    /// What runs now, as the table starts; call after `init`, so nothing starts in a gap between the two.
    public func seededTable() -> ProcessTable {
        var table = ProcessTable()
        for r in ProcReader().all() { table.seed(r) }
        return table
    }

    /// Each record decoded, or why it could not be; ends after `stop()`.
    public var events: AsyncStream<TraceItem> { tracer.events }

    public func losses() -> Losses? {
        guard let c = try? tracer.counters() else { return nil }
        return Losses(ringbufFull: c.ringbufFull, procMapFull: c.procMapFull, events: c.events)
    }

    public func stop() { tracer.stop() }
}

extension Daemon {
    /// Where `run --pin` pins by default (a bpf filesystem).
    public static let defaultPinDir = Tracer.defaultPinDir

    /// Removes what `run --pin` left in the kernel: kill at exec ends until a daemon runs again.
    /// Returns how many programs were unpinned.
    public static func unpin(_ dir: String) -> Int { Tracer.unpin(dir) }

    /// What this kernel allows (`revenant doctor`), probed by loading the real programs.
    public static func probeKernel() -> HostProbe { HostProbe.run() }
}
