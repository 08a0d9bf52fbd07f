import Foundation
import RevenantTestSupport
import Testing

/// `revenant trace` as an operator runs it.
@Suite(.serialized) struct TraceCommandTests {
    let binary = packageRoot + "/.build/debug/revenant"

    @Test(.kernel) func jsonLinesCarryLineage() async throws {
        try Kernel.check()
        let tok = token("cli")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        // Several: a shell started before the programs attached and gone before /proc was read
        // is unknown to any tracer; the last exec is surely after the attach.
        p.arguments = ["trace", "--json", "--exe", tok, "--count", "6"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        // Give the loader time to attach before the traced program runs.
        var lines: [String] = []
        for _ in 0..<40 where p.isRunning {
            try await Task.sleep(for: .milliseconds(250))
            spawn(["/bin/sh", "-c", "/bin/echo \(tok) >/dev/null; true"])
            if !p.isRunning { break }
        }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        lines = text.split(separator: "\n").map(String.init)
        #expect(p.terminationStatus == 0)
        try #require(lines.count >= 2, "got: \(text)")
        let objs = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let exec = try #require(objs.last { ($0["exe"] as? String) == "/bin/echo" && ($0["type"] as? String) == "exec" })
        #expect(exec["type"] as? String == "exec")
        for key in ["time", "pid", "id", "parent_pid", "parent_id", "exe", "argv", "cgroup"] {
            #expect(exec[key] != nil, "missing \(key)")
        }
        #expect((exec["argv"] as? [String]) == ["/bin/echo", tok])
        let ancestry = try #require(exec["ancestry"] as? [[String: Any]])
        #expect(ancestry.first?["comm"] as? String == "sh")
        #expect(exec["parent_pid"] as? Int == ancestry.first?["pid"] as? Int)
    }

    @Test(.kernel) func withoutRootItSaysWhatIsMissing() throws {
        try Kernel.check()
        // setpriv drops to nobody: the same binary, without privileges.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", binary, "trace"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 2)
        #expect(text.contains("needs root"), "got: \(text)")
    }

    @Test func everySubcommandHelpHasExamplesAndCompletionsGenerate() throws {
        for c in [["run"], ["trace"], ["who-spawned"], ["timeline"], ["export"], ["verify"], ["policy", "check"], ["audit", "verify"], ["doctor"]] {
            let h = try revenant(c + ["--help"])
            #expect(h.status == 0)
            #expect(h.out.contains("Examples:\n  revenant \(c.joined(separator: " "))"), "\(c) --help has an example")
        }
        // The queries parse without the root (Revenant.queries); their help and errors still
        // come through it, naming the tool.
        for q in ["who-spawned", "timeline"] {
            #expect(try revenant([q, "--help"]).out.contains("USAGE: revenant \(q)"))
            #expect(try revenant([q, "--help"]).out.contains("--version"), "the root's options, as for every subcommand")
            let bad = try revenant([q, "--no-such-option"])
            #expect(bad.status == 64 && bad.err.contains("See 'revenant \(q) --help'"), "\(bad.err)")
        }
        for shell in ["bash", "zsh", "fish"] {
            let g = try revenant(["--generate-completion-script", shell])
            #expect(g.status == 0 && g.out.contains("who-spawned"), "\(shell) completion")
        }
    }
}
