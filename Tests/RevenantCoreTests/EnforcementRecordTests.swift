import Testing
@testable import RevenantCore

@Suite struct EnforcementRecordTests {
    @Test func encodedFormReadsBackAsTheSameFields() {
        let e = Enforcement(rules: ["block-v1", "a \"quoted\" rule"], tier: .killAtExec, blocked: true,
                            message: "killed at exec by the kernel (rule \"block-v1\")")
        #expect(Enforcement(stored: e.encoded) == e)
    }

    @Test func sentencesFromBeforeTheFieldsAreReadOnce() {
        let killed = Enforcement(stored: "killed at exec by the kernel (rule \"block-v1\", \"other\")")
        #expect(killed.rules == ["block-v1", "other"] && killed.tier == .killAtExec && killed.blocked)
        let failed = Enforcement(legacy: "kill failed (rule \"r\")")
        #expect(failed.tier == .userspaceKill && !failed.blocked && failed.rules == ["r"])
        let audited = Enforcement(legacy: "audited (rule \"watch\")")
        #expect(audited.tier == nil && !audited.blocked && audited.rules == ["watch"])
        #expect(Enforcement(legacy: "denied exec of /x (rule \"d\")").tier == .deny)
    }
}

@Suite struct ProgramMatchTests {
    func image(_ argv: [String], exe: String = "/usr/bin/python3.11") -> Image {
        Image(time: 0, filename: exe, argv: argv, comm: "python3")
    }

    @Test func theScriptOrTheExeNamesTheProgram() {
        #expect(image(["python3", "/opt/w/training_worker.py", "--id", "3"]).runsProgram(matching: "training_worker.py"))
        #expect(image(["python3", "x.py"]).runsProgram(matching: "python3.11"))
        #expect(image(["/opt/w/worker bin"], exe: "/opt/w/worker bin").runsProgram(matching: "worker"))
    }

    @Test func aCommandLineInOneArgumentIsNotTheProgram() {
        #expect(!image(["/bin/sh", "-c", "python3 /opt/w/training_worker.py"], exe: "/bin/dash").runsProgram(matching: "training_worker.py"))
        #expect(!image(["pgrep", "-f", "training_worker.py worker"], exe: "/usr/bin/pgrep").runsProgram(matching: "training_worker.py"))
    }
}
