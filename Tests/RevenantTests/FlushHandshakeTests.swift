import Foundation
import Glibc
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// The CLI's flush request signals only the process that began the daemon's run: revenant by
/// name, started before the run (a reused PID starts after it).
@Suite struct FlushHandshakeTests {
    @Test func onlyTheProcessThatBeganTheRunIsAsked() async throws {
        let dir = uniqueTempPath("flushpid")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: dir + "/revenant")
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: dir + "/other")
        let daemon = spawn([dir + "/revenant", "30"], wait: false)
        let stranger = spawn([dir + "/other", "30"], wait: false)
        defer { for p in [daemon.pid, stranger.pid] { kill(p, SIGKILL); var st: Int32 = 0; waitpid(p, &st, 0) } }
        try await Task.sleep(for: .milliseconds(200))
        let now = WallClock.nowNs()
        func run(_ pid: Int32, startedAt: Int64) -> DaemonRun {
            DaemonRun(id: 1, boot: "b", startedWallNs: startedAt, lastSeenWallNs: startedAt, stoppedWallNs: nil,
                      stopReason: nil, lostEvents: 0, pid: pid)
        }
        #expect(FlushRequest.isDaemon(daemon.pid, of: run(daemon.pid, startedAt: now)))
        #expect(!FlushRequest.isDaemon(daemon.pid, of: run(daemon.pid, startedAt: now - 10_000_000_000)), "a PID reused after the run began")
        #expect(!FlushRequest.isDaemon(stranger.pid, of: run(stranger.pid, startedAt: now)), "not revenant")
        // An upgrade deletes the running binary: still the daemon.
        unlink(dir + "/revenant")
        #expect(FlushRequest.isDaemon(daemon.pid, of: run(daemon.pid, startedAt: now)))
    }
}
