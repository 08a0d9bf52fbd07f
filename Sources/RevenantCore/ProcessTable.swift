/// The live view of processes and their fork-time lineage, fed by kernel events. Pure.
///
/// Bounds: every live process is kept (the kernel's pid_max bounds them); exited processes
/// are kept, oldest evicted first, up to `exitedRetention`, except that an exited process
/// with live descendants is kept as long as they live, so every live chain stays whole.
public struct ProcessTable: Sendable {
    public static let maxImages = 32

    public let exitedRetention: Int
    /// Records live in a slab, found by identity: an array element is read and changed in
    /// place, where a dictionary value was copied whole (every field retained) on each read.
    private var slots: [Identity: Int] = [:]
    /// Not optional: `slab[i]!` copied the record out (every field retained) even to read one field.
    /// A free slot holds `vacant`, and only `slots` says which are in use.
    private var slab: [ProcessRecord] = []
    private static let vacant = ProcessRecord(id: Identity(pid: 0, startNs: 0), parent: nil, comm: "")
    private var freeSlots: [Int] = []
    /// Newest identity for each PID.
    public private(set) var byPid: [Int32: Identity] = [:]
    private var liveChildren: [Identity: Int] = [:]
    /// Seeded (tick-precision) identities by PID, and what they became once the kernel named them.
    private var seededByPid: [Int32: Identity] = [:]
    private var aliases: [Identity: Identity] = [:]
    /// Seeded identities re-keyed to precise ones since the last `drainRekeys()`.
    private var pendingRekeys: [(from: Identity, to: Identity)] = []
    /// Ended leaving children behind, since the last `changes`: never a leaf, since a child
    /// first seen later (lazy forks) must find it as a parent.
    private var leftChildren: Set<Identity> = []
    private var evictable: [Identity] = []
    private var evictHead = 0
    public private(set) var evicted = 0
    /// The short-lived fast path's state (ProcessTable+ShortLived.swift).
    var shortLived = ShortLivedHold()

    public init(exitedRetention: Int = 50_000) {
        precondition(exitedRetention >= 0)
        self.exitedRetention = exitedRetention
    }

    public var count: Int { slots.count }

    /// Every record held, in no particular order.
    public var all: [ProcessRecord] { slots.values.map { slab[$0] } }

    public subscript(id: Identity) -> ProcessRecord? {
        slot(id).map { slab[$0] }
    }

    /// The newest known process with this PID.
    public func latest(pid: Int32) -> ProcessRecord? { byPid[pid].flatMap { slots[$0] }.map { slab[$0] } }

    /// Returns true when the event added a record (the process was not in the table).
    @discardableResult
    public mutating func apply(_ event: Event) -> Bool {
        if !shortLived.parked.isEmpty { unpark(namedBy: event) }
        join(event.process)
        switch event {
        case .fork(let e):
            // A fork record can come twice (lazy forks: two CPUs announcing one process, or
            // the daemon reading the kernel map): the first stands. A record seeded from /proc
            // (forked as tracing started) gives way to the exact one, but is not new: a row holds it.
            let known = slot(e.process)
            if let known, !slab[known].seeded { return false }
            join(e.parent)
            // Only the parent's name and image are needed: read in place, not copied whole.
            let pi = slot(e.parent)
            var r = ProcessRecord(id: e.process, parent: e.parent, comm: pi.map { slab[$0].name } ?? "")
            // A fork of a known process inherits its image (until it execs).
            if let pi, let img = slab[pi].image {
                r.images = [img]
                r.comm = img.comm
                r.imageInherited = true
            }
            insert(r)
            return known == nil
        case .exec(let e):
            // Changed in place: a copy out and back would copy the images array on every exec.
            // The adopter is worked out first: nothing may read `self` during the in-place change.
            let i = slots[e.process]
            let adopter = adoption(parent: i.flatMap { slab[$0].parent } ?? e.parent, realParent: e.realParent)
            if let i {
                ProcessTable.execed(&slab[i], e, adopter: adopter)
            } else {
                var r = ProcessRecord(id: e.process, parent: e.parent, comm: e.comm)
                ProcessTable.currentParent(&r, e.realParent)
                ProcessTable.execed(&r, e, adopter: adopter)
                insert(r)
                return true
            }
        case .deny(let e):
            guard let i = slots[e.process] else { return false }
            slab[i].denied.append(e)
            if slab[i].denied.count > 16 { slab[i].denied.removeFirst() }
        case .exit(let e):
            if e.leftChildren { leftChildren.insert(e.process) }
            let i = slots[e.process]
            let adopter = adoption(parent: i.flatMap { slab[$0].parent } ?? e.parent, realParent: e.realParent)
            if let i {
                guard !slab[i].exited else { return false }
                ProcessTable.exitedAt(&slab[i], e, adopter: adopter)
                exited(e.process)
            } else {
                var r = ProcessRecord(id: e.process, parent: e.parent, comm: "")
                ProcessTable.currentParent(&r, e.realParent)
                ProcessTable.exitedAt(&r, e, adopter: adopter)
                let id = r.id
                insert(r)
                exited(id)
                return true
            }
        }
        return false
    }


