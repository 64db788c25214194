/// Text generation from a ``LanguageModel``: d2l's greedy `predict_ch8` and seeded sampling.
public enum TextGenerator {
    /// How the next token is chosen.
    public enum Decoding: Sendable, Equatable {
        /// Argmax (d2l `predict_ch8`).
        case greedy
        /// Sample from softmax(logits / temperature), optionally from the `topK` most likely tokens only.
        /// temperature > 0; topK nil or >= 1.
        case sample(temperature: Double, topK: Int?)
    }

    /// Warms the state up on the true `prefix` tokens, then produces `length` new tokens.
    /// - Parameters:
    ///   - model: the language model.
    ///   - prefix: at least one token index.
    ///   - length: new tokens to produce (>= 0).
    ///   - decoding: greedy (d2l `predict_ch8`) or `sample(temperature:topK:)`.
    ///   - generator: draws the samples (unused when greedy).
    ///   - precision: weight storage for the per-token products (``WeightPrecision/float32`` by default).
    /// - Returns: prefix followed by the new tokens.
    public static func generate(model: LanguageModel<Float>, prefix: [Int], length: Int, decoding: Decoding,
                                generator: inout SeededGenerator, precision: WeightPrecision = .float32) throws -> [Int] {
        guard !prefix.isEmpty else { throw RecurrentKitError("prefix must contain at least one character") }
        guard length >= 0 else { throw RecurrentKitError.invalidArgument("length", length, "must be >= 0") }
        if case .sample(let temperature, let topK) = decoding {
            guard temperature.isFinite, temperature > 0 else { throw RecurrentKitError.invalidArgument("temperature", temperature, "must be > 0") }
            if let k = topK, k < 1 { throw RecurrentKitError.invalidArgument("top-k", k, "must be at least 1") }
        }
        let V = model.configuration.vocabularySize
        var output = prefix
        output.reserveCapacity(prefix.count + length)
        let session = precision == .bfloat16 ? BFloat16GenerationSession(model: model) : nil
        func logitsAfter(_ tokens: [Int], reset: Bool) throws -> UnsafeMutablePointer<Float> {
            if let session { return try session.logits(after: tokens, reset: reset) }
            return try model.generationLogits(tokens, reset: reset)
        }
        // Warm-up: one pass over the whole prefix; its last logits predict the first new token.
        var logits = try logitsAfter(prefix, reset: true)
        var scores = [Float](repeating: 0, count: V)
        var step = [0]
        for _ in 0..<length {
            for j in 0..<V { scores[j] = logits[j] }
            let next = choose(scores, decoding: decoding, generator: &generator)
            output.append(next)
            step[0] = next
            logits = try logitsAfter(step, reset: false)
        }
        return output
    }

    /// d2l `predict_ch8(prefix, num_preds)`: greedy continuation as a string.
    public static func predict(model: LanguageModel<Float>, vocabulary: Vocabulary, prefix: String, length: Int) throws -> String {
        var generator = SeededGenerator(seed: 0)
        let tokens = try generate(model: model, prefix: try vocabulary.encode(prefix), length: length, decoding: .greedy, generator: &generator)
        return try vocabulary.decode(tokens)
    }

    static func choose(_ logits: [Float], decoding: Decoding, generator: inout SeededGenerator) -> Int {
        switch decoding {
        case .greedy:
            var best = 0
            for j in 1..<logits.count where logits[j] > logits[best] { best = j }
            return best
        case .sample(let temperature, let topK):
            var candidates = Array(logits.indices)
            if let k = topK, k < logits.count {
                candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
                candidates = Array(candidates.prefix(k))
            }
            let scaled = candidates.map { Double(logits[$0]) / temperature }
            let maximum = scaled.max()!
            let weights = scaled.map { Double.exp($0 - maximum) }
            var u = generator.nextUnit() * weights.reduce(0, +)
            for (i, w) in weights.enumerated() {
                u -= w
                if u < 0 { return candidates[i] }
            }
            return candidates.last!
        }
    }
}
