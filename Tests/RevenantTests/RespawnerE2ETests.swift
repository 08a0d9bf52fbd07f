import Foundation
import Glibc
import RevenantCore
import RevenantStore
import RevenantTestSupport
import Testing

/// Respawners no configuration file names, on one daemon and one store: a Python keep-alive
/// started by hand, gunicorn's master, a loop left in a detached tmux session and one in
/// screen. Each answer names the respawner and what keeps it, and its remediation, run as
/// printed, keeps the program away.
@Suite(.serialized) struct RespawnerE2ETests {
    static let python = "/usr/bin/python3"

    /// A worker script that runs 0.3 s, under `dir`.
    static func worker(_ dir: String, _ name: String) throws -> Program {
        let path = "\(dir)/\(name).py"
        try "import time\ntime.sleep(0.3)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return Program(executable: python, script: path)
    }

    @Test(.kernel, .timeLimit(.minutes(4))) func supervisorsAndSessionsAreNamedAndStopped() async throws {
        try Kernel.check()
        for tool in ["/usr/bin/tmux", "/usr/bin/screen", "/usr/bin/gunicorn", Self.python] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is not installed: run scripts/install-deps.sh test")
        }
        let dir = uniqueTempPath("respawners")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try DaemonUnderTest(name: "respawners")
        try await d.start()
        defer { d.stop() }
        try await keepAliveByHand(d, dir)
        try await gunicornMaster(d, dir)
        try await loopInTmux(d, dir)
        try await loopInScreen(d, dir)
    }

    func keepAliveByHand(_ d: DaemonUnderTest, _ dir: String) async throws {
        let w = try Self.worker(dir, "ka_worker")
        let keep = "\(dir)/keepalive.py"
        try """
            import subprocess, time
            # keep the worker up
            while True:
                subprocess.run(["\(Self.python)", "\(w.script!)"])
                time.sleep(0.5)

            """.write(toFile: keep, atomically: true, encoding: .utf8)
        #expect(Self.launch(["/usr/bin/setsid", "-f", "/usr/bin/nohup", Self.python, keep]) == 0)
        let r = try await answer(w, d)
        #expect(r["mechanism"] as? String == "process supervisor", "\(r)")
        let spawner = try #require(r["spawner"] as? [String: Any])
        #expect(spawner["argv"] as? [String] == [Self.python, keep])
        let src = try #require(r["source"] as? [String: Any], "\(r)")
        #expect(src["file"] as? String == keep)
        #expect(src["line"] as? Int == 4)
        let keeper = try #require((r["kept_alive_by"] as? [[String: Any]])?.first, "\(r)")
        #expect(keeper["mechanism"] as? String == "started by hand")
        let rem = r["remediation"] as? [String] ?? []
        #expect(rem.first?.hasPrefix("kill \(spawner["pid"] as? Int ?? -1)") == true, "the supervisor before its instances: \(rem)")
        try await stopAsPrinted(rem, w, d, interval: 0.8)
    }

    func gunicornMaster(_ d: DaemonUnderTest, _ dir: String) async throws {
        let app = "rvapp_\(getpid())"
        try "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n"
            .write(toFile: "\(dir)/\(app).py", atomically: true, encoding: .utf8)
        let port = try freePort()
        let pidFile = dir + "/gunicorn.pid"
        try #require(Self.launch(["/usr/bin/gunicorn", "--chdir", dir, "-w", "2", "-b", "127.0.0.1:\(port)", "--daemon", "--pid", pidFile, "\(app):app"]) == 0)
        var master: Int32 = 0
        for _ in 0..<50 where master == 0 {
            try await Task.sleep(for: .milliseconds(100))
            master = Int32(((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        try #require(master > 0, "gunicorn wrote no pid file")
        // The master replaces a worker that dies.
        for _ in 0..<50 where childrenOf(master).count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        let killed = try #require(childrenOf(master).first)
        kill(killed, SIGKILL)
        var respawned: Int32?
        for _ in 0..<100 where respawned == nil {
            try await Task.sleep(for: .milliseconds(100))
            respawned = childrenOf(master).first { $0 > killed }
        }
        let worker = try #require(respawned, "gunicorn did not replace its worker")
        try await d.settle()
        let j = try whoSpawnedJSON(worker, db: d.db)
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect(r["mechanism"] as? String == "process supervisor", "\(r)")
        #expect((r["spawner"] as? [String: Any])?["pid"] as? Int == Int(master))
        #expect((r["settings"] as? [String: String])?["kind"] == "gunicorn master")
        // The killed worker and its replacement; a live worker that only forked is announced lazily.
        #expect((r["instances"] as? Int ?? 0) >= 2, "\(r)")
        #expect((r["gap_seconds"] as? [Double])?.isEmpty == false)
        let rem = r["remediation"] as? [String] ?? []
        #expect(rem.first?.hasPrefix("kill \(master)") == true, "\(rem)")
        try run(rem)
        try await Task.sleep(for: .seconds(2))
        #expect(!Self.alive(master), "the master still runs")
        #expect(try sh(["/usr/bin/pgrep", "-f", "\(app):app"]).status == 1, "a gunicorn of the app still runs")
    }

    func loopInTmux(_ d: DaemonUnderTest, _ dir: String) async throws {
        let w = try Self.worker(dir, "tmux_worker")
        let socket = dir + "/tmux.sock"
        let loop = "while true; do \(Self.python) \(w.script!); sleep 0.5; done"
        #expect(Self.launch(["/usr/bin/tmux", "-S", socket, "new-session", "-d", "-s", "train", loop]) == 0)
        let r = try await answer(w, d)
        #expect(r["mechanism"] as? String == "shell loop", "\(r)")
        #expect(r["launcher_mechanism"] as? String == "tmux session")
        let settings = r["settings"] as? [String: String] ?? [:]
        #expect(settings["tmux_session"] == "train")
        #expect(settings["tmux_socket"] == socket)
        let rem = r["remediation"] as? [String] ?? []
        #expect(rem.first?.hasPrefix("tmux -S '\(socket)' kill-session -t '=train'") == true, "\(rem)")
        try await stopAsPrinted(rem, w, d, interval: 0.8)
        #expect(try sh(["/usr/bin/tmux", "-S", socket, "has-session", "-t", "=train"]).status != 0, "the session is gone")
    }

    func loopInScreen(_ d: DaemonUnderTest, _ dir: String) async throws {
        let w = try Self.worker(dir, "screen_worker")
        let name = "rvsweep\(getpid())"
        let loop = "while true; do \(Self.python) \(w.script!); sleep 0.5; done"
        #expect(Self.launch(["/usr/bin/screen", "-dmS", name, "/bin/sh", "-c", loop]) == 0)
        let r = try await answer(w, d)
        #expect(r["mechanism"] as? String == "shell loop", "\(r)")
        #expect(r["launcher_mechanism"] as? String == "screen session")
        let session = (r["settings"] as? [String: String])?["screen_session"] ?? ""
        #expect(session.hasSuffix(".\(name)"), "\(r)")
        let rem = r["remediation"] as? [String] ?? []
        #expect(rem.first?.hasPrefix("screen -S '\(session)' -X quit") == true, "\(rem)")
        try await stopAsPrinted(rem, w, d, interval: 0.8)
    }

    /// Running, not a zombie its adopter has yet to reap.
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// Starts something that stays in the background: no pipe of ours may stay open in it.
    static func launch(_ argv: [String]) -> Int32 {
        spawn(argv, stdout: "/dev/null", stderr: "/dev/null").status
    }

    /// The answer for the newest of at least three instances of `w`.
    func answer(_ w: Program, _ d: DaemonUnderTest) async throws -> [String: Any] {
        func instances() -> [StoredProcess] { (try? Store(path: d.db, readOnly: true).instances(program: w)) ?? [] }
        for _ in 0..<100 where instances().count < 3 { try await Task.sleep(for: .milliseconds(200)) }
        try await d.settle()
        let latest = try #require(instances().first, "no instance of \(w)")
        let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
        return try #require(j["respawned_by"] as? [String: Any])
    }

    /// Each printed line through `sh`, as printed. A `kill` or `pkill` may find its target
    /// already gone with what an earlier line stopped (status 1, and for kill "No such process").
    func run(_ remediation: [String]) throws {
        try #require(!remediation.isEmpty)
        for c in remediation {
            let ran = try sh(["/bin/sh", "-c", c])
            let gone = ran.status == 1 && (c.hasPrefix("pkill") || c.hasPrefix("kill") && ran.err.contains("No such process"))
            #expect(ran.status == 0 || gone, "\(c): \(ran.status) \(ran.err)")
        }
    }

    /// Runs the remediation, then checks that no instance of `w` starts for twice its restart interval.
    func stopAsPrinted(_ remediation: [String], _ w: Program, _ d: DaemonUnderTest, interval: Double) async throws {
        try run(remediation)
        try await Task.sleep(for: .milliseconds(400))
        try await d.settle()
        let before = (try Store(path: d.db, readOnly: true).instances(program: w)).count
        try await Task.sleep(for: .seconds(max(2 * interval, 2)))
        try await d.settle()
        let after = (try Store(path: d.db, readOnly: true).instances(program: w)).count
        #expect(after == before, "\(w) came back after the remediation: \(before) → \(after)")
        #expect(try sh(["/usr/bin/pgrep", "-f", w.script!]).status == 1, "\(w) still runs")
    }
}