    /// A process first seen at its exec or exit whose fork the kernel did not see (it predates
    /// tracing, and exited or was missed before /proc was read): its parent at that moment, marked
    /// as the current parent (as for seeded ones), keeps its chain instead of ending it.
    private static func currentParent(_ r: inout ProcessRecord, _ real: Identity) {
        guard r.parent == nil, real.pid != 0 else { return }
        r.parent = real
        r.parentIsCurrentOnly = true
    }

    private static func execed(_ r: inout ProcessRecord, _ e: ExecEvent, adopter: Identity?) {
        if r.parent == nil, let p = e.parent { r.parent = p }
        // An image inherited at fork is replaced by the first exec.
        if r.imageInherited {
            r.images.removeAll()
            r.imageInherited = false
        }
        r.images.append(Image(e))
        if r.images.count > ProcessTable.maxImages {
            r.images.remove(at: 1)
            r.imagesDropped += 1
        }
        if let adopter { r.adoptedBy = adopter }
    }

    private static func exitedAt(_ r: inout ProcessRecord, _ e: ExitEvent, adopter: Identity?) {
        if r.parent == nil, let p = e.parent { r.parent = p }
        r.exitTime = e.time
        r.exitStatus = e.status
        if let adopter { r.adoptedBy = adopter }
    }

    /// The parent a process was reparented to, when it differs from its fork-time parent.
    func adoption(parent: Identity?, realParent: Identity) -> Identity? {
        // The same identity needs no lookups (the common case: the spawner is still the parent).
        guard realParent.pid != 0, let p = parent, p != realParent, canon(p) != canon(realParent) else { return nil }
        return realParent
    }

    /// Annotates the newest image of a process (enforcement results).
    public mutating func replaceLatestImage(of id: Identity, with img: Image) {
        guard let i = slots[id], case let n = slab[i].images.count, n > 0 else { return }
        slab[i].images[n - 1] = img
    }

    /// Adds a process that was alive before tracing started.
    public mutating func seed(_ r: ProcessRecord) {
        var r = r
        r.seeded = true
        guard self[r.id] == nil else { return }
        seededByPid[r.id.pid] = r.id
        insert(r)
    }

    /// A process an earlier run on this boot recorded exactly, found again in /proc at tick
    /// precision: its exact key, fork-time parent and images come back, and the /proc identity
    /// names it too.
    public mutating func restore(_ r: ProcessRecord, seenAs tick: Identity) {
        guard self[r.id] == nil else { return }
        insert(r)
        if tick != r.id { aliases[tick] = r.id }
    }

    /// A precise identity the kernel reports for a process seeded at tick precision:
    /// re-key the record, so both names reach it.
    private mutating func join(_ id: Identity) {
        // Seeded PIDs first: a small map, and no record is copied for the common miss.
        guard id.precise, let s = seededByPid[id.pid], s.sameTick(id), slots[id] == nil,
              let i = slots[s] else { return }
        seededByPid[id.pid] = nil
        slots[s] = nil
        slab[i] = ProcessRecord(rekeying: slab[i], to: id)
        slots[id] = i
        aliases[s] = id
        pendingRekeys.append((s, id))
        if byPid[id.pid] == s { byPid[id.pid] = id }
        if let n = liveChildren.removeValue(forKey: s) { liveChildren[id] = n }
    }

