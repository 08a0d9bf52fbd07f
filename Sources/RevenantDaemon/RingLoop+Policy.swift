import Foundation
import Logging
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantOutputs
import RevenantStore
import Synchronization

/// The policy in force, what watches its sources, and each enforcement.
extension RingLoop {
    /// Compiles for the free half of the maps, installs, and kills matching running processes
    /// where asked. A failure keeps the running policy.
    mutating func install(_ p: Policy, path: String) {
        // kill_existing logs each victim's ancestry from the table: every process in it.
        table.unparkAll()
        noteUnparked()
        do {
            let done = try PolicyInstall(p, enforcer: enforcer, userspaceKill: config.userspaceKill)
            for m in done.missing {
                log.warning("policy exe does not exist here: its rules match only by script or comm", metadata: ["exe": "\(m)"])
            }
            policy = done.compiled
            installed = (p, path)
            DaemonMetrics.shared.policy(rules: done.compiled.rules.count)
            watchExecutables(p)
            let lsm = enforcer.lsmActive ? (tracer.lsmSeesArgv ? "active" : "active (exe and exec path only: tracefs not mounted, argv scripts are killed at exec)") : "not active: deny rules are killed at exec"
            report.daemon("policy loaded", detail: "\(path): \(done.compiled.rules.count) rules; \(done.tierText)", metadata: [
                "file": "\(path)", "rules": "\(done.compiled.rules.count)", "tier": "\(done.tierText)", "lsm": "\(lsm)"])
            overridden(done.compiled.rules, path: path)
            pinOnce()
            ready("enforcing \(done.compiled.rules.count) rules from \(path)")
            for v in done.killExisting() {
                log.warning("kill_existing: \(v.killed ? "killed" : "could not kill") a running process", metadata: [
                    "pid": "\(v.record.id.pid)", "id": "\(v.record.id)", "rules": "\(v.rules.joined(separator: ","))",
                    "argv": "\(config.redactor.apply(v.record.image?.argv ?? []).joined(separator: " "))",
                    "ancestry": "\(Lineage.chain(table, of: table.canonical(v.record.id)))"])
            }
        } catch {
            report.daemon("policy rejected", detail: "\(error)", journal: "policy install failed, previous policy stays in force",
                          level: .error, severity: 3, metadata: ["error": "\(error)"])
        }
    }

    mutating func watchConfiguration() {
        var error: String?
        configWatch = ConfigWatch(changed: { [weak ingest] raw in ingest?.configurationChanged(raw) }, error: &error)
        if let w = configWatch {
            worker.sourceNamed.withLock { $0 = { [weak w] file in w?.watch(file: file) } }
            worker.rootSeen.withLock { $0 = { [weak w] root in w?.watch(root: root) } }
            log.info("configuration sources watched", metadata: ["directories": "\(w.watched.joined(separator: " "))"])
        } else {
            log.warning("configuration sources not watched: changes to units, crontabs and configs are not attributed", metadata: ["error": "\(error ?? "?")"])
        }
    }

    /// Each change to a watched configuration file, with its writer as the table knows it;
    /// `writer`: only that process's changes (it is exiting, its exec already taken).
    mutating func recordConfigChanges(writer: Int32? = nil) {
        let (raws, dropped) = ingest.configInbox.take(writer: writer)
        configRecorder.record(raws, dropped: dropped, table: &table, redactor: config.redactor, into: &batch, report: report)
        noteUnparked()
    }

    /// READY=1 once the programs are attached and the first policy is in force (a unit's
    /// `Type=notify`: units ordered after it start only then); later calls update STATUS=.
    mutating func ready(_ status: String) {
        SystemdNotify.send(isReady ? "STATUS=\(status)" : "READY=1\nSTATUS=\(status)")
        isReady = true
    }

    mutating func watchExecutables(_ p: Policy) {
        let paths = p.rules.compactMap(\.match.exe)
        if exeWatch == nil, !paths.isEmpty {
            exeWatch = ExeWatch { [weak ingest] _ in ingest?.executableChanged() }
            if exeWatch == nil {
                log.warning("policy executables not watched (inotify unavailable): an upgraded one is matched again only on SIGHUP",
                            metadata: ["errno": "\(errno)"])
            }
        }
        exeWatch?.watch(paths)
    }

