import RevenantTestSupport
import Testing
@testable import RevenantCore

/// One store, a day of history: the same worker run by a unit, by cron, and once by hand.
@Suite struct RespawnGroupTests {
    let pid1 = Build.record(1, 1, ["/sbin/init"])
    let cron = Build.record(300, 10, ["/usr/sbin/cron", "-f"])
    let sshd = Build.record(400, 20, ["/usr/sbin/sshd", "-D"])
    let worker = ["/usr/bin/python3", "/opt/w/training_worker.py"]

    func unitRun(_ pid: Int32, at t: Int64) -> Instance {
        let p = Build.record(pid, UInt64(t), worker, cgroup: "training-worker.service", parent: pid1.id)
        return Instance(process: p, ancestry: [pid1], startWallNs: t, exitWallNs: nil)
    }

    func cronRun(_ pid: Int32, at t: Int64) -> Instance {
        let job = Build.record(pid - 2, UInt64(t), ["/usr/sbin/cron", "-f"], parent: cron.id)
        let sh = Build.record(pid - 1, UInt64(t), ["/bin/sh", "-c", worker.joined(separator: " ")], parent: job.id)
        let p = Build.record(pid, UInt64(t), worker, parent: sh.id)
        return Instance(process: p, ancestry: [sh, job, cron, pid1], startWallNs: t, exitWallNs: nil)
    }

    @Test func eachInstanceIsAnsweredByItsOwnRespawner() {
        let bash = Build.record(500, 30, ["-bash"], parent: sshd.id)
        let byHand = Instance(process: Build.record(510, 40, worker, parent: bash.id), ancestry: [bash, sshd, pid1], startWallNs: 40, exitWallNs: 41)
        let all = [byHand, unitRun(1000, at: 100), unitRun(1001, at: 200), cronRun(2002, at: 300), cronRun(2012, at: 400), unitRun(1002, at: 500)]
        let forUnit = Attribution.respawnGroups(all, target: Identity(pid: 1001, startNs: 200))
        #expect(forUnit.first?.map(\.process.id.pid) == [1000, 1001, 1002])
        #expect(Attribution.analyze(forUnit[0]).mechanism == .systemdService)
        #expect(forUnit.count == 3)
        #expect(forUnit[1].map(\.process.id.pid) == [2002, 2012], "the other respawners, most recent first")
        #expect(Attribution.analyze(forUnit[1]).mechanism == .cron)
        #expect(forUnit[2].map(\.process.id.pid) == [510], "the run by hand is a group of its own")
        let forCron = Attribution.respawnGroups(all, target: Identity(pid: 2002, startNs: 300))
        #expect(forCron.first?.map(\.process.id.pid) == [2002, 2012])
        #expect(Attribution.analyze(forCron[0]).spawner?.id == cron.id, "cron's header names the cron daemon")
        #expect(Attribution.respawnGroups(all).first?.map(\.process.id.pid) == [1000, 1001, 1002], "the newest's group without a target")
    }
}
