import RevenantTestSupport
import Testing
@testable import RevenantCore

@Suite struct ProgramIdentityTests {
    func program(_ argv: [String], exe: String? = nil, cwd: String? = "/srv") -> Program {
        Program(Image(time: 0, filename: exe ?? argv[0], argv: argv, comm: "", cwd: cwd))
    }

    @Test func argumentsDoNotMakeAnotherProgram() {
        let a = program(["/usr/bin/python3", "/opt/w/worker.py", "--id", "3"])
        let b = program(["/usr/bin/python3", "-u", "/opt/w/worker.py", "--id", "4"])
        #expect(a == b)
        #expect(a.key == "/usr/bin/python3 /opt/w/worker.py")
        #expect(a.needle == "worker.py")
    }

    @Test func relativeScriptsAreResolvedAgainstTheCwd() {
        #expect(program(["/usr/bin/python3", "./w/../w/worker.py"], cwd: "/opt").script == "/opt/w/worker.py")
        #expect(program(["/usr/bin/python3", "worker.py"], cwd: "/opt/w").script == "/opt/w/worker.py")
        #expect(program(["/bin/sh", "loop.sh"], cwd: "/root").key == "/bin/sh /root/loop.sh")
        #expect(program(["./run"], exe: "./run", cwd: "/opt//bin").executable == "/opt/bin/run")
        #expect(Program.normalize("//opt/./w//x.py", cwd: nil) == "/opt/w/x.py")
    }

    @Test func optionsAndTheirArgumentsAreNotTheScript() {
        #expect(program(["/usr/bin/python3", "-W", "ignore", "/opt/w.py"]).script == "/opt/w.py")
        #expect(program(["/usr/bin/python3", "-m", "http.server", "8000"]).script == "-m http.server")
        #expect(program(["/usr/bin/java", "-cp", "/x", "-jar", "/opt/app.jar"]).script == "/opt/app.jar")
        #expect(program(["/usr/bin/bash", "-o", "pipefail", "/opt/loop.sh"]).script == "/opt/loop.sh")
        #expect(program(["/usr/bin/node", "-r", "dotenv/config", "/srv/app.js"]).script == "/srv/app.js")
    }

    @Test func inlineProgramsAreTheirOwnText() {
        let a = program(["/bin/sh", "-c", "while true; do x; done"])
        #expect(a.script == "-c while true; do x; done")
        #expect(a.needle == "while true; do x; done")
        #expect(program(["/bin/sh", "-ec", "sleep 1"]).script == "-c sleep 1")
        #expect(program(["/usr/bin/python3", "-c", "print(1)"]) != program(["/usr/bin/python3", "-c", "print(2)"]))
        #expect(program(["/bin/sh", "-s", "/etc/shadow"]).script == nil, "-s reads standard input")
    }

    @Test func aBinaryIsItsExecutable() {
        #expect(program(["/usr/bin/sleep", "5"]) == program(["sleep", "9"], exe: "/usr/bin/sleep"))
        #expect(program(["/usr/bin/sleep", "5"]).needle == "sleep")
    }
}
