import ArgumentParser
import Foundation

/// Every command names itself (`commandName:`): otherwise the argument parser derives each
/// name by reflection at every start.
@main
struct Revenant: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revenant",
        abstract: "Finds what keeps bringing a process back, from fork-time lineage traced in the kernel.",
        version: "0.1.0",
        subcommands: [Run.self, Trace.self, WhoSpawned.self, Timeline.self, Export.self, Verify.self, PolicyCommand.self, AuditCommand.self, Unpin.self, Doctor.self]
    )

    /// The queries an operator waits on, parsed as commands of their own: parsing from the root
    /// also parses twice more for a completion-script request.
    /// (`_superCommandName` is what skips that.) Help, errors and whatever else they cannot parse
    /// go through the root as before.
    static let queries: [String: ParsableCommand.Type] = ["who-spawned": WhoSpawned.self, "timeline": Timeline.self]

    /// Failures print one line and exit with their own status; the rest is ArgumentParser's.
    static func main() async {
        let args = CommandLine.arguments.dropFirst()
        if let name = args.first, let query = queries[name], var command = try? query.parseAsRoot(Array(args.dropFirst())),
           type(of: command) == query {
            do {
                return try command.run()
            } catch let f as Failure {
                warn(f.description)
                Foundation.exit(f.status)
            } catch {
                exit(withError: error)
            }
        }
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
