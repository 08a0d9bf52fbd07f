import ArgumentParser

@main
struct Revenant: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revenant",
        abstract: "Finds what keeps bringing a process back, from fork-time lineage traced in the kernel.",
        version: "0.1.0",
        subcommands: [Trace.self]
    )
}
