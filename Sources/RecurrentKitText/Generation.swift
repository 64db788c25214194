import RecurrentKit
/// Text generation from a ``LanguageModel``: d2l's greedy `predict_ch8` and seeded sampling.
public enum TextGenerator {
    /// How the next token is chosen.
    public enum Decoding: Sendable, Equatable {
        /// Argmax (d2l `predict_ch8`).
        case greedy
        /// Sample from softmax(logits / temperature), optionally from the `topK` most likely tokens only, and then
        /// (nucleus sampling) from the smallest set of the most likely tokens whose probability reaches `topP`.
        /// temperature > 0; topK nil or >= 1; topP nil or in (0, 1].
        case sample(temperature: Double, topK: Int?, topP: Double? = nil)
    }

    /// Warms the state up on the true `prefix` tokens, then produces `length` new tokens.
    /// - Parameters:
    ///   - model: the language model.
    ///   - prefix: at least one token index.
    ///   - length: new tokens to produce (>= 0).
    ///   - decoding: greedy (d2l `predict_ch8`) or `sample(temperature:topK:)`.
    ///   - generator: draws the samples (unused when greedy).
    ///   - precision: weight storage for the per-token products (`WeightPrecision.float32` by default).
    ///   - stop: when non-empty, generation ends as soon as the new tokens end with this sequence (kept in the output).
    /// - Returns: prefix followed by the new tokens.
    public static func generate(
        model: LanguageModel<Float>, prefix: [Int], length: Int, decoding: Decoding,
        generator: inout SeededGenerator, precision: WeightPrecision = .float32, stop: [Int] = []
    ) throws -> [Int] {
        try check(prefix: prefix, length: length, decoding: decoding)
        if precision.isCompact {
            let session = try CompactGenerationSession(model: model, format: precision)
            return try generate(
                session: session, prefix: prefix, length: length, decoding: decoding, generator: &generator, stop: stop)
        }
        return try continuation(
            vocabularySize: model.configuration.vocabularySize, prefix: prefix, length: length, decoding: decoding,
            generator: &generator, stop: stop
        ) { try model.generationLogits($0, reset: $1) }
    }

    /// ``generate(model:prefix:length:decoding:generator:precision:stop:)`` with the compact weights of an existing
    /// session, so repeated generations copy (and quantize) the weights once: the session's state is reset first.
    /// - Parameters:
    ///   - session: compact copies of a model (bfloat16 or int8), made once with ``CompactGenerationSession``.
    ///   - prefix: at least one token index.
    ///   - length: new tokens to produce (>= 0).
    ///   - decoding: greedy or `sample(temperature:topK:topP:)`.
    ///   - generator: draws the samples (unused when greedy).
    ///   - stop: when non-empty, generation ends as soon as the new tokens end with this sequence (kept in the output).
    /// - Returns: prefix followed by the new tokens.
    public static func generate(
        session: CompactGenerationSession, prefix: [Int], length: Int, decoding: Decoding,
        generator: inout SeededGenerator, stop: [Int] = []
    ) throws -> [Int] {
        try check(prefix: prefix, length: length, decoding: decoding)
        return try continuation(
            vocabularySize: session.decoder.outputSize, prefix: prefix, length: length, decoding: decoding,
            generator: &generator, stop: stop
        ) { try session.logits(after: $0, reset: $1) }
    }

    private static func check(prefix: [Int], length: Int, decoding: Decoding) throws {
        guard !prefix.isEmpty else { throw RecurrentKitError("prefix must contain at least one character") }
        guard length >= 0 else { throw RecurrentKitError.invalidArgument("length", length, "must be >= 0") }
        if case .sample(let temperature, let topK, let topP) = decoding {
            guard temperature.isFinite, temperature > 0 else {
                throw RecurrentKitError.invalidArgument("temperature", temperature, "must be > 0")
            }
            if let k = topK, k < 1 { throw RecurrentKitError.invalidArgument("top-k", k, "must be at least 1") }
            if let p = topP, !(p > 0 && p <= 1) {
                throw RecurrentKitError.invalidArgument("top-p", p, "must be in (0, 1]")
            }
        }
    }

    /// The decoding loop over any source of logits (`logitsAfter(tokens, reset)`).
    private static func continuation(
        vocabularySize V: Int, prefix: [Int], length: Int, decoding: Decoding, generator: inout SeededGenerator,
        stop: [Int], logitsAfter: ([Int], Bool) throws -> UnsafeMutablePointer<Float>
    ) throws -> [Int] {
        var output = prefix
        output.reserveCapacity(prefix.count + length)
        // Warm-up: one pass over the whole prefix; its last logits predict the first new token.
        var logits = try logitsAfter(prefix, true)
        var chooser = TokenChooser(vocabularySize: V)
        var step = [0]
        var produced = 0
        while produced < length {
            let next = chooser.choose(logits, decoding: decoding, generator: &generator)
            output.append(next)
            produced += 1
            if !stop.isEmpty, produced >= stop.count, output.suffix(stop.count).elementsEqual(stop) { break }
            guard produced < length else { break }  // no logits after the last token
            step[0] = next
            logits = try logitsAfter(step, false)
        }
        return output
    }

