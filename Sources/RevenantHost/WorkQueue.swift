import Foundation
import Dispatch
import Synchronization

/// A first-in first-out hand-over between two threads: `put` never blocks unless `capacity`
/// items wait (then it waits for room), `take` blocks until an item comes.
package final class WorkQueue<Item: Sendable>: Sendable {
    /// Taken from `head` on; the taken prefix is dropped in one move once it is the larger half
    /// (`removeFirst` per take moved every waiting item: quadratic when thousands wait).
    private let items = Mutex<(buf: [Item], head: Int)>(([], 0))
    private let ready = DispatchSemaphore(value: 0)
    private let room: DispatchSemaphore
    package let capacity: Int

    package init(capacity: Int) {
        self.capacity = capacity
        room = DispatchSemaphore(value: capacity)
    }

    package func put(_ item: Item) {
        room.wait()
        items.withLock { $0.buf.append(item) }
        ready.signal()
    }

    /// `put` unless `capacity` items wait: false, and nothing is added.
    package func offer(_ item: Item) -> Bool {
        guard room.wait(timeout: .now()) == .success else { return false }
        items.withLock { $0.buf.append(item) }
        ready.signal()
        return true
    }

    package func take() -> Item {
        ready.wait()
        let item = items.withLock { q -> Item in
            let item = q.buf[q.head]
            q.head += 1
            if q.head == q.buf.count {
                q.buf.removeAll(keepingCapacity: true)
                q.head = 0
            } else if q.head >= 64 && q.head * 2 >= q.buf.count {
                q.buf.removeFirst(q.head)
                q.head = 0
            }
            return item
        }
        room.signal()
        return item
    }
}

/// Runs `body` on a thread of its own and waits for it without holding a cooperative thread.
package func onOwnThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, any Error>) in
        let t = Thread {
            do { k.resume(returning: try body()) } catch { k.resume(throwing: error) }
        }
        t.name = name
        t.stackSize = 8 << 20
        t.start()
    }
}
