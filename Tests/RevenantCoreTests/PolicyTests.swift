import CRevenantABI
import RevenantTestSupport
import Testing
@testable import RevenantCore

private let ctx = SafetyContext(pid1Exe: "/lib/systemd/systemd", selfExe: "/usr/local/bin/revenant")

private func parseError(_ yaml: String) -> PolicyError? {
    do { _ = try PolicyParser.parse(yaml, file: "policy.yaml"); return nil } catch { return error }
}

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

@Suite struct PolicyCompilerTests {
    func rule(_ m: PolicyMatch, _ a: PolicyAction = .kill, dangerous: Bool = false) -> Policy {
        Policy(file: "p.yaml", rules: [PolicyRule(name: "r", match: m, action: a, allowDangerous: dangerous, line: 2)])
    }

    @Test func railsRefuseWhatTheHostNeeds() {
        let refused: [PolicyMatch] = [
            PolicyMatch(exe: "/bin/bash"),
            PolicyMatch(exe: "/usr/bin/python3.11"),
            PolicyMatch(exe: "/usr/sbin/sshd"),
            PolicyMatch(exe: "/lib/systemd/systemd"),
            PolicyMatch(exe: "/usr/local/bin/revenant"),
            PolicyMatch(comm: "sh"),
            PolicyMatch(comm: "sshd"),
            PolicyMatch(script: "bash"),
        ]
        for m in refused {
            #expect(throws: PolicyError.self, "\(m)") { try PolicyCompiler.compile(rule(m), context: ctx) }
            #expect((try? PolicyCompiler.compile(rule(m, dangerous: true), context: ctx)) != nil)
        }
        do {
            _ = try PolicyCompiler.compile(rule(PolicyMatch(exe: "/bin/bash")), context: ctx)
        } catch {
            #expect(error.description.hasPrefix("p.yaml:2:"))
            #expect(error.message.contains("allow_dangerous: true"))
        }
        // An interpreter with a script is the normal case.
        #expect((try? PolicyCompiler.compile(rule(PolicyMatch(exe: "/usr/bin/python3.11", script: "/opt/w.py")), context: ctx)) != nil)
    }

    @Test func masksAndKeys() throws {
        let p = Policy(file: "p", rules: [
            PolicyRule(name: "a", match: PolicyMatch(exe: "/opt/bin/worker"), action: .kill),
            PolicyRule(name: "b", match: PolicyMatch(script: "/opt/w/train.py"), action: .deny),
            PolicyRule(name: "c", match: PolicyMatch(comm: "miner"), action: .audit),
        ])
        let c = try PolicyCompiler.compile(p, context: ctx, bitBase: 32)
        #expect(c.needExe == 1 << 32)
        #expect(c.needScript == 1 << 33)
        #expect(c.needComm == 1 << 34)
        #expect(c.kill == 1 << 32 && c.deny == 1 << 33 && c.audit == 1 << 34)
        #expect(c.scriptKeys.count == 5, "full, //full, and rel of name, ./name, ././name")
        #expect(c.rules(in: 1 << 33).map(\.name) == ["b"])
    }

    @Test func scriptMatchingByFullPathRelativeNameAndBasename() throws {
        let full = try PolicyCompiler.compile(rule(PolicyMatch(script: "/opt/v1/workers/training_worker.py")), context: ctx)
        let bit: UInt64 = 1
        func hit(_ c: CompiledPolicy, _ argv: [String], cwd: String) -> Bool {
            c.matches(exeMask: 0, scriptKeys: ScriptHash.keys(forExec: argv, filename: "/usr/bin/python3", cwd: cwd),
                      comm: "python3", argv: argv) & bit != 0
        }
        #expect(hit(full, ["python3", "/opt/v1/workers/training_worker.py"], cwd: "/"))
        #expect(hit(full, ["python3", "training_worker.py"], cwd: "/opt/v1/workers"))
        #expect(!hit(full, ["python3", "/opt/v2/workers/training_worker.py"], cwd: "/"), "the v2 copy runs")
        #expect(!hit(full, ["python3", "training_worker.py"], cwd: "/opt/v2/workers"))
        #expect(!hit(full, ["python3", "other.py"], cwd: "/opt/v1/workers"))
        let base = try PolicyCompiler.compile(rule(PolicyMatch(script: "training_worker.py")), context: ctx)
        #expect(hit(base, ["python3", "/opt/v2/workers/training_worker.py"], cwd: "/"))
        #expect(hit(base, ["python3", "training_worker.py"], cwd: "/tmp"))
    }

