import ArgumentParser
import Foundation
import Logging
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the daemon: trace, keep the lineage history store, enforce the policy, write the audit log.",
        discussion: """
            SIGTERM/SIGINT stop it cleanly; SIGHUP reloads the policy (an invalid file is rejected \
            and the running policy stays).

            Examples:
              revenant run
              revenant run --db /var/lib/revenant/revenant.db --policy /etc/revenant/policy.yaml
              revenant run --audit all --redact='--hf-token=*' --audit-log /var/log/revenant/audit.jsonl
            """
    )

    @Option(help: "SQLite store.") var db: String = Store.defaultPath
    @Option(help: "Policy file (YAML). Default \(PolicyLoader.defaultPath) when it exists; SIGHUP reloads it.")
    var policy: String?
    @Option(help: "Days exited processes are kept in the store.") var retentionDays: Int = 7
    @Option(help: "Most processes kept in the store (oldest exited go first).") var maxProcesses: Int = 2_000_000
    @Option(help: "Ring buffer size in MiB (power of two).") var ringbufMib: UInt32 = 8
    enum AuditScope: String, ExpressibleByArgument, CaseIterable { case matched, all, none }
    @Option(help: "Audit log (JSON lines, OCSF, hash-chained).") var auditLog: String = AuditLog.defaultPath
    @Option(help: "What the audit log records: matched (execs and exits a rule matched, enforcement, findings, daemon events), all (every exec and exit too), none.")
    var audit: AuditScope = .matched
    @Option(help: ArgumentHelp("Hide a secret in command lines before anything is written (repeatable): a glob over one argument; `--password=*` hides what follows '=', `--password` hides the next argument.", valueName: "pattern"))
    var redact: [String] = []
    @Flag(help: "Do not apply the built-in redactions (--password=*, *TOKEN=*, …).") var noDefaultRedactions = false
    @Flag(help: "Pin the programs in bpffs so kill at exec stays in force while no daemon runs (a crash, a restart); the next `run --pin` replaces them without a gap, `revenant unpin` removes them.")
    var pin = false
    @Option(help: "Where --pin pins (a directory on a bpf filesystem).") var pinDir: String = Daemon.defaultPinDir
    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDRESS/metrics: PORT (on 127.0.0.1), HOST:PORT or [V6]:PORT.", valueName: "address"))
    var metrics: String?
    @Option(help: ArgumentHelp("Also send the audit stream to syslog as RFC 5424 (repeatable): udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log.", valueName: "target"))
    var forward: [String] = []
    @Flag(help: "Debug logging.") var verbose = false
    @Flag(help: .hidden) var benchUserspaceKill = false

    func run() async throws {
        try Preflight.requireTracing()
        let stopper = PendingStop<Daemon> { $0.stop() }
        let signals = SignalWatcher([SIGINT, SIGTERM]) { stopper.stop() }
        defer { _ = signals }
        LoggingSystem.bootstrap { label in
            var h = JournalLogHandler(label: label)
            h.logLevel = .info
            return h
        }
        var log = Logger(label: "revenant")
        if verbose { log.logLevel = .debug }
        var config = Daemon.Config()
        config.dbPath = db
        config.retentionSeconds = Int64(retentionDays) * 86_400
        config.maxProcesses = maxProcesses
        config.userspaceKill = benchUserspaceKill
        config.auditPath = audit == .none ? nil : auditLog
        config.auditAll = audit == .all
        config.redactor = Redactor(patterns: (noDefaultRedactions ? [] : Redactor.defaults) + redact)
        config.tracer.ringbufBytes = ringbufMib << 20
        config.pinDir = pin ? pinDir : nil
        if let metrics {
            guard let a = MetricsServer.Address(metrics) else {
                throw Failure("--metrics \(metrics): expected PORT, HOST:PORT or [V6]:PORT", status: 2)
            }
            if !a.isLoopback { log.warning("metrics served beyond loopback: anyone who reaches \(a) reads them", metadata: ["address": "\(a)"]) }
            do { config.metrics = try MetricsServer(address: a, logger: log) } catch { throw Failure("\(error)", status: 2) }
        }
        for f in forward {
            guard let t = SyslogForwarder.Target(f) else {
                throw Failure("--forward \(f): expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH", status: 2)
            }
            config.forward.append(t)
        }
        if !forward.isEmpty && audit == .none { throw Failure("--forward sends what the audit log records: it needs --audit matched or all", status: 2) }
        if let policy {
            config.policyPath = policy
        } else if FileManager.default.fileExists(atPath: PolicyLoader.defaultPath) {
            config.policyPath = PolicyLoader.defaultPath
        }
        let daemon = Daemon(config: config, logger: log)
        stopper.set(daemon)
        do {
            try await daemon.run()
        } catch let e as KernelLoadError {
            throw Failure(e.description, status: 2)
        } catch let e as StoreError {
            throw Failure(e.description, status: 2)
        } catch let e as PolicyError {
            throw Failure(e.description, status: 2)
        }
    }
}

struct Unpin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpin", abstract: "Remove the programs `run --pin` left in the kernel: kill at exec ends until a daemon runs again.",
        discussion: "A running daemon's own programs stay attached until it stops.")
    @Option(help: "The directory `run --pin-dir` pinned in.") var pinDir: String = Daemon.defaultPinDir

    func run() throws {
        let n = Daemon.unpin(pinDir)
        LineWriter.stdout.line(n == 0 ? "nothing pinned under \(pinDir)" : "removed \(n) pinned programs under \(pinDir)")
    }
}
