// Selecting along the leading axis, reshaping and transposing, with the adjoint each backward needs. Semantics as
// numpy/PyTorch: a negative index or axis counts from the end; every shape error is one line naming the operation.
// No autodiff: a layer that selects calls the adjoint in its backward (see `LastStep`, `LastValidStep`).

extension Tensor {
    /// The sub-tensor at `index` of the leading axis (PyTorch `x[i]`): (D0, rest...) -> (rest...). A negative index
    /// counts from the end (`x[-1]` is the last step of a time-major sequence).
    /// - Throws: for a scalar tensor or an index outside [-D0, D0).
    public subscript(_ index: Int) -> Tensor {
        get throws {
            let i = try leadingIndex(index, operation: "index")
            let inner = shape.dropFirst().reduce(1, *)
            return Tensor(unchecked: Array(shape.dropFirst()), Array(scalars[(i * inner)..<((i + 1) * inner)]))
        }
    }

    /// The sub-tensor of the leading axis in `range` (PyTorch `x[a:b]`): (D0, rest...) -> (b - a, rest...).
    /// - Throws: for a scalar tensor or a range outside [0, D0].
    public subscript(_ range: Range<Int>) -> Tensor {
        get throws {
            guard let d0 = shape.first else { throw RecurrentKitError("cannot slice a tensor of shape \(shape)") }
            guard range.lowerBound >= 0, range.upperBound <= d0 else {
                throw RecurrentKitError("slice \(range) is outside the leading axis of shape \(shape)")
            }
            let inner = shape.dropFirst().reduce(1, *)
            return Tensor(
                unchecked: [range.count] + shape.dropFirst(),
                Array(scalars[(range.lowerBound * inner)..<(range.upperBound * inner)]))
        }
    }

    /// The adjoint of `x[index]`: a tensor of `shape` that is zero except `gradient` at `index` of the leading axis.
    /// - Parameters:
    ///   - gradient: dL/d(x[index]), shape `shape` without its first dimension.
    ///   - index: the index the forward selected (negative counts from the end).
    ///   - shape: the shape of x.
    public static func indexAdjoint(_ gradient: Tensor, at index: Int, shape: [Int]) throws -> Tensor {
        var out = Tensor(zeros: shape)
        let i = try out.leadingIndex(index, operation: "index adjoint")
        try gradient.requireShape(Array(shape.dropFirst()), name: "gradient of x[\(index)]")
        let inner = gradient.count
        out.scalars.replaceSubrange((i * inner)..<((i + 1) * inner), with: gradient.scalars)
        return out
    }

