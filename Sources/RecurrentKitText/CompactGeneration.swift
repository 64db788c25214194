import RecurrentKit

/// Batch-1 generation with compact copies (bfloat16, or int8 with a scale per row) of a ``LanguageModel``'s weight
/// matrices: a `CompactDecoder` over the model's layers, kept with the model it was copied from.
///
/// The session is a snapshot taken when it is created; later changes to the model are not seen (make a new session).
public final class CompactGenerationSession {
    /// The model the weights were copied from.
    public let model: LanguageModel<Float>
    /// The compact copies and the state.
    public let decoder: CompactDecoder

    /// Copies `model`'s weight matrices to `format` (round to nearest even) and starts from a zero state.
    /// - Parameters:
    ///   - model: the trained model.
    ///   - format: bfloat16 (the default) or int8 with a scale per row (float32 is refused: use the model itself).
    public init(model: LanguageModel<Float>, format: WeightPrecision = .bfloat16) throws {
        self.model = model
        decoder = try CompactDecoder(
            network: model.recurrent, embedding: model.embedding, output: model.output, format: format)
    }

    /// Bytes of the compact weight copies (what each token streams).
    public var weightBytes: Int { decoder.weightBytes }

    /// Zeros every layer's state.
    public func reset() { decoder.reset() }

    /// Feeds `tokens` in order (the state carries over from the previous call unless `reset`) and returns the logits
    /// after the last one, V values valid until the next call.
    public func logits(after tokens: [Int], reset: Bool) throws -> UnsafeMutablePointer<Float> {
        try decoder.logits(after: tokens, reset: reset)
    }
}
