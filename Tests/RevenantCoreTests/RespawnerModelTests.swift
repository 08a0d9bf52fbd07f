import RevenantTestSupport
import Testing
@testable import RevenantCore

/// A respawner is a spawner plus the configuration it acts for, and any persistent forker is one.
@Suite struct RespawnerModelTests {
    let pid1 = Build.record(1, 1, ["/sbin/init"])
    let worker = ["/usr/bin/python3", "/opt/w/training_worker.py"]

    func child(_ pid: Int32, at t: Int64, cgroup: String = "/", _ chain: [ProcessRecord]) -> Instance {
        Instance(process: Build.record(pid, UInt64(t), worker, cgroup: cgroup, parent: chain.first?.id), ancestry: chain, startWallNs: t, exitWallNs: t + 1)
    }

    @Test func twoUnitsUnderOnePID1AreTwoRespawners() {
        let all = [child(10, at: 1, cgroup: "first.service", [pid1]), child(11, at: 2, cgroup: "first.service", [pid1]),
                   child(20, at: 3, cgroup: "run-u7.service", [pid1]), child(21, at: 4, cgroup: "run-u7.service", [pid1])]
        let groups = Attribution.respawnGroups(all)
        #expect(groups.map { $0.map(\.process.id.pid) } == [[20, 21], [10, 11]])
        #expect(Attribution.analyze(groups[0]).unit == "run-u7.service")
    }

    @Test func twoCronLinesAreTwoRespawners() {
        let cron = Build.record(300, 10, ["/usr/sbin/cron", "-f"])
        func run(_ pid: Int32, at t: Int64, line: String) -> Instance {
            var job = Build.record(pid - 2, UInt64(t), ["/usr/sbin/cron", "-f"], parent: cron.id)
            job.imageInherited = true
            let sh = Build.record(pid - 1, UInt64(t), ["/bin/sh", "-c", line], parent: job.id)
            return child(pid, at: t, [sh, job, cron, pid1])
        }
        let all = [run(100, at: 1, line: "python3 /opt/w/training_worker.py --a"), run(110, at: 2, line: "/usr/bin/python3 /opt/w/training_worker.py"),
                   run(120, at: 3, line: "python3 /opt/w/training_worker.py --a"), run(130, at: 4, line: "/usr/bin/python3 /opt/w/training_worker.py")]
        let groups = Attribution.respawnGroups(all, target: Identity(pid: 110, startNs: 2))
        #expect(groups.map { $0.map(\.process.id.pid) } == [[110, 130], [100, 120]])
        #expect(Attribution.analyze(groups[0]).command == "/usr/bin/python3 /opt/w/training_worker.py")
    }

    @Test func oneContainerAcrossNewMonitorsIsOneRespawnerNamedOnce() {
        let id = String(repeating: "cd34", count: 16)
        let podman = Build.record(50, 5, ["/usr/bin/podman", "run", "--restart=always"])
        let all = (0..<4).map { k in
            let conmon = Build.record(Int32(60 + k * 10), UInt64(6 + k), ["/usr/bin/conmon", "--api-version", "1"], parent: podman.id)
            return Instance(process: Build.record(Int32(61 + k * 10), UInt64(7 + k), ["/bin/sh", "-c", "sleep 1"], cgroup: "libpod-\(id).scope"),
                            ancestry: [conmon, pid1], startWallNs: Int64(k), exitWallNs: Int64(k) + 1)
        }
        let groups = Attribution.respawnGroups(all)
        #expect(groups.count == 1)
        let f = Attribution.analyze(groups[0])
        #expect(f.mechanism == .container)
        #expect(f.spawner?.id.pid == 90, "the latest instance's monitor")
        #expect(!f.evidence.contains { $0.contains("each forked under") }, "\(f.evidence)")
        #expect(f.evidence.contains { $0.contains("all in container podman cd34cd34cd34") })
    }

    @Test func aKeepAliveScriptIsASupervisorAndItsKeeperIsARunByHand() {
        let bash = Build.record(400, 5, ["-bash"], cgroup: "session-3.scope")
        let keep = Build.record(410, 6, ["/usr/bin/python3", "/opt/k/keepalive.py"], cgroup: "session-3.scope", parent: bash.id)
        let all = (0..<3).map { k in child(Int32(500 + k), at: Int64(10 + k), cgroup: "session-3.scope", [keep, bash, pid1]) }
        let f = Attribution.analyze(all)
        #expect(f.mechanism == .supervisor)
        #expect(f.spawner?.id.pid == 410)
        #expect(f.unit == "/usr/bin/python3 /opt/k/keepalive.py")
        #expect(f.evidence.contains { $0.contains("a process supervisor") })
        let k = Attribution.keeper([Instance(process: keep, ancestry: [bash, pid1], startWallNs: 6, exitWallNs: nil)])
        #expect(k.mechanism == .byHand)
        #expect(k.evidence.first?.contains("bash(400)") == true, "\(k.evidence)")
    }

