import Foundation
import Glibc
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// A small real filesystem (tmpfs with a size) for the store and the audit log.
final class SmallFS {
    let mount: String
    init(_ name: String, kib: Int = 1024) throws {
        mount = uniqueTempPath(name)
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let r = try sh(["/bin/mount", "-t", "tmpfs", "-o", "size=\(kib)k,mode=0755", "tmpfs", mount])
        guard r.status == 0 else { throw TestSupportError("mount tmpfs: \(r.err)") }
    }
    /// Fills it with dd until the filesystem says no space is left.
    func fill() throws {
        _ = try sh(["/bin/dd", "if=/dev/zero", "of=\(mount)/filler", "bs=4k"])
        var st = statvfs()
        statvfs(mount, &st)
        guard st.f_bavail == 0 else { throw TestSupportError("\(mount) still has \(st.f_bavail) blocks free") }
    }
    func free() { unlink(mount + "/filler") }
    deinit {
        _ = try? sh(["/bin/umount", "-l", mount])
        rmdir(mount)
    }
}

func killedBy9(_ status: Int32) -> Bool { status & 0x7f == SIGKILL }

func until(_ seconds: Int, _ cond: () -> Bool) async throws {
    for _ in 0..<(seconds * 10) where !cond() { try await Task.sleep(for: .milliseconds(100)) }
}

func spawnStatus(_ argv: [String]) -> Int32 {
    let s = spawn(argv).status
    return s & 0x7f == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
}
