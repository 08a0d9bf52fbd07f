import Dispatch
import Foundation

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