    /// d2l `predict_ch8(prefix, num_preds)`: greedy continuation as a string.
    public static func predict(
        model: LanguageModel<Float>, vocabulary: Vocabulary, prefix: String, length: Int
    ) throws -> String {
        var generator = SeededGenerator(seed: 0)
        let tokens = try generate(
            model: model, prefix: try vocabulary.encode(prefix), length: length, decoding: .greedy,
            generator: &generator)
        return try vocabulary.decode(tokens)
    }
}

/// Sorts `indices` by descending `keys[index]`, ties by ascending index, in place (heapsort: no allocation).
func sortDescending(_ indices: UnsafeMutableBufferPointer<Int>, by keys: UnsafePointer<Float>) {
    // "a before b" when a's key is larger, or equal with a smaller index; the heap keeps the last-in-order on top.
    func before(_ a: Int, _ b: Int) -> Bool { keys[a] > keys[b] || (keys[a] == keys[b] && a < b) }
    let n = indices.count
    func siftDown(_ start: Int, _ end: Int) {
        var root = start
        while 2 * root + 1 < end {
            var child = 2 * root + 1
            if child + 1 < end && before(indices[child], indices[child + 1]) { child += 1 }
            guard before(indices[root], indices[child]) else { return }
            indices.swapAt(root, child)
            root = child
        }
    }
    guard n > 1 else { return }
    for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(start, n) }
    for end in stride(from: n - 1, to: 0, by: -1) {
        indices.swapAt(0, end)
        siftDown(0, end)
    }
}

/// Picks the next token from a row of logits with buffers allocated once per generation, so choosing a token (greedy or
/// sampled, with or without top-k) allocates nothing.
struct TokenChooser {
    private var candidates: [Int]
    private var weights: [Double]

    init(vocabularySize V: Int) {
        candidates = [Int](repeating: 0, count: V)
        weights = [Double](repeating: 0, count: V)
    }

    /// Greedy: the first index of the largest logit. Sampling: candidates are every index in order, or with top-k the k
    /// most likely in descending order (ties by index); with top-p they are sorted the same way and cut after the
    /// smallest prefix whose probability reaches p; one draw from softmax(logit / temperature) over them.
    mutating func choose(
        _ logits: UnsafePointer<Float>, decoding: TextGenerator.Decoding, generator: inout SeededGenerator
    ) -> Int {
        let V = candidates.count
        switch decoding {
        case .greedy:
            var best = 0
            for j in 1..<V where logits[j] > logits[best] { best = j }
            return best
        case .sample(let temperature, let topK, let topP):
            return candidates.withUnsafeMutableBufferPointer { candidates in
                weights.withUnsafeMutableBufferPointer { weights in
                    var count = V
                    if let k = topK, k < V {
                        // Insertion into a sorted prefix of length k: descending logits, ties by index (j rises, so a
                        // new index goes after equal logits).
                        count = 0
                        for j in 0..<V {
                            let value = logits[j]
                            if count == k && !(value > logits[candidates[k - 1]]) { continue }
                            var position = Swift.min(count, k - 1)
                            while position > 0 && value > logits[candidates[position - 1]] {
                                candidates[position] = candidates[position - 1]
                                position -= 1
                            }
                            candidates[position] = j
                            if count < k { count += 1 }
                        }
                    } else {
                        for j in 0..<V { candidates[j] = j }
                        if let p = topP, p < 1 { sortDescending(candidates, by: logits) }
                    }
                    var maximum = -Double.infinity
                    for i in 0..<count {
                        weights[i] = Double(logits[candidates[i]]) / temperature
                        maximum = Swift.max(maximum, weights[i])
                    }
                    var total = 0.0
                    for i in 0..<count {
                        weights[i] = Double.exp(weights[i] - maximum)
                        total += weights[i]
                    }
                    if let p = topP, p < 1 {
                        // The nucleus: the most likely candidates (sorted) until their share reaches p.
                        var kept = 0, share = 0.0
                        while kept < count && (kept == 0 || share < p * total) { share += weights[kept]; kept += 1 }
                        count = kept
                        total = share
                    }
                    var u = generator.nextUnit() * total
                    for i in 0..<count {
                        u -= weights[i]
                        if u < 0 { return candidates[i] }
                    }
                    return candidates[count - 1]
                }
            }
        }
    }
}
