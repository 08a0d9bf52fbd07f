import RevenantTestSupport
import Testing
@testable import RevenantCore

@Suite struct InlineLoopAttributionTests {
    let initP = Build.record(1, 0, ["/sbin/init"])

    @Test func aLoopLaunchedByCronIsTheRespawnerNotCron() {
        let cron = Build.record(500, 1, ["/usr/sbin/cron", "-f"])
        var job = Build.record(600, 50, ["/usr/sbin/CRON", "-f"]); job.exitTime = 60
        var jobSh = Build.record(601, 50, ["/bin/sh", "-c", "nohup sh -c 'while true; do python3 /opt/w.py; done' &"]); jobSh.exitTime = 60
        let loop = Build.record(602, 51, ["sh", "-c", "while true; do python3 /opt/w.py; done"])
        let chain: [ProcessRecord] = [loop, jobSh, job, cron, initP]
        var instances: [Instance] = []
        for k in 0..<3 {
            let w = Build.record(Int32(700 + k), UInt64(60 + k), ["python3", "/opt/w.py"])
            instances.append(Instance(process: w, ancestry: chain, startWallNs: Int64(k), exitWallNs: nil))
        }
        let f = Attribution.analyze(instances)
        #expect(f.mechanism == .shellLoop)
        #expect(f.spawner?.id == loop.id)
        #expect(f.launcherMechanism == .cron)
        #expect(f.launcher?.id == jobSh.id)
    }

    @Test func aContainersRestartsAreOneRespawnerThroughNewMonitors() {
        let cg = "libpod-" + String(repeating: "ab", count: 32) + ".scope"
        var instances: [Instance] = []
        for k in 0..<3 {
            let conmon = Build.record(Int32(800 + k * 10), UInt64(k * 10), ["/usr/bin/conmon", "-c", String(repeating: "ab", count: 32), "-n", "web"])
            let w = Build.record(Int32(801 + k * 10), UInt64(k * 10 + 1), ["/bin/sh", "-c", "sleep 2"], cgroup: cg)
            instances.append(Instance(process: w, ancestry: [conmon, initP], startWallNs: Int64(k), exitWallNs: nil))
        }
        let groups = Attribution.respawnGroups(instances)
        #expect(groups.count == 1)
        let f = Attribution.analyze(groups[0])
        #expect(f.mechanism == .container)
        #expect(f.unit == "podman abababababab")
    }
}
