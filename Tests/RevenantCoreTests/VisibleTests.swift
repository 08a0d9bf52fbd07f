import Testing
@testable import RevenantCore

@Suite struct VisibleTests {
    @Test func controlsAreShownNotObeyed() {
        #expect(Visible.escape("a\u{1b}]0;pwned\u{07}b") == "a\\e]0;pwned\\x07b")
        #expect(Visible.escape("x\nFORGED y") == "x\\nFORGED y")
        #expect(Visible.escape("\u{202e}txt.exe") == "\\u{202e}txt.exe")
        #expect(Visible.escape("\u{9b}31m") == "\\x9b31m")
        #expect(Visible.escape("plain /opt/w.py --id 3 ünï") == "plain /opt/w.py --id 3 ünï")
    }

    @Test func csvCellsAreNotFormulas() {
        for bad in ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            #expect(Visible.csvCell(bad) == "'" + bad)
        }
        #expect(Visible.csvCell("python3") == "python3")
        #expect(Visible.csvCell("") == "")
    }
}
