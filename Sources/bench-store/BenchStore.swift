import ArgumentParser
import Foundation
import RevenantCore
import RevenantStore
import RevenantQuery

/// `make bench`: store ingest rate and who-spawned query latency on a synthetic store.
@main
struct BenchStore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-store", abstract: "Benchmark the store and its queries on synthetic data (make bench).")

    @Option var db: String
    @Option var processes = 1_000_000
    @Option var depth = 6
    /// Short-lived children of each chain's last process, as on a host that execs a lot: most
    /// processes are leaves, stored many to a row.
    @Option var leavesPerChain = 24
    @Option var queries = 500
    /// Instances of one program under one loop shell, for the timeline figure.
    @Option var timelineInstances = 10_000

    /// What the stages share: the store, its boot, the leaves' PIDs, the clock of the synthetic history.
    struct Written {
        let store: Store
        let boot: String
        var bootEpochNs: Int64 = 1_700_000_000_000_000_000
        var t: UInt64 = 1_000_000_000
        var leaves: [Int32] = []
    }

    func run() throws {
        try? FileManager.default.removeItem(atPath: db)
        // A real boot id: the key every process row and index entry carries.
        var w = Written(store: try Store(path: db), boot: UUID().uuidString.lowercased())
        try ingest(&w)
        try whoSpawned(w)
        if timelineInstances > 0 { try timeline(&w) }
        try retention(&w)
    }

    static func ms(_ d: Duration) -> Double { Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1e3 }

    /// Chains of `depth` rows, each ending in `leavesPerChain` leaves, written in batches as the daemon writes them.
    func ingest(_ w: inout Written) throws {
        let store = w.store, boot = w.boot
        let chainLen = depth + 1 + leavesPerChain
        let chains = processes / chainLen
        var batch = StoreBatch(boot: boot, bootEpochNs: w.bootEpochNs)
        _ = try store.beginRun(boot: boot, bootEpochNs: batch.bootEpochNs, version: "bench", nowWallNs: batch.bootEpochNs)
        var written = 0
        let t0 = ContinuousClock.now
        for c in 0..<chains {
            var parent: Identity?
            for level in 0..<chainLen {
                w.t += 1_000
                let pid = Int32((c * chainLen + level) % 4_000_000 + 2)
                var r = ProcessRecord(id: Identity(pid: pid, startNs: w.t), parent: parent, comm: "p\(level)")
                r.exitTime = w.t + 500; r.exitStatus = .exited(0)
                r.images = [Image(time: w.t, filename: "/usr/bin/python3",
                                  argv: ["python3", "/opt/ai-video-codec/workers/training_worker.py", "--level", "\(min(level, depth + 1))"],
                                  comm: "python3", cgroup: "training-worker.service", cwd: "/opt")]
                if level < depth {
                    batch.processes.append(r)
                    batch.images.append((r.id, 0, r.images[0]))
                    parent = r.id
                } else {
                    batch.leaves.append(r)
                    if level == depth { w.leaves.append(pid) }
                }
            }
            // About 2 s of a 1,600 exec/s host per batch.
            if batch.processes.count + batch.leaves.count >= 3_200 {
                written += batch.processes.count + batch.leaves.count
                try store.write(batch, nowWallNs: 0)
                batch = StoreBatch(boot: boot, bootEpochNs: batch.bootEpochNs)
            }
        }
        written += batch.processes.count + batch.leaves.count
        try store.write(batch, nowWallNs: 0)
        let ingest = ContinuousClock.now - t0
        let secs = Double(ingest.components.seconds) + Double(ingest.components.attoseconds) / 1e18
        print(String(format: "store ingest: %d processes (each with 1 image, %d%% leaves) in %.1f s = %.0f processes/s", written, leavesPerChain * 100 / chainLen, secs, Double(written) / secs))
    }

    /// who-spawned on random leaves: the lookup and ancestry, then the whole answer.
    func whoSpawned(_ w: Written) throws {
        let store = w.store, leaves = w.leaves
        var lat: [Double] = []
        for _ in 0..<queries {
            let pid = leaves.randomElement()!
            let q0 = ContinuousClock.now
            let incs = try store.incarnations(pid: pid)
            let chain = try store.ancestry(of: incs[0])
            let d = ContinuousClock.now - q0
            precondition(chain.count == depth, "chain of \(chain.count)")
            lat.append(BenchStore.ms(d))
        }
        lat.sort()
        print(String(format: "who-spawned query (store, depth %d, in-process): p50 %.2f ms  p99 %.2f ms  over %d queries",
                     depth, lat[lat.count / 2], lat[lat.count * 99 / 100], lat.count))
        print("leaf-pid \(leaves[leaves.count / 2])")
        // The whole answer as the CLI computes it (lineage, respawner, evidence), without the
        // process start and the printing.
        var full: [Double] = []
        for _ in 0..<21 {
            let q0 = ContinuousClock.now
            _ = try WhoSpawnedQuery(pid: leaves[leaves.count / 2], db: db).run()
            let d = ContinuousClock.now - q0
            full.append(BenchStore.ms(d))
        }
        full.sort()
        print(String(format: "who-spawned answer (in-process, lineage + respawner): p50 %.1f ms", full[full.count / 2]))
    }

    /// One program respawned by a loop shell, `timelineInstances` times (leaves, as the
    /// daemon stores short-lived workers), then its timeline as the CLI computes it.
    func timeline(_ w: inout Written) throws {
        let store = w.store, boot = w.boot
        if timelineInstances > 0 {
        var tl = StoreBatch(boot: boot, bootEpochNs: w.bootEpochNs)
        let shell = ProcessRecord(id: Identity(pid: 4_300_000, startNs: w.t + 1_000), parent: nil, comm: "sh")
        var sh = shell
        sh.images = [Image(time: w.t + 1_000, filename: "/bin/sh", argv: ["/bin/sh", "/opt/loop.sh"], comm: "sh", cgroup: "rc-local.service", cwd: "/")]
        tl.processes.append(sh)
        tl.images.append((sh.id, 0, sh.images[0]))
        for i in 0..<timelineInstances {
            w.t += 100_000_000
            var r = ProcessRecord(id: Identity(pid: Int32(4_300_001 + i % 90_000), startNs: w.t), parent: sh.id, comm: "python3")
            r.exitTime = w.t + 50_000_000; r.exitStatus = .exited(1)
            r.images = [Image(time: w.t, filename: "/usr/bin/python3", argv: ["python3", "/opt/tl/timeline_worker.py"],
                              comm: "python3", cgroup: "rc-local.service", cwd: "/opt/tl")]
            tl.leaves.append(r)
            if tl.leaves.count >= 3_200 {
                try store.write(tl, nowWallNs: 0)
                tl = StoreBatch(boot: boot, bootEpochNs: w.bootEpochNs)
            }
        }
        try store.write(tl, nowWallNs: 0)
        var times: [Double] = []
        var shown = 0
        for _ in 0..<5 {
            let q0 = ContinuousClock.now
            shown = try TimelineQuery(program: .matching("timeline_worker.py"), db: db).run().rows.count
            let d = ContinuousClock.now - q0
            times.append(BenchStore.ms(d))
        }
        times.sort()
        print(String(format: "timeline query (in-process, --match, %d instances shown): p50 %.0f ms", shown, times[times.count / 2]))
        var byPid: [Double] = []
        for _ in 0..<5 {
            let q0 = ContinuousClock.now
            _ = try TimelineQuery(program: .pid(4_300_001), db: db).run()
            let d = ContinuousClock.now - q0
            byPid.append(BenchStore.ms(d))
        }
        byPid.sort()
        print(String(format: "timeline query (in-process, by PID): p50 %.0f ms", byPid[byPid.count / 2]))
    }
    }

    /// A retention pass walks up from every live process and every finding to keep their
    /// ancestors: 1,000 of each under the chains, nothing old enough to delete.
    func retention(_ w: inout Written) throws {
        let store = w.store, boot = w.boot, leaves = w.leaves
        var extra = StoreBatch(boot: boot, bootEpochNs: w.bootEpochNs)
        let parents = try (0..<1_000).compactMap { _ in try store.incarnations(pid: leaves.randomElement()!).first.flatMap { try store.ancestry(of: $0).first } }
        for (i, p) in parents.enumerated() {
            w.t += 1_000
            extra.processes.append(ProcessRecord(id: Identity(pid: Int32(4_100_000 + i), startNs: w.t), parent: p.record.id, comm: "live"))
            var k = ProcessRecord(id: Identity(pid: Int32(4_200_000 + i), startNs: w.t), parent: p.record.id, comm: "python3")
            k.exitTime = w.t + 10; k.exitStatus = .signaled(9, coreDumped: false)
            var img = p.record.images[0]
            img.enforcement = Enforcement(rules: ["block"], tier: .killAtExec, blocked: true, message: "killed at exec")
            k.images = [img]
            extra.processes.append(k)
            extra.images.append((k.id, 0, img))
        }
        try store.write(extra, nowWallNs: 0)
        let r0 = ContinuousClock.now
        _ = try store.enforceRetention(exitedBeforeWallNs: 0, maxProcesses: Int.max, currentBoot: boot)
        let rd = ContinuousClock.now - r0
        print(String(format: "retention pass (%d live processes and %d findings, ancestors kept, nothing old): %.0f ms",
                     parents.count, parents.count, BenchStore.ms(rd)))
    }
}
