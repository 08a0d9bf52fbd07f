/// One program image of a process: each exec adds one.
public struct Image: Hashable, Sendable {
    public var time: UInt64
    public var filename: String
    public var interpreter: String?
    public var exeDevice: UInt64
    public var exeInode: UInt64
    public var argv: [String]
    public var argvTruncated: Bool
    public var comm: String
    public var uid: UInt32
    public var euid: UInt32
    public var gid: UInt32
    public var loginuid: UInt32?
    public var cgroupId: UInt64
    public var cgroup: String
    public var cwd: String?
    /// What enforcement did to this image.
    public var enforcement: Enforcement?

    public init(time: UInt64, filename: String, interpreter: String? = nil, exeDevice: UInt64 = 0,
                exeInode: UInt64 = 0, argv: [String], argvTruncated: Bool = false, comm: String,
                uid: UInt32 = 0, euid: UInt32 = 0, gid: UInt32 = 0, loginuid: UInt32? = nil,
                cgroupId: UInt64 = 0, cgroup: String = "", cwd: String? = nil) {
        self.time = time; self.filename = filename; self.interpreter = interpreter
        self.exeDevice = exeDevice; self.exeInode = exeInode; self.argv = argv
        self.argvTruncated = argvTruncated; self.comm = comm; self.uid = uid; self.euid = euid
        self.gid = gid; self.loginuid = loginuid; self.cgroupId = cgroupId; self.cgroup = cgroup; self.cwd = cwd
    }

    public init(_ e: ExecEvent) {
        self.init(time: e.time, filename: e.filename, interpreter: e.interpreter, exeDevice: e.exeDevice,
                  exeInode: e.exeInode, argv: e.argv, argvTruncated: e.argvTruncated, comm: e.comm,
                  uid: e.uid, euid: e.euid, gid: e.gid, loginuid: e.loginuid, cgroupId: e.cgroupId,
                  cgroup: e.cgroup, cwd: e.cwd)
    }
}

/// What is known of one process.
public struct ProcessRecord: Hashable, Sendable {
    public private(set) var id: Identity
    /// The process that forked it; nil when unknown (seeded, or it predates tracing).
    public var parent: Identity?
    /// Seeded: the parent seen in /proc when tracing started, which may be an adopter.
    public var parentIsCurrentOnly: Bool = false
    /// The process it was reparented to, when that differs from the fork-time parent.
    public var adoptedBy: Identity?
    /// Images in exec order, bounded by `ProcessTable.maxImages` (first and latest kept).
    public var images: [Image] = []
    public var imagesDropped: Int = 0
    /// The name inherited at fork, until the first exec.
    public var comm: String
    public var exitTime: UInt64?
    public var exitStatus: ExitStatus?
    /// Alive before tracing started and read from /proc.
    public var seeded: Bool = false
    /// execve calls the deny tier refused (the latest 16).
    public var denied: [DenyEvent] = []

    public init(id: Identity, parent: Identity?, comm: String) {
        self.id = id; self.parent = parent; self.comm = comm
    }

    /// The same record under the precise identity the kernel reported.
    public init(rekeying r: ProcessRecord, to id: Identity) {
        self = r
        self.id = id
    }

    /// True while `images` holds only the image inherited from the parent at fork.
    public var imageInherited: Bool = false

    /// Exited, or known gone (its PID was reused while no exit was seen: `exitStatus` nil).
    public var exited: Bool { exitTime != nil }
    public var image: Image? { images.last }
    /// The short name shown in chains: the latest image's comm.
    public var name: String { images.last?.comm ?? comm }
}

/// A process that exec'd and ended within one store batch, forking nothing, as
/// `ProcessTable.leaf(exiting:_:)` hands it out: its exec and exit, no record built.
public struct ShortLived: Sendable {
    public var exec: ExecEvent
    public var exit: ExitEvent
    /// As in `ProcessRecord`: under current keys.
    public var parent: Identity?
    public var parentIsCurrentOnly = false
    public var adoptedBy: Identity?

    public init(exec: ExecEvent, exit: ExitEvent, parent: Identity?, parentIsCurrentOnly: Bool = false, adoptedBy: Identity? = nil) {
        self.exec = exec; self.exit = exit; self.parent = parent
        self.parentIsCurrentOnly = parentIsCurrentOnly; self.adoptedBy = adoptedBy
    }
}

extension ProcessRecord {
    /// The record `ProcessTable.apply` builds from the same exec and exit.
    public init(_ s: ShortLived) {
        self.init(id: s.exit.process, parent: s.parent, comm: s.exec.comm)
        parentIsCurrentOnly = s.parentIsCurrentOnly
        adoptedBy = s.adoptedBy
        images = [Image(s.exec)]
        exitTime = s.exit.time
        exitStatus = s.exit.status
    }
}
