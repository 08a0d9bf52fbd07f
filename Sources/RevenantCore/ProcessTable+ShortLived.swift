/// The short-lived fast path: most processes on a busy host exec, end within one store batch
/// and fork nothing. Such an exec is held here instead of filed in the table, and its exit
/// hands it to the leaf encoder whole; anything that names it files it as `apply` would.
struct ShortLivedHold: Sendable {
    /// First seen at their exec, held until their exit makes them leaves, or until anything
    /// names them (`unpark`), which files them as `apply` would.
    var parked: [Identity: ExecEvent] = [:]
    /// Filed from `parked` since the last `changes`: rows to write, as if forked since.
    var unparked: [Identity] = []
    /// Parents of the leaves handed out since the last `changes`: never leaves.
    var leafParents: Set<Identity> = []
}

extension ProcessTable {
    /// Holds back the exec of a process the table does not know yet: most such processes end
    /// within the same store batch having forked nothing, and `leaf(exiting:_:)` then hands
    /// them out whole without the table's bookkeeping (about 25 dictionary operations each).
    /// Returns false, and files nothing, when the process is known: `apply` it instead.
    public mutating func park(_ e: ExecEvent) -> Bool {
        guard parkable(e) else { return false }
        hold(e)
        return true
    }

    /// `park` in two steps, so a caller can move the record in: whether it would be held
    /// (filing first what it names), then holding it.
    public mutating func parkable(_ e: borrowing ExecEvent) -> Bool {
        if !shortLived.parked.isEmpty {
            unpark(e.process)
            if let p = e.parent { unpark(p) }
            unpark(e.realParent)
        }
        return e.process.precise && slot(e.process) == nil
    }

    /// Holds an exec `parkable` accepted, moved in.
    public mutating func hold(_ e: consuming ExecEvent) {
        let id = e.process
        shortLived.parked[id] = consume e
    }

    /// The exit of a parked process that left no children: encodes it into `batch` and files
    /// nothing; `ProcessRecord(_:)` of it is the leaf `changes` would have
    /// handed out. Returns false when `apply` must take the exit instead (the process is filed
    /// by then if it was parked).
    public mutating func leaf(exiting e: ExitEvent, into batch: inout LeafBatch) -> Bool {
        leaf(exiting: e) { batch.append($0) }
    }

    /// `leaf(exiting:into:)` for another sink: the leaf is valid for the call only.
    mutating func leaf(exiting e: ExitEvent, _ leaf: (UnsafePointer<ShortLived>) -> Void) -> Bool {
        // Moved out (no copy): put back on the rare way out below.
        guard !shortLived.parked.isEmpty, let x = shortLived.parked.removeValue(forKey: e.process) else { return false }
        // Lineage worked out as `apply` would from the exec and then the exit.
        var parent = x.parent, currentOnly = false
        if parent == nil, x.realParent.pid != 0 { parent = x.realParent; currentOnly = true }
        var adopted = adoption(parent: x.parent, realParent: x.realParent)
        if parent == nil { parent = e.parent }
        if let a = adoption(parent: parent ?? e.parent, realParent: e.realParent) { adopted = a }
        parent = parent.map(canon)
        adopted = adopted.map(canon)
        // Only what the store keeps as a leaf (see `changes`): an exact parent, no children left.
        guard !e.leftChildren, parent?.precise ?? true else {
            shortLived.parked[e.process] = x
            unpark(e.process)
            return false
        }
        retirePid(for: e.process)
        if let parent { shortLived.leafParents.insert(parent) }
        var s = ShortLived(exec: consume x, exit: e, parent: parent, parentIsCurrentOnly: currentOnly, adoptedBy: adopted)
        withUnsafePointer(to: &s) { leaf($0) }
        return true
    }

    /// Processes held back by `park`.
    public var parkedCount: Int { shortLived.parked.count }

    /// Processes filed from `parked` since the last call: no store row holds them yet, so a
    /// caller batching a process's later images one by one must treat them as forked since.
    public mutating func drainUnparked() -> [Identity] {
        defer { shortLived.unparked.removeAll(keepingCapacity: true) }
        return shortLived.unparked
    }
    public var hasUnparked: Bool { !shortLived.unparked.isEmpty }

    /// Files a parked process, because a record names it (as itself, parent or adopter).
    /// `apply` does this itself; a caller reading the table about a record before applying it calls it first.
    public mutating func unpark(namedBy event: Event) {
        unpark(event.process)
        switch event {
        case .fork(let e): unpark(e.parent)
        case .exec(let e): if let p = e.parent { unpark(p) }; unpark(e.realParent)
        case .exit(let e): if let p = e.parent { unpark(p) }; unpark(e.realParent)
        case .deny(let e): if let p = e.parent { unpark(p) }
        }
    }

    mutating func unpark(_ id: Identity) {
        guard let x = shortLived.parked.removeValue(forKey: id) else { return }
        apply(.exec(x))
        shortLived.unparked.append(id)
    }

    /// Files the parked processes with this PID: a reader about to look it up by PID alone.
    public mutating func fileParked(pid: Int32) {
        guard !shortLived.parked.isEmpty else { return }
        for id in shortLived.parked.keys.filter({ $0.pid == pid }).sorted() { unpark(id) }
    }

    /// Files every parked process (they are live, or their exit is still to come): before a
    /// reader that looks at the whole table, and at every batch.
    public mutating func unparkAll() {
        guard !shortLived.parked.isEmpty else { return }
        // Oldest first, as they came: filing order decides which identity holds a reused PID.
        for id in shortLived.parked.keys.sorted() { unpark(id) }
    }
}
