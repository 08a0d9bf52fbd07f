import RevenantTestSupport
import Testing
@testable import RevenantCore

@Suite struct AttributionTests {
    let initP = Build.record(1, 0, ["/sbin/init"])

    @Test func cronChainNamesTheDaemonAndTheCommand() {
        let cron = Build.record(500, 1, ["/usr/sbin/cron", "-f"])
        var instances: [Instance] = []
        for k in 0..<3 {
            let base = Int32(1000 + k * 10)
            let job = Build.record(base, UInt64(100 + k), ["/usr/sbin/CRON", "-f"])
            let sh = Build.record(base + 1, UInt64(100 + k), ["/bin/sh", "-c", "python3 /opt/w/worker.py"])
            let w = Build.record(base + 2, UInt64(100 + k), ["python3", "/opt/w/worker.py"])
            instances.append(inst(w, [sh, job, cron, initP], at: Int64(k) * 60_000_000_000))
        }
        let f = Attribution.analyze(instances)
        #expect(f.mechanism == .cron)
        #expect(f.spawner?.id.pid == 500)
        #expect(f.command == "python3 /opt/w/worker.py")
        #expect(f.confidence == .high)
        #expect(Attribution.gaps(instances) == [60, 60])
    }

    @Test func doubleForkedCronWorkerStillReachesCron() {
        let cron = Build.record(500, 1, ["/usr/sbin/cron", "-f"])
        var job = Build.record(600, 50, ["/usr/sbin/CRON", "-f"]); job.exitTime = 60; job.exitStatus = .exited(0)
        var sh = Build.record(601, 50, ["/bin/sh", "-c", "pgrep -f worker.py || nohup python3 worker.py &"]); sh.exitTime = 60; sh.exitStatus = .exited(0)
        var w = Build.record(602, 51, ["python3", "worker.py"])
        w.adoptedBy = initP.id
        let f = Attribution.analyze([inst(w, [sh, job, cron, initP], at: 0)])
        #expect(f.mechanism == .cron)
        #expect(f.command == "pgrep -f worker.py || nohup python3 worker.py &")
        #expect(f.evidence.contains { $0.contains("double fork") })
        #expect(f.confidence == .medium, "one instance: not yet confirmed by a respawn")
    }

    @Test func cronShellThatExecsTheWorkerStillGivesTheCommand() {
        let cron = Build.record(500, 1, ["/usr/sbin/cron", "-f"])
        let instances = (0..<2).map { k in
            let job = Build.record(Int32(600 + k * 10), UInt64(100 + k), ["/usr/sbin/CRON", "-f"])
            // dash runs a lone `-c` command by exec: the shell's image is the worker's first.
            var w = Build.record(Int32(601 + k * 10), UInt64(100 + k), ["/bin/sh", "-c", "/usr/bin/python3 /opt/w.py"])
            w.images.append(Image(time: UInt64(101 + k), filename: "/usr/bin/python3", argv: ["/usr/bin/python3", "/opt/w.py"], comm: "python3"))
            return inst(w, [job, cron, initP], at: Int64(k) * 60_000_000_000)
        }
        let f = Attribution.analyze(instances)
        #expect(f.mechanism == .cron)
        #expect(f.command == "/usr/bin/python3 /opt/w.py")
    }

