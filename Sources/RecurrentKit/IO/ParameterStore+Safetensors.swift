/// Saving and loading any model's parameters (and its optimizer's state) as safetensors, so a model built from the
/// public layers checkpoints and resumes like the language model does.
extension ParameterStore {
    /// The metadata key holding the format name.
    public static var formatKey: String { "format" }
    /// The format name written by ``save(to:metadata:optimizer:)``: ``CheckpointFormat/name``, the one format of
    /// every RecurrentKit file.
    public static var formatName: String { CheckpointFormat.name }
    /// Prefix of the optimizer-state tensors in the file (``CheckpointFormat/optimizerTensorPrefix``).
    public static var optimizerPrefix: String { CheckpointFormat.optimizerTensorPrefix }

    /// Writes every parameter under its name (in this store's precision, F32 or F64), `metadata`, and optionally
    /// the optimizer's state (its buffers as F64 tensors `_trainer.optimizer.<name>`, its step count in the
    /// metadata), to `path` atomically (the previous file stays intact on any failure), in ``CheckpointFormat``.
    /// - Parameters:
    ///   - path: destination file.
    ///   - metadata: your own strings (e.g. a `model` description, the epoch); the keys `format`, `library_version`,
    ///     `kernel_level`, `kernel_blocking` and `optimizer.*` are reserved.
    ///   - optimizer: an optimizer whose state should resume exactly, or nil.
    public func save(to path: String, metadata: [String: String] = [:], optimizer: Optimizer? = nil) throws {
        try writeFileAtomically(try serialized(metadata: metadata, optimizer: optimizer), to: path)
    }

    /// The bytes ``save(to:metadata:optimizer:)`` writes.
    public func serialized(metadata: [String: String] = [:], optimizer: Optimizer? = nil) throws -> [UInt8] {
        try checkpointFile(metadata: metadata, optimizer: optimizer).serialized()
    }

    /// The file ``save(to:metadata:optimizer:)`` writes, before it is serialized, for a writer that adds training
    /// tensors of its own (names under ``CheckpointFormat/trainingTensorPrefix``), as a language model's checkpoint
    /// does.
    /// - Throws: on a reserved metadata key, or when a parameter is NaN or infinite (such a file is never written).
    public func checkpointFile(metadata: [String: String] = [:], optimizer: Optimizer? = nil) throws -> SafetensorsFile
    {
        for key in metadata.keys where CheckpointFormat.reservedKeys.contains(key) || key.hasPrefix("optimizer.") {
            throw RecurrentKitError("metadata key '\(key)' is reserved")
        }
        guard valuesAreFinite() else { throw RecurrentKitError("refusing to save parameters that are not all finite") }
        var file = SafetensorsFile(metadata: metadata)
        file.metadata[Self.formatKey] = CheckpointFormat.name
        file.metadata["library_version"] = RecurrentKitVersion.string
        file.metadata["kernel_level"] = Kernels.activeLevel.name
        file.metadata["kernel_blocking"] = Kernels.blocking.description
        let dtype: SafetensorsFile.DType = Scalar.safetensorsDType == "F64" ? .f64 : .f32
        for entry in entries { try file.add(entry.name, try tensor(entry.name), as: dtype) }
        if let optimizer {
            file.metadata["optimizer.stepCount"] = String(optimizer.stepCount)
            for (name, values) in optimizer.stateBuffers {
                try file.add(
                    Self.optimizerPrefix + name, try Tensor<Double>(shape: [values.count], scalars: values), as: .f64)
            }
        }
        return file
    }

    /// Reads parameters saved by ``save(to:metadata:optimizer:)`` (any version of ``CheckpointFormat``, a language
    /// model's checkpoint included, or a PyTorch `state_dict` saved with `safetensors.torch.save_file` under the same
    /// names) into this store.
    ///
    /// Nothing changes unless the whole file is valid: exactly this store's names with its shapes (a missing, extra or
    /// misshapen tensor is an error naming it; training tensors such as the optimizer's are not weights), finite
    /// values, and, when `optimizer` is given, state for it. F32, F64, F16 and BF16 tensors are converted to this
    /// store's precision. A `state_dict` of one layer (names without the layer's prefix) or one that matches only in
    /// part loads with ``loadStateDict(from:into:stripping:strict:)``.
    /// - Parameters:
    ///   - path: the file.
    ///   - optimizer: restores its state from the file (which must hold some), or nil to ignore any.
    /// - Returns: the file's metadata (your keys and the reserved ones).
    @discardableResult
    public func load(from path: String, optimizer: Optimizer? = nil) throws -> [String: String] {
        let bytes = try readFileBytes(path, what: "parameter file")
        do { return try load(serialized: bytes, optimizer: optimizer) } catch let error as RecurrentKitError {
            throw RecurrentKitError("parameter file \(path): \(error.message)")
        }
    }

