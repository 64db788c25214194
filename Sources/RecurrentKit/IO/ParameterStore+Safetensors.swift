/// Saving and loading any model's parameters (and its optimizer's state) as safetensors, so a model built from the
/// public layers checkpoints and resumes like the language model does.
extension ParameterStore {
    /// The metadata key holding the format name.
    public static var formatKey: String { "format" }
    /// The format name written by ``save(to:metadata:optimizer:)``.
    public static var formatName: String { "recurrentkit.parameters.v1" }
    /// Prefix of the optimizer-state tensors in the file.
    public static var optimizerPrefix: String { "_optimizer." }

    /// Writes every parameter under its name (in this store's precision, F32 or F64), `metadata`, and optionally
    /// the optimizer's state (its buffers as F64 tensors `_optimizer.<name>`, its step count in the metadata), to
    /// `path` atomically (the previous file stays intact on any failure).
    /// - Parameters:
    ///   - path: destination file.
    ///   - metadata: your own strings (e.g. sizes, epoch); the keys `format` and `optimizer.*` are reserved.
    ///   - optimizer: an optimizer whose state should resume exactly, or nil.
    public func save(to path: String, metadata: [String: String] = [:], optimizer: Optimizer? = nil) throws {
        try writeFileAtomically(try serialized(metadata: metadata, optimizer: optimizer), to: path)
    }

    /// The bytes ``save(to:metadata:optimizer:)`` writes.
    public func serialized(metadata: [String: String] = [:], optimizer: Optimizer? = nil) throws -> [UInt8] {
        for key in metadata.keys where key == Self.formatKey || key.hasPrefix("optimizer.") {
            throw RecurrentKitError("metadata key '\(key)' is reserved")
        }
        guard valuesAreFinite() else { throw RecurrentKitError("refusing to save parameters that are not all finite") }
        var file = SafetensorsFile(metadata: metadata)
        file.metadata[Self.formatKey] = Self.formatName
        let dtype: SafetensorsFile.DType = Scalar.safetensorsDType == "F64" ? .f64 : .f32
        for entry in entries { file.add(entry.name, try tensor(entry.name), as: dtype) }
        if let optimizer {
            file.metadata["optimizer.stepCount"] = String(optimizer.stepCount)
            for (name, values) in optimizer.stateBuffers {
                file.add(Self.optimizerPrefix + name, try Tensor<Double>(shape: [values.count], scalars: values), as: .f64)
            }
        }
        return try file.serialized()
    }

    /// Reads parameters saved by ``save(to:metadata:optimizer:)`` (or a PyTorch `state_dict` saved with
    /// `safetensors.torch.save_file` under the same names) into this store.
    ///
    /// Nothing changes unless the whole file is valid: exactly this store's names with its shapes (a missing, extra or
    /// misshapen tensor is an error naming it), finite values, and, when `optimizer` is given, state for it.
    /// F32, F64, F16 and BF16 tensors are converted to this store's precision.
    /// - Parameters:
    ///   - path: the file.
    ///   - optimizer: restores its state from the file (which must hold some), or nil to ignore any.
    /// - Returns: the file's metadata (your keys and the reserved ones).
    @discardableResult
    public func load(from path: String, optimizer: Optimizer? = nil) throws -> [String: String] {
        let bytes = try readFileBytes(path, what: "parameter file")
        do { return try load(serialized: bytes, optimizer: optimizer) }
        catch let error as RecurrentKitError { throw RecurrentKitError("parameter file \(path): \(error.message)") }
    }

    /// Parses bytes written by ``serialized(metadata:optimizer:)`` into this store (see ``load(from:optimizer:)``).
    @discardableResult
    public func load(serialized bytes: [UInt8], optimizer: Optimizer? = nil) throws -> [String: String] {
        let file = try SafetensorsFile(bytes: bytes)
        if let format = file.metadata[Self.formatKey], format != Self.formatName {
            throw RecurrentKitError("format \(format) is not a parameter file (expected \(Self.formatName))")
        }
        let expected = Set(entries.map(\.name))
        let names = Set(file.tensors.keys.filter { !$0.hasPrefix(Self.optimizerPrefix) })
        if let missing = expected.subtracting(names).sorted().first { throw RecurrentKitError("tensor \(missing) is missing") }
        if let extra = names.subtracting(expected).sorted().first { throw RecurrentKitError("unexpected tensor \(extra) (not a parameter of this model)") }
        var loaded: [(ParameterEntry, Tensor<Scalar>)] = []
        for entry in entries {
            let tensor: Tensor<Scalar> = try file.tensor(entry.name)
            try tensor.requireShape(entry.shape, name: entry.name)
            guard tensor.scalars.allSatisfy(\.isFinite) else { throw RecurrentKitError("tensor \(entry.name) holds a non-finite value") }
            loaded.append((entry, tensor))
        }
        if let optimizer {
            guard let text = file.metadata["optimizer.stepCount"], let steps = Int(text) else {
                throw RecurrentKitError("no optimizer state (metadata optimizer.stepCount)")
            }
            var buffers: [String: [Double]] = [:]
            for name in file.tensors.keys where name.hasPrefix(Self.optimizerPrefix) {
                let values: Tensor<Double> = try file.tensor(name)
                guard values.scalars.count == count else {
                    throw RecurrentKitError("optimizer state \(name) holds \(values.scalars.count) values for \(count) parameters")
                }
                buffers[String(name.dropFirst(Self.optimizerPrefix.count))] = values.scalars
            }
            try optimizer.restore(stateBuffers: buffers, stepCount: steps)
        }
        for (entry, tensor) in loaded { try setTensor(entry.name, tensor) }
        return file.metadata
    }
}