    @Test func supervisordAndSystemdAndShellLoop() {
        let sup = Build.record(700, 1, ["/usr/bin/python3", "/usr/bin/supervisord", "-c", "/etc/supervisor/supervisord.conf"])
        let s = Attribution.analyze([700_1, 700_2].enumerated().map { i, pid in
            inst(Build.record(Int32(pid % 100000), UInt64(10 + i), ["/opt/w"]), [sup, initP], at: Int64(i))
        })
        #expect(s.mechanism == .supervisord)
        #expect(s.spawner?.id.pid == 700)

        let sd = Attribution.analyze((0..<2).map { i in
            inst(Build.record(Int32(800 + i), UInt64(10 + i), ["/usr/bin/python3", "/opt/w.py"], cgroup: "training-worker.service"), [initP], at: Int64(i))
        })
        #expect(sd.mechanism == .systemdService)
        #expect(sd.unit == "training-worker.service")

        // systemd as PID 1 of a container: another PID on the host, `--system` in its argv.
        let nsd = Build.record(4321, 5, ["/lib/systemd/systemd", "--system", "--unit=multi-user.target"])
        let ns = Attribution.analyze((0..<2).map { i in
            inst(Build.record(Int32(810 + i), UInt64(10 + i), ["/usr/bin/python3", "/opt/w.py"], cgroup: "training-worker.service"), [nsd, initP], at: Int64(i))
        })
        #expect(ns.mechanism == .systemdService)
        #expect(ns.spawner?.id.pid == 4321)
        #expect(ns.evidence.contains { $0.contains("PID 1 of its own namespace") })

        let user = Build.record(3000, 5, ["/lib/systemd/systemd", "--user"], cgroup: "init.scope")
        let u = Attribution.analyze((0..<2).map { i in
            inst(Build.record(Int32(3010 + i), UInt64(10 + i), ["/opt/w"], cgroup: "sync.service"), [user, initP], at: Int64(i))
        })
        #expect(u.mechanism == .systemdUserUnit)
        #expect(u.spawner?.id.pid == 3000)
        #expect(u.unit == "sync.service")

        let rc = Build.record(900, 1, ["/bin/sh", "/etc/rc.local", "start"], cgroup: "rc-local.service")
        let loop = Build.record(901, 2, ["/bin/bash", "/opt/loop.sh"], cgroup: "rc-local.service")
        let l = Attribution.analyze((0..<3).map { i in
            inst(Build.record(Int32(950 + i), UInt64(10 + i), ["/opt/w"], cgroup: "rc-local.service"), [loop, rc, initP], at: Int64(i))
        })
        #expect(l.mechanism == .shellLoop)
        #expect(l.spawner?.id.pid == 901)
        #expect(l.launcherMechanism == .rcLocal)
    }

    @Test func containersByShimOrByCgroup() {
        let id = String(repeating: "ab12", count: 16)
        let shim = Build.record(70, 1, ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby"])
        let c = Attribution.analyze((0..<2).map { i in
            inst(Build.record(Int32(71 + i), UInt64(2 + i), ["/opt/w"], cgroup: "docker-\(id).scope"), [shim, initP], at: Int64(i))
        })
        #expect(c.mechanism == .container)
        #expect(c.spawner?.id.pid == 70)
        #expect(c.unit == "docker ab12ab12ab12")
        // A seeded process whose shim is not on record: the cgroup alone.
        let p = Attribution.analyze([inst(Build.record(80, 2, ["/opt/w"], cgroup: "libpod-\(id).scope"), [initP], at: 0)])
        #expect(p.mechanism == .container)
        #expect(p.unit == "podman ab12ab12ab12")
        #expect(Attribution.containerID(id) == "docker ab12ab12ab12")
        #expect(Attribution.containerID("session-3.scope") == nil)
    }

    @Test func aForkerNoOneNamedIsASupervisorByItsOwnProgram() {
        let odd = Build.record(40, 1, ["/usr/local/bin/respawnd"])
        let f = Attribution.analyze((0..<2).map { i in inst(Build.record(Int32(41 + i), UInt64(2 + i), ["/opt/w"]), [odd, initP], at: Int64(i)) })
        #expect(f.mechanism == .supervisor)
        #expect(f.spawner?.id.pid == 40)
        #expect(f.unit == "/usr/local/bin/respawnd")
        // Sharing no ancestor at all is still said plainly.
        let apart = Attribution.analyze((0..<2).map { i in inst(Build.record(Int32(51 + i), UInt64(2 + i), ["/opt/w"]), [], at: Int64(i)) })
        #expect(apart.mechanism == .unknown)
        #expect(apart.confidence == .low)
    }
}
