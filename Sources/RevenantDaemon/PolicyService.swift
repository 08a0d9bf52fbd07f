import Foundation
import Logging
import RevenantCore
import RevenantOutputs
import RevenantQuery
import RevenantStore
import RevenantKernel
import RevenantHost
import ServiceLifecycle
import UnixSignals

/// Reads and checks the policy file at start and on SIGHUP, off the ring-buffer thread, and
/// hands each valid policy to the ingest thread, which installs it in the kernel maps. An
/// invalid file at start ends the daemon; on reload it is logged and the running policy stays.
struct PolicyService: Service {
    let path: String?
    let ingest: Ingest
    let audit: AuditSink
    let log: Logger

    func run() async throws {
        guard let path else {
            for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
                log.warning("SIGHUP: no policy file to reload (start with --policy)")
            }
            return
        }
        do {
            ingest.offer(try check(path), path: path)
        } catch {
            ingest.stop(reason: "invalid policy")
            throw error
        }
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                ingest.offer(try check(path), path: path)
            } catch {
                log.error("policy reload rejected, previous policy stays in force", metadata: ["error": "\(error)"])
                audit.submit(.record(.daemon("policy rejected", timeMs: WallClock.nowMs(), detail: "\(error)", severity: 3), sync: true))
            }
        }
    }

    /// Parsed and compiled once here, so a bad file is refused with its file and line before
    /// the ingest sees it; the ingest compiles again for the half of the maps it writes.
    private func check(_ path: String) throws(PolicyError) -> Policy {
        let policy = try PolicyLoader.read(path)
        _ = try PolicyCompiler.compile(policy, context: PolicyLoader.safetyContext(), bitBase: 0)
        return policy
    }
}
