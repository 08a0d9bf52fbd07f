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

/// The texts of one exec, held in one shared box: an exec record is moved several times on its
/// way to the store, and a program respawned in a loop sends the same texts each time (the
/// decoder then hands out the same box). Immutable: a changed text is a new box.
public final class ExecTexts: Hashable, Sendable {
    public let filename: String
    public let interpreter: String?
    public let argv: [String]
    public let argvTruncated: Bool
    public let comm: String
    public let cgroup: String
    public let cwd: String?
    public let cwdTruncated: Bool

    public init(filename: String, interpreter: String?, argv: [String], argvTruncated: Bool, comm: String,
                cgroup: String, cwd: String?, cwdTruncated: Bool) {
        self.filename = filename; self.interpreter = interpreter; self.argv = argv
        self.argvTruncated = argvTruncated; self.comm = comm; self.cgroup = cgroup
        self.cwd = cwd; self.cwdTruncated = cwdTruncated
    }

    func with(filename: String? = nil, interpreter: String?? = nil, argv: [String]? = nil, argvTruncated: Bool? = nil,
              comm: String? = nil, cgroup: String? = nil, cwd: String?? = nil, cwdTruncated: Bool? = nil) -> ExecTexts {
        ExecTexts(filename: filename ?? self.filename, interpreter: interpreter ?? self.interpreter,
                  argv: argv ?? self.argv, argvTruncated: argvTruncated ?? self.argvTruncated,
                  comm: comm ?? self.comm, cgroup: cgroup ?? self.cgroup, cwd: cwd ?? self.cwd,
                  cwdTruncated: cwdTruncated ?? self.cwdTruncated)
    }

    public static func == (a: ExecTexts, b: ExecTexts) -> Bool {
        a === b || (a.filename == b.filename && a.interpreter == b.interpreter && a.argv == b.argv
            && a.argvTruncated == b.argvTruncated && a.comm == b.comm && a.cgroup == b.cgroup
            && a.cwd == b.cwd && a.cwdTruncated == b.cwdTruncated)
    }

    public func hash(into h: inout Hasher) {
        h.combine(filename); h.combine(interpreter); h.combine(argv); h.combine(argvTruncated)
        h.combine(comm); h.combine(cgroup); h.combine(cwd); h.combine(cwdTruncated)
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
    public var exeDevice: UInt64
    public var exeInode: UInt64
    public var argc: Int
    public var uid: UInt32
    public var euid: UInt32
    public var gid: UInt32
    /// nil when unset (4294967295) or not compiled into the kernel.
    public var loginuid: UInt32?
    public var cgroupId: UInt64
    public var flags: UInt32
    /// Policy rule bits that matched in the kernel, and what the kernel did.
    public var matched: UInt64 = 0
    public var action: KernelAction = .none
    /// Path, interpreter, argv, comm, cgroup and cwd (see the accessors below).
    public var texts: ExecTexts

    public var filename: String {
        @inlinable get { texts.filename }
        set { texts = texts.with(filename: newValue) }
    }
    public var interpreter: String? {
        @inlinable get { texts.interpreter }
        set { texts = texts.with(interpreter: .some(newValue)) }
    }
    public var argv: [String] {
        @inlinable get { texts.argv }
        set { texts = texts.with(argv: newValue) }
    }
    public var argvTruncated: Bool {
        @inlinable get { texts.argvTruncated }
        set { texts = texts.with(argvTruncated: newValue) }
    }
    public var comm: String {
        @inlinable get { texts.comm }
        set { texts = texts.with(comm: newValue) }
    }
    public var cgroup: String {
        @inlinable get { texts.cgroup }
        set { texts = texts.with(cgroup: newValue) }
    }
    public var cwd: String? {
        @inlinable get { texts.cwd }
        set { texts = texts.with(cwd: .some(newValue)) }
    }
    public var cwdTruncated: Bool {
        @inlinable get { texts.cwdTruncated }
        set { texts = texts.with(cwdTruncated: newValue) }
    }

    public init(time: UInt64, process: Identity, parent: Identity?, realParent: Identity, oldPid: Int32,
                filename: String, interpreter: String?, exeDevice: UInt64, exeInode: UInt64, argv: [String],
                argc: Int, argvTruncated: Bool, comm: String, uid: UInt32, euid: UInt32, gid: UInt32,
                loginuid: UInt32?, cgroupId: UInt64, cgroup: String, cwd: String?, cwdTruncated: Bool,
                flags: UInt32, matched: UInt64 = 0, action: KernelAction = .none) {
        self.init(time: time, process: process, parent: parent, realParent: realParent, oldPid: oldPid,
                  texts: ExecTexts(filename: filename, interpreter: interpreter, argv: argv, argvTruncated: argvTruncated,
                                   comm: comm, cgroup: cgroup, cwd: cwd, cwdTruncated: cwdTruncated),
                  exeDevice: exeDevice, exeInode: exeInode, argc: argc, uid: uid, euid: euid, gid: gid,
                  loginuid: loginuid, cgroupId: cgroupId, flags: flags, matched: matched, action: action)
    }

    public init(time: UInt64, process: Identity, parent: Identity?, realParent: Identity, oldPid: Int32,
                texts: ExecTexts, exeDevice: UInt64, exeInode: UInt64, argc: Int, uid: UInt32, euid: UInt32,
                gid: UInt32, loginuid: UInt32?, cgroupId: UInt64, flags: UInt32, matched: UInt64 = 0,
                action: KernelAction = .none) {
        self.time = time; self.process = process; self.parent = parent; self.realParent = realParent
        self.oldPid = oldPid; self.texts = texts; self.exeDevice = exeDevice; self.exeInode = exeInode
        self.argc = argc; self.uid = uid; self.euid = euid; self.gid = gid; self.loginuid = loginuid
        self.cgroupId = cgroupId; self.flags = flags; self.matched = matched; self.action = action
    }
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

    public init(time: UInt64, process: Identity, parent: Identity?, realParent: Identity, status: ExitStatus, leftChildren: Bool = false) {
        self.time = time; self.process = process; self.parent = parent; self.realParent = realParent
        self.status = status; self.leftChildren = leftChildren
    }
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
