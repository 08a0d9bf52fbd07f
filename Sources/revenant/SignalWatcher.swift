import Dispatch
import Foundation
import Synchronization

/// Runs a handler on the first of the given signals.
final class SignalWatcher: @unchecked Sendable {  // sources are immutable after init
    private let sources: [any DispatchSourceSignal]
    init(_ signals: [Int32], handler: @escaping @Sendable () -> Void) {
        sources = signals.map { sig in
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler(handler: handler)
            s.resume()
            return s
        }
    }
}

/// A stop asked for (by a signal) before its target exists, passed on once it does.
final class PendingStop<Target: Sendable>: Sendable {
    private let state = Mutex<(target: Target?, asked: Bool)>((nil, false))
    private let action: @Sendable (Target) -> Void

    init(_ action: @escaping @Sendable (Target) -> Void) { self.action = action }

    func stop() {
        if let t = state.withLock({ s in s.asked = true; return s.target }) { action(t) }
    }

    func set(_ t: Target) {
        if state.withLock({ s in s.target = t; return s.asked }) { action(t) }
    }
}