    /// The same elements with another shape (PyTorch `reshape`); one dimension may be -1 and is then inferred.
    /// Its adjoint is reshaping the gradient back to the input's shape.
    /// - Throws: when the element counts differ, more than one dimension is -1, or a dimension is below -1.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1, newShape.allSatisfy({ $0 >= -1 }) else {
            throw RecurrentKitError(
                "cannot reshape \(shape) to \(newShape): at most one dimension may be -1, the others >= 0")
        }
        var resolved = newShape
        if let at = inferred.first {
            let known = newShape.enumerated().reduce(1) { $1.offset == at ? $0 : $0 * $1.element }
            guard known > 0, count % known == 0 else {
                throw RecurrentKitError("cannot reshape \(shape) (\(count) elements) to \(newShape)")
            }
            resolved[at] = count / known
        }
        guard resolved.reduce(1, *) == count else {
            throw RecurrentKitError("cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        return Tensor(unchecked: resolved, scalars)
    }

    /// The tensor with axes `a` and `b` exchanged (PyTorch `transpose(a, b)`); its own adjoint. `transposed(0, 1)`
    /// converts between time-major (T, B, ...) and batch-first (B, T, ...).
    /// - Throws: when an axis is outside [-rank, rank).
    public func transposed(_ a: Int, _ b: Int) throws -> Tensor {
        let (a, b) = (try axis(a, operation: "transpose"), try axis(b, operation: "transpose"))
        if a == b { return self }
        if min(a, b) == 0 && max(a, b) == 1 { return try swappingFirstTwoAxes() }
        var permutation = Array(shape.indices)
        permutation.swapAt(a, b)
        return permuted(permutation)
    }

    /// The sequence in `layout` converted to `target` ((T, B, ...) <-> (B, T, ...)); its adjoint converts back.
    /// - Throws: for a tensor of rank below 2.
    public func converted(from layout: SequenceLayout, to target: SequenceLayout) throws -> Tensor {
        guard shape.count >= 2 else { throw RecurrentKitError("a sequence needs at least 2 axes, got shape \(shape)") }
        return layout == target ? self : try swappingFirstTwoAxes()
    }

    /// The index of the largest element along `axis` for every position of the other axes, in row-major order of
    /// those axes (PyTorch `argmax(dim)`; the first index on ties; a NaN counts as the largest, as in PyTorch).
    /// E.g. logits (B, C) -> B class indices with `along: 1` (or -1).
    /// - Throws: when the axis is outside [-rank, rank) or has no elements.
    public func argmax(along axis: Int) throws -> [Int] {
        let a = try self.axis(axis, operation: "argmax")
        let n = shape[a], inner = shape[(a + 1)...].reduce(1, *), outer = shape[..<a].reduce(1, *)
        guard n > 0 else { throw RecurrentKitError("argmax along an empty axis of shape \(shape)") }
        var result = [Int](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0, bestValue = scalars[o * n * inner + i]
                if !bestValue.isNaN {
                    for k in 1..<n {
                        let v = scalars[(o * n + k) * inner + i]
                        if v.isNaN { best = k; break }
                        if v > bestValue { (best, bestValue) = (k, v) }
                    }
                }
                result[o * inner + i] = best
            }
        }
        return result
    }

    /// Each row's state at its last valid step: (T, B, F...) -> (B, F...) time-major, (B, T, F...) -> (B, F...)
    /// batch-first; row b is taken at step lengths[b] - 1 (for a variable-length batch, where `x[-1]` would read
    /// padding). PyTorch: `out[lengths - 1, arange(B)]` on `pad_packed_sequence`'s output.
    /// - Throws: when `lengths` does not have B entries in [1, T], or the rank is below 2.
    public func lastValidSteps(lengths: [Int], layout: SequenceLayout = .timeMajor) throws -> Tensor {
        let (T, B, inner) = try sequenceDimensions(lengths: lengths, layout: layout, operation: "lastValidSteps")
        var out = Tensor(unchecked: [B] + shape.dropFirst(2), [Scalar](repeating: 0, count: B * inner))
        for b in 0..<B {
            let from = layout == .timeMajor ? ((lengths[b] - 1) * B + b) * inner : (b * T + lengths[b] - 1) * inner
            for k in 0..<inner { out.scalars[b * inner + k] = scalars[from + k] }
        }
        return out
    }

    /// The adjoint of ``lastValidSteps(lengths:layout:)``: zeros of the sequence's `shape` with row b of `gradient`
    /// (B, F...) at step lengths[b] - 1.
    public static func lastValidStepsAdjoint(
        _ gradient: Tensor, lengths: [Int], shape: [Int], layout: SequenceLayout = .timeMajor
    ) throws -> Tensor {
        var out = Tensor(zeros: shape)
        let (T, B, inner) = try out.sequenceDimensions(
            lengths: lengths, layout: layout, operation: "lastValidSteps adjoint")
        try gradient.requireShape([B] + shape.dropFirst(2), name: "gradient of lastValidSteps")
        for b in 0..<B {
            let to = layout == .timeMajor ? ((lengths[b] - 1) * B + b) * inner : (b * T + lengths[b] - 1) * inner
            for k in 0..<inner { out.scalars[to + k] = gradient.scalars[b * inner + k] }
        }
        return out
    }

    // MARK: - Helpers

    /// A tensor whose shape and count are known to agree.
    init(unchecked shape: [Int], _ scalars: [Scalar]) {
        self.shape = shape
        self.scalars = scalars
    }

    /// `index` of the leading axis resolved from the end when negative.
    func leadingIndex(_ index: Int, operation: String) throws -> Int {
        guard let d0 = shape.first else {
            throw RecurrentKitError("\(operation): a tensor of shape \(shape) has no leading axis")
        }
        let i = index < 0 ? index + d0 : index
        guard i >= 0 && i < d0 else {
            throw RecurrentKitError("\(operation): index \(index) is outside [-\(d0), \(d0)) for shape \(shape)")
        }
        return i
    }

    /// `axis` resolved from the end when negative.
    func axis(_ axis: Int, operation: String, extra: Int = 0) throws -> Int {
        let rank = shape.count + extra
        guard rank > 0 else { throw RecurrentKitError("\(operation): a tensor of shape \(shape) has no axis") }
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw RecurrentKitError("\(operation): axis \(axis) is outside [-\(rank), \(rank)) for shape \(shape)")
        }
        return a
    }

    /// (T, B, elements per step and row), checking `lengths` against the sequence axes of `layout`.
    func sequenceDimensions(lengths: [Int], layout: SequenceLayout, operation: String) throws -> (Int, Int, Int) {
        guard shape.count >= 2 else {
            throw RecurrentKitError("\(operation): a sequence needs at least 2 axes, got shape \(shape)")
        }
        let (T, B) = layout == .timeMajor ? (shape[0], shape[1]) : (shape[1], shape[0])
        guard lengths.count == B else {
            throw RecurrentKitError("\(operation): \(lengths.count) lengths for \(B) rows (shape \(shape))")
        }
        for (b, l) in lengths.enumerated() where l < 1 || l > T {
            throw RecurrentKitError("\(operation): length \(l) of row \(b) is outside [1, \(T)]")
        }
        return (T, B, shape.dropFirst(2).reduce(1, *))
    }

    /// The axes in the order `permutation` (out.shape[i] = shape[permutation[i]]).
    func permuted(_ permutation: [Int]) -> Tensor {
        let rank = shape.count
        var strides = [Int](repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        let outShape = permutation.map { shape[$0] }, outStrides = permutation.map { strides[$0] }
        var out = [Scalar](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: rank)
        for flat in 0..<count {
            var source = 0
            for d in 0..<rank { source += index[d] * outStrides[d] }
            out[flat] = scalars[source]
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < outShape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(unchecked: outShape, out)
    }
}