    /// Parses bytes written by ``serialized(metadata:optimizer:)`` into this store (see ``load(from:optimizer:)``).
    @discardableResult
    public func load(serialized bytes: [UInt8], optimizer: Optimizer? = nil) throws -> [String: String] {
        let file = try SafetensorsFile(bytes: bytes)
        let version = try CheckpointFormat.version(of: file.metadata)
        let (loaded, _) = try matchStateDict(file, into: "", stripping: "", strict: true, hint: "")
        if let optimizer {
            guard let steps = CheckpointFormat.optimizerStepCount(file.metadata) else {
                throw RecurrentKitError("no optimizer state (metadata optimizer.stepCount)")
            }
            let prefix = version == 0 ? CheckpointFormat.legacyOptimizerTensorPrefix : Self.optimizerPrefix
            var buffers: [String: [Double]] = [:]
            for name in file.tensors.keys where name.hasPrefix(prefix) {
                let values: Tensor<Double> = try file.tensor(name)
                guard values.scalars.count == count else {
                    throw RecurrentKitError(
                        "optimizer state \(name) holds \(values.scalars.count) values for \(count) parameters")
                }
                guard values.scalars.allSatisfy(\.isFinite) else {
                    throw RecurrentKitError("optimizer state \(name) holds a non-finite value")
                }
                buffers[String(name.dropFirst(prefix.count))] = values.scalars
            }
            try optimizer.restore(stateBuffers: buffers, stepCount: steps)
        }
        for (entry, tensor) in loaded { try setTensor(entry.name, tensor) }
        return file.metadata
    }

    /// Loads a PyTorch `state_dict` (any safetensors file of named float tensors, e.g. from
    /// `safetensors.torch.save_file(module.state_dict(), path)`) into the parameters whose names start with
    /// `prefix`: the file's key `k` (after `stripping` is removed from it) goes to the parameter `prefix + k`.
    ///
    /// PyTorch's `module.load_state_dict(state_dict, strict=...)` called on a sub-module: a bare `nn.LSTM`'s keys
    /// (`weight_ih_l0`, ...) load into the layer gathered as `"lstm"` (`lstm.weight_ih_l0`, ...) with `into: "lstm."`;
    /// a whole model's file loads into one of its layers with `stripping: "encoder."`.
    ///
    /// ```swift
    /// let parameters = try ParameterStore<Float>(gathering: ["lstm": lstm, "head": head])
    /// try parameters.loadStateDict(from: "lstm.safetensors", into: "lstm.")        // head untouched
    /// let report = try parameters.loadStateDict(from: "other.safetensors", strict: false)
    /// print(report.missingKeys, report.unexpectedKeys)                              // what did not match
    /// ```
    ///
    /// Parameters outside `prefix` are neither loaded nor reported; file keys that do not start with `stripping`
    /// (when it is not empty) and the training state of a RecurrentKit file (`_trainer.*`, and `_optimizer.*` of
    /// 0.2's parameter files) are skipped.
    /// F32, F64, F16 and BF16 tensors are converted to this store's precision. Nothing changes unless the whole load
    /// succeeds.
    /// - Parameters:
    ///   - file: the state_dict.
    ///   - prefix: the names of the parameters to load, usually a layer's name and a dot (`"lstm."`); `""` for all.
    ///   - stripping: removed from the start of every file key before matching (`""`: keys are used as they are).
    ///   - strict: when true (PyTorch's default), a parameter under `prefix` without a tensor, or a tensor without a
    ///     parameter, is an error naming all of them; when false, the matching tensors load and the report lists the
    ///     rest.
    /// - Returns: the parameters loaded and, when not strict, the keys that did not match.
    /// - Throws: on a mismatch in strict mode, always on a matched tensor whose shape differs from its parameter's
    ///   (naming both and both shapes), that is not floating-point or holds a non-finite value, and when no parameter
    ///   name starts with `prefix`.
    @discardableResult
    public func loadStateDict(
        _ file: SafetensorsFile, into prefix: String = "", stripping: String = "", strict: Bool = true
    ) throws -> StateDictLoadReport {
        let (loaded, report) = try matchStateDict(
            file, into: prefix, stripping: stripping, strict: strict,
            hint: " (pass strict: false to load the tensors that match)")
        for (entry, tensor) in loaded { try setTensor(entry.name, tensor) }
        return report
    }