    @Test func knownSupervisorsAreNamedByKind() {
        let g = Build.record(700, 1, ["/usr/bin/python3", "/usr/bin/gunicorn", "-w", "2", "app:app"])
        #expect(Attribution.supervisorKind(g) == "gunicorn master")
        #expect(Attribution.supervisorKind(Build.record(701, 1, ["/usr/bin/python3", "-m", "torch.distributed.run", "train.py"])) == "torch.distributed elastic agent")
        #expect(Attribution.supervisorKind(Build.record(702, 1, ["/usr/local/bin/torchrun", "--nproc-per-node=2", "t.py"])) == "torchrun elastic agent")
        #expect(Attribution.supervisorKind(Build.record(703, 1, ["/usr/bin/python3", "/opt/k/keepalive.py"])) == nil)
        let all = (0..<2).map { k in
            var w = Build.record(Int32(710 + k), UInt64(2 + k), ["/usr/bin/python3", "/usr/bin/gunicorn", "-w", "2", "app:app"], parent: g.id)
            w.imageInherited = true
            return Instance(process: w, ancestry: [g, pid1], startWallNs: Int64(k), exitWallNs: nil)
        }
        let f = Attribution.analyze(all)
        #expect(f.mechanism == .supervisor)
        #expect(f.evidence.contains { $0.contains("a gunicorn master") })
    }

    @Test func aSupervisorLaunchedByCronIsTheRespawnerNotCron() {
        let cron = Build.record(300, 10, ["/usr/sbin/cron", "-f"])
        let sh = Build.record(310, 11, ["/bin/sh", "-c", "setsid python3 /opt/k/keepalive.py"], parent: cron.id)
        let keep = Build.record(311, 12, ["python3", "/opt/k/keepalive.py"], parent: sh.id)
        let f = Attribution.analyze((0..<2).map { k in child(Int32(320 + k), at: Int64(20 + k), [keep, sh, cron, pid1]) })
        #expect(f.mechanism == .supervisor)
        #expect(f.spawner?.id.pid == 311)
        #expect(f.launcherMechanism == .cron)
    }

    @Test func aRunBySSHIsNoSupervisor() {
        let sshd = Build.record(20, 2, ["/usr/sbin/sshd", "-D"])
        let all = (0..<2).map { k in
            let sess = Build.record(Int32(30 + k * 10), UInt64(3 + k), ["sshd: root@pts/0"], parent: sshd.id)
            let bash = Build.record(Int32(31 + k * 10), UInt64(3 + k), ["-bash"], parent: sess.id)
            return child(Int32(32 + k * 10), at: Int64(k), [bash, sess, sshd, pid1])
        }
        #expect(Attribution.analyze(all).mechanism != .supervisor)
    }

    @Test func aLoopInADetachedTmuxSessionNamesTheSession() {
        let client = Build.record(800, 5, ["tmux", "-S", "/run/rv.sock", "new-session", "-d", "-s", "train", "sh -c 'while :; do w; done'"])
        var server = Build.record(802, 6, ["tmux", "-S", "/run/rv.sock", "new-session", "-d", "-s", "train", "sh -c 'while :; do w; done'"], parent: client.id)
        server.imageInherited = true
        let loop = Build.record(803, 7, ["sh", "-c", "while :; do w; done"], parent: server.id)
        let f = Attribution.analyze((0..<3).map { k in child(Int32(810 + k), at: Int64(k), [loop, server, client, pid1]) })
        #expect(f.mechanism == .shellLoop)
        #expect(f.launcherMechanism == .tmux)
        #expect(f.multiplexer?.session == "train")
        #expect(f.multiplexer?.socket == "/run/rv.sock")
        #expect(f.multiplexer?.server.id.pid == 802)

        var backend = Build.record(902, 6, ["screen", "-dmS", "sweep", "sh", "-c", "while :; do w; done"])
        backend.imageInherited = true
        let sloop = Build.record(903, 7, ["sh", "-c", "while :; do w; done"], parent: backend.id)
        let s = Attribution.analyze((0..<2).map { k in child(Int32(910 + k), at: Int64(k), [sloop, backend, pid1]) })
        #expect(s.launcherMechanism == .screen)
        #expect(s.multiplexer?.session == "902.sweep")
        let k = Attribution.keeper([Instance(process: sloop, ancestry: [backend, pid1], startWallNs: 7, exitWallNs: nil)])
        #expect(k.mechanism == .screen)
        #expect(k.unit == "902.sweep")
    }
}
