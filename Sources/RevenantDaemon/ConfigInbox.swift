import RevenantCore
import Synchronization

/// Configuration changes the watcher's thread saw, waiting for the ring thread: bounded, so a
/// storm the ingest cannot keep up with is a counted loss, never memory.
final class ConfigInbox: Sendable {
    static let limit = 65_536
    private let pending = Mutex<[ConfigWatch.Raw]>([])
    /// Changes seen and not kept because `limit` were waiting.
    private let dropped = Atomic<Int>(0)
    private let count = Atomic<Int>(0)

    /// Keeps the change; false when it was dropped.
    func put(_ raw: ConfigWatch.Raw) -> Bool {
        // The count moves under the lock, so `take` never leaves it above what waits.
        let kept = pending.withLock { p -> Bool in
            guard p.count < ConfigInbox.limit else { return false }
            p.append(raw)
            count.store(p.count, ordering: .releasing)
            return true
        }
        if !kept { dropped.add(1, ordering: .relaxed) }
        return kept
    }

    /// One atomic load: the ring thread asks at every exit.
    var isEmpty: Bool { count.load(ordering: .acquiring) == 0 }

    /// The waiting changes (only `writer`'s, when given) and how many were dropped since.
    func take(writer: Int32? = nil) -> (raws: [ConfigWatch.Raw], dropped: Int) {
        let raws = pending.withLock { p -> [ConfigWatch.Raw] in
            let mine = writer.map { w in p.filter { $0.pid == w } } ?? p
            if let w = writer { p.removeAll { $0.pid == w } } else { p.removeAll() }
            count.store(p.count, ordering: .releasing)
            return mine
        }
        return (raws, dropped.exchange(0, ordering: .relaxed))
    }
}
