/// What a shell's command line says it runs.
public enum ShellInvocation {
    /// Shell names, as argv[0] or comm: the one list attribution and the policy rails use.
    static let shells: Set<String> = ["sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "busybox", "ash"]

    public static func isShell(_ argv0: String) -> Bool {
        shells.contains(String(argv0.split(separator: "/").last ?? ""))
    }

    /// The script file a shell reads its commands from, or nil when it reads them from a `-c`
    /// string or from standard input (`-s`, or no operand). Options that take an argument
    /// (`-o opt`, `-O opt`, `--rcfile F`, `--init-file F`) are skipped with it: such an argument
    /// is never the script.
    public static func scriptFile(_ argv: [String]) -> String? {
        guard let first = argv.first, isShell(first) else { return nil }
        var args = argv.dropFirst()
        if String(first.split(separator: "/").last ?? "") == "busybox" {
            guard let applet = args.first, isShell(applet) else { return nil }
            args = args.dropFirst()
        }
        var i = args.startIndex
        while i < args.endIndex {
            let a = args[i]
            if a == "--" { i += 1; break }
            if a == "--rcfile" || a == "--init-file" { i += 2; continue }
            if a.hasPrefix("--") { i += 1; continue }
            if (a.hasPrefix("-") || a.hasPrefix("+")) && a.count > 1 {
                let letters = a.dropFirst()
                if letters.contains("c") || letters.contains("s") { return nil }
                i += letters.contains("o") || letters.contains("O") ? 2 : 1
                continue
            }
            break
        }
        guard i < args.endIndex else { return nil }
        return args[i]
    }
}
