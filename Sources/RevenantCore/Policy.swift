/// What a rule does to a matching exec.
public enum PolicyAction: String, Sendable, CaseIterable, Comparable {
    case audit, kill, deny

    var strength: Int { switch self { case .audit: 0; case .kill: 1; case .deny: 2 } }
    public static func < (a: PolicyAction, b: PolicyAction) -> Bool { a.strength < b.strength }
}

/// What a rule matches. Every given field must match.
public struct PolicyMatch: Sendable, Equatable {
    /// Executable path; the kernel matches its device and inode.
    public var exe: String?
    /// Script for interpreters: an argv element (or the exec path of a #! script), by full
    /// path or, when it has no '/', by basename.
    public var script: String?
    /// Process name (comm, 15 bytes at most).
    public var comm: String?
    /// Glob over the command line (argv joined by spaces): checked in userspace, audit only.
    public var argv: String?

    public init(exe: String? = nil, script: String? = nil, comm: String? = nil, argv: String? = nil) {
        self.exe = exe; self.script = script; self.comm = comm; self.argv = argv
    }
}

public struct PolicyRule: Sendable, Equatable {
    public var name: String
    public var match: PolicyMatch
    public var action: PolicyAction
    /// Terminate matching processes already running when the policy loads.
    public var killExisting: Bool
    /// Lets a rule match a shell, an interpreter alone, sshd, PID 1 or revenant itself.
    public var allowDangerous: Bool
    /// Line of the rule in its file, for messages.
    public var line: Int

    public init(name: String, match: PolicyMatch, action: PolicyAction, killExisting: Bool = false,
                allowDangerous: Bool = false, line: Int = 0) {
        self.name = name; self.match = match; self.action = action; self.killExisting = killExisting
        self.allowDangerous = allowDangerous; self.line = line
    }
}

public struct Policy: Sendable, Equatable {
    /// Rules the kernel can hold per policy (a reload writes the other half of a 64-bit mask).
    public static let maxRules = 32
    public var file: String
    public var rules: [PolicyRule]

    public init(file: String, rules: [PolicyRule]) {
        self.file = file; self.rules = rules
    }
}

/// `policy.yaml:12:11: unknown action "kil" (expected audit, kill, deny)`.
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file; self.line = line; self.column = column; self.message = message
    }

    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}