    /// Seeded identities that became precise since the last call, for a store keyed by identity.
    public mutating func drainRekeys() -> [(from: Identity, to: Identity)] {
        defer { pendingRekeys.removeAll(keepingCapacity: true) }
        return pendingRekeys
    }

    /// The identity a record is filed under now.
    public func canonical(_ id: Identity) -> Identity { canon(id) }

    /// The processes `ids` as attribution instances (those still in the table), wall times
    /// from the boot's epoch.
    public func instances(_ ids: [Identity], bootEpochNs: Int64) -> [Instance] {
        ids.compactMap { self[$0] }.map {
            Instance(process: $0, ancestry: ancestry(of: $0.id), startWallNs: bootEpochNs + Int64($0.id.startNs),
                     exitWallNs: $0.exitTime.map { bootEpochNs + Int64($0) })
        }
    }

    /// Fork-time ancestors, nearest first, as far as they are known (at most `limit`).
    public func ancestry(of id: Identity, limit: Int = 64) -> [ProcessRecord] {
        var out: [ProcessRecord] = []
        var seen: Set<Identity> = [self[id]?.id ?? id]
        var cur = self[id]?.parent
        while let p = cur, out.count < limit, let r = self[p], !seen.contains(r.id) {
            out.append(r)
            seen.insert(r.id)
            cur = r.parent
        }
        return out
    }

    /// True when `id` is `root` or one of its fork-time descendants.
    public func isInSubtree(_ id: Identity, of root: Identity) -> Bool {
        let root = self[root]?.id ?? root
        return (self[id]?.id ?? id) == root || ancestry(of: id).contains { $0.id == root }
    }

    // MARK: - bookkeeping

    /// The identity a record is filed under now (seeded ones are re-keyed once the kernel names them).
    /// Where `self[id]` lives in the slab, without copying the record.
    /// The one place that resolves an identity: its own record, the precise record a seeded one
    /// became, or the seeded record a precise one names.
    func slot(_ id: Identity) -> Int? {
        if let i = slots[id] { return i }
        if let a = aliases[id] { return slots[a] }
        if id.precise, let s = seededByPid[id.pid], s.sameTick(id) { return slots[s] }
        return nil
    }

    /// Records changed since the last store batch, split the way the store keeps them;
    /// `changed` maps each to whether it was forked since that batch. A leaf was forked since,
    /// has ended, is exact (not seeded), is no record's parent and left no children behind:
    /// children seen so far were seen since, so they are among `changed`, and the kernel says
    /// whether any it never reported outlived it (lazy forks). Parents and adopters are under their
    /// current keys, in the returned records and in the table.
    public mutating func changes(_ changed: [Identity: Bool]) -> (leaves: [ProcessRecord], rows: [(record: ProcessRecord, born: Bool)]) {
        var leaves: [ProcessRecord] = []
        let rows = changes(changed) { leaves.append($0.pointee) }
        return (leaves, rows)
    }

    /// As `changes(_:)`, encoding each leaf into `batch` where the table holds it. Handed on by
    /// pointer inside this module: copied out (even to a closure taking it `borrowing`), a record retained and released
    /// each of its strings and arrays, and most leaves are encoded and never looked at again.
    public mutating func changes(_ changed: [Identity: Bool], leavesInto batch: inout LeafBatch) -> [(record: ProcessRecord, born: Bool)] {
        changes(changed) { batch.append($0) }
    }

