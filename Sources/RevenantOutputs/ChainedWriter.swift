import Foundation
import RevenantCore
import RevenantHost
import Synchronization

/// OCSF records linked into a hash chain and written on a thread of its own: the caller builds
/// the next records while the previous ones are encoded, hashed and written (export's two
/// halves, about equal). Records arrive in batches; their order is kept.
public final class ChainedWriter: Sendable {
    private let queue = WorkQueue<[AuditEvent]>(capacity: 4)
    private let done = DispatchSemaphore(value: 0)
    private final class Last: Sendable { let value = Mutex<(seq: Int, hash: String)>((0, AuditChain.genesis)) }
    private let last = Last()

    /// `write` gets each record's line (no newline) on the writer's thread, in order.
    public init(device: AuditEvent.Device, write: @escaping @Sendable ([UInt8]) -> Void) {
        let queue = queue, done = done, last = last
        Thread.detachNewThread {
            var seq = 0, hash = AuditChain.genesis
            while true {
                let batch = queue.take()
                if batch.isEmpty { break }
                for var e in batch {
                    seq += 1
                    e.chain(seq: seq, prevHash: hash, device: device)
                    let line = e.json()
                    hash = AuditChain.hash(bytes: line)
                    write(line)
                }
            }
            last.value.withLock { $0 = (seq, hash) }
            done.signal()
        }
    }

    /// Waits while 4 batches wait already: memory stays bounded.
    public func put(_ batch: [AuditEvent]) {
        if !batch.isEmpty { queue.put(batch) }
    }

    /// After the last batch: waits until everything is written; the chain's length and last hash.
    public func finish() -> (seq: Int, hash: String) {
        queue.put([])
        done.wait()
        return last.value.withLock { $0 }
    }
}