    /// Reads the safetensors file at `path` and loads it as ``loadStateDict(_:into:stripping:strict:)`` does; errors
    /// name the path.
    @discardableResult
    public func loadStateDict(
        from path: String, into prefix: String = "", stripping: String = "", strict: Bool = true
    ) throws -> StateDictLoadReport {
        let bytes = try readFileBytes(path, what: "state_dict file")
        do {
            return try loadStateDict(
                try SafetensorsFile(bytes: bytes), into: prefix, stripping: stripping, strict: strict)
        } catch let error as RecurrentKitError { throw RecurrentKitError("state_dict file \(path): \(error.message)") }
    }

    /// The tensors of `file` for the parameters under `prefix`, checked (names in strict mode, shapes, dtypes, finite
    /// values) but not yet stored, and what matched.
    private func matchStateDict(
        _ file: SafetensorsFile, into prefix: String, stripping: String, strict: Bool,
        hint: String
    ) throws -> ([(ParameterEntry, Tensor<Scalar>)], StateDictLoadReport) {
        let targets = entries.filter { $0.name.hasPrefix(prefix) }
        guard !targets.isEmpty || entries.isEmpty else {
            throw RecurrentKitError(
                "no parameter name starts with '\(prefix)'; the model has \(nameList(entries.map(\.name)))")
        }
        let targetNames = Set(targets.map(\.name))
        var keyForName: [String: String] = [:], unexpected: [String] = []
        for key in file.tensors.keys.sorted()
        where !key.hasPrefix(CheckpointFormat.trainingTensorPrefix)
            && !key.hasPrefix(CheckpointFormat.legacyOptimizerTensorPrefix)
        {
            guard key.hasPrefix(stripping) else { continue }
            let name = prefix + key.dropFirst(stripping.count)
            if targetNames.contains(name) { keyForName[name] = key } else { unexpected.append(key) }
        }
        let missing = targets.map(\.name).filter { keyForName[$0] == nil }
        if strict, !missing.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(nameList(missing))") }
            if !unexpected.isEmpty { parts.append("unexpected \(nameList(unexpected))") }
            let scope = prefix.isEmpty ? "the parameters" : "the parameters under '\(prefix)'"
            throw RecurrentKitError("state_dict does not match \(scope): \(parts.joined(separator: "; "))\(hint)")
        }
        var loaded: [(ParameterEntry, Tensor<Scalar>)] = []
        for entry in targets {
            guard let key = keyForName[entry.name] else { continue }
            let tensor: Tensor<Scalar> = try file.tensor(key)
            let what = key == entry.name ? key : "tensor \(key) (for \(entry.name))"
            try tensor.requireShape(entry.shape, name: what)
            guard tensor.scalars.allSatisfy(\.isFinite) else {
                throw RecurrentKitError("tensor \(key) holds a non-finite value")
            }
            loaded.append((entry, tensor))
        }
        return (
            loaded,
            StateDictLoadReport(loadedKeys: loaded.map(\.0.name), missingKeys: missing, unexpectedKeys: unexpected)
        )
    }
}

/// What ``ParameterStore/loadStateDict(_:into:stripping:strict:)`` loaded and which keys did not match: PyTorch's
/// `_IncompatibleKeys` (`missing_keys`, `unexpected_keys`) with the loaded names added.
public struct StateDictLoadReport: Equatable, Sendable, CustomStringConvertible {
    /// Parameters that received a tensor, as named in the store (`lstm.weight_ih_l0`), in the store's order.
    public let loadedKeys: [String]
    /// Parameters under the prefix that the file had no tensor for, as named in the store, in the store's order.
    public let missingKeys: [String]
    /// Keys of the file, as written there (before stripping), that name no parameter under the prefix, sorted.
    public let unexpectedKeys: [String]

    /// Creates a report (the loader makes them).
    public init(loadedKeys: [String], missingKeys: [String], unexpectedKeys: [String]) {
        self.loadedKeys = loadedKeys
        self.missingKeys = missingKeys
        self.unexpectedKeys = unexpectedKeys
    }

    /// Whether every parameter under the prefix was loaded and every key of the file was used.
    public var isComplete: Bool { missingKeys.isEmpty && unexpectedKeys.isEmpty }

    /// One line: the number loaded, then the missing and unexpected keys, if any.
    public var description: String {
        var text = "loaded \(loadedKeys.count) tensor(s)"
        if !missingKeys.isEmpty { text += "; missing \(missingKeys.joined(separator: ", "))" }
        if !unexpectedKeys.isEmpty { text += "; unexpected \(unexpectedKeys.joined(separator: ", "))" }
        return text
    }
}

/// Up to 8 names, then how many more.
private func nameList(_ names: [String]) -> String {
    names.count <= 8
        ? names.joined(separator: ", ") : names.prefix(8).joined(separator: ", ") + " and \(names.count - 8) more"
}
