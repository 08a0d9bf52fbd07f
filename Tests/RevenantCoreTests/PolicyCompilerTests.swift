import CRevenantABI
import RevenantTestSupport
import Testing
@testable import RevenantCore

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
