/// How a process ended, decoded from the kernel's wait status.
public enum ExitStatus: Hashable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32, coreDumped: Bool)

    public init(waitStatus raw: UInt32) {
        let sig = Int32(raw & 0x7f)
        if sig == 0 {
            self = .exited(Int32((raw >> 8) & 0xff))
        } else {
            self = .signaled(sig, coreDumped: raw & 0x80 != 0)
        }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exit \(c)"
        case .signaled(let s, let core): return "signal \(s)\(Signal.name(s).map { " (\($0))" } ?? "")\(core ? " core" : "")"
        }
    }
}

public enum Signal {
    static let names: [Int32: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
        9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
    ]
    public static func name(_ s: Int32) -> String? { names[s] }
}

public struct ForkEvent: Hashable, Sendable {
    public var time: UInt64
    public var process: Identity
    public var parent: Identity
    public var parentThread: Int32

    public init(time: UInt64, process: Identity, parent: Identity, parentThread: Int32) {
        self.time = time; self.process = process; self.parent = parent; self.parentThread = parentThread
    }
}

public struct ExecEvent: Hashable, Sendable {
    public var time: UInt64
    public var process: Identity
    /// Fork-time parent; nil when the process predates tracing (or the kernel map was full).
    public var parent: Identity?
    /// The parent at exec time: differs from `parent` once the process was reparented.
    public var realParent: Identity
    public var oldPid: Int32
    public var filename: String
    public var interpreter: String?
    public var exeDevice: UInt64
    public var exeInode: UInt64
    public var argv: [String]
    public var argc: Int
    public var argvTruncated: Bool
    public var comm: String
    public var uid: UInt32
    public var euid: UInt32
    public var gid: UInt32
    /// nil when unset (4294967295) or not compiled into the kernel.
    public var loginuid: UInt32?
    public var cgroupId: UInt64
    public var cgroup: String
    public var cwd: String?
    public var cwdTruncated: Bool
    public var flags: UInt32
    /// Policy rule bits that matched in the kernel, and what the kernel did.
    public var matched: UInt64 = 0
    public var action: KernelAction = .none
}

/// What the kernel did to an exec (enum rv_action).
public enum KernelAction: UInt32, Sendable, Hashable {
    case none = 0, audit = 1, kill = 2, killFailed = 3, deny = 4
}

public struct ExitEvent: Hashable, Sendable {
    public var time: UInt64
    public var process: Identity
    public var parent: Identity?
    public var realParent: Identity
    public var status: ExitStatus
    /// It still had children, reparented as it ended: they may be first seen later.
    public var leftChildren: Bool = false
}

/// An execve the deny tier refused: the caller keeps its image.
public struct DenyEvent: Hashable, Sendable {
    public var time: UInt64
    public var process: Identity
    public var parent: Identity?
    public var filename: String
    public var exeDevice: UInt64
    public var exeInode: UInt64
    public var matched: UInt64
    public var uid: UInt32
    public var comm: String
}

/// One record from the kernel.
public enum Event: Hashable, Sendable {
    case fork(ForkEvent)
    case exec(ExecEvent)
    case exit(ExitEvent)
    case deny(DenyEvent)

    public var process: Identity {
        switch self {
        case .fork(let e): return e.process
        case .exec(let e): return e.process
        case .exit(let e): return e.process
        case .deny(let e): return e.process
        }
    }

    /// The rule bits an exec matched in the kernel; nil for any other record.
    public var execMatched: UInt64? {
        if case .exec(let e) = self { e.matched } else { nil }
    }

    /// An exec's command line; nil for any other record.
    public var execArgv: [String]? {
        if case .exec(let e) = self { e.argv } else { nil }
    }

    public var isExit: Bool {
        if case .exit = self { true } else { false }
    }

    public var time: UInt64 {
        switch self {
        case .fork(let e): return e.time
        case .exec(let e): return e.time
        case .exit(let e): return e.time
        case .deny(let e): return e.time
        }
    }
}
