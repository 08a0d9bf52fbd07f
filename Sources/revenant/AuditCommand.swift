import ArgumentParser
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The audit log.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify", abstract: "Check the hash chain; name the first record changed, removed or reordered. Exit 1 if broken.",
            discussion: """
                Examples:
                  revenant audit verify /var/log/revenant/audit.jsonl
                  revenant audit verify /var/log/revenant/audit.jsonl.2 /var/log/revenant/audit.jsonl.1 /var/log/revenant/audit.jsonl
                """)

        @Argument(help: "Audit files, oldest first (audit.jsonl.2 audit.jsonl.1 audit.jsonl).") var files: [String]

        func run() throws {
            for f in files where !LineFile(path: f).readable { throw Failure("cannot read \(f)", status: 2) }
            // Streamed: a 1 GB log is checked in the memory of one line.
            var v = AuditChain.Verifier()
            for f in files {
                for (i, line) in LineFile(path: f).enumerated() where !line.isEmpty {
                    if let p = v.check(line, file: f, line: i + 1, holds: holds) { throw Failure(p.description, status: 1) }
                }
            }
            LineWriter.stdout.line("ok: \(v.records) records, chain intact")
        }

        /// Whether any of the files holds record `seq`: read again, only at a gap in the chain.
        func holds(_ seq: Int) -> Bool {
            files.contains { f in LineFile(path: f).contains { AuditChain.Verifier.seq(in: $0) == seq } }
        }
    }
}
