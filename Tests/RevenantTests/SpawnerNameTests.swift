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

@Suite struct SpawnerNameTests {
    /// A `( while … ) &` subshell forked by rc.local never exec'd: the kernel still named it.
    @Test func aForkedSubshellIsNamedByItsComm() {
        let sub = ProcessRecord(id: Identity(pid: 700, startNs: 1_000), parent: nil, comm: "rc.local")
        let runs = (0..<3).map { i in
            Instance(process: Build.record(800 + Int32(i), 2_000 + UInt64(i), ["/usr/bin/python3", "/opt/w.py"], parent: sub.id),
                     ancestry: [sub], startWallNs: Int64(2_000 + i) * 1_000_000_000, exitWallNs: nil)
        }
        let rep = Attributor.report(Attribution.analyze(runs), instances: runs, root: "/nonexistent", reader: ProcReader())
        #expect(rep.spawner?.name == "rc.local")
        #expect(rep.spawner?.comm == "rc.local")
    }
}
