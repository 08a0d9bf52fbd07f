extension Image {
    /// Whether this image runs the program named by `text`: its exe path, its argv[0], or one
    /// of its arguments contains the text. A whole command line passed as one argument (a
    /// shell's `-c` string, `pgrep -f`'s pattern) names the program, it does not run it.
    /// The one rule every command (`timeline --match`, `verify --match`) selects programs by.
    public func runsProgram(matching text: String) -> Bool {
        if filename.contains(text) { return true }
        if let first = argv.first, first.contains(text) { return true }
        return argv.dropFirst().contains { $0.contains(text) && !$0.contains(where: \.isWhitespace) }
    }
}
