import CRevenantABI
import RevenantTestSupport
import Testing
@testable import RevenantCore

let ctx = SafetyContext(pid1Exe: "/lib/systemd/systemd", selfExe: "/usr/local/bin/revenant")

func parseError(_ yaml: String) -> PolicyError? {
    do { _ = try PolicyParser.parse(yaml, file: "policy.yaml"); return nil } catch { return error }
}