    /// With --pin, once this daemon's programs enforce its policy: they replace an earlier
    /// daemon's pinned ones, which kept enforcing until now.
    mutating func pinOnce() {
        guard let dir = config.pinDir, !pinned else { return }
        pinned = true
        do {
            try tracer.pin(dir)
            report.daemon("programs pinned", detail: dir, journal: "programs pinned: kill at exec stays in force if the daemon stops",
                          metadata: ["dir": "\(dir)"])
        } catch {
            log.critical("PIN FAILED: enforcement ends with this daemon", metadata: ["dir": "\(dir)", "error": "\(error)"])
        }
    }

    /// Rules the rails would refuse, loaded because they say `allow_dangerous: true`: each is
    /// logged at critical level and recorded in the audit log at every load.
    func overridden(_ rules: [PolicyRule], path: String) {
        let context = PolicyLoader.safetyContext()
        for r in rules where r.allowDangerous {
            guard let why = PolicyCompiler.danger(r, context: context) else { continue }
            report.daemon("safety rails overridden", detail: "\(path):\(r.line): rule \"\(r.name)\" (\(r.action.rawValue)): \(why)",
                          journal: "safety rails overridden by allow_dangerous: true", level: .critical, severity: 4,
                          metadata: ["rule": "\(r.name)", "file": "\(path):\(r.line)", "why": "\(why)", "action": "\(r.action.rawValue)"])
        }
    }

    /// Decides (see `EnforcementDecision`), kills from userspace when the kernel could not, and
    /// reports it with its lineage. `e` carries the raw command line (argv globs match it); logs
    /// show the redacted one.
    mutating func enforce(_ e: ExecEvent, policy: CompiledPolicy) -> Enforcement? {
        guard let decision = EnforcementDecision(kernel: e.action, matched: e.matched, argv: e.argv, policy: policy,
                                                 userspaceKill: config.userspaceKill) else { return nil }
        let killed = decision.step == .none ? false : PidfdKiller.kill(e.process)
        let done = decision.outcome(killed: killed)
        let id = table.canonical(e.process)
        var launch: AuditEvent?, respawn: AttributionWorker.Request?
        if let r = table[id] {
            let ancestry = table.ancestry(of: id)
            launch = AuditEvent.launch(r, ancestry: ancestry, bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                       rules: done.rules, tier: done.tier, blocked: done.blocked, message: done.message)
            respawn = respawnRequest(r, ancestry: ancestry, rules: done.rules)
        }
        report.enforced(done, launch: launch, respawn: respawn, metadata: [
            "pid": "\(e.process.pid)", "id": "\(e.process)", "exe": "\(e.filename)",
            "argv": "\((table[id]?.image?.argv ?? []).joined(separator: " "))", "ancestry": "\(Lineage.chain(table, of: id))"])
        return done
    }

    /// What the attribution worker needs to answer for this launch: the program's latest
    /// instances, gathered from the table here, unless it answered for them within a second.
    mutating func respawnRequest(_ r: ProcessRecord, ancestry: [ProcessRecord], rules: [String]) -> AttributionWorker.Request? {
        guard let argv = r.image?.argv, !argv.isEmpty else { return nil }
        let key = argv.joined(separator: "\0")
        if matchedInstances[key] == nil && matchedInstances.count >= 4096 { matchedInstances.removeAll() }
        var ids = matchedInstances[key] ?? []
        if !ids.contains(r.id) { ids.append(r.id) }
        if ids.count > 16 { ids.removeFirst(ids.count - 16) }
        matchedInstances[key] = ids
        let instances = worker.wantsInstances(key, nowNs: WallClock.nowNs()) ? table.instances(ids, bootEpochNs: clock.bootEpochNs) : []
        return AttributionWorker.Request(key: key, instances: instances, count: ids.count, process: r, ancestry: ancestry,
                                         bootEpochNs: clock.bootEpochNs, rules: rules)
    }
}
