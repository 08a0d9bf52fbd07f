import Testing
@testable import RevenantCore

@Suite struct ScriptLineTests {
    let worker = ["/usr/bin/python3", "/opt/ai-video-codec/workers/training_worker.py", "--id", "3"]

    @Test func aLineThatRunsTheProgram() {
        #expect(ScriptLine.runs("  /usr/bin/python3 /opt/ai-video-codec/workers/training_worker.py --id 3", worker))
        #expect(ScriptLine.runs("( while true; do /usr/bin/python3 /opt/ai-video-codec/workers/training_worker.py; sleep 2; done ) &", worker))
        #expect(ScriptLine.runs("nohup python3 /opt/ai-video-codec/workers/training_worker.py --id 4 >/dev/null 2>&1 &", worker))
        #expect(ScriptLine.runs("/opt/rvtest/loop.sh &", ["/bin/sh", "/opt/rvtest/loop.sh"]), "a #! script run directly")
        #expect(ScriptLine.runs("exec /opt/bin/worker", ["/opt/bin/worker"]))
    }

    @Test func aSharedWordIsNotTheCommand() {
        #expect(!ScriptLine.runs("W=/opt/ai-video-codec/workers/training_worker.py", worker), "an assignment runs nothing")
        #expect(!ScriptLine.runs("export W=\"/opt/ai-video-codec/workers/training_worker.py\"", worker))
        #expect(!ScriptLine.runs("# /usr/bin/python3 /opt/ai-video-codec/workers/training_worker.py", worker))
        #expect(!ScriptLine.runs("echo starting training_worker.py", worker))
        #expect(!ScriptLine.runs("/usr/bin/python3 /opt/other/eval_worker.py", worker), "the interpreter alone is not the program")
        #expect(!ScriptLine.runs("root:*:19000:0:99999:7:::", ["root"]), "a word of a password file")
        #expect(!ScriptLine.runs("python3 $W", worker), "a variable cannot be followed: no line rather than a guess")
    }
}
