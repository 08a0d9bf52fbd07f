/// Removes secrets from command lines before anything is stored, logged or audited.
/// A pattern is a glob over one argv element: `--password=*` hides what follows the first `=`
/// of a matching element; a pattern without `=` (`--password`) hides the element after it.
/// Words inside a command string (`sh -c "app --token=x"`) are treated the same way.
public struct Redactor: Sendable, Equatable {
    public static let mask = "[REDACTED]"
    public static let defaults = [
        "--password=*", "--passwd=*", "--pass=*", "--token=*", "--secret=*", "--api-key=*", "--apikey=*",
        "--access-key=*", "--secret-key=*", "--client-secret=*", "--auth=*",
        "*PASSWORD=*", "*PASSWD=*", "*TOKEN=*", "*SECRET=*", "*API_KEY=*",
        "--password", "--passwd", "--token", "--secret", "--api-key", "--client-secret",
    ]
    public let patterns: [String]
    // Split once: the daemon applies this to every exec, so most arguments must be rejected
    // without running a glob (an argument with no '=' cannot match a `KEY=*` pattern).
    private let valuePatterns: [String]
    private let flagLiterals: Set<String>
    private let flagGlobs: [String]

    public init(patterns: [String] = Redactor.defaults) {
        self.patterns = patterns
        valuePatterns = patterns.filter { $0.contains("=") }
        let flags = patterns.filter { !$0.contains("=") }
        let wild: (String) -> Bool = { $0.contains { "*?[".contains($0) } }
        flagLiterals = Set(flags.filter { !wild($0) })
        flagGlobs = flags.filter(wild)
    }

    public func apply(_ argv: [String]) -> [String] {
        guard !patterns.isEmpty else { return argv }
        var out = argv
        var i = 0
        while i < out.count {
            let a = out[i]
            let bytes = a.utf8
            if bytes.contains(0x20) {
                // A command string (`sh -c "…"`) hides its secrets word by word.
                if bytes.contains(0x3D) || bytes.contains(0x2D) {
                    out[i] = apply(a.split(separator: " ", omittingEmptySubsequences: false).map(String.init)).joined(separator: " ")
                }
            } else if bytes.contains(0x3D) {
                if valuePatterns.contains(where: { Glob.match($0, a) }), let eq = a.firstIndex(of: "=") {
                    out[i] = String(a[...eq]) + Redactor.mask
                }
            } else if i + 1 < out.count, flagLiterals.contains(a) || flagGlobs.contains(where: { Glob.match($0, a) }) {
                out[i + 1] = Redactor.mask
                i += 1
            }
            i += 1
        }
        return out
    }
}
