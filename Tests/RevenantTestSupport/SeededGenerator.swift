import Foundation

/// A generator whose every run can be replayed: SplitMix64 from a seed that is printed, taken
/// from `REVENANT_SEED` when set. A failing fuzz test names its seed in its message.
public struct SeededGenerator: RandomNumberGenerator, CustomStringConvertible {
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// The seed from `REVENANT_SEED`, or a fresh one; printed either way.
    public static func fromEnvironment(_ test: String = #function) -> SeededGenerator {
        let seed = ProcessInfo.processInfo.environment["REVENANT_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        print("\(test): seed \(seed) (replay with REVENANT_SEED=\(seed))")
        return SeededGenerator(seed: seed)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public var description: String { "seed \(seed) (replay with REVENANT_SEED=\(seed))" }
}
