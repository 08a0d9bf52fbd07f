import Foundation
import RevenantCore
import RevenantHost
import RevenantStore

/// Any persistent forker: its source line, the commands that stop it, and what keeps it alive.
extension Attributor {
    static func supervisorSource(_ f: inout Finding, root: String, worker: [String]) -> Configured {
        var found = Configured()
        guard let s = f.spawner, let img = s.image else { return found }
        if let kind = Attribution.supervisorKind(s) { found.settings["kind"] = kind }
        // The line of the supervisor's own script that names the program, read as its user could.
        if let script = img.program.script, script.hasPrefix("/") {
            let shell = Attribution.isShell(s)
            switch ScriptReader(root: root).lookup(in: script, command: worker, user: (img.uid, img.gid), shell: shell) {
            case .success(let src?): found.source = src
            case .success(nil): f.evidence.append("no line of \(script) names the program")
            case .failure(let why): f.evidence.append("source not readable: \(script): \(why)")
            }
        }
        let what = found.settings["kind"] ?? "the supervisor"
        found.remediation = ["kill \(s.id.pid)   # \(what) \(commentSafe(img.program.key)) \(s.id) first, or it starts the worker again"]
        if let pat = programPattern(worker) {
            found.remediation.append("pkill -f -- \(shellQuote(pat))   # then the instances it started")
        }
        if let src = found.source {
            found.remediation.append("# then remove or comment out \(commentSafe(RootFS(root: root).path(src.file))):\(src.line) if it is started again")
        }
        return found
    }

    /// Ends a tmux or screen session, and with it what runs in it.
    static func sessionRemediation(_ m: Multiplexer) -> [String] {
        switch m.kind {
        case .tmux:
            guard let name = m.session else { return ["kill \(m.server.id.pid)   # the tmux server: its sessions end with it"] }
            return ["tmux -S \(shellQuote(m.socket ?? "")) kill-session -t \(shellQuote("=" + name))   # the tmux session it runs in"]
        case .screen:
            let as_ = m.server.image.map { $0.uid == 0 ? "" : "   # as uid \($0.uid), who owns the session" } ?? ""
            return ["screen -S \(shellQuote(m.session ?? String(m.server.id.pid))) -X quit\(as_)"]
        }
    }
}

extension Attributor {
    /// The instances of the stored refs, and `target` among them, each with its fork-time ancestry.
    /// A process that exec'd nothing (a pre-fork worker): its siblings that did the same.
    static func instances(_ refs: [InstanceRef], with target: StoredProcess, store: Store) throws(StoreError) -> [Instance] {
        var stored: [StoredProcess]
        // Two links: a parent that only forked (a daemonized master) takes its image from the next.
        if target.record.images.isEmpty, let parent = try store.ancestry(of: target, limit: 2).first {
            // Rows for the live and the parents; one that ended within a store batch is a leaf,
            // filed under the image it inherited (leaf refs carry their process: no row is read).
            let leaves = try parent.record.image.map { p throws(StoreError) in try store.processes(store.instanceRefs(program: p.program, limit: scanLimit).filter(\.isLeaf)) } ?? []
            stored = try store.forkedChildren(of: parent, limit: instanceLimit * 2)
            let ids = Set(stored.map(\.record.id))
            stored += leaves.filter { $0.record.parent.map(parent.record.id.sameTick) == true && !ids.contains($0.record.id) }.prefix(instanceLimit)
        } else {
            stored = try store.processes(refs)
        }
        if !stored.contains(where: { $0.record.id == target.record.id }) { stored.append(target) }
        return try stored.map { s throws(StoreError) in
            let ancestry = try store.ancestry(of: s).map(\.record)
            var r = s.record
            // It runs the image it was forked with: its parent's, which the remediation matches.
            if r.images.isEmpty, let img = ancestry.first?.image { r.images = [img]; r.imageInherited = true }
            return Instance(process: r, ancestry: ancestry, startWallNs: s.startWallNs, exitWallNs: s.exitWallNs)
        }
    }

    static let keeperDepth = 3

    /// A persistent forker of the instances (a supervisor, a loop nothing launched) is itself
    /// kept alive by something: its own instances answer what, up to `keeperDepth` levels.
    /// The remediation then stops the outermost first, the supervisor next, the instances last.
    static func keepers(_ rep: inout RespawnReport, store: Store, root: String, reader: ProcReader) throws(StoreError) {
        func forker(_ mechanism: Mechanism, _ launcher: Mechanism?, _ spawner: RespawnReport.Proc?) -> RespawnReport.Proc? {
            mechanism == .supervisor || mechanism == .shellLoop && launcher == nil ? spawner : nil
        }
        var next = forker(rep.mechanism, rep.launcher_mechanism, rep.spawner)
        var outer: [String] = []
        while let s = next, rep.kept_alive_by.count < keeperDepth {
            guard let me = try store.incarnations(pid: s.pid).first(where: { $0.record.id.description == s.id }) else { break }
            let refs = try me.record.image.map { p throws(StoreError) in try store.instanceRefs(program: p.program, limit: instanceLimit) } ?? []
            let all = try instances(refs, with: me, store: store)
            let group = Attribution.respawnGroups(all, target: me.record.id).first ?? all
            let r = report(Attribution.keeper(group), instances: group, root: root, reader: reader)
            rep.kept_alive_by.append(.init(mechanism: r.mechanism, unit: r.unit, spawner: r.spawner,
                                           source: r.source.map { "\($0.file):\($0.line)" }, source_text: r.source?.text,
                                           evidence: r.evidence, remediation: r.remediation))
            outer = r.remediation + outer
            next = forker(r.mechanism, r.launcher_mechanism, r.spawner).flatMap { $0.id == s.id ? nil : $0 }
        }
        if let k = rep.kept_alive_by.last, k.mechanism == .byHand, let s = rep.spawner {
            rep.evidence.append("nothing on record restarts \(s.name)(\(s.pid)): stopping it ends the respawns")
        }
        rep.remediation = outer + rep.remediation
    }
}
