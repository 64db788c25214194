import _RecurrentKitKernels

/// The name, shape and place of one parameter tensor inside a ``ParameterStore``.
public struct ParameterEntry: Equatable, Sendable {
    /// PyTorch `state_dict` name, e.g. `rnn.weight_ih_l0`.
    public let name: String
    /// PyTorch shape, e.g. (G*H, I) for `weight_ih_l0`.
    public let shape: [Int]
    /// First element in the flat buffer.
    public let offset: Int
    /// Number of elements (product of `shape`).
    public var count: Int { shape.reduce(1, *) }
}

/// The list of parameters a model declares before its flat buffers are allocated.
public struct ParameterLayout: Sendable {
    /// Entries in declaration order (the order of PyTorch's `state_dict`).
    public private(set) var entries: [ParameterEntry] = []
    /// Total number of scalars.
    public private(set) var totalCount = 0

    /// An empty layout.
    public init() {}

    /// Appends a parameter; offsets are kept 16-element aligned so vector kernels start on a boundary.
    public mutating func append(_ name: String, shape: [Int]) {
        let entry = ParameterEntry(name: name, shape: shape, offset: totalCount)
        entries.append(entry)
        totalCount += (entry.count + 15) / 16 * 16
    }
}

/// All parameters of a model and their gradients, each in one flat, 64-byte aligned buffer,
/// with named views; clipping and optimizers are one loop over `values`/`gradients`.
public final class ParameterStore<Scalar: RecurrentScalar> {
    /// The named views.
    public let entries: [ParameterEntry]
    /// Number of scalars in each buffer (padding between tensors included, always zero).
    public let count: Int
    /// Parameter values, `count` elements.
    public let values: UnsafeMutablePointer<Scalar>
    /// Gradients, `count` elements; backward passes add into them, ``zeroGradients()`` clears them.
    public let gradients: UnsafeMutablePointer<Scalar>
    private let indexByName: [String: Int]

    /// Allocates zeroed values and gradients for `layout`.
    public init(layout: ParameterLayout) {
        entries = layout.entries
        count = max(layout.totalCount, 1)
        values = allocateAligned(Scalar.self, count: count)
        gradients = allocateAligned(Scalar.self, count: count)
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.name] = i }
        indexByName = index
    }

    deinit {
        freeAligned(values)
        freeAligned(gradients)
    }

    /// The entry called `name`, or nil.
    public func entry(named name: String) -> ParameterEntry? {
        indexByName[name].map { entries[$0] }
    }

    /// The entry called `name`; throws if the model has no such parameter.
    public func requireEntry(_ name: String) throws -> ParameterEntry {
        guard let entry = entry(named: name) else {
            throw RecurrentKitError(
                "no parameter named \(name); the model has \(entries.map(\.name).joined(separator: ", "))")
        }
        return entry
    }

    /// Pointer to the first value of `name` (internal: names are known to exist).
    func value(_ name: String) -> UnsafeMutablePointer<Scalar> {
        values + indexByName[name].map { entries[$0].offset }!
    }
    /// Pointer to the first gradient of `name`.
    func gradient(_ name: String) -> UnsafeMutablePointer<Scalar> {
        gradients + indexByName[name].map { entries[$0].offset }!
    }

    /// Sets every gradient to zero (a separate step: backward passes accumulate).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func zeroGradients() { gradients.update(repeating: 0, count: count) }

    /// Multiplies every gradient by `factor` (e.g. B_r/B before a data-parallel sum).
    public func scaleGradients(by factor: Scalar) {
        for i in 0..<count { gradients[i] *= factor }
    }

    /// A copy of the parameter `name` as a tensor.
    public func tensor(_ name: String) throws -> Tensor<Scalar> {
        let entry = try requireEntry(name)
        return try Tensor(
            shape: entry.shape, scalars: Array(UnsafeBufferPointer(start: values + entry.offset, count: entry.count)))
    }

    /// A copy of the gradient of `name` as a tensor.
    public func gradientTensor(_ name: String) throws -> Tensor<Scalar> {
        let entry = try requireEntry(name)
        return try Tensor(
            shape: entry.shape, scalars: Array(UnsafeBufferPointer(start: gradients + entry.offset, count: entry.count))
        )
    }

    /// Overwrites parameter `name`; throws if the name is unknown or the shape differs.
    public func setTensor(_ name: String, _ tensor: Tensor<Scalar>) throws {
        let entry = try requireEntry(name)
        try tensor.requireShape(entry.shape, name: name)
        tensor.scalars.withUnsafeBufferPointer {
            (values + entry.offset).update(from: $0.baseAddress!, count: entry.count)
        }
    }

    /// Copies all values from another store with the same layout.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func copyValues(from other: ParameterStore) throws {
        guard other.entries == entries else { throw RecurrentKitError("parameter layouts differ") }
        values.update(from: other.values, count: count)
    }

    /// Sum of squares of all gradients, accumulated in Double.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func gradientSquaredNorm() -> Double {
        var sum = 0.0
        for i in 0..<count { let g = Double(gradients[i]); sum += g * g }
        return sum
    }

    /// True when every value is finite.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func valuesAreFinite() -> Bool {
        for i in 0..<count where !values[i].isFinite { return false }
        return true
    }
}
