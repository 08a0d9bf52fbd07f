import ArgumentParser
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Watch for a while and say whether a program started again.",
        discussion: """
            Exit 0 when nothing matching started during the window (starts that the policy blocked \
            at exec are listed but do not count: they never ran), 1 with the attribution of each \
            start otherwise, 2 when it cannot watch or cannot tell (events were lost in the window). Watches through the daemon's store while a daemon \
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
    @OptionGroup var store: StoreOptions
    @Flag(help: "Attach our own BPF programs even if a daemon is running.") var own = false

    func run() async throws {
        guard let secs = TimeArgument.duration(window), secs > 0 else { throw Failure("--for \(window): expected a duration such as 300, 90s, 5m", status: 2) }
        let t0 = WallClock.nowNs()
        let end = t0 + Int64(secs * 1e9)
        let tty = isatty(2) == 1
        let watch = VerifyWatch(match: match, startWallNs: t0, endWallNs: end, ownExe: readlink("/proc/self/exe"))
        let outcome: VerifyWatch.Outcome
        if !own, let live = VerifyWatch.liveStore(store.db) {
            outcome = try await watch.throughStore(live) { starts in
                guard tty else { return }
                let msg = Verify.countdown(match, via: "the daemon's store", end: end)
                    + ", \(starts.filter { $0.blocked == nil }.count) started, \(starts.filter { $0.blocked != nil }.count) blocked "
                FileHandle.standardError.write(Data(msg.utf8))
            }
        } else {
            try Preflight.requireTracing()
            let match = self.match
            let ticker = Task {
                while tty, WallClock.nowNs() < end {
                    FileHandle.standardError.write(Data((Verify.countdown(match, via: "own BPF", end: end) + " ").utf8))
                    try? await Task.sleep(for: .milliseconds(1000))
                }
            }
            defer { ticker.cancel() }
            let stopper = PendingStop<@Sendable () -> Void> { stop in stop() }
            let signals = SignalWatcher([SIGINT, SIGTERM]) { stopper.stop() }
            defer { _ = signals }
            do {
                outcome = try await watch.ownTracer { stopper.set($0) }
            } catch {
                throw Failure("\(error)", status: 2)
            }
        }
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }

        let out = LineWriter.stdout
        let ran = outcome.ran
        let human = Verify.human(secs)
        for s in outcome.starts where s.blocked != nil {
            out.line("blocked  \(Fmt.time(s.startWallNs))  pid \(s.record.id.pid)  \(s.record.image?.argv.joined(separator: " ") ?? s.record.name)  (\(s.blocked!))")
        }
        let lost = outcome.gaps.reduce(Int64(0)) { $0 + $1.lost }
        for g in outcome.gaps { out.line("trace gap  \(Fmt.time(g.fromWallNs))–\(Fmt.time(g.toWallNs, short: true))  \(g.detail)") }
        guard !ran.isEmpty else {
            if !outcome.gaps.isEmpty {
                // No start seen is not "did not start" when events were lost.
                throw Failure("cannot tell: \(lost) events lost in the window (\(outcome.gaps.count) trace gap\(outcome.gaps.count == 1 ? "" : "s")); nothing matching \"\(match)\" seen", status: 2)
            }
            out.line("verify: nothing matching \"\(match)\" started in \(human)" + (outcome.starts.isEmpty ? "" : " (\(outcome.starts.count) blocked at exec)"))
            return
        }
        for s in ran {
            out.line("started  \(Fmt.time(s.startWallNs))  pid \(s.record.id.pid) \(s.record.id)  \(s.record.image?.argv.joined(separator: " ") ?? s.record.name)")
        }
        out.line("verify: \(ran.count) start\(ran.count == 1 ? "" : "s") of \"\(match)\" in \(human)")
        if let report = outcome.respawn { RespawnText.print(report, to: out) }
        throw ExitCode(1)
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

