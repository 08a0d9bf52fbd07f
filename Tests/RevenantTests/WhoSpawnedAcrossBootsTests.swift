import Foundation
import GRDB
import Glibc
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantStore
import RevenantQuery
import RevenantOutputs
import RevenantDaemon
import RevenantTestSupport
import Testing

/// who-spawned on a store alone. Early services get the same PID and start tick on every boot:
/// a row an earlier boot left without an exit must not pass for the process running now.
@Suite struct WhoSpawnedAcrossBootsTests {
    @Test func aRowFromAnEarlierBootIsNotTheRunningProcess() throws {
        let dir = uniqueTempPath("boots")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let me = try #require(ProcReader().identity(getpid()))
        let db = dir + "/revenant.db"
        do {
            let store = try Store(path: db)
            var b = StoreBatch(boot: "an-earlier-boot", bootEpochNs: 1_000_000_000)
            // Same PID, same start tick as this test process, never seen to exit.
            b.processes = [ProcessRecord(id: Identity(pid: me.pid, startNs: me.startNs + 1234), parent: nil, comm: "ghost")]
            try store.write(b, nowWallNs: 2_000_000_000)
        }
        let j = try whoSpawnedJSON(me.pid, db: db)
        #expect(j["source"] as? String == "proc", "the running process is read from /proc: \(j)")
        let incs = try #require(j["incarnations"] as? [[String: Any]])
        #expect(incs.count == 2)
        let ghost = try #require(incs.first { ($0["id"] as? String)?.hasSuffix("234") == true })
        #expect(ghost["status"] as? String == "gone, exit not seen")
        #expect(ghost["selected"] as? Bool == false)
        let text = try revenant(["who-spawned", String(me.pid), "--db", db])
        #expect(text.status == 0)
        #expect(text.out.contains("gone, exit not seen"), "\(text.out)")
    }
}
