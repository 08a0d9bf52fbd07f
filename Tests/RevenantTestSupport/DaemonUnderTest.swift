import Foundation
import Glibc
import RevenantHost
import RevenantStore

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The real `revenant run`, as a child process with its own store in a temporary directory.
public final class DaemonUnderTest: @unchecked Sendable {
    public let dir: String
    public let db: String
    public let log: String
    public let audit: String
    public let process = Process()

    /// `db` and `audit` elsewhere than its temporary directory (a small filesystem, say).
    public init(name: String, db: String? = nil, audit: String? = nil) throws {
        dir = uniqueTempPath(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        self.db = db ?? dir + "/revenant.db"
        log = dir + "/daemon.log"
        self.audit = audit ?? dir + "/audit.jsonl"
    }

    /// Starts it and waits until it serves: seeded and its configuration sources marked (or
    /// said not to be), or with `--policy` the policy loaded, which comes after both.
    public func start(_ extra: [String] = []) async throws {
        try await Self.launch(process, arguments: ["run", "--db", db, "--audit-log", audit] + extra, log: log,
                              ready: extra.contains("--policy") ? "policy loaded" : "configuration sources")
    }

    /// Launches `revenant` with `arguments`, stderr to `log`, and waits for `ready` in it.
    public static func launch(_ process: Process, arguments: [String], log: String, ready: String) async throws {
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: revenantBinary)
        process.arguments = arguments
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        for _ in 0..<200 {
            if text().contains(ready) { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("daemon did not start (waited for \"\(ready)\"): \(text())")
    }

    public var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Waits until the store holds everything the kernel reported before now: two written
    /// flushes after now, the second drained after the first. A fixed sleep was not enough on a
    /// loaded machine; an idle daemon writes an empty flush every 5 s, so this can take that long.
    public func settle() async throws {
        let now = WallClock.nowNs()
        let store = try Store(path: db, readOnly: true)
        var seen = now, flushes = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while flushes < 2 {
            guard ContinuousClock.now < deadline else {
                throw TestSupportError("the daemon wrote \(flushes) flushes in 30 s: \(logText)")
            }
            try await Task.sleep(for: .milliseconds(100))
            if let last = try store.runs().last?.lastSeenWallNs, last > seen { seen = last; flushes += 1 }
        }
    }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    public func hangUp() { Glibc.kill(process.processIdentifier, SIGHUP) }

    public func kill9() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
