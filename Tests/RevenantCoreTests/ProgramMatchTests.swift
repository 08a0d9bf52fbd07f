import Testing
@testable import RevenantCore

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
