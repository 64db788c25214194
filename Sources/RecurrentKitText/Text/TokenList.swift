import RecurrentKit

/// Token indices (values >= 0) stored in the fewest bytes their largest value needs: 1 byte per token below 256,
/// 2 below 65,536, 4 below 2^32, 8 otherwise. A prepared corpus of 1 GiB of text with a 65-character vocabulary takes
/// 1 GiB as a `TokenList` where `[Int]` would take 8.
///
/// A random-access collection of `Int` with indices `0..<count`: read it as an array (`tokens[i]`, `tokens.count`,
/// `Array(tokens)`, `for token in tokens`). Equal lists hold equal values, whatever their width. Made by
/// ``Vocabulary/encodeTokens(_:maxTokens:)`` and
/// ``PreparedCorpus/prepare(text:mode:maxTokens:validationFraction:minimumFrequency:)``, or from any `[Int]` (an array
/// literal too).
///
/// ```swift
/// let tokens: TokenList = [3, 1, 4, 1, 5]
/// print(tokens.count, tokens[2], tokens.bytesPerToken)  // 5 4 1
/// ```
public struct TokenList: RandomAccessCollection, Equatable, Sendable, ExpressibleByArrayLiteral,
    CustomStringConvertible
{
    enum Storage: Sendable {
        case bytes([UInt8]), halves([UInt16]), words([UInt32]), wide([Int])
    }
    private(set) var storage: Storage

    init(storage: Storage) { self.storage = storage }

    /// The tokens of `values`, each stored in the width of the largest (negative values keep 8 bytes each).
    /// - Parameter values: token indices.
    public init(_ values: some Collection<Int>) {
        let (low, high) = values.reduce((0, 0)) { (Swift.min($0.0, $1), Swift.max($0.1, $1)) }
        if low < 0 {
            storage = .wide(Array(values))
        } else {
            switch TokenList.bytesPerToken(forLargest: high) {
            case 1: storage = .bytes(values.map { UInt8(truncatingIfNeeded: $0) })
            case 2: storage = .halves(values.map { UInt16(truncatingIfNeeded: $0) })
            case 4: storage = .words(values.map { UInt32(truncatingIfNeeded: $0) })
            default: storage = .wide(Array(values))
            }
        }
    }

    /// The tokens of an array literal: `let tokens: TokenList = [0, 1, 2]`.
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// Bytes a list whose largest value is `largest` (>= 0) stores per token: 1, 2, 4 or 8.
    /// - Parameter largest: the largest token index, for a vocabulary of V entries V - 1.
    public static func bytesPerToken(forLargest largest: Int) -> Int {
        largest <= Int(UInt8.max) ? 1 : largest <= Int(UInt16.max) ? 2 : UInt64(largest) <= UInt32.max ? 4 : 8
    }

    /// Bytes stored per token: 1, 2, 4 or 8.
    public var bytesPerToken: Int {
        switch storage {
        case .bytes: return 1
        case .halves: return 2
        case .words: return 4
        case .wide: return 8
        }
    }

    /// 0.
    public var startIndex: Int { 0 }

    /// The number of tokens.
    public var endIndex: Int {
        switch storage {
        case .bytes(let a): return a.count
        case .halves(let a): return a.count
        case .words(let a): return a.count
        case .wide(let a): return a.count
        }
    }

    /// Token `position` (0-based).
    public subscript(position: Int) -> Int {
        switch storage {
        case .bytes(let a): return Int(a[position])
        case .halves(let a): return Int(a[position])
        case .words(let a): return Int(a[position])
        case .wide(let a): return a[position]
        }
    }

    /// Tokens `range` as a list of its own, in the width of this one.
    /// - Parameter range: positions within `0..<count`.
    public func copy(_ range: Range<Int>) -> TokenList {
        switch storage {
        case .bytes(let a): return TokenList(storage: .bytes(Array(a[range])))
        case .halves(let a): return TokenList(storage: .halves(Array(a[range])))
        case .words(let a): return TokenList(storage: .words(Array(a[range])))
        case .wide(let a): return TokenList(storage: .wide(Array(a[range])))
        }
    }

    /// Keeps the first `count` tokens, in place when this list's storage is not shared (no second copy of the text).
    mutating func truncate(to count: Int) {
        let tail = count..<endIndex
        switch storage {
        case .bytes(var a): storage = .wide([]); a.removeSubrange(tail); storage = .bytes(a)
        case .halves(var a): storage = .wide([]); a.removeSubrange(tail); storage = .halves(a)
        case .words(var a): storage = .wide([]); a.removeSubrange(tail); storage = .words(a)
        case .wide(var a): storage = .wide([]); a.removeSubrange(tail); storage = .wide(a)
        }
    }

    /// Whether both lists hold the same values in the same order (whatever their widths).
    public static func == (lhs: TokenList, rhs: TokenList) -> Bool { lhs.elementsEqual(rhs) }

    /// The values, as an array literal prints: `[3, 1, 4]`.
    public var description: String { Array(self).description }
}
