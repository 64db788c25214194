import _RecurrentKitKernels
/// A seeded, reproducible pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in RecurrentKit (initialisation, dropout masks, minibatch offsets,
/// shuffles, sampling) draws from one of these, so a run is a pure function of its seed.
/// The full state is four words (``state``), so it can be saved in a checkpoint and restored.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The four state words; restoring them restores the stream exactly.
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// Creates a generator whose stream is fully determined by `seed` (any value, 0 included).
    public init(seed: UInt64) {
        var splitMix = seed
        func next() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    /// Restores a generator from saved state words. The all-zero state, which xoshiro256** never leaves (every draw
    /// would be 0 and bounded or normal draws would never end), cannot come from a seed; it is replaced by the state of
    /// `SeededGenerator(seed: 0)`.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        if state == (0, 0, 0, 0) { self = SeededGenerator(seed: 0) } else { self.state = state }
    }

    /// The four state words as decimal strings: how a checkpoint stores a random stream (JSON numbers lose bits).
    public var decimalWords: [String] { [state.0, state.1, state.2, state.3].map { String($0) } }

    /// A generator from ``decimalWords``, checked: nil unless `words` are four decimal UInt64 values, not all zero
    /// (a state no seed gives and xoshiro256** never leaves).
    public init?(decimalWords words: [String]) {
        let values = words.compactMap(UInt64.init)
        guard words.count == 4, values.count == 4, values.contains(where: { $0 != 0 }) else { return nil }
        self.init(state: (values[0], values[1], values[2], values[3]))
    }

    /// Next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    /// Uniform Double in [0, 1) with 53 random bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform Double in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * nextUnit()
    }

    /// Standard normal sample (Box-Muller; one value per call, so the stream stays simple to replay).
    public mutating func normal() -> Double {
        var u1 = nextUnit()
        while u1 <= 0 { u1 = nextUnit() }
        let u2 = nextUnit()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// Uniform integer in 0..<bound (bound > 0), without modulo bias.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// Equality of the state words.
    public static func == (lhs: SeededGenerator, rhs: SeededGenerator) -> Bool {
        lhs.state == rhs.state
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

@inline(__always) private func _log(_ x: Double) -> Double { rk_log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { rk_cos(x) }
