/// One audit record, shaped as OCSF 1.1.0: Process Activity (class 1007) for process events,
/// File System Activity (1001) for configuration changes, Base Event (class 0) for the
/// daemon's own start, stop, policy loads and findings. revenant's own fields live under
/// `unmapped.revenant` (with the hash chain's `seq` and `prev_hash`): every record validates
/// against the schema it declares, and strict consumers keep it.
public struct AuditEvent: Encodable, Sendable {
    public struct Product: Encodable, Sendable { var name = "revenant"; var vendor_name = "revenant"; var version = "0.1.0" }
    public struct Metadata: Encodable, Sendable {
        var product = Product()
        var version = AuditEvent.ocsfVersion
        /// `security_control` where the record carries action and disposition.
        var profiles: [String]?
    }
    public static let ocsfVersion = "1.1.0"
    public struct File: Encodable, Sendable {
        public var path: String
        public var name: String
        /// 1: a regular file.
        public var type_id = 1
        public init(path: String) {
            self.path = path
            // The last component; a path ending in "/" (never an exec's) takes the split.
            if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), path.utf8.index(after: slash) != path.utf8.endIndex {
                name = String(path[path.utf8.index(after: slash)...])
            } else {
                name = path.split(separator: "/").last.map(String.init) ?? path
            }
        }
    }
    /// The host a record is about (required by the System Activity classes).
    public struct Device: Encodable, Sendable {
        public struct OS: Encodable, Sendable {
            public var name = "Linux"
            /// 200: Linux.
            public var type_id = 200
            public var version: String?
        }
        /// 1: a server.
        public var type_id = 1
        public var hostname: String
        public var name: String
        /// /etc/machine-id, when there is one.
        public var uid: String?
        public var os: OS
        public init(hostname: String, machineID: String?, kernel: String?) {
            self.hostname = hostname; name = hostname; uid = machineID; os = OS(version: kernel)
        }
    }
    public struct Unmapped: Encodable, Sendable { public var revenant: Extension }
    public struct Ancestor: Encodable, Sendable { public var pid: Int32; public var uid: String; public var name: String }
    public struct Parent: Encodable, Sendable {
        public var pid: Int32
        public var uid: String
        public var name: String
        public var cmd_line: String?
    }
    public struct Process: Encodable, Sendable {
        public var pid: Int32
        public var uid: String          // revenant's identity: PID@boot-seconds
        public var name: String
        public var cmd_line: String?
        public var file: File?
        public var created_time: Int64? // ms since the epoch
        public var parent_process: Parent?
        /// The ancestors' executables (else names), nearest first: OCSF's `lineage`.
        public var lineage: [String]
    }
    public struct User: Encodable, Sendable { public var uid: String }
    public struct Actor: Encodable, Sendable {
        public var process: Parent?
        public var user: User?
        public init(process: Parent?, user: User? = nil) { self.process = process; self.user = user }

        /// Who launched `r`: its parent, and the user it runs as (OCSF wants at least one).
        static func of(_ r: ProcessRecord, _ p: Process) -> Actor {
            let user = r.image.map { User(uid: String($0.uid)) }
            if p.parent_process == nil && user == nil {
                return Actor(process: Parent(pid: r.parent?.pid ?? 0, uid: r.parent?.description ?? "", name: "unknown", cmd_line: nil))
            }
            return Actor(process: p.parent_process, user: user)
        }
    }
    /// What respawns the process, as attribution found it when the record was written.
    public struct Respawn: Encodable, Sendable, Equatable {
        public var mechanism: Mechanism
        public var unit: String?
        public var spawner_pid: Int32?
        public var spawner_uid: String?
        public var file: String?
        public var line: Int?
        public var text: String?
        public var instances: Int
        public var confidence: Finding.Confidence
        public var remediation: [String]
        public init(mechanism: Mechanism, unit: String?, spawner_pid: Int32?, spawner_uid: String?, file: String?, line: Int?,
                    text: String?, instances: Int, confidence: Finding.Confidence, remediation: [String]) {
            self.mechanism = mechanism; self.unit = unit; self.spawner_pid = spawner_pid; self.spawner_uid = spawner_uid
            self.file = file; self.line = line; self.text = text; self.instances = instances
            self.confidence = confidence; self.remediation = remediation
        }
    }
    public struct Extension: Encodable, Sendable {
        public var seq: Int = 0
        public var prev_hash: String = AuditChain.genesis
        public var event: String
        public var rule: [String]?
        public var tier: String?
        public var respawned_by: Respawn?
        public var detail: String?
        public var signal: Int32?
        public var lost_records: Int?
        /// Fork-time ancestry of the record's process, nearest first, with identities.
        public var ancestry: [Ancestor]?
        /// A finding's process (Base Event has no `process`).
        public var process: Process?
    }

    public var class_uid: Int
    public var class_name: String
    public var category_uid: Int
    public var category_name: String
    public var activity_id: Int
    public var activity_name: String
    public var type_uid: Int
    public var time: Int64
    public var severity_id: Int
    public var message: String
    public var metadata = Metadata()
    public var process: Process?
    public var actor: Actor?
    public var action_id: Int?
    public var disposition_id: Int?
    public var exit_code: Int32?
    /// File System Activity's file (class 1001).
    public var file: File?
    public var device: Device?
    public var unmapped: Unmapped
    public var revenant: Extension {
        get { unmapped.revenant }
        set { unmapped.revenant = newValue }
    }

    /// Links the record into a hash chain and names the host: what the audit log and
    /// `export --format ocsf` do to each record before it is encoded.
    public mutating func chain(seq: Int, prevHash: String, device: Device) {
        revenant.seq = seq
        revenant.prev_hash = prevHash
        if class_uid != 0 { self.device = device }
        if action_id != nil || disposition_id != nil { metadata.profiles = ["security_control"] }
    }

    /// A daemon lifecycle record (OCSF Base Event).
    public static func daemon(_ what: String, timeMs: Int64, detail: String? = nil, severity: Int = 1) -> AuditEvent {
        AuditEvent(class_uid: 0, class_name: "Base Event", category_uid: 0, category_name: "Uncategorized",
                   activity_id: 99, activity_name: what, type_uid: 99, time: timeMs, severity_id: severity,
                   message: "revenant \(what)" + (detail.map { ": \($0)" } ?? ""),
                   unmapped: Unmapped(revenant: Extension(event: what, detail: detail)))
    }

    public static func process(_ r: ProcessRecord, ancestry: [ProcessRecord], bootEpochNs: Int64) -> Process {
        let img = r.image
        let parent = ancestry.first.map {
            Parent(pid: $0.id.pid, uid: $0.id.description, name: $0.name, cmd_line: $0.image.map { $0.argv.joined(separator: " ") })
        }
        return Process(pid: r.id.pid, uid: r.id.description, name: r.name, cmd_line: img.map { $0.argv.joined(separator: " ") },
                       file: img.map { File(path: $0.filename) }, created_time: (bootEpochNs + Int64(r.id.startNs)) / 1_000_000,
                       parent_process: parent, lineage: ancestry.map { $0.image.flatMap { $0.filename.isEmpty ? nil : $0.filename } ?? $0.name })
    }

    static func ancestors(_ ancestry: [ProcessRecord]) -> [Ancestor] {
        ancestry.map { Ancestor(pid: $0.id.pid, uid: $0.id.description, name: $0.name) }
    }

    /// A process launch (OCSF activity 1 Launch) that a rule matched, or any with `--audit all`.
    /// `blocked`: killed at exec or denied (action 2 Denied, disposition 2 Blocked).
    public static func launch(_ r: ProcessRecord, ancestry: [ProcessRecord], bootEpochNs: Int64, timeMs: Int64,
                              rules: [String], tier: EnforcementTier?, blocked: Bool, message: String,
                              respawnedBy: Respawn? = nil, process built: Process? = nil) -> AuditEvent {
        let p = built ?? process(r, ancestry: ancestry, bootEpochNs: bootEpochNs)
        var ext = Extension(event: blocked ? "blocked" : rules.isEmpty ? "exec" : "matched", rule: rules.isEmpty ? nil : rules, tier: tier?.rawValue)
        ext.ancestry = ancestors(ancestry)
        ext.respawned_by = respawnedBy
        return AuditEvent(class_uid: 1007, class_name: "Process Activity", category_uid: 1, category_name: "System Activity",
                          activity_id: 1, activity_name: "Launch", type_uid: 100701, time: timeMs,
                          severity_id: blocked ? 4 : rules.isEmpty ? 1 : 2, message: message, process: p,
                          actor: .of(r, p),
                          action_id: blocked ? 2 : 1, disposition_id: blocked ? 2 : 1, unmapped: Unmapped(revenant: ext))
    }

    /// A process exit (OCSF activity 2 Terminate), with its exit code or signal.
    /// `process`: the launch record's, when the caller has it (export writes both).
    public static func terminate(_ r: ProcessRecord, ancestry: [ProcessRecord], bootEpochNs: Int64, timeMs: Int64,
                                 rules: [String], process built: Process? = nil) -> AuditEvent {
        let p = built ?? process(r, ancestry: ancestry, bootEpochNs: bootEpochNs)
        var ext = Extension(event: "exit", rule: rules.isEmpty ? nil : rules)
        ext.ancestry = ancestors(ancestry)
        var code: Int32?
        switch r.exitStatus {
        case .exited(let c): code = c
        case .signaled(let sig, _): ext.signal = sig
        case nil: break
        }
        return AuditEvent(class_uid: 1007, class_name: "Process Activity", category_uid: 1, category_name: "System Activity",
                          activity_id: 2, activity_name: "Terminate", type_uid: 100702, time: timeMs, severity_id: 1,
                          message: "\(r.name)(\(r.id.pid)) ended: \(r.exitStatus.map { "\($0)" } ?? "gone")", process: p,
                          actor: .of(r, p), exit_code: code, unmapped: Unmapped(revenant: ext))
    }

    /// An attribution finding: what respawns a program, first seen or changed (OCSF Base Event).
    public static func finding(_ r: ProcessRecord, ancestry: [ProcessRecord], bootEpochNs: Int64, timeMs: Int64,
                               rules: [String], respawn: Respawn) -> AuditEvent {
        var ext = Extension(event: "respawn finding", rule: rules.isEmpty ? nil : rules)
        ext.respawned_by = respawn
        ext.process = process(r, ancestry: ancestry, bootEpochNs: bootEpochNs)
        ext.ancestry = ancestors(ancestry)
        let where_ = respawn.file.map { " (\($0):\(respawn.line ?? 0))" } ?? ""
        return AuditEvent(class_uid: 0, class_name: "Base Event", category_uid: 0, category_name: "Uncategorized",
                          activity_id: 99, activity_name: "respawn finding", type_uid: 99, time: timeMs, severity_id: 3,
                          message: "\(r.image?.argv.joined(separator: " ") ?? r.name) is respawned by \(respawn.mechanism.rawValue)\(where_)",
                          unmapped: Unmapped(revenant: ext))
    }
}
