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

/// A policy install that fails midway leaves the running policy in force and nothing behind
/// for the next install to inherit (the real kernel maps, a failure injected after N writes).
@Suite(.serialized) struct PolicyTransactionTests {
    @Test(.kernel, .timeLimit(.minutes(2))) func aFailedInstallLeavesTheRunningPolicyAndNoStaleKeys() async throws {
        try Kernel.check()
        let dir = uniqueTempPath("txn")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for v in ["v1", "v2", "v3"] { try FileManager.default.copyItem(atPath: "/bin/true", toPath: "\(dir)/\(v)") }
        func compiled(_ targets: [String], for e: Enforcer) throws -> CompiledPolicy {
            let rules = targets.map { PolicyRule(name: "block-\($0)", match: PolicyMatch(exe: "\(dir)/\($0)"), action: .kill) }
            return try PolicyCompiler.compile(Policy(file: "t.yaml", rules: rules), context: PolicyLoader.safetyContext(), bitBase: e.nextBitBase)
        }
        let rec = try Recorder()
        defer { Task { await rec.stop() } }
        let enforcer = Enforcer(tracer: rec.tracer, lsmActive: false)
        func killed(_ v: String) -> Bool { spawn(["\(dir)/\(v)"]).status & 0x7f == SIGKILL }

        try enforcer.install(try compiled(["v1"], for: enforcer))
        #expect(killed("v1") && !killed("v2") && !killed("v3"))

        // B writes v3's key, then fails: A stays in force, and nothing of B matches.
        enforcer.failAfterWrites = 1
        let b = try compiled(["v3", "v2"], for: enforcer)
        #expect(throws: BPFError.self) { try enforcer.install(b) }
        #expect(enforcer.current?.rules.map(\.name) == ["block-v1"])
        #expect(killed("v1") && !killed("v2") && !killed("v3"), "the running policy, and only it")

        // C in the same half: what B left must not make v3 match C's rule 0.
        enforcer.failAfterWrites = nil
        let c = try compiled(["v2"], for: enforcer)
        try enforcer.install(c)
        #expect(!killed("v1") && killed("v2") && !killed("v3"), "exactly C")
    }
}
