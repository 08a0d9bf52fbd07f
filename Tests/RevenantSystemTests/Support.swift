import Glibc
import RevenantCore
import RevenantSystem
import Synchronization
import Testing

/// End-to-end tests load the real BPF program: they need root and a BTF kernel.
enum Kernel {
    static let canTrace: Bool = geteuid() == 0 && access("/sys/kernel/btf/vmlinux", F_OK) == 0
    static let why = "needs root and a kernel with BTF (/sys/kernel/btf/vmlinux): SKIPPED, the kernel path is NOT tested"
    /// In CI a missing capability is a failure, never a silent skip.
    static let required: Bool = getenv("CI").map { String(cString: $0) == "true" } ?? false

    static func check() throws {
        if !canTrace {
            if required { Issue.record("CI=true but \(why)") }
            print("revenant-e2e: \(why)")
        }
        try #require(canTrace || required == false)
    }
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

/// posix_spawn + waitpid: the child is exactly the spawned PID, no helper process between.
@discardableResult
func spawn(_ argv: [String], wait: Bool = true, stdout: String? = nil, stderr: String? = nil) -> (pid: pid_t, status: Int32) {
    var pid: pid_t = 0
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdout { posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    if let stderr { posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    let cargs = argv.map { strdup($0) } + [nil]
    defer { cargs.forEach { free($0) } }
    // Test runner threads may block signals; children must start with none blocked.
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t(), defaults = sigset_t()
    sigemptyset(&empty)
    sigemptyset(&defaults)
    for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, s) }
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let rc = posix_spawnp(&pid, argv[0], &actions, &attr, cargs, environ)
    precondition(rc == 0, "posix_spawn \(argv[0]) failed: \(rc)")
    var status: Int32 = 0
    if wait { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
    return (pid, status)
}

func token(_ name: String) -> String { "rvtest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

/// The package root, to find the built `revenant` binary.
let packageRoot: String = {
    var parts = #filePath.split(separator: "/").map(String.init)
    parts.removeLast(3)
    return "/" + parts.joined(separator: "/")
}()
