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

/// The deny tier needs BPF LSM, which this machine's kernel refuses: boot Debian's own kernel
/// under qemu with `lsm=…,bpf`, this host's root shared read-only, and run the daemon there.
@Suite struct DenyOnStockKernelTests {
    @Test(.kernel, .timeLimit(.minutes(10))) func execveFailsWithEPERMAndNothingRuns() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64"), "qemu-system-x86 is not installed: run scripts/install-deps.sh test")
        let dir = uniqueTempPath("qemu")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let guest = dir + "/guest.sh"
        try """
            set -u
            B=\(revenantBinary)
            D=/run/deny; mkdir -p $D/v1 $D/v2
            cp /bin/echo $D/v1/worker; cp /bin/echo $D/v2/worker
            echo 'print("script ran")' > $D/v1/worker.py
            printf 'rules:\\n  - name: deny-v1\\n    match: { exe: %s }\\n    action: deny\\n  - name: deny-v1-script\\n    match: { script: %s }\\n    action: deny\\n' $D/v1/worker $D/v1/worker.py > $D/policy.yaml
            $B run --db $D/db --audit-log $D/audit.jsonl --policy $D/policy.yaml 2>$D/log &
            daemon=$!
            for i in $(seq 600); do grep -q "policy loaded" $D/log && break; kill -0 $daemon || break; sleep 0.2; done
            cat $D/log
            $D/v1/worker ran > $D/v1.out 2>$D/v1.err; echo "V1-STATUS=$?"; cat $D/v1.err
            [ -s $D/v1.out ] && echo V1-RAN || echo V1-DID-NOT-RUN
            $D/v2/worker ran > $D/v2.out; echo "V2-STATUS=$?"; [ -s $D/v2.out ] && echo V2-RAN
            /usr/bin/python3 $D/v1/worker.py > $D/py.out 2>$D/py.err; echo "PY-STATUS=$?"; cat $D/py.err
            [ -s $D/py.out ] && echo PY-RAN || echo PY-DID-NOT-RUN
            sleep 1
            kill $daemon; wait $daemon
            grep -i "denied exec" $D/log
            echo "AUDIT-DENIED=$(grep -c 'denied exec of' $D/audit.jsonl)"
            exit 0
            """.write(toFile: guest, atomically: true, encoding: .utf8)
        // The guest runs for tens of seconds: block a Dispatch thread, not the test pool.
        let (status, text): (Int32, String) = try await withCheckedThrowingContinuation { cont in
            DispatchQueue.global().async {
                do {
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: packageRoot + "/scripts/qemu-run.sh")
                    p.arguments = [guest]
                    let out = Pipe()
                    p.standardOutput = out
                    p.standardError = FileHandle.nullDevice
                    try p.run()
                    let data = out.fileHandleForReading.readDataToEndOfFile()
                    p.waitUntilExit()
                    cont.resume(returning: (p.terminationStatus, String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r", with: "")))
                } catch {
                    cont.resume(throwing: error)
                }
            }
        }
        let p = (terminationStatus: status, ())
        #expect(p.terminationStatus == 0, "qemu-run: \(text.suffix(2000))")
        #expect(text.contains("lsm=active"), "the deny program must attach on a BPF-LSM kernel")
        #expect(text.contains("Operation not permitted"))
        #expect(text.contains("V1-STATUS=126"))
        #expect(text.contains("V1-DID-NOT-RUN"))
        #expect(text.contains("V2-RAN"), "the v2 copy runs")
        #expect(text.contains("denied exec (rule \"deny-v1\")"))
        // A script given to an interpreter: argv captured at syscall entry, the interpreter refused.
        #expect(text.contains("PY-STATUS=126"))
        #expect(text.contains("PY-DID-NOT-RUN"))
        #expect(text.contains("denied exec (rule \"deny-v1-script\")"))
        // Each caller was a bare fork of the shell (lazy forks: announced by the deny itself),
        // so each denial has its audit record with the caller's lineage.
        #expect(text.contains("AUDIT-DENIED=2"), "\(text.suffix(2000))")
    }
}
