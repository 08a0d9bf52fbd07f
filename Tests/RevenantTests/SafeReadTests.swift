import Foundation
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// Configuration is read as the process that uses it sees it, and nothing else.
@Suite struct SafeReadTests {
    @Test func aFIFOADeviceAndAHugeFileAreRefusedWithoutHanging() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/opt/ok.sh", "while true; do /opt/w; done\n")
        try FileManager.default.createDirectory(atPath: f.root + "/run", withIntermediateDirectories: true)
        #expect(mkfifo(f.root + "/run/fifo", 0o644) == 0)
        try f.link("/opt/zero", to: "/dev/zero")
        FileManager.default.createFile(atPath: f.root + "/opt/huge", contents: Data(repeating: 0x41, count: SafeRead.maxBytes + 1))
        #expect((try? SafeRead.lines("/opt/ok.sh", root: f.root).get())?.first == "while true; do /opt/w; done")
        #expect(SafeRead.lines("/run/fifo", root: f.root) == .failure(.notRegular("a FIFO")))
        // Resolved inside the root: the fixture has no /dev/zero of its own.
        #expect(SafeRead.lines("/opt/zero", root: f.root) == .failure(.missing))
        #expect(SafeRead.lines("/dev/zero") == .failure(.notRegular("a character device")))
        #expect(SafeRead.lines("/opt/huge", root: f.root) == .failure(.tooLarge))
        #expect(SafeRead.lines("/opt/none", root: f.root) == .failure(.missing))
    }

    @Test func anAbsoluteSymlinkStaysInsideTheRoot() throws {
        let f = Fixture(); defer { f.cleanup() }
        let host = uniqueTempPath("hostfile")
        try "host secret\n".write(toFile: host, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: host) }
        try f.link("/etc/rc.local", to: host)
        #expect(SafeRead.lines("/etc/rc.local", root: f.root) == .failure(.missing), "the root has no such file")
        try f.write(host, "container copy\n")
        #expect((try? SafeRead.lines("/etc/rc.local", root: f.root).get())?.first == "container copy")
    }

    @Test func aPathFromACommandLineIsReadOnlyIfItsUserCould() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/shadow", "root:*:19000:0:99999:7:::\n")
        chmod(f.root + "/etc/shadow", 0o640)
        #expect(SafeRead.lines("/etc/shadow", root: f.root, user: (uid: 1000, gid: 1000)) == .failure(.notReadableBy(1000)))
        #expect((try? SafeRead.lines("/etc/shadow", root: f.root, user: (uid: 0, gid: 0)).get()) != nil)
    }

    /// A hostile loop: `bash -s /etc/shadow < loop.sh` respawning a program named `root`.
    @Test func aHostileLoopGetsNoSourceAndPrintsNothingOfTheFile() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/shadow", "root:*:19000:0:99999:7:::\n")
        let shell = Build.record(500, 1_000, ["/bin/bash", "-s", "/etc/shadow"])
        let runs = (0..<3).map { i in
            Instance(process: Build.record(600 + Int32(i), 2_000 + UInt64(i), ["root"], parent: shell.id), ancestry: [shell],
                     startWallNs: Int64(2_000 + i) * 1_000_000_000, exitWallNs: nil)
        }
        let rep = Attributor.report(Attribution.analyze(runs), instances: runs, root: f.root, reader: ProcReader())
        #expect(rep.mechanism == .shellLoop)
        #expect(rep.source == nil)
        let text = "\(rep.evidence) \(rep.remediation)"
        #expect(!text.contains("19000") && !text.contains("shadow:"), "\(text)")
        #expect(!rep.remediation.contains { $0.contains("/etc/shadow") })
    }

    @Test func aLoopScriptNamesTheLineThatRunsTheWorkerAndTheStopsParse() throws {
        let f = Fixture(); defer { f.cleanup() }
        let worker = ["/usr/bin/python3", "/opt/w/training_worker.py", "--name", "it's"]
        try f.write("/opt/loop.sh", "#!/bin/sh\nW=/opt/w/training_worker.py\nwhile true; do\n  /usr/bin/python3 /opt/w/training_worker.py --name \"it's\"\n  sleep 1\ndone\n")
        let shell = Build.record(500, 1_000, ["/bin/sh", "/opt/loop.sh"])
        let runs = (0..<3).map { i in
            Instance(process: Build.record(600 + Int32(i), 2_000 + UInt64(i), worker, parent: shell.id), ancestry: [shell],
                     startWallNs: Int64(2_000 + i) * 1_000_000_000, exitWallNs: nil)
        }
        let rep = Attributor.report(Attribution.analyze(runs), instances: runs, root: f.root, reader: ProcReader())
        #expect(rep.source?.file == "/opt/loop.sh")
        #expect(rep.source?.line == 4, "the line that runs it, not the assignment")
        let script = rep.remediation.joined(separator: "\n")
        let check = try sh(["/bin/sh", "-n", "-c", script])
        #expect(check.status == 0, "remediation parses as shell: \(script) \(check.err)")
        #expect(script.contains("pkill -f -- '^/usr/bin/python3 /opt/w/training_worker\\.py --name it'\\''s'"), "\(script)")
    }
}
