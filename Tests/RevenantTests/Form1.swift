@testable import RevenantCore

/// The form-1 writer of earlier versions, kept to write what their stores hold.
enum Form1 {
    static func record(_ r: ProcessRecord, _ w: inout LeafCodec.Writer) {
        var flags: UInt64 = 0
        if r.parent != nil { flags |= 1 }
        if r.parentIsCurrentOnly { flags |= 2 }
        if r.adoptedBy != nil { flags |= 4 }
        if r.exitTime != nil { flags |= 8 }
        switch r.exitStatus {
        case .exited?: flags |= 16
        case .signaled(_, let core)?: flags |= core ? 96 : 32
        case nil: break
        }
        func optional(_ s: String?) { if let s { w.uint(UInt64(s.utf8.count) + 1); w.bytes += Array(s.utf8) } else { w.uint(0) } }
        w.uint(UInt64(UInt32(bitPattern: r.id.pid))); w.uint(r.id.startNs); w.uint(flags)
        if let p = r.parent { w.uint(UInt64(UInt32(bitPattern: p.pid))); w.uint(p.startNs) }
        if let a = r.adoptedBy { w.uint(UInt64(UInt32(bitPattern: a.pid))); w.uint(a.startNs) }
        w.string(r.comm)
        if let t = r.exitTime { w.uint(t) }
        switch r.exitStatus {
        case .exited(let c)?: w.int(Int64(c))
        case .signaled(let s, _)?: w.int(Int64(s))
        case nil: break
        }
        w.uint(UInt64(r.imagesDropped)); w.uint(UInt64(r.images.count))
        for i in r.images {
            w.uint(i.time); w.string(i.filename); optional(i.interpreter)
            w.uint(i.exeDevice); w.uint(i.exeInode)
            w.uint(UInt64(i.argv.count))
            for a in i.argv { w.string(a) }
            w.uint(i.argvTruncated ? 1 : 0); w.string(i.comm)
            w.uint(UInt64(i.uid)); w.uint(UInt64(i.euid)); w.uint(UInt64(i.gid))
            w.uint(i.loginuid.map { UInt64($0) + 1 } ?? 0)
            w.uint(i.cgroupId); w.string(i.cgroup); optional(i.cwd); optional(i.enforcement?.message)
        }
    }
}
