import Foundation
import Glibc

public struct RunResult: Sendable {
    public let status: Int32
    public let out: String
    public let err: String
}

/// Runs a command to completion. Both pipes are read at once, so neither fills (64 KiB) and
/// blocks the child while the other is being read.
public func sh(_ argv: [String], input: String? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inp = Pipe()
    p.standardInput = input == nil ? FileHandle.nullDevice : inp
    try p.run()
    if let input {
        inp.fileHandleForWriting.write(Data(input.utf8))
        try? inp.fileHandleForWriting.close()
    }
    let errData = ErrBox()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { errData.data = err.fileHandleForReading.readDataToEndOfFile() }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let e = errData.data
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Runs the revenant CLI and returns (status, stdout, stderr).
public func revenant(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try sh([revenantBinary] + args)
}

/// posix_spawn + waitpid: the child is exactly the spawned PID, no helper process between.
@discardableResult
public func spawn(_ argv: [String], wait: Bool = true, stdout: String? = nil, stderr: String? = nil) -> (pid: pid_t, status: Int32) {
    var pid: pid_t = 0
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdout { posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    if let stderr { posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    let cargs = argv.map { strdup($0) } + [nil]
    defer { cargs.forEach { free($0) } }
    // Test runner threads may block signals; children must start with none blocked.
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t(), defaults = sigset_t()
    sigemptyset(&empty)
    sigemptyset(&defaults)
    for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, s) }
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let rc = posix_spawnp(&pid, argv[0], &actions, &attr, cargs, environ)
    precondition(rc == 0, "posix_spawn \(argv[0]) failed: \(rc)")
    var status: Int32 = 0
    if wait { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
    return (pid, status)
}

private final class ErrBox: @unchecked Sendable { var data = Data() }

/// Checks OCSF records (JSON lines) with an OCSF validator that is not revenant's: the OCSF
/// schemas from PyPI's ocsf-json-schema, checked by jsonschema (scripts/ocsf-validate.py).
/// `out` names each invalid record and field; `err` the count by class.
public func ocsfValidate(_ paths: [String]) throws -> (status: Int32, out: String, err: String) {
    let probe = try sh(["/usr/bin/env", "python3", "-c", "import ocsf_json_schema, jsonschema"])
    guard probe.status == 0 else {
        return (3, "", "the OCSF validator is not installed (run scripts/install-deps.sh test): \(probe.err)")
    }
    return try sh(["/usr/bin/env", "python3", packageRoot + "/scripts/ocsf-validate.py"] + paths)
}