    mutating func changes(_ changed: [Identity: Bool], leaf: (UnsafePointer<ProcessRecord>) -> Void) -> [(record: ProcessRecord, born: Bool)] {
        // Fields are read through the slab's storage: `slab[i].field` copied the record out
        // (every string retained) for most reads here.
        unparkAll()
        var found: [(id: Identity, slot: Int, born: Bool)] = []
        found.reserveCapacity(changed.count + shortLived.unparked.count)
        var parents = shortLived.leafParents
        parents.reserveCapacity(changed.count + shortLived.unparked.count + shortLived.leafParents.count)
        shortLived.leafParents.removeAll(keepingCapacity: true)
        // Filed from `parked` since the last batch: forked since, whatever `changed` says.
        let unparkedSet = Set(shortLived.unparked)
        func take(_ id: Identity, born: Bool) {
            guard let i = slot(id) else { return }
            found.append((id, i, born))
            let (p, a) = slab.withUnsafeBufferPointer { s in (s[i].parent, s[i].adoptedBy) }
            // Filed under current keys in the table too: every lookup resolves either.
            if let a, case let c = canon(a), c != a { slab[i].adoptedBy = c }
            guard let p else { return }
            parents.insert(p)
            if case let c = canon(p), c != p { slab[i].parent = c }
        }
        for (id, born) in changed { take(id, born: born || (!unparkedSet.isEmpty && unparkedSet.contains(id))) }
        for id in unparkedSet where changed[id] == nil { take(id, born: true) }
        shortLived.unparked.removeAll(keepingCapacity: true)
        var rows: [(record: ProcessRecord, born: Bool)] = []
        slab.withUnsafeBufferPointer { slab in
            for (id, i, born) in found {
                let r = slab.baseAddress! + i
                // One the policy acted on stays a row: retention keeps its ancestors by key.
                if born, r.pointee.exitTime != nil, r.pointee.id.precise, !r.pointee.seeded, r.pointee.parent?.precise ?? true,
                   r.pointee.images.last?.enforcement == nil, !parents.contains(r.pointee.id), !leftChildren.contains(id) {
                    leaf(r)
                } else {
                    rows.append((r.pointee, born))
                }
            }
        }
        leftChildren.removeAll(keepingCapacity: true)
        return rows
    }

    /// The newest image of a process and its sequence number in the store (images ever
    /// recorded for it, minus one), read without copying the record.
    public func latestImage(of id: Identity) -> (seq: Int, image: Image)? {
        guard let i = slot(id), let img = slab[i].images.last else { return nil }
        return (slab[i].images.count - 1 + slab[i].imagesDropped, img)
    }

    /// As `self[id]?.id ?? id`, without copying the record (this runs several times per event).
    func canon(_ id: Identity) -> Identity {
        slot(id).map { slab[$0].id } ?? id
    }

    /// Takes the record by move: a copy retained each of its strings and arrays.
    private mutating func insert(_ r: consuming ProcessRecord) {
        let id = r.id, ended = r.exited, parent = r.parent
        let newest = retirePid(for: id)
        if let i = slots[id] {
            slab[i] = r
        } else if let i = freeSlots.popLast() {
            slab[i] = r
            slots[id] = i
        } else {
            slots[id] = slab.count
            slab.append(r)
        }
        if newest.map({ id >= $0 }) ?? true { byPid[id.pid] = id }
        if ended {
            exited(id)
        } else if let p = parent {
            liveChildren[canon(p), default: 0] += 1
        }
    }

    /// A PID now held by `id`: a live holder the table still has must have exited unseen.
    /// Returns the newest identity filed for the PID after that.
    @discardableResult
    mutating func retirePid(for id: Identity) -> Identity? {
        guard let old = byPid[id.pid] else { return nil }
        if old != id, let oi = slots[old], !slab[oi].exited {
            slab[oi].exitTime = id.startNs
            exited(old)
            return byPid[id.pid]
        }
        return old
    }

    private mutating func exited(_ id: Identity) {
        guard let i = slots[id] else { return }
        if let p = slab[i].parent.map(canon), let n = liveChildren[p] {
            if n <= 1 {
                liveChildren[p] = nil
                if let pi = slots[p], slab[pi].exited { evictable.append(p) }
            } else {
                liveChildren[p] = n - 1
            }
        }
        if liveChildren[id] == nil { evictable.append(id) }
        trim()
    }

    private mutating func trim() {
        while evictable.count - evictHead > exitedRetention {
            let id = evictable[evictHead]
            evictHead += 1
            guard let i = slots[id], slab[i].exited, liveChildren[id] == nil else { continue }
            slots[id] = nil
            slab[i] = ProcessTable.vacant
            freeSlots.append(i)
            if byPid[id.pid] == id { byPid[id.pid] = nil }
            evicted += 1
        }
        if evictHead > 4096, evictHead * 2 > evictable.count {
            evictable.removeFirst(evictHead)
            evictHead = 0
        }
    }
}
