// Models made of layers: one flat store gathered from the layers' own declarations, hierarchical names, and typed
// views of each parameter.

/// A layer that owns parameters in a ``ParameterStore``: ``RecurrentNetwork``, ``Linear``, ``Embedding``.
///
/// A layer starts with a store of its own; ``ParameterStore/init(gathering:)`` builds one store for a whole model
/// from its layers and rebinds each of them to it, so clipping, optimizers, checkpoints and an allreduce see every
/// parameter of the model as one buffer.
public protocol ParameterizedLayer<Scalar>: AnyObject {
    /// The scalar type of the parameters.
    associatedtype Scalar: RecurrentScalar
    /// The store the layer's parameters live in now.
    var parameters: ParameterStore<Scalar> { get }
    /// The prefix of the layer's names in ``parameters`` ("" for a standalone layer).
    var parameterPrefix: String { get }
    /// The layer's own parameters in `state_dict` order, named without a prefix (`weight`, `weight_ih_l0`, ...).
    var parameterDeclarations: ParameterLayout { get }
    /// Points the layer at `store`, where its parameters are declared under `prefix` (an implementation hook for
    /// ``ParameterStore/init(gathering:)``; it does not copy values).
    func _bind(to store: ParameterStore<Scalar>, prefix: String) throws
}

extension ParameterStore {
    /// One store for a model made of layers, with PyTorch's hierarchical names: layer `"encoder"`'s `weight_ih_l0`
    /// becomes `encoder.weight_ih_l0`, in the order the layers are given (the `state_dict` order of a PyTorch module
    /// that assigns them in that order). Each layer's current values are copied in, so an initialisation done before
    /// survives; gradients start at zero. Every layer is then rebound to the new store (its earlier store is no longer
    /// used by it, and its earlier records are stale).
    ///
    /// ```swift
    /// let lstm = try RecurrentNetwork<Float>(.init(cell: .lstm, inputSize: 1, hiddenSize: 32), generator: &g)
    /// let head = try Linear<Float>(inputSize: 32, outputSize: 1, generator: &g)
    /// let parameters = try ParameterStore<Float>(gathering: ["lstm": lstm, "head": head])
    /// // parameters.entries: lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight, head.bias
    /// ```
    /// - Parameter layers: names (non-empty; letters, digits, `_` and `.`, not starting or ending with `.`) and layers,
    ///   each layer once.
    /// - Throws: on an invalid or repeated name, or a layer given twice.
    public convenience init(gathering layers: KeyValuePairs<String, any ParameterizedLayer<Scalar>>) throws {
        try self.init(gatheringList: layers.map { ($0.key, $0.value) })
    }

    /// ``init(gathering:)`` over a list (containers build it from their members).
    convenience init(gatheringList layers: [(String, any ParameterizedLayer<Scalar>)]) throws {
        var layout = ParameterLayout()
        var names = Set<String>(), seen = Set<ObjectIdentifier>()
        for (name, layer) in layers {
            let allowed = name.utf8.allSatisfy {
                $0 < 128
                    && (($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95
                        || $0 == 46)
            }
            guard !name.isEmpty, name.count <= 200, allowed, !name.hasPrefix("."), !name.hasSuffix("."),
                !name.contains("..")
            else {
                throw RecurrentKitError("layer name '\(name.prefix(60))' must be letters, digits, '_' and inner '.'")
            }
            guard names.insert(name).inserted else { throw RecurrentKitError("layer name '\(name)' is used twice") }
            guard seen.insert(ObjectIdentifier(layer)).inserted else {
                throw RecurrentKitError("layer '\(name)' is also given under another name")
            }
            for entry in layer.parameterDeclarations.entries {
                layout.append("\(name).\(entry.name)", shape: entry.shape)
            }
        }
        self.init(layout: layout)
        for (name, layer) in layers {
            let source = layer.parameters
            for entry in layer.parameterDeclarations.entries {
                let from = try source.requireEntry(layer.parameterPrefix + entry.name)
                let to = try requireEntry("\(name).\(entry.name)")
                (values + to.offset).update(from: source.values + from.offset, count: to.count)
            }
        }
        for (name, layer) in layers { try layer._bind(to: self, prefix: name + ".") }
    }
}

/// One parameter tensor of a layer: its entry in the store, and its values and gradient in place.
///
/// A view reads and writes the store's memory (it keeps the store alive); it refers to the store the layer was bound
/// to when the view was made.
public struct ParameterView<Scalar: RecurrentScalar> {
    /// The store holding the tensor.
    public let store: ParameterStore<Scalar>
    /// Name (with the layer's prefix), shape and offset in ``store``.
    public let entry: ParameterEntry

    init(store: ParameterStore<Scalar>, name: String) {
        self.store = store
        entry = store.entry(named: name) ?? ParameterEntry(name: name, shape: [0], offset: 0)
    }

    /// The full name, e.g. `lstm.weight_ih_l0`.
    public var name: String { entry.name }
    /// PyTorch's shape, e.g. (G*H, In).
    public var shape: [Int] { entry.shape }
    /// The values, row-major, in the store.
    public var values: UnsafeMutableBufferPointer<Scalar> {
        UnsafeMutableBufferPointer(start: store.values + entry.offset, count: entry.count)
    }
    /// The gradient, row-major, in the store (backward passes add into it).
    public var gradients: UnsafeMutableBufferPointer<Scalar> {
        UnsafeMutableBufferPointer(start: store.gradients + entry.offset, count: entry.count)
    }

    /// A copy of the values as a tensor of ``shape``.
    public func tensor() throws -> Tensor<Scalar> { try Tensor(shape: shape, scalars: Array(values)) }
    /// A copy of the gradient as a tensor of ``shape``.
    public func gradientTensor() throws -> Tensor<Scalar> { try Tensor(shape: shape, scalars: Array(gradients)) }
    /// Overwrites the values.
    /// - Throws: when `tensor`'s shape is not ``shape``.
    public func set(_ tensor: Tensor<Scalar>) throws {
        try tensor.requireShape(shape, name: name)
        _ = values.update(fromContentsOf: tensor.scalars)
    }
}
