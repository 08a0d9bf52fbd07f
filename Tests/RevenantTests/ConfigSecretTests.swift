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

@Suite struct ConfigSecretTests {
    /// A cron line read at query time holds a password: neither its text nor the remediation prints it.
    @Test func aSecretInACronLineIsNotPrinted() throws {
        let f = Fixture(); defer { f.cleanup() }
        let job = "/usr/bin/python3 /opt/w.py --db-password=hunter2"
        try f.write("/var/spool/cron/crontabs/alice", "* * * * * \(job)\n")
        let cron = Build.record(500, 5, ["/usr/sbin/cron", "-f"])
        var runs: [Instance] = []
        for i in 0..<2 {
            let cronJob = Build.record(Int32(600 + i * 3), UInt64(600 + i), ["/usr/sbin/CRON", "-f"])
            let shell = Build.record(Int32(601 + i * 3), UInt64(600 + i), ["/bin/sh", "-c", job])
            let w = Build.record(Int32(602 + i * 3), UInt64(601 + i), ["/usr/bin/python3", "/opt/w.py", "--db-password=[REDACTED]"])
            runs.append(Instance(process: w, ancestry: [shell, cronJob, cron], startWallNs: Int64(i) * 1_000_000_000, exitWallNs: nil))
        }
        let rep = Attributor.report(grouping: runs, target: nil, root: f.root, reader: ProcReader())
        #expect(rep.source?.file == "/var/spool/cron/crontabs/alice", "\(rep)")
        let json = String(decoding: try JSONEncoder().encode(rep), as: UTF8.self)
        #expect(!json.contains("hunter2"), "\(json)")
        #expect(rep.remediation.contains { $0.contains("holds a secret") })
    }
}
