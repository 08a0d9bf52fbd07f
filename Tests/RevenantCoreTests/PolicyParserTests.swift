import CRevenantABI
import RevenantTestSupport
import Testing
@testable import RevenantCore

@Suite struct PolicyParserTests {
    @Test func parsesARule() throws {
        let p = try PolicyParser.parse("""
            version: 1
            rules:
              - name: block-v1
                match:
                  exe: /usr/bin/python3.11
                  script: /opt/ai-video-codec/workers/training_worker.py
                action: kill
                kill_existing: true
              - name: watch
                match: { comm: cron, argv: "*-f*" }
                action: audit
            """, file: "p.yaml")
        #expect(p.rules.count == 2)
        #expect(p.rules[0].action == .kill)
        #expect(p.rules[0].killExisting)
        #expect(p.rules[0].match.script == "/opt/ai-video-codec/workers/training_worker.py")
        #expect(p.rules[0].line == 3)
        #expect(p.rules[1].match.argv == "*-f*")
    }

    @Test func unknownActionNamesLineColumnAndFix() {
        let e = parseError("""
            rules:
              - name: x
                match:
                  script: w.py
                action: kil
            """)
        #expect(e?.description == "policy.yaml:5:13: unknown action \"kil\" (expected audit, kill, deny)")
    }

    @Test func typosGetASuggestion() {
        let e = parseError("""
            rules:
              - name: x
                match:
                  scritp: w.py
                action: kill
            """)
        #expect(e?.line == 4)
        #expect(e?.message.contains("did you mean `script`") == true)
    }

    @Test func structuralMistakes() {
        #expect(parseError("")?.message.contains("empty policy") == true)
        #expect(parseError("rules: 3")?.message.contains("must be a list") == true)
        #expect(parseError("- a\n- b")?.message.contains("mapping with `rules:`") == true)
        #expect(parseError("rules:\n  - name: a\n    action: kill")?.message.contains("no `match:`") == true)
        #expect(parseError("rules:\n  - name: a\n    match: {exe: bin/x}\n    action: kill")?.message.contains("absolute path") == true)
        #expect(parseError("rules:\n  - name: a\n    match: {comm: abcdefghijklmnopq}\n    action: kill")?.message.contains("15 bytes") == true)
        #expect(parseError("rules:\n  - name: a\n    match: {argv: '*x*'}\n    action: kill")?.message.contains("can only audit") == true)
        #expect(parseError("rules:\n  - name: a\n    match: {script: a.py}\n    action: kill\n    kill_existing: maybe")?.message.contains("true or false") == true)
        let dup = parseError("rules:\n  - name: a\n    match: {script: a.py}\n    action: kill\n  - name: a\n    match: {script: b.py}\n    action: kill")
        #expect(dup?.line == 5)
        #expect(dup?.message.contains("duplicate rule name") == true)
        let yaml = parseError("rules:\n  - name: [unclosed\n")
        #expect(yaml?.line ?? 0 > 0)
        #expect(yaml?.message.hasPrefix("YAML") == true)
    }

    @Test func tooManyRules() {
        let rules = (0...Policy.maxRules).map { "  - name: r\($0)\n    match: {script: s\($0).py}\n    action: kill" }.joined(separator: "\n")
        #expect(parseError("rules:\n" + rules)?.message.contains("at most 32") == true)
    }

    @Test func fuzzedInputNeverCrashes() {
        let seed = """
            version: 1
            rules:
              - name: block-v1
                match: {exe: /usr/bin/python3, script: /opt/w/training_worker.py, comm: python3}
                action: deny
                kill_existing: true
            """
        var rng = SeededGenerator.fromEnvironment()
        let alphabet = Array("- :{}[]\n\t'\"#&*!|>%@`abcxyz/.0123456789")
        for _ in 0..<3000 {
            var chars = Array(seed)
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let i = Int.random(in: 0..<chars.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: chars[i] = alphabet.randomElement(using: &rng)!
                case 1: chars.remove(at: i)
                default: chars.insert(alphabet.randomElement(using: &rng)!, at: i)
                }
            }
            if let e = parseError(String(chars)) {
                #expect(!e.message.isEmpty, "\(rng)")
            }
        }
        for _ in 0..<500 {
            let junk = String((0..<Int.random(in: 0...200, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            _ = parseError(junk)
        }
    }
}
