import RevenantTestSupport
import Testing
@testable import RevenantCore

func inst(_ p: ProcessRecord, _ chain: [ProcessRecord], at t: Int64) -> Instance {
    Instance(process: p, ancestry: chain, startWallNs: t, exitWallNs: t + 1)
}
