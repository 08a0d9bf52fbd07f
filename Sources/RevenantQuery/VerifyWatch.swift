import Foundation
import RevenantCore
import RevenantStore
import RevenantHost

/// `verify`: watches for a while and collects every start of a program, through the store of
/// a running daemon or, without one, with BPF programs of its own.
public struct VerifyWatch {
    public struct Start: Sendable {
        public var record: ProcessRecord
        public var startWallNs: Int64
        /// Killed at exec or denied: it never ran. The enforcement's message.
        public var blocked: String?

        package init(record: ProcessRecord, startWallNs: Int64, blocked: String?) {
            self.record = record; self.startWallNs = startWallNs; self.blocked = blocked
        }
    }

    public struct Outcome: Sendable {
        public var starts: [Start]
        /// What respawns the program, from the starts that ran.
        public var respawn: RespawnReport?
        /// Events lost or not written during the window: a start may be missing.
        public var gaps: [TraceGap] = []
        public var ran: [Start] { starts.filter { $0.blocked == nil } }

        package init(starts: [Start], respawn: RespawnReport?, gaps: [TraceGap] = []) {
            self.starts = starts; self.respawn = respawn; self.gaps = gaps
        }
    }

    public var match: String
    public var startWallNs: Int64
    public var endWallNs: Int64
    /// The verifying binary: its own execs are not the program.
    public var ownExe: String?

    public init(match: String, startWallNs: Int64, endWallNs: Int64, ownExe: String?) {
        self.match = match; self.startWallNs = startWallNs; self.endWallNs = endWallNs; self.ownExe = ownExe
    }

    /// The store at `db` when a daemon is writing it now (its run is open and flushed in the
    /// last 10 s); nil otherwise.
    public static func liveStore(_ db: String) -> Store? {
        guard FileManager.default.fileExists(atPath: db), let s = try? Store(path: db, readOnly: true),
              s.daemonIsWriting() else { return nil }
        return s
    }

    public func isProgram(_ r: ProcessRecord) -> Bool {
        guard let img = r.image, img.filename != ownExe else { return false }
        return img.runsProgram(matching: match)
    }

    /// Polls what the daemon flushes until the window's end plus the store's lag.
    /// `progress` is called about twice a second with the starts so far.
    public func throughStore(_ store: Store, progress: ([Start]) -> Void) async throws -> Outcome {
        var starts: [Start] = []
        var seen: Set<Identity> = []
        var last: StoredProcess?
        while WallClock.nowNs() < endWallNs + Int64(FlushRequest.storeLagMs + 250) * 1_000_000 {
            for p in (try? store.matching(match)) ?? [] where p.startWallNs >= startWallNs && p.startWallNs < endWallNs && !seen.contains(p.record.id) {
                guard isProgram(p.record) else { continue }
                seen.insert(p.record.id)
                let blocked = p.record.image?.enforcement.flatMap { $0.blocked ? $0.message : nil }
                starts.append(Start(record: p.record, startWallNs: p.startWallNs, blocked: blocked))
                if blocked == nil { last = p }
            }
            progress(starts)
            try await Task.sleep(for: .milliseconds(WallClock.nowNs() < endWallNs ? 500 : 450))
        }
        return Outcome(starts: starts, respawn: last.flatMap { try? Attributor.report(for: $0, store: store) },
                       gaps: (try? store.gaps(fromWallNs: startWallNs, toWallNs: endWallNs)) ?? [])
    }
}
