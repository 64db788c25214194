import RecurrentKit
/// How text becomes tokens; both modes use one token per Unicode scalar.
public enum TextMode: String, CaseIterable, Codable, Sendable {
    /// d2l 0.17: letters only, lower-cased, lines glued together (``TextPreparation/d2lNormalize(_:)``);
    /// vocabulary `<unk>` then tokens by descending frequency; unknown characters encode as `<unk>` (index 0).
    case d2l
    /// char-rnn / nanoGPT: every Unicode scalar kept; vocabulary sorted by scalar value;
    /// 90/10 train/validation split; unknown characters are an error.
    case raw
}
