import Testing
@testable import RevenantCore

@Suite struct ShellInvocationTests {
    @Test func theScriptFileIsTheFirstOperandOnly() {
        #expect(ShellInvocation.scriptFile(["/bin/sh", "/opt/loop.sh"]) == "/opt/loop.sh")
        #expect(ShellInvocation.scriptFile(["bash", "-e", "-o", "pipefail", "loop.sh", "x"]) == "loop.sh")
        #expect(ShellInvocation.scriptFile(["/bin/bash", "--rcfile", "/etc/shadow", "/opt/loop.sh"]) == "/opt/loop.sh")
        #expect(ShellInvocation.scriptFile(["busybox", "sh", "/opt/loop.sh"]) == "/opt/loop.sh")
        #expect(ShellInvocation.scriptFile(["/bin/sh", "--", "/opt/loop.sh"]) == "/opt/loop.sh")
    }

    @Test func aCommandStringOrStandardInputHasNoScriptFile() {
        #expect(ShellInvocation.scriptFile(["bash", "-s", "/etc/shadow"]) == nil)
        #expect(ShellInvocation.scriptFile(["sh", "-c", "while :; do w; done", "/etc/shadow"]) == nil)
        #expect(ShellInvocation.scriptFile(["sh", "-ec", "w", "x"]) == nil)
        #expect(ShellInvocation.scriptFile(["bash"]) == nil)
        #expect(ShellInvocation.scriptFile(["/usr/bin/python3", "/etc/shadow"]) == nil, "not a shell")
    }
}
