/// A change to a file a respawn mechanism reads (a unit, a crontab, a supervisord config,
/// rc.local), with the process that made it as the tracer knew it at that moment.
public struct ConfigChange: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case created, modified, deleted, renamedFrom = "renamed-from", renamedTo = "renamed-to", attributes }
    public var path: String
    public var kind: Kind
    public var timeWallNs: Int64
    public var writerPid: Int32
    /// The writer's identity (`PID@boot-seconds`), nil when the tracer did not know the PID.
    public var writerId: String?
    /// The writer's command line (redacted), or its name.
    public var command: String
    /// The writer's fork-time ancestry, nearest first: `bash(812) ← sshd(790) ← sshd(1)`.
    public var ancestry: String
    public var loginuid: UInt32?
    public var uid: UInt32?
    /// The writer's login session (`Lineage.session`), when it runs under a loginuid.
    public var session: String?

    private enum CodingKeys: String, CodingKey {
        case path, kind, timeWallNs = "time_wall_ns", writerPid = "writer_pid", writerId = "writer_id", command, ancestry, loginuid, uid, session
    }

    public init(path: String, kind: Kind, timeWallNs: Int64, writerPid: Int32, writerId: String?, command: String,
                ancestry: String, loginuid: UInt32?, uid: UInt32?, session: String? = nil) {
        self.path = path; self.kind = kind; self.timeWallNs = timeWallNs; self.writerPid = writerPid; self.writerId = writerId
        self.command = command; self.ancestry = ancestry; self.loginuid = loginuid; self.uid = uid; self.session = session
    }

    /// Package managers and configuration-management agents rewrite what they manage: a line
    /// removed by hand comes back at their next run. The first one in the writer's command or
    /// ancestry, by the name an operator knows it by.
    public var managedBy: String? {
        let text = (command + " " + ancestry).lowercased()
        let agents: [(String, String)] = [("ansible", "ansible"), ("puppet", "puppet"), ("chef-client", "chef"), ("salt-minion", "salt"),
                                          ("salt-call", "salt"), ("cloud-init", "cloud-init"), ("dpkg", "dpkg (a package)"),
                                          ("apt", "apt (a package)"), ("rpm", "rpm (a package)"), ("dnf", "dnf (a package)"), ("yum", "yum (a package)")]
        for (needle, name) in agents {
            if text.split(whereSeparator: { " /()←:".contains($0) }).contains(where: { $0 == needle || $0.hasPrefix(needle + "-") || $0.hasPrefix(needle + ".") }) {
                return name
            }
        }
        return nil
    }
}

extension AuditEvent {
    /// OCSF File System Activity (class 1001) for a change to a watched configuration source.
    public static func fileActivity(_ c: ConfigChange) -> AuditEvent {
        let (id, name): (Int, String) = switch c.kind {
        case .created: (1, "Create")
        case .modified: (3, "Update")
        case .deleted: (4, "Delete")
        case .renamedFrom, .renamedTo: (5, "Rename")
        case .attributes: (6, "Set Attributes")
        }
        var e = AuditEvent(class_uid: 1001, class_name: "File System Activity", category_uid: 1, category_name: "System Activity",
                           activity_id: id, activity_name: name, type_uid: 100_100 + id, time: c.timeWallNs / 1_000_000, severity_id: 1,
                           message: "\(c.path) \(c.kind.rawValue) by \(c.command)",
                           actor: Actor(process: Parent(pid: c.writerPid, uid: c.writerId ?? "", name: c.command.split(separator: " ").first.map(String.init) ?? "?",
                                                        cmd_line: c.command)),
                           unmapped: Unmapped(revenant: Extension(event: "config \(c.kind.rawValue)", detail: "writer ancestry: \(c.ancestry)")))
        e.file = File(path: c.path)
        return e
    }
}
