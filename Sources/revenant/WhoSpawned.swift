import ArgumentParser
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct WhoSpawned: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "who-spawned",
        _superCommandName: "revenant",
        abstract: "Show the fork-time ancestry of a process, live or exited, from the store.",
        discussion: """
            Reads the store (the daemon need not run). A live process missing from the store is read \
            from /proc, and the output says so. Exit 0 found, 1 unknown PID, 2 store unreadable.

            Examples:
              revenant who-spawned 7085
              revenant who-spawned 7085 --id 7085@1234.567890123
              revenant who-spawned 7085 --at 18:42 --json
            """
    )

    @Argument(help: "The PID.") var pid: Int32
    @OptionGroup var store: StoreOptions
    @Option(help: "Pick the incarnation alive at this time (ISO 8601, 'HH:MM[:SS]' today, or Unix seconds).") var at: String?
    @Option(help: "Pick the incarnation with this identity (as printed, e.g. 7085@1234.567890123).") var id: String?
    @Flag(help: "Full command lines.") var full = false
    @OptionGroup var config: RootOptions
    @OptionGroup var output: JSONOptions

    func run() throws {
        var q = WhoSpawnedQuery(pid: pid, db: store.db)
        q.root = config.root
        if let id {
            guard let want = Identity(id) else { throw Failure("--id \(id): not an identity (expected PID@SECONDS.FRACTION)") }
            q.choice = .identity(want)
        } else if let at {
            guard let t = TimeArgument.parse(at) else { throw Failure("--at \(at): expected ISO 8601, HH:MM[:SS] or Unix seconds") }
            q.choice = .aliveAt(Int64(t.timeIntervalSince1970 * 1e9), shown: at)
        }
        let answer = try Failure.answering { try q.run() }
        if output.json {
            LineWriter.stdout.json(WhoSpawnedText.json(answer))
        } else {
            if let note = answer.note { warn(note) }
            WhoSpawnedText.print(answer, full: full)
        }
    }
}

