import RecurrentKit

/// How generation stores the weight matrices it re-reads for every token.
public enum WeightPrecision: String, Codable, CaseIterable, Sendable {
    /// The model's own Float weights (the default; the path the PyTorch fixtures check).
    case float32
    /// bfloat16 copies (8 significant bits, Float's exponent range), widened exactly to Float inside the
    /// matrix-vector kernel; inputs, states and sums stay Float. Half the bytes per token.
    case bfloat16
}

/// Batch-1 generation with bfloat16 copies of a ``LanguageModel``'s weight matrices: a `BFloat16Decoder` over the
/// model's layers, kept with the model it was copied from.
///
/// The session is a snapshot taken when it is created; later changes to the model are not seen (make a new session).
public final class BFloat16GenerationSession {
    /// The model the weights were copied from.
    public let model: LanguageModel<Float>
    /// The bf16 copies and the state.
    public let decoder: BFloat16Decoder

    /// Copies `model`'s weight matrices to bfloat16 (round to nearest even) and starts from a zero state.
    public init(model: LanguageModel<Float>) throws {
        self.model = model
        decoder = try BFloat16Decoder(network: model.recurrent, embedding: model.embedding, output: model.output)
    }

    /// Bytes of the bfloat16 weight copies (what each token streams).
    public var weightBytes: Int { decoder.weightBytes }

    /// Zeros every layer's state.
    public func reset() { decoder.reset() }

    /// Feeds `tokens` in order (the state carries over from the previous call unless `reset`) and returns the logits
    /// after the last one, V values valid until the next call.
    public func logits(after tokens: [Int], reset: Bool) throws -> UnsafeMutablePointer<Float> {
        try decoder.logits(after: tokens, reset: reset)
    }
}
