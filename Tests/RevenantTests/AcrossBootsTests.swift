import Foundation
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

@Suite struct AcrossBootsTests {
    /// PID 1 is a new process every boot; the unit file is the respawner that stays.
    @Test func aUnitInTwoBootsIsOneRespawnerAndCronStaysApart() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/systemd/system/w.service", "[Service]\nExecStart=/usr/bin/python3 /opt/w.py\nRestart=always\n")
        try f.write("/etc/cron.d/w", "* * * * * root /usr/bin/python3 /opt/w.py --id 9\n")
        var runs: [Instance] = []
        for (boot, base) in [(0, 0), (1, 1_000)] {
            let pid1 = ProcessRecord(id: Identity(pid: 1, startNs: UInt64(boot * 7 + 1)), parent: nil, comm: "systemd")
            for i in 0..<3 {
                let w = Build.record(Int32(100 + base + i), UInt64(base + i + 10), ["/usr/bin/python3", "/opt/w.py"], cgroup: "w.service")
                runs.append(Instance(process: w, ancestry: [pid1], startWallNs: Int64(base + i) * 1_000_000_000, exitWallNs: nil))
            }
        }
        let cron = Build.record(500, 5, ["/usr/sbin/cron", "-f"])
        for i in 0..<2 {
            let job = Build.record(Int32(600 + i * 3), UInt64(600 + i), ["/usr/sbin/CRON", "-f"])
            let shell = Build.record(Int32(601 + i * 3), UInt64(600 + i), ["/bin/sh", "-c", "/usr/bin/python3 /opt/w.py --id 9"])
            let w = Build.record(Int32(602 + i * 3), UInt64(601 + i), ["/usr/bin/python3", "/opt/w.py", "--id", "9"])
            runs.append(Instance(process: w, ancestry: [shell, job, cron], startWallNs: Int64(500 + i) * 1_000_000_000, exitWallNs: nil))
        }
        let latest = runs[5].process.id   // the second boot's newest unit instance
        let rep = Attributor.report(grouping: runs, target: latest, root: f.root, reader: ProcReader())
        #expect(rep.mechanism == .systemdService)
        #expect(rep.spawner?.id == Identity(pid: 1, startNs: 8).description, "this instance's own PID 1")
        #expect(rep.instances == 6, "both boots' instances under the one unit: \(rep.evidence)")
        #expect(rep.also_respawned_by.map(\.mechanism) == [.cron])
        #expect(rep.also_respawned_by.first?.source == "/etc/cron.d/w:1")
        #expect(rep.command_lines == ["/usr/bin/python3 /opt/w.py"])
    }
}
