import Foundation
import RevenantCore

/// Builders of events and records for the pure tests and the store's fixture tests.
public enum Build {
    /// A process identity started `seconds` after boot.
    public static func id(_ pid: Int32, _ seconds: UInt64) -> Identity { Identity(pid: pid, startNs: seconds * 1_000_000_000) }

    public static func fork(_ child: Identity, of parent: Identity) -> Event {
        .fork(ForkEvent(time: child.startNs, process: child, parent: parent, parentThread: parent.pid))
    }

    public static func exec(_ p: Identity, _ argv: [String], parent: Identity?, real: Identity, at t: UInt64 = 0) -> Event {
        .exec(ExecEvent(time: p.startNs + t, process: p, parent: parent, realParent: real, oldPid: p.pid,
                        filename: argv[0], interpreter: nil, exeDevice: 1, exeInode: 2, argv: argv, argc: argv.count,
                        argvTruncated: false, comm: String(argv[0].split(separator: "/").last!), uid: 0, euid: 0, gid: 0,
                        loginuid: nil, cgroupId: 1, cgroup: "/", cwd: "/", cwdTruncated: false, flags: 0))
    }

    public static func exit(_ p: Identity, parent: Identity?, real: Identity, code: Int32 = 0, at t: UInt64 = 1_000) -> Event {
        .exit(ExitEvent(time: p.startNs + t, process: p, parent: parent, realParent: real, status: .exited(code)))
    }

    /// One image of `exe` running `argv`, as a worker under a unit would have it.
    public static func image(_ t: UInt64, _ argv: [String], exe: String = "/usr/bin/python3", uid: UInt32 = 1000,
                             cgroup: String = "/system.slice/w.service", cwd: String? = "/opt") -> Image {
        Image(time: t, filename: exe, argv: argv, comm: (exe as NSString).lastPathComponent, uid: uid, euid: uid, gid: uid,
              cgroup: cgroup, cwd: cwd)
    }

    /// A process with the given images, exited with status 3 at `exitAt` if given.
    public static func process(_ pid: Int32, start: UInt64, parent: Identity?, exitAt: UInt64? = nil, images: [Image] = [],
                               comm: String? = nil, exitCode: Int32 = 3) -> ProcessRecord {
        var r = ProcessRecord(id: Identity(pid: pid, startNs: start), parent: parent, comm: comm ?? "p\(pid)")
        r.images = images
        if let exitAt { r.exitTime = exitAt; r.exitStatus = .exited(exitCode) }
        return r
    }

    /// A process whose one image runs `argv` (argv[0] its exe), started at `start` ns.
    public static func record(_ pid: Int32, _ start: UInt64, _ argv: [String], cgroup: String = "/", parent: Identity? = nil) -> ProcessRecord {
        var r = ProcessRecord(id: Identity(pid: pid, startNs: start), parent: parent, comm: String(argv[0].split(separator: "/").last!))
        r.images = [Image(time: start, filename: argv[0], argv: argv, comm: r.comm, cgroup: cgroup)]
        return r
    }
}
