import ArgumentParser
import Foundation
import RevenantCore
import RevenantSystem

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch for a while and say whether a program started again.",
        discussion: """
            Exit 0 when nothing matching started during the window (starts that the policy blocked \
            at exec are listed but do not count: they never ran), 1 with the attribution of each \
            start otherwise, 2 when it cannot watch. Watches through the daemon's store while a daemon \
            writes it, else attaches its own BPF programs (root). A program matches when its exe path \
            or one of its arguments contains the text (a shell's `-c` command string does not count: \
            the shell is not the program). A countdown shows on a terminal; scripts get the verdict only.

            Examples:
              revenant verify --for 5m --match training_worker.py
              revenant verify --for 90s --match /opt/ai-video-codec/workers --db /var/lib/revenant/revenant.db
            """
    )

    @Option(name: .customLong("for"), help: "How long to watch: 300, 90s, 5m, 1h.") var window: String
    @Option(help: "Text in the program's exe path or arguments.") var match: String
    @Option(help: "The daemon's store.") var db: String = Store.defaultPath
    @Flag(help: "Attach our own BPF programs even if a daemon is running.") var own = false

    struct Start {
        var record: ProcessRecord
        var startWallNs: Int64
        var blocked: String?
    }

    func run() async throws {
        guard let secs = TimeArgument.duration(window), secs > 0 else { throw Failure("--for \(window): expected a duration such as 300, 90s, 5m", status: 2) }
        let t0 = WallClock.nowNs()
        let end = t0 + Int64(secs * 1e9)
        let tty = isatty(2) == 1
        let me = readlink("/proc/self/exe")
        let store = own ? nil : liveStore()
        var starts: [Start] = []
        var report: RespawnReport?

        func countdown() {
            guard tty else { return }
            let msg = Verify.countdown(match, via: "the daemon's store", end: end)
                + ", \(starts.filter { $0.blocked == nil }.count) started, \(starts.filter { $0.blocked != nil }.count) blocked "
            FileHandle.standardError.write(Data(msg.utf8))
        }

        if let store {
            // The daemon's store: poll what it flushes (it trails the kernel by up to FlushRequest.storeLagMs).
            var seen: Set<Identity> = []
            var last: StoredProcess?
            while WallClock.nowNs() < end + Int64(FlushRequest.storeLagMs + 250) * 1_000_000 {
                for p in (try? store.matching(match)) ?? [] where p.startWallNs >= t0 && p.startWallNs < end && !seen.contains(p.record.id) {
                    guard Verify.isProgram(p.record, match: match, ownExe: me) else { continue }
                    seen.insert(p.record.id)
                    starts.append(Start(record: p.record, startWallNs: p.startWallNs, blocked: Verify.blocked(p.record)))
                    if Verify.blocked(p.record) == nil { last = p }
                }
                countdown()
                try await Task.sleep(for: .milliseconds(WallClock.nowNs() < end ? 500 : 450))
            }
            if let last { report = try? Attributor.report(for: last, store: store) }
        } else {
            try Preflight.requireTracing()
            let tracer: Tracer
            do { tracer = try Tracer(options: Tracer.Options()) } catch { throw Failure(error.description, status: 2) }
            var table = ProcessTable()
            for r in ProcReader().all() { table.seed(r) }
            let clock = BootClock()
            let match = self.match
            let stopper = Task {
                while WallClock.nowNs() < end {
                    if tty { FileHandle.standardError.write(Data((Verify.countdown(match, via: "own BPF", end: end) + " ").utf8)) }
                    try? await Task.sleep(for: .milliseconds(min(1000, max(1, Int((end - WallClock.nowNs()) / 1_000_000)))))
                }
                tracer.stop()
            }
            let signals = SignalWatcher([SIGINT, SIGTERM]) { tracer.stop() }
            var ids: [Identity] = []
            for await item in tracer.events {
                guard case .event(let e) = item else { continue }
                table.apply(e)
                if case .exec(let x) = e, let r = table[table.canonical(x.process)], Verify.isProgram(r, match: match, ownExe: me) {
                    starts.append(Start(record: r, startWallNs: clock.bootEpochNs + Int64(x.time), blocked: nil))
                    ids.append(r.id)
                }
            }
            stopper.cancel()
            _ = signals
            // Instances of the same program seen here, for attribution.
            let instances = table.instances(ids, bootEpochNs: clock.bootEpochNs)
            if let latest = instances.last {
                let same = instances.filter { $0.process.image?.argv == latest.process.image?.argv }
                report = Attributor.report(Attribution.analyze(same), instances: same, root: "/", reader: ProcReader())
            }
            // Kill-at-exec shows as a SIGKILL exit at once; record it as blocked.
            for i in starts.indices {
                if let r = table[starts[i].record.id], case .signaled(9, _)? = r.exitStatus, let x = r.exitTime,
                   let t = r.image?.time, x >= t, x - t < 50_000_000 {
                    starts[i].blocked = "killed at exec"
                }
            }
        }
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }

        let out = LineWriter.stdout
        let ran = starts.filter { $0.blocked == nil }
        let human = Verify.human(secs)
        for s in starts.filter({ $0.blocked != nil }) {
            out.line("blocked  \(Fmt.time(s.startWallNs))  pid \(s.record.id.pid)  \(s.record.image?.argv.joined(separator: " ") ?? s.record.name)  (\(s.blocked!))")
        }
        guard !ran.isEmpty else {
            out.line("verify: nothing matching \"\(match)\" started in \(human)" + (starts.isEmpty ? "" : " (\(starts.count) blocked at exec)"))
            return
        }
        for s in ran {
            out.line("started  \(Fmt.time(s.startWallNs))  pid \(s.record.id.pid) \(s.record.id)  \(s.record.image?.argv.joined(separator: " ") ?? s.record.name)")
        }
        out.line("verify: \(ran.count) start\(ran.count == 1 ? "" : "s") of \"\(match)\" in \(human)")
        if let report { RespawnText.print(report, to: out) }
        throw ExitCode(1)
    }

    /// A daemon is writing this store now (its run is open and flushed in the last 10 s).
    func liveStore() -> Store? {
        guard FileManager.default.fileExists(atPath: db), let s = try? Store(path: db, readOnly: true),
              s.daemonIsWriting() else { return nil }
        return s
    }

    static func isProgram(_ r: ProcessRecord, match: String, ownExe: String?) -> Bool {
        guard let img = r.image, img.filename != ownExe else { return false }
        return img.runsProgram(matching: match)
    }

    static func blocked(_ r: ProcessRecord) -> String? {
        guard let e = r.image?.enforcement, e.blocked else { return nil }
        return e.message
    }

    /// `\rwatching "X" via …: 4m12s left` for the terminal line.
    static func countdown(_ match: String, via: String, end: Int64) -> String {
        let left = max(0, (end - WallClock.nowNs()) / 1_000_000_000)
        return "\rwatching \"\(match)\" via \(via): \(left / 60)m\(String(format: "%02d", left % 60))s left"
    }

    static func human(_ secs: Double) -> String {
        let s = Int(secs.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

func readlink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = Glibc.readlink(path, &buf, buf.count - 1)
    return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
}