    @Test func fnvMatchesTheKnownVectors() {
        // FNV-1a 64 reference values.
        #expect(ScriptHash.full("") == 0xcbf2_9ce4_8422_2325)
        #expect(ScriptHash.full("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(ScriptHash.full("foobar") == 0x8594_4171_f739_67e8)
    }

    /// The kernel skips the map lookups for argv elements whose filter bit is clear: every key
    /// of a policy must have its bit set, and the layout must be the kernel's.
    @Test func scriptFilterHoldsEveryKeyInTheKernelsLayout() {
        #expect(ScriptHash.filterWords == Int(RV_SCRIPT_FILTER_WORDS))
        #expect(ScriptHash.filterShift == UInt64(RV_SCRIPT_FILTER_SHIFT))
        #expect(MemoryLayout<rv_policy>.size == 48 + 8 * (ScriptHash.filterWords + ExeHash.filterWords))
        let keys = ScriptHash.keys(forRule: "/opt/ai-video-codec/workers/training_worker.py") + ScriptHash.keys(forRule: "worker.py")
        let f = ScriptHash.filter(keys)
        for k in keys {
            let bit = Int(k >> ScriptHash.filterShift)
            #expect(f[bit / 64] & (1 << UInt64(bit % 64)) != 0)
        }
        #expect(f.map(\.nonzeroBitCount).reduce(0, +) <= keys.count)
        // An ordinary argument is (almost always) filtered out: this one is.
        let other = ScriptHash.full("--learning-rate=0.001")
        let ob = Int(other >> ScriptHash.filterShift)
        #expect(f[ob / 64] & (1 << UInt64(ob % 64)) == 0)
        #expect(ScriptHash.filter([UInt64]()) == [UInt64](repeating: 0, count: ScriptHash.filterWords))
    }

    /// Likewise for exe keys: the kernel looks an exe up only when its filter bit is set.
    @Test func exeFilterHoldsEveryKeyInTheKernelsLayout() {
        #expect(ExeHash.filterWords == Int(RV_EXE_FILTER_WORDS))
        #expect(ExeHash.filterShift == UInt64(RV_EXE_FILTER_SHIFT))
        #expect(ExeHash.mul == UInt64(RV_EXE_MUL))
        // The bit the kernel computes for a key, written out: top 10 bits of (ino ^ dev) * mul.
        #expect(ExeHash.bit(dev: 0, ino: 1) == Int(UInt64(0x9e37_79b9_7f4a_7c15) >> 54))
        let keys: [(dev: UInt64, ino: UInt64)] = [(0x0fe0_0001, 131_077), (0x0fe0_0001, 2_883_590), (0x0000_0023, 42)]
        let f = ExeHash.filter(keys)
        for k in keys {
            let b = ExeHash.bit(dev: k.dev, ino: k.ino)
            #expect(f[b / 64] & (1 << UInt64(b % 64)) != 0)
        }
        #expect(f.map(\.nonzeroBitCount).reduce(0, +) <= keys.count)
        #expect((0..<1_000).filter { i in
            let b = ExeHash.bit(dev: 0x0fe0_0001, ino: 500_000 + UInt64(i) * 7)
            return f[b / 64] & (1 << UInt64(b % 64)) != 0
        }.count < 20, "other inodes of the same device mostly miss it")
        #expect(ExeHash.filter([(dev: UInt64, ino: UInt64)]()) == [UInt64](repeating: 0, count: ExeHash.filterWords))
    }

    @Test func globs() {
        #expect(Glob.match("*--legacy*", "python3 w.py --legacy --x"))
        #expect(!Glob.match("*--legacy*", "python3 w.py"))
        #expect(Glob.match("python? *", "python3 w.py"))
        #expect(Glob.match("*", ""))
    }

    @Test func deviceNumbers() {
        // 254:0 from stat(2) is 0xfe00; the kernel keeps 254 << 20.
        #expect(DeviceNumber.kernel(fromUser: 0xfe00) == 254 << 20)
        #expect(DeviceNumber.kernel(fromUser: 0x0803) == (8 << 20) | 3)
        #expect(DeviceNumber.text(kernel: 266_338_304) == "254:0")
    }
}
