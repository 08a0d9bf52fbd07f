import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

/// One line of `revenant trace`: the JSON field names are a stable interface.
struct TraceRecord: Encodable {
    static let redactor = Redactor()

    let type: String
    let time: String
    let time_boot_ns: UInt64
    let pid: Int32
    let id: String
    let parent_pid: Int32?
    let parent_id: String?
    let adopted_by_pid: Int32?
    let adopted_by_id: String?
    let seeded_parent: Bool?
    let exe: String?
    let interpreter: String?
    let argv: [String]?
    let argv_truncated: Bool?
    let comm: String
    let uid: UInt32?
    let euid: UInt32?
    let loginuid: UInt32?
    let cgroup: String?
    let cgroup_id: UInt64?
    let cwd: String?
    let exe_dev: UInt64?
    let exe_ino: UInt64?
    let exit_code: Int32?
    let signal: Int32?
    let ancestry: [Ancestor]
    let text: String

    struct Ancestor: Encodable {
        let pid: Int32
        let id: String
        let comm: String
    }

    private enum CodingKeys: String, CodingKey {
        case type, time, time_boot_ns, pid, id, parent_pid, parent_id, adopted_by_pid, adopted_by_id,
             seeded_parent, exe, interpreter, argv, argv_truncated, comm, uid, euid, loginuid, cgroup,
             cgroup_id, cwd, exe_dev, exe_ino, exit_code, signal, ancestry
    }

    init(_ event: Event, table: ProcessTable, clock: BootClock) {
        let r = table[event.process]
        let img = r.map { TraceRecord.redactor.apply($0) }?.image   // trace output leaves the process too
        time = Fmt.iso(clock.bootEpochNs + Int64(event.time))
        time_boot_ns = event.time
        pid = event.process.pid
        id = event.process.description
        parent_pid = r?.parent?.pid
        parent_id = r?.parent?.description
        adopted_by_pid = r?.adoptedBy?.pid
        adopted_by_id = r?.adoptedBy?.description
        seeded_parent = (r?.seeded ?? false) ? true : nil
        comm = r?.name ?? ""
        ancestry = table.ancestry(of: event.process).map { Ancestor(pid: $0.id.pid, id: $0.id.description, comm: $0.name) }
        exe = img?.filename
        interpreter = img?.interpreter
        argv = img?.argv
        argv_truncated = img.map { $0.argvTruncated }
        uid = img?.uid
        euid = img?.euid
        loginuid = img?.loginuid
        cgroup = img?.cgroup
        cgroup_id = img?.cgroupId
        cwd = img?.cwd
        exe_dev = img?.exeDevice
        exe_ino = img?.exeInode
        let chain = Lineage.chain(table, of: event.process)
        let adopted = r?.adoptedBy.map { a in "  [adopted by \(table[a]?.name ?? "?")(\(a.pid))]" } ?? ""
        let stamp = Clock.hms.string(from: Date(timeIntervalSince1970: clock.wallSeconds(event.time)))
        let pidText = String(event.process.pid).padding(toLength: 7, withPad: " ", startingAt: 0)
        switch event {
        case .fork(let e):
            type = "fork"
            exit_code = nil; signal = nil
            text = "\(stamp) fork  \(pidText) \(comm)  ← \(chain)  (thread \(e.parentThread))"
        case .exec:
            type = "exec"
            exit_code = nil; signal = nil
            let cmd = img.map { Lineage.commandLine($0) } ?? ""
            text = "\(stamp) exec  \(pidText) \(cmd)  ← \(chain)\(adopted)"
        case .deny(let e):
            type = "deny"
            exit_code = nil; signal = nil
            text = "\(stamp) DENY  \(pidText) \(e.filename)  ← \(comm)(\(e.process.pid)) ← \(chain)  (execve refused: EPERM)"
        case .exit(let e):
            type = "exit"
            switch e.status {
            case .exited(let c): exit_code = c; signal = nil
            case .signaled(let s, _): exit_code = nil; signal = s
            }
            let start = r.map { Double(e.time &- $0.id.startNs) / 1e9 }
            let ran = start.map { String(format: "  (ran %.3fs)", $0) } ?? ""
            text = "\(stamp) exit  \(pidText) \(comm)  \(e.status)\(ran)\(adopted)"
        }
    }
}
