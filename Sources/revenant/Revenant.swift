import ArgumentParser
import Foundation

/// Every command names itself (`commandName:`): otherwise the argument parser derives each
/// name by reflection at every start, a sixth of a who-spawned's time.
@main
struct Revenant: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revenant",
        abstract: "Finds what keeps bringing a process back, from fork-time lineage traced in the kernel.",
        version: "0.1.0",
        subcommands: [Run.self, Trace.self, WhoSpawned.self, Timeline.self, Export.self, Verify.self, PolicyCommand.self, AuditCommand.self, Unpin.self, Doctor.self, BenchStore.self]
    )

    /// Failures print one line and exit with their own status; the rest is ArgumentParser's.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let f as Failure {
            warn(f.description)
            Foundation.exit(f.status)
        } catch {
            exit(withError: error)
        }
    }
}
