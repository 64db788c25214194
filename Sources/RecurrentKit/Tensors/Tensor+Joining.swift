// Joining and splitting tensors (PyTorch `cat`, `split`, `stack`, `unbind`, `pad_sequence`), each the adjoint of
// its partner: the gradient of a concatenation is split by the same sizes, the gradient of a split is concatenated,
// the gradient of a stack is unstacked, the gradient of padding is each sequence's valid steps.

extension Tensor {
    /// The tensors joined along `axis` (PyTorch `torch.cat(tensors, dim)`): all shapes equal except along `axis`.
    /// `concatenated([h[-2], h[-1]], along: 1)` joins two (B, H) states into (B, 2H).
    /// Adjoint: ``split(sizes:along:)`` of the gradient with the inputs' sizes along `axis`.
    /// - Throws: for an empty list, different ranks, or shapes that differ off `axis`.
    public static func concatenated(_ tensors: [Tensor], along axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw RecurrentKitError("concatenated: no tensors") }
        let a = try first.axis(axis, operation: "concatenated")
        for (i, t) in tensors.enumerated() {
            guard t.shape.count == first.shape.count,
                t.shape.indices.allSatisfy({ $0 == a || t.shape[$0] == first.shape[$0] })
            else {
                throw RecurrentKitError(
                    "concatenated: tensor \(i) has shape \(t.shape), incompatible with \(first.shape) along "
                        + "axis \(axis)"
                )
            }
        }
        let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
        var shape = first.shape
        shape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        var out = [Scalar]()
        out.reserveCapacity(shape.reduce(1, *))
        for o in 0..<outer {
            for t in tensors {
                let chunk = t.shape[a] * inner
                out.append(contentsOf: t.scalars[(o * chunk)..<((o + 1) * chunk)])
            }
        }
        return Tensor(unchecked: shape, out)
    }

    /// Pieces of `sizes[i]` along `axis` (PyTorch `torch.split(x, sizes, dim)`), the adjoint of
    /// ``concatenated(_:along:)``.
    /// - Throws: when the sizes are negative or do not add up to the axis's dimension.
    public func split(sizes: [Int], along axis: Int) throws -> [Tensor] {
        let a = try self.axis(axis, operation: "split")
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == shape[a] else {
            throw RecurrentKitError(
                "split: sizes \(sizes) do not add up to dimension \(shape[a]) of shape \(shape) along axis \(axis)")
        }
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        var start = 0
        return sizes.map { size in
            var pieceShape = shape
            pieceShape[a] = size
            var piece = [Scalar]()
            piece.reserveCapacity(outer * size * inner)
            for o in 0..<outer {
                let from = (o * shape[a] + start) * inner
                piece.append(contentsOf: scalars[from..<(from + size * inner)])
            }
            start += size
            return Tensor(unchecked: pieceShape, piece)
        }
    }

    /// `parts` equal pieces along `axis` (PyTorch `torch.chunk` when the dimension divides evenly).
    /// - Throws: when `parts` < 1 or does not divide the axis's dimension.
    public func split(parts: Int, along axis: Int) throws -> [Tensor] {
        let a = try self.axis(axis, operation: "split")
        guard parts >= 1, shape[a] % parts == 0 else {
            throw RecurrentKitError(
                "split: \(parts) parts do not divide dimension \(shape[a]) of shape \(shape) along axis \(axis)")
        }
        return try split(sizes: Array(repeating: shape[a] / parts, count: parts), along: a)
    }

    /// The tensors (all of one shape) stacked along a new axis `axis` (PyTorch `torch.stack`); (S...) x n -> the new
    /// axis of size n at `axis`. Adjoint: ``unstacked(along:)``.
    /// - Throws: for an empty list, different shapes, or an axis outside [-(rank+1), rank+1).
    public static func stacked(_ tensors: [Tensor], along axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else { throw RecurrentKitError("stacked: no tensors") }
        let a = try first.axis(axis, operation: "stacked", extra: 1)
        for (i, t) in tensors.enumerated() where t.shape != first.shape {
            throw RecurrentKitError("stacked: tensor \(i) has shape \(t.shape), expected \(first.shape)")
        }
        var shape = first.shape
        shape.insert(1, at: a)
        let parts = tensors.map { Tensor(unchecked: shape, $0.scalars) }
        return try concatenated(parts, along: a)
    }

    /// The slices along `axis`, each without that axis (PyTorch `torch.unbind`); the adjoint of
    /// ``stacked(_:along:)``.
    public func unstacked(along axis: Int = 0) throws -> [Tensor] {
        let a = try self.axis(axis, operation: "unstacked")
        var inner = shape
        inner.remove(at: a)
        return try split(sizes: Array(repeating: 1, count: shape[a]), along: a).map {
            Tensor(unchecked: inner, $0.scalars)
        }
    }

    /// Variable-length sequences (L_i, F...) padded into one batch with their lengths (PyTorch `pad_sequence`):
    /// (T, B, F...) time-major or (B, T, F...) batch-first, T the longest length, `padding` after each sequence.
    /// Adjoint: ``unpadded(lengths:layout:)`` of the gradient.
    /// - Throws: for an empty list, an empty sequence, or sequences whose trailing shapes differ.
    public static func padded(
        _ sequences: [Tensor], layout: SequenceLayout = .timeMajor, padding: Scalar = 0
    ) throws
        -> (batch: Tensor, lengths: [Int])
    {
        guard let first = sequences.first else { throw RecurrentKitError("padded: no sequences") }
        let trailing = Array(first.shape.dropFirst())
        for (i, s) in sequences.enumerated() {
            guard s.shape.count >= 1, Array(s.shape.dropFirst()) == trailing, s.shape[0] >= 1 else {
                throw RecurrentKitError("padded: sequence \(i) has shape \(s.shape); expected (L >= 1) + \(trailing)")
            }
        }
        let lengths = sequences.map { $0.shape[0] }
        let T = lengths.max()!, B = sequences.count, inner = trailing.reduce(1, *)
        var out = [Scalar](repeating: padding, count: T * B * inner)
        for (b, s) in sequences.enumerated() {
            for t in 0..<lengths[b] {
                let to = layout == .timeMajor ? (t * B + b) * inner : (b * T + t) * inner
                for k in 0..<inner { out[to + k] = s.scalars[t * inner + k] }
            }
        }
        return (Tensor(unchecked: (layout == .timeMajor ? [T, B] : [B, T]) + trailing, out), lengths)
    }

    /// Each row's valid steps of a padded batch, (lengths[b], F...) each (PyTorch `unpad_sequence`): the adjoint of
    /// ``padded(_:layout:padding:)``.
    /// - Throws: when `lengths` does not have B entries in [1, T].
    public func unpadded(lengths: [Int], layout: SequenceLayout = .timeMajor) throws -> [Tensor] {
        let (T, B, inner) = try sequenceDimensions(lengths: lengths, layout: layout, operation: "unpadded")
        return (0..<B).map { b in
            var rows = [Scalar](repeating: 0, count: lengths[b] * inner)
            for t in 0..<lengths[b] {
                let from = layout == .timeMajor ? (t * B + b) * inner : (b * T + t) * inner
                for k in 0..<inner { rows[t * inner + k] = scalars[from + k] }
            }
            return Tensor(unchecked: [lengths[b]] + shape.dropFirst(2), rows)
        }
    }
}
