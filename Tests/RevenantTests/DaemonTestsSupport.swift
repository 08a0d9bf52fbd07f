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

/// A second daemon on the store of the first.
final class DaemonUnderTestReuse {
    let process = Process()
    let base: DaemonUnderTest
    init(_ d: DaemonUnderTest) { base = d }
    func start() async throws {
        try await DaemonUnderTest.launch(process, arguments: ["run", "--db", base.db, "--audit-log", base.audit],
                                         log: base.dir + "/daemon2.log", ready: "seeded from /proc")
    }
    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
