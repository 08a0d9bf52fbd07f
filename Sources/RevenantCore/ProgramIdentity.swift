/// What program an image runs, whatever its arguments: the executable, and for a shell or an
/// interpreter the script (or module) it runs. `worker.py --id 3` and `--id 4` are one program;
/// `python3 -c …` is python3 itself.
public struct Program: Hashable, Sendable, CustomStringConvertible {
    public var executable: String
    /// The script's absolute path (lexically normalised against the exec's cwd), `-m module`,
    /// `-c TEXT` for an inline program, or nil when the image runs no script.
    public var script: String?

    public init(executable: String, script: String? = nil) {
        // A `#!` script exec'd directly is both: once is enough.
        self.executable = executable; self.script = script == executable ? nil : script
    }

    /// One string: what the store indexes and groups by.
    public var key: String { script.map { executable + " " + $0 } ?? executable }
    public var description: String { key }

    /// A word every command line or exe of the program holds: what the store's text search
    /// narrows leaf batches with before the exact comparison.
    public var needle: String {
        let s = script ?? executable
        if s.hasPrefix("-c ") || s.hasPrefix("-m ") { return String(s.dropFirst(3)) }
        return String(s.split(separator: "/").last ?? Substring(s))
    }

    public init(_ image: Image) {
        let exe = Program.normalize(image.filename, cwd: image.cwd)
        let argv = image.argv
        let base = Program.basename(argv.first ?? exe)
        let exeBase = Program.basename(exe)
        if ShellInvocation.isShell(base) || ShellInvocation.isShell(exeBase) {
            self.init(executable: exe, script: ShellInvocation.scriptFile(argv).map { Program.normalize($0, cwd: image.cwd) }
                      ?? Program.inline(argv, flags: ["-c"]))
        } else if SafetyContext.isInterpreter(base) || SafetyContext.isInterpreter(exeBase) {
            self.init(executable: exe, script: Program.interpreterOperand(argv, cwd: image.cwd)
                      ?? Program.inline(argv, flags: Program.inlineFlags))
        } else {
            self.init(executable: exe)
        }
    }

    /// The script an interpreter runs: its first operand, after options (and their arguments).
    /// An inline program (`-c`, `-e`, `--eval`, `-p`) is no script; `-m mod` and `-jar F` are.
    static func interpreterOperand(_ argv: [String], cwd: String?) -> String? {
        let takesArgument: Set<String> = ["-W", "-X", "-I", "-cp", "-classpath", "--class-path", "--require", "-r", "-M", "--import"]
        var i = 1
        while i < argv.count {
            let a = argv[i]
            if a == "--" { i += 1; break }
            if a == "-m" || a == "-jar" {
                guard i + 1 < argv.count else { return nil }
                return a == "-m" ? "-m " + argv[i + 1] : normalize(argv[i + 1], cwd: cwd)
            }
            if inlineFlags.contains(a) || a == "-" { return nil }
            if a.hasPrefix("-") {
                i += takesArgument.contains(a) ? 2 : 1
                continue
            }
            break
        }
        guard i < argv.count else { return nil }
        return normalize(argv[i], cwd: cwd)
    }

    /// Interpreter options whose argument is the program text itself.
    static let inlineFlags: Set<String> = ["-c", "-e", "-E", "--eval", "-p", "--print"]

    /// An inline program (`sh -c 'while …'`, `python3 -c …`) is its own text: `-c TEXT`.
    static func inline(_ argv: [String], flags: Set<String>) -> String? {
        guard let i = argv.dropFirst().firstIndex(where: { flags.contains($0) || ($0.hasPrefix("-") && !$0.hasPrefix("--") && $0.hasSuffix("c") && flags.contains("-c")) }),
              i + 1 < argv.count else { return nil }
        return "-c " + argv[i + 1]
    }

    /// `path` made absolute against `cwd` (when known) and lexically normalised: `.`, `..`, `//`.
    public static func normalize(_ path: String, cwd: String?) -> String {
        guard !path.isEmpty else { return path }
        var full = path
        if !path.hasPrefix("/") {
            guard let cwd, cwd.hasPrefix("/") else { return path }
            full = cwd + "/" + path
        }
        var parts: [Substring] = []
        for c in full.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { _ = parts.popLast(); continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func basename(_ s: String) -> String { String(s.split(separator: "/").last ?? Substring(s)) }
}

extension Image {
    public var program: Program { Program(self) }
}
