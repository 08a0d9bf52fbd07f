import Foundation
import Glibc
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantStore
import RevenantQuery
import RevenantOutputs
import RevenantDaemon
import Synchronization
import RevenantTestSupport
import Testing

/// `make check` runs the pure suites only: every test that needs root or the kernel carries
/// `.root` or `.kernel` and is skipped there, by that trait, not by a list of names.
enum Selection {
    static let pureOnly: Bool = getenv("REVENANT_TESTS").map { String(cString: $0) == "pure" } ?? false

    static func skipped(_ why: String) -> Bool {
        FileHandle.standardError.write(Data("revenant-tests: SKIPPED, \(why)\n".utf8))
        return false
    }
}

/// Tests that need root (and nothing else from the kernel).
enum Root {
    static let why = "needs root (make test runs as root)"
    static var runnable: Bool {
        if Selection.pureOnly { return Selection.skipped("make check runs pure suites only; this one \(why)") }
        if geteuid() == 0 || Kernel.required { return true }
        return Selection.skipped("\(why): NOT tested")
    }
}

/// End-to-end tests load the real BPF program: they need root and a BTF kernel.
enum Kernel {
    static let canTrace: Bool = geteuid() == 0 && access("/sys/kernel/btf/vmlinux", F_OK) == 0
    static let why = "needs root and a kernel with BTF (/sys/kernel/btf/vmlinux)"
    /// In CI a missing capability is a failure, never a skip.
    static let required: Bool = getenv("CI").map { String(cString: $0) == "true" } ?? false

    /// Skips (loudly) where the kernel path cannot run; under CI=true runs and fails instead.
    static var runnable: Bool {
        if Selection.pureOnly { return Selection.skipped("make check runs pure suites only; this one \(why)") }
        if canTrace || required { return true }
        FileHandle.standardError.write(Data("revenant-e2e: SKIPPED, \(why): the kernel path is NOT tested\n".utf8))
        return false
    }

    /// The first line of every end-to-end test: fails under CI=true where tracing is impossible.
    static func check() throws {
        guard !canTrace else { return }
        Issue.record("CI=true but this test \(why)")
        throw TestSupportError("cannot trace here")
    }
}

extension Trait where Self == ConditionTrait {
    /// The suite loads the real BPF programs: skipped without root and BTF, a failure under CI=true.
    static var kernel: Self { .enabled(if: Kernel.runnable, Comment(rawValue: Kernel.why)) }
    /// The test needs root, not the kernel's BPF: skipped by `make check` and where not root, a failure under CI=true.
    static var root: Self { .enabled(if: Root.runnable, Comment(rawValue: Root.why)) }
}

/// Collects every event the real tracer delivers.
final class Sink: Sendable {
    let events = Mutex<[Event]>([])
    let malformed = Mutex<[DecodeError]>([])
}

final class Recorder: Sendable {
    let tracer: Tracer
    private let sink = Sink()
    private let reader: Task<Void, Never>

    init(options: Tracer.Options = Tracer.Options()) throws {
        let t = try Tracer(options: options)
        tracer = t
        let sink = self.sink
        reader = Task.detached {
            for await item in t.events {
                switch item {
                case .event(let e): sink.events.withLock { $0.append(e) }
                case .malformed(let m): sink.malformed.withLock { $0.append(m) }
                }
            }
        }
    }

    var events: [Event] { sink.events.withLock { $0 } }
    var malformedRecords: [DecodeError] { sink.malformed.withLock { $0 } }

    /// Polls until the condition holds on the events so far, or the deadline passes.
    @discardableResult
    func wait(seconds: Double = 10, until ok: ([Event]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if ok(events) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return ok(events)
    }

    func stop() async {
        tracer.stop()
        await reader.value
    }

    func table() -> ProcessTable {
        var t = ProcessTable()
        for e in events { t.apply(e) }
        return t
    }

    func execs(containing token: String) -> [ExecEvent] {
        events.compactMap { if case .exec(let e) = $0, e.argv.contains(where: { $0.contains(token) }) { return e }; return nil }
    }

    func forks(of id: Identity) -> ForkEvent? {
        events.lazy.compactMap { if case .fork(let f) = $0, f.process == id { return f }; return nil }.first
    }

    func exit(of id: Identity) -> ExitEvent? {
        events.lazy.compactMap { if case .exit(let x) = $0, x.process == id { return x }; return nil }.first
    }
}

