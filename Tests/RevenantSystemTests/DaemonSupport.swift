import Foundation
import RevenantSystem
import Glibc
import Testing

/// The real `revenant run`, as a child process with its own store.
final class DaemonUnderTest {
    let dir: String
    let db: String
    let log: String
    let audit: String
    let process = Process()

    init(name: String) throws {
        dir = NSTemporaryDirectory() + "rvtest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        db = dir + "/revenant.db"
        log = dir + "/daemon.log"
        audit = dir + "/audit.jsonl"
    }

    func start(_ extra: [String] = []) async throws {
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: revenantBinary)
        process.arguments = ["run", "--db", db, "--audit-log", audit] + extra
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let ready = extra.contains("--policy") ? "policy loaded" : "seeded from /proc"
        for _ in 0..<200 {
            if logText.contains(ready) { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("daemon did not start: \(logText)")
        throw CancellationError()
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Waits until the store holds everything the kernel reported before now: two written
    /// flushes after now, the second drained after the first. A fixed sleep was not enough on a
    /// loaded machine; an idle daemon writes an empty flush every 5 s, so this can take that long.
    func settle() async throws {
        let now = Daemon.wallNs()
        let store = try Store(path: db, readOnly: true)
        var seen = now, flushes = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while flushes < 2 {
            guard ContinuousClock.now < deadline else {
                Issue.record("the daemon wrote \(flushes) flushes in 30 s: \(logText)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(100))
            if let last = try store.runs().last?.lastSeenWallNs, last > seen { seen = last; flushes += 1 }
        }
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    func hangUp() { Glibc.kill(process.processIdentifier, SIGHUP) }

    func kill9() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

let revenantBinary = packageRoot + "/.build/debug/revenant"

/// Runs the revenant CLI and returns (status, stdout, stderr).
func revenant(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try sh([revenantBinary] + args)
}

func whoSpawnedJSON(_ pid: Int32, db: String, extra: [String] = []) throws -> [String: Any] {
    let r = try revenant(["who-spawned", String(pid), "--db", db, "--json"] + extra)
    try #require(r.status == 0, "who-spawned \(pid) failed (\(r.status)): \(r.err)")
    return try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
}

/// Children of a PID now, from /proc.
func childrenOf(_ pid: Int32) -> [Int32] {
    let fm = FileManager.default
    return ((try? fm.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { p in
        guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let f = stat[stat.index(after: close)...].split(separator: " ")
        return f.count > 1 && Int32(f[1]) == pid
    }
}

func setNextPid(_ pid: Int32) throws {
    let fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY)
    try #require(fd >= 0, "cannot open ns_last_pid: errno \(errno)")
    let text = "\(pid - 1)"
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}
