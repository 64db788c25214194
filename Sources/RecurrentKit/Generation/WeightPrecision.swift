/// How the weight matrices are stored for inference (generation, evaluation): the model's own Float weights, or compact
/// copies that a ``CompactDecoder`` streams for every token. Not to be confused with ``ProductPrecision``, the
/// precision of the matrix products in training.
public enum WeightPrecision: String, Codable, CaseIterable, Sendable {
    /// The model's own Float weights (the default; the path the PyTorch fixtures check).
    case float32
    /// bfloat16 copies (round to nearest even: Float's exponent range with 8 significant bits, half of Float's bytes),
    /// widened exactly to Float inside the matrix-vector kernel; inputs, states and sums stay Float.
    case bfloat16
    /// int8 copies with one Float scale per row (the row's largest magnitude / 127, round to nearest even): a quarter
    /// of Float's bytes plus 8 bytes per row (the scale and the row's sum). Each product quantizes its input vector to
    /// 8 bits with one symmetric scale (dynamic quantization of the activations, as PyTorch's `quantize_dynamic` does,
    /// though PyTorch uses one scale per weight tensor and an asymmetric input range) and sums in exact 32-bit integers
    /// (AVX512-VNNI where present), so results are the same on every instruction-set level; states, biases and the
    /// element-wise math stay Float.
    case int8

    /// Whether these are compact copies (bfloat16 or int8) rather than the model's own Float weights.
    public var isCompact: Bool { self != .float32 }
}
