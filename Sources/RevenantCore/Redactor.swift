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
    public var patterns: [String]

    public init(patterns: [String] = Redactor.defaults) { self.patterns = patterns }

    public func apply(_ argv: [String]) -> [String] {
        guard !patterns.isEmpty else { return argv }
        // A command string (`sh -c "…"`) hides its secrets word by word.
        var out = argv.map { a in
            a.contains(" ") ? apply(a.split(separator: " ", omittingEmptySubsequences: false).map(String.init)).joined(separator: " ") : a
        }
        var i = 0
        while i < out.count {
            let a = out[i]
            for p in patterns where Glob.match(p, a) {
                if p.contains("="), let eq = a.firstIndex(of: "=") {
                    out[i] = String(a[...eq]) + Redactor.mask
                } else if !p.contains("="), i + 1 < out.count {
                    out[i + 1] = Redactor.mask
                    i += 1
                }
                break
            }
            i += 1
        }
        return out
    }
}
