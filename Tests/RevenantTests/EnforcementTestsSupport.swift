import Dispatch
import Foundation
import Glibc
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantStore
import RevenantQuery
import RevenantOutputs
import RevenantDaemon
import RevenantTestSupport
import Testing

/// A worker whose very first act is to create `<its own path>.marker`.
struct MarkerWorker {
    let dir: String

    init() throws {
        dir = uniqueTempPath("worker")
        for v in ["v1", "v2"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(v)", withIntermediateDirectories: true)
        }
        let src = dir + "/worker.c"
        try """
            #include <fcntl.h>
            #include <string.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                char p[4096];
                strncpy(p, argv[0], sizeof(p) - 8); strcat(p, ".marker");
                int fd = open(p, O_CREAT | O_WRONLY | O_APPEND, 0644);
                write(fd, "x", 1);
                return 0;
            }
            """.write(toFile: src, atomically: true, encoding: .utf8)
        // The same program at two paths: two inodes, v1 blocklisted, v2 not.
        for v in ["v1", "v2"] {
            let r = spawn(["cc", "-O2", "-o", "\(dir)/\(v)/worker", src])
            try #require(r.status == 0, "cc failed")
            try "open(__file__ + '.marker', 'a').write('x')\n".write(toFile: "\(dir)/\(v)/training_worker.py", atomically: true, encoding: .utf8)
        }
    }

    func path(_ v: String) -> String { "\(dir)/\(v)/worker" }
    func script(_ v: String) -> String { "\(dir)/\(v)/training_worker.py" }
    func marker(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p + ".marker") }
    func markerCount(_ p: String) -> Int { (try? Data(contentsOf: URL(fileURLWithPath: p + ".marker")).count) ?? 0 }

    func policy(_ rules: String, name: String = "policy.yaml") throws -> String {
        let p = dir + "/" + name
        try rules.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
}

func killedBySignal9(_ status: Int32) -> Bool { (status & 0x7f) == 9 }
