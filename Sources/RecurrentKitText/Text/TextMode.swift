import RecurrentKit
/// How text becomes tokens: one per Unicode scalar (``d2l``, ``raw``) or one per word (``words``).
public enum TextMode: String, CaseIterable, Codable, Sendable {
    /// d2l 0.17: letters only, lower-cased, lines glued together (``TextPreparation/d2lNormalize(_:)``);
    /// vocabulary `<unk>` then tokens by descending frequency; unknown characters encode as `<unk>` (index 0).
    case d2l
    /// char-rnn / nanoGPT: every Unicode scalar kept; vocabulary sorted by scalar value;
    /// 90/10 train/validation split; unknown characters are an error.
    case raw
    /// d2l 8.2 word tokens: d2l's per-line clean-up, each line split at spaces (words never cross a line end);
    /// vocabulary `<unk>` then words by descending frequency (ties: first seen), words rarer than the minimum
    /// frequency left out; unknown words encode as `<unk>` (index 0); decoding joins words with spaces.
    case words
}
