import Foundation
import Logging
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantOutputs
import RevenantStore
import Synchronization

/// Records from the kernel into the table, the store batch and the audit log.
extension RingLoop {
    /// One record from the kernel: redact, enforce, audit, apply to the table, batch for the store.
    /// Execs and exits are decoded straight into their handlers: moved through `Event` and
    /// `TraceItem`, opened by accessors and patterns, each was copied whole many times.
    @inline(__always) mutating func handle(_ raw: UnsafeRawBufferPointer, _ memo: inout EventDecoder.Memo) throws {
        switch EventDecoder.kind(raw) {
        case .exec:
            let x: ExecEvent
            do throws(DecodeError) { x = try EventDecoder.exec(raw, memo: &memo) } catch { return skip(error) }
            try takeExec(x)
        case .exit:
            let x: ExitEvent
            do throws(DecodeError) { x = try EventDecoder.exit(raw) } catch { return skip(error) }
            try takeExit(x)
        case .other:
            let e: Event
            do throws(DecodeError) { e = try EventDecoder.decode(raw, memo: &memo) } catch { return skip(error) }
            try takeOther(e)
        }
    }

    /// A record that could not be decoded: counted and logged, never fatal.
    mutating func skip(_ error: DecodeError) {
        malformed += 1
        typeCounts.malformed += 1
        log.warning("malformed record skipped", metadata: ["error": "\(error)"])
    }

    /// An exec, moved in.
    @inline(__always) mutating func takeExec(_ x: consuming ExecEvent) throws {
        // A policy match is judged on the real command line: kept aside only for a match.
        let matched = x.matched
        let real: ExecEvent? = matched != 0 ? x : nil
        // Secrets leave the command line here, before the table, the store and the logs see it.
        // A respawn loop's execs share one texts box: found clean once, it is not scanned again.
        if !config.redactor.patterns.isEmpty, x.texts !== cleanTexts {
            if let hidden = config.redactor.redacted(x.argv) { x.argv = hidden } else { cleanTexts = x.texts }
        }
        ingested += 1
        typeCounts.exec += 1
        // Short-lived processes skip the table: held back at their exec, handed to the
        // store's leaves at their exit (most end within a batch, forking nothing).
        if !config.auditAll, matched == 0, table.parkable(x) {
            table.hold(consume x)
            noteUnparked()
            if pending >= config.flushChanges { try flush() }
            return
        }
        try file(.exec(consume x), matched: matched, real: real)
    }

    /// An exit.
    @inline(__always) mutating func takeExit(_ x: ExitEvent) throws {
        ingested += 1
        typeCounts.exit += 1
        // A writer of a watched file is usually short-lived: it is looked up before its exit
        // takes it out of the table (one atomic load per exit otherwise).
        if !ingest.configInbox.isEmpty { recordConfigChanges(writer: x.process.pid) }
        if !config.auditAll, table.leaf(exiting: x, into: &batch.leaves) {
            noteUnparked()
            if pending >= config.flushChanges { try flush() }
            return
        }
        try file(.exit(x), matched: nil, real: nil)
    }

    /// A fork or a deny record.
    mutating func takeOther(_ e: Event) throws {
        if case .deny(let d) = e, let policy {
            table.unpark(namedBy: e)
            let done = EnforcementDecision.denied(filename: d.filename, rules: policy.rules(in: d.matched).map(\.name))
            let id = table.canonical(d.process)
            let launch = table[id].map { r in
                AuditEvent.launch(r, ancestry: table.ancestry(of: r.id), bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                  rules: done.rules, tier: done.tier, blocked: true, message: done.message)
            }
            report.enforced(done, launch: launch, respawn: nil, journal: "denied exec (rule \(Enforcement.ruleList(done.rules)))", metadata: [
                "pid": "\(d.process.pid)", "id": "\(d.process)", "exe": "\(d.filename)", "ancestry": "\(Lineage.chain(table, of: id))"])
        }
        if case .deny = e { typeCounts.deny += 1 } else { typeCounts.fork += 1 }
        ingested += 1
        try file(e, matched: nil, real: nil)
    }

    /// A record the fast ways above did not take, into the table. `matched`: an exec's rule
    /// bits (nil for any other record); `real`: a matching exec before redaction.
    mutating func file(_ e: consuming Event, matched: UInt64?, real: ExecEvent?) throws {
        let added = table.apply(e)
        noteUnparked()
        let id = table.canonical(e.process)
        let born: Bool
        // Added to the table: no row holds it yet (with lazy forks, an exec or exit can add one).
        if added { dirty[id] = true; born = true } else { born = RingLoop.touch(&dirty[id, default: false]) }
        if let matched, !born || matched != 0 || config.auditAll,
           case (let seq, var img)? = table.latestImage(of: id) {
            if let x = real, let policy, let done = enforce(x, policy: policy) {
                img.enforcement = done
                table.replaceLatestImage(of: id, with: img)
                audited[id] = done.rules
            } else if config.auditAll, let r = table[id] {
                audit.submit(.record(.launch(r, ancestry: table.ancestry(of: id), bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                             rules: [], tier: nil, blocked: false, message: "exec \(img.argv.joined(separator: " "))"), sync: false))
                audited[id] = []
            }
            // A process born since the last flush has no row yet: the flush takes its images.
            if !born { batch.images.append((id, seq, img)) }
        }
        // Only exits that are audited cost a table lookup.
        if e.isExit, let rules = audited.removeValue(forKey: id) ?? (config.auditAll ? [] : nil), let r = table[id] {
            audit.submit(.record(.terminate(r, ancestry: table.ancestry(of: id), bootEpochNs: clock.bootEpochNs,
                                            timeMs: WallClock.nowMs(), rules: rules), sync: false))
        }
        if pending >= config.flushChanges { try flush() }
    }

    /// Reads a value through an in-place access: with `dict[key, default: v]` it lists the key
    /// if absent and returns what is listed, in one lookup.
    @inline(__always) static func touch(_ b: inout Bool) -> Bool { b }

    /// Filed from the parked ones by a record naming them: no row holds them yet.
    mutating func noteUnparked() {
        if table.hasUnparked { for u in table.drainUnparked() { dirty[u] = true } }
    }

    /// Changes waiting for the next store batch.
    var pending: Int { dirty.count + batch.images.count + batch.leaves.count + table.parkedCount }

    /// What the kernel map holds that no record named yet: live processes that forked and
    /// have neither exec'd nor exited (lazy forks). For a who-spawned asking, and at a stop,
    /// so a restart on this boot finds their exact identity and fork-time parent.
    mutating func announceLive() throws {
        guard config.tracer.lazyForks else { return }
        for f in tracer.unannounced() { try takeOther(.fork(f)) }
    }
}
