import RecurrentKit
import Foundation

/// A trained language model as stored on disk, in RecurrentKit's one file format (`CheckpointFormat`): weights under
/// PyTorch `state_dict` names, training state under `_trainer.`, and in `__metadata__` the model configuration
/// (`model`), the vocabulary and the training progress as JSON strings.
public struct Checkpoint {
    /// The format version this library writes, `__metadata__["format"]` = `recurrentkit.checkpoint.v<version>`
    /// (`CheckpointFormat/version`). Version 3 is the one format of every RecurrentKit file (written through
    /// `ParameterStore/checkpointFile(metadata:optimizer:)`; it adds `optimizer.stepCount`); version 2 added
    /// `__metadata__["library_version"]` (`RecurrentKitVersion.string` of the writer) and
    /// `__metadata__["kernel_level"]` (the kernels' instruction-set level when it was saved: a resume is exact on the
    /// same level); version 1 files (RecurrentKit 0.1, `Scripts/interchange`) are read as before.
    public static let formatVersion = CheckpointFormat.version
    /// Oldest format version this library reads.
    public static let oldestReadableFormatVersion = CheckpointFormat.oldestReadableVersion
    /// `__metadata__["format"]` of files this version writes.
    public static let formatName = CheckpointFormat.name
    /// Format version of the file this checkpoint was parsed from (``formatVersion`` for one made in memory; 1 for a
    /// file without a `format` entry, such as a PyTorch export).
    public private(set) var fileFormatVersion = Checkpoint.formatVersion
    /// The library version that wrote the file (`__metadata__["library_version"]`), nil before format version 2.
    public private(set) var writtenByVersion: String? = nil
    /// The kernels' level when the file was written (`__metadata__["kernel_level"]`, a `Kernels.Level` name), nil
    /// before format version 2. Resuming is bit-exact on the same level; another level continues correctly but its
    /// sums round differently.
    public private(set) var savedKernelLevel: Kernels.Level? = nil
    /// The matrix products' blocking when the file was written (`__metadata__["kernel_blocking"]`, a
    /// `Kernels.Blocking.description`), nil in files written before it was recorded. On the same level, resuming is
    /// bit-exact where `Kernels.blocking.sumsLike(_:)` holds.
    public private(set) var savedKernelBlocking: String? = nil

    /// The model (its parameters are the checkpoint's weights).
    public let model: LanguageModel<Float>
    /// Token <-> index mapping the model was trained with.
    public let vocabulary: Vocabulary
    /// Free-form training information (epoch, step, options), JSON; empty when absent.
    public let training: String
    /// Training-state tensors stored as F32 (names start with `_trainer.`), e.g. the carried hidden state.
    public let extraTensors: [String: Tensor<Float>]
    /// Training-state tensors stored as F64 (names start with `_trainer.`), e.g. optimizer moments.
    public let extraDoubleTensors: [String: Tensor<Double>]
    /// The optimizer's step count (`__metadata__["optimizer.stepCount"]`), nil before format version 3 and for a
    /// checkpoint without optimizer state.
    public let optimizerStepCount: Int?

    /// Prefix of tensors that are not model weights; PyTorch loaders drop them before `load_state_dict`.
    public static let trainingTensorPrefix = "_trainer."

    /// Packages a model and its vocabulary (the vocabulary size must equal the model's V).
    public init(
        model: LanguageModel<Float>, vocabulary: Vocabulary, training: String = "",
        extraTensors: [String: Tensor<Float>] = [:], extraDoubleTensors: [String: Tensor<Double>] = [:],
        optimizerStepCount: Int? = nil
    ) throws {
        if let steps = optimizerStepCount, steps < 0 {
            throw RecurrentKitError.invalidArgument("optimizerStepCount", steps, "must be >= 0")
        }
        guard vocabulary.count == model.configuration.vocabularySize else {
            throw RecurrentKitError(
                "vocabulary has \(vocabulary.count) tokens but the model expects \(model.configuration.vocabularySize)")
        }
        for name in Array(extraTensors.keys) + Array(extraDoubleTensors.keys)
        where !name.hasPrefix(Self.trainingTensorPrefix) {
            throw RecurrentKitError("training tensor \(name) must start with \(Self.trainingTensorPrefix)")
        }
        self.model = model
        self.vocabulary = vocabulary
        self.training = training
        self.extraTensors = extraTensors
        self.extraDoubleTensors = extraDoubleTensors
        self.optimizerStepCount = optimizerStepCount
    }

    /// The safetensors bytes. Throws if any weight is NaN or infinite (such a model is never written).
    public func serialized() throws -> [UInt8] {
        guard model.parameters.valuesAreFinite() else {
            throw RecurrentKitError("refusing to save a checkpoint with NaN or infinite weights")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = [
            "model": String(decoding: try encoder.encode(model.configuration), as: UTF8.self),
            "vocabulary": vocabulary.checkpointJSON,  // pure ASCII: every scalar reads back, U+FEFF included
        ]
        if !training.isEmpty { metadata["training"] = training }
        // The one format: the parameter file (weights, format, writer, kernel level), then the training tensors.
        var file = try model.parameters.checkpointFile(metadata: metadata)
        if let steps = optimizerStepCount { file.metadata["optimizer.stepCount"] = String(steps) }
        for (name, tensor) in extraTensors { try file.add(name, tensor, as: .f32) }
        for (name, tensor) in extraDoubleTensors { try file.add(name, tensor, as: .f64) }
        return try file.serialized()
    }

    /// Writes the checkpoint atomically (temporary file, fsync, rename): `path` always holds a complete file.
    public func save(to path: String) throws {
        try writeFileAtomically(try serialized(), to: path)
    }

    /// Loads and validates a checkpoint: well-formed file, configuration and vocabulary present and valid,
    /// exactly the expected tensor names with the expected shapes, finite values.
    public static func load(from path: String) throws -> Checkpoint {
        let bytes = try readFileBytes(path, what: "checkpoint")
        do {
            return try parse(bytes)
        } catch let error as RecurrentKitError {
            throw RecurrentKitError("checkpoint \(path): \(error.message)")
        }
    }

    /// Parses checkpoint bytes (see ``load(from:)``).
    public static func parse(_ bytes: [UInt8]) throws -> Checkpoint {
        let file = try SafetensorsFile(bytes: bytes)
        let version = try CheckpointFormat.version(of: file.metadata) ?? 1
        guard version >= 1 else {
            throw RecurrentKitError(
                "format \(CheckpointFormat.legacyParameterFileName) is not a RecurrentKit checkpoint of a language "
                    + "model (a parameter file of RecurrentKit 0.2: read it with ParameterStore.load(from:))"
            )
        }
        var steps: Int? = nil
        if version >= 3, let text = file.metadata["optimizer.stepCount"] {
            guard let n = Int(text), n >= 0 else {
                throw RecurrentKitError("__metadata__[\"optimizer.stepCount\"] is not a step count")
            }
            steps = n
        }
        var level: Kernels.Level? = nil, writer: String? = nil
        if version >= 2 {
            guard let name = file.metadata["kernel_level"],
                let l = Kernels.Level.allCases.first(where: { $0.name == name })
            else {
                throw RecurrentKitError(
                    "__metadata__[\"kernel_level\"] is missing or not a kernel level "
                        + "(\(Kernels.Level.allCases.map(\.name).joined(separator: ", ")))"
                )
            }
            guard let v = file.metadata["library_version"], !v.isEmpty, v.count <= 64,
                v.allSatisfy({ $0.isASCII && !$0.isWhitespace })
            else {
                throw RecurrentKitError("__metadata__[\"library_version\"] is missing or not a version")
            }
            level = l
            writer = v
        }
        let blocking = file.metadata["kernel_blocking"]
        if let blocking, !Kernels.Blocking.isDescription(blocking) {
            throw RecurrentKitError(
                "__metadata__[\"kernel_blocking\"] is not a blocking (such as '\(Kernels.blocking)')")
        }
        guard let modelJSON = file.metadata["model"] else {
            throw RecurrentKitError(
                "no model configuration in __metadata__[\"model\"] (was it written by RecurrentKit or "
                    + "Scripts/interchange?)"
            )
        }
        guard let vocabularyJSON = storedVocabularyJSON(file, bytes: bytes) else {
            throw RecurrentKitError("no vocabulary in __metadata__[\"vocabulary\"]")
        }
        let decoder = JSONDecoder()
        let configuration: LanguageModelConfiguration
        do { configuration = try decoder.decode(LanguageModelConfiguration.self, from: Data(modelJSON.utf8)) } catch {
            throw RecurrentKitError("model configuration is not valid: \(shortDescription(error))")
        }
        let vocabulary: Vocabulary
        do { vocabulary = try decoder.decode(Vocabulary.self, from: Data(vocabularyJSON.utf8)) } catch let error
            as RecurrentKitError
        { throw error } catch { throw RecurrentKitError("vocabulary is not valid: \(shortDescription(error))") }
        try configuration.validate()
        guard vocabulary.count == configuration.vocabularySize else {
            throw RecurrentKitError(
                "vocabulary has \(vocabulary.count) tokens but the model expects \(configuration.vocabularySize)")
        }
        // Refuse absurd sizes before allocating: the weights must be in the file, so its size bounds the model.
        let expectedCount = configuration.parameterLayout.entries.reduce(0) { $0 + $1.count }
        guard expectedCount <= bytes.count else {
            throw RecurrentKitError(
                "model configuration needs \(expectedCount) weights but the file has only \(bytes.count) bytes")
        }
        let model = try LanguageModel<Float>(configuration)
        let expected = Set(model.parameters.entries.map(\.name))
        let present = Set(file.tensors.keys.filter { !$0.hasPrefix(trainingTensorPrefix) })
        if let missing = expected.subtracting(present).sorted().first {
            throw RecurrentKitError("tensor \(missing) is missing")
        }
        if let extra = present.subtracting(expected).sorted().first {
            throw RecurrentKitError(
                "unexpected tensor \(extra) for a \(configuration.cell.rawValue) model with "
                    + "\(configuration.numLayers) layer(s)"
            )
        }
        for entry in model.parameters.entries {
            let tensor: Tensor<Float> = try file.tensor(entry.name)
            guard tensor.shape == entry.shape else {
                throw RecurrentKitError.shapeMismatch(entry.name, expected: entry.shape, got: tensor.shape)
            }
            guard tensor.scalars.allSatisfy(\.isFinite) else {
                throw RecurrentKitError("tensor \(entry.name) holds NaN or infinite values")
            }
            try model.parameters.setTensor(entry.name, tensor)
        }
        var extra: [String: Tensor<Float>] = [:], extra64: [String: Tensor<Double>] = [:]
        for (name, entry) in file.tensors where name.hasPrefix(trainingTensorPrefix) {
            if entry.dtype == .f64 {
                extra64[name] = try file.tensor(name)
            } else {
                extra[name] = try file.tensor(name)
            }
        }
        try checkTrainingTensors(extra, extra64)
        var checkpoint = try Checkpoint(
            model: model, vocabulary: vocabulary, training: file.metadata["training"] ?? "",
            extraTensors: extra, extraDoubleTensors: extra64, optimizerStepCount: steps)
        checkpoint.fileFormatVersion = version
        checkpoint.writtenByVersion = writer
        checkpoint.savedKernelLevel = level
        checkpoint.savedKernelBlocking = blocking
        return checkpoint
    }
}

extension Checkpoint {
    /// Optimizer buffers that hold running means of squared gradients (Adam's `exp_avg_sq`, RMSprop's `square_avg`):
    /// a negative value in one cannot come from training.
    static let secondMomentTensors: Set<String> = ["_trainer.optimizer.exp_avg_sq", "_trainer.optimizer.square_avg"]

    /// Throws, naming the tensor, unless the training state is one a run can write and resume: the carried state and
    /// optimizer buffers finite, second moments (a mean of squares) not negative, and the F64 optimizer buffers within
    /// Float's range (a Float model's optimizer computes them in Float: a larger value never comes from training, and
    /// it would turn infinite when read back, so a resumed run would save a state that no longer loads).
    static func checkTrainingTensors(_ float: [String: Tensor<Float>], _ double: [String: Tensor<Double>]) throws {
        for name in float.keys.sorted() where !float[name]!.scalars.allSatisfy(\.isFinite) {
            throw RecurrentKitError("tensor \(name) holds NaN or infinite values")
        }
        let largest = Double(Float.greatestFiniteMagnitude)
        for name in double.keys.sorted() {
            let values = double[name]!.scalars
            guard values.allSatisfy(\.isFinite) else {
                throw RecurrentKitError("tensor \(name) holds NaN or infinite values")
            }
            if let i = values.firstIndex(where: { abs($0) > largest }) {
                throw RecurrentKitError(
                    "tensor \(name) holds \(values[i]) at index \(i), beyond Float's range "
                        + "(\(Float.greatestFiniteMagnitude)); the optimizer state of a Float model never reaches it"
                )
            }
            if secondMomentTensors.contains(name), let i = values.firstIndex(where: { $0 < 0 }) {
                throw RecurrentKitError(
                    "tensor \(name) holds a negative value (\(values[i]) at index \(i)); a second moment is a mean of "
                        + "squares, never negative"
                )
            }
        }
    }

    /// `__metadata__["vocabulary"]` scalar for scalar, nil when absent.
    ///
    /// `SafetensorsFile` reads the header with Foundation's `JSONSerialization`, which drops a U+FEFF that begins a
    /// JSON string or follows an escape sequence (it makes each unescaped run with `String(bytes:encoding:)`, which
    /// strips a byte-order mark). Files written before the vocabulary was stored in ASCII
    /// (``Vocabulary/checkpointJSON``) hold such a U+FEFF unescaped, as `\"\u{FEFF}`: when the header has the bytes EF
    /// BB BF, the value is read again with `JSONDecoder`, which keeps every scalar, and used when it differs from the
    /// first reading by U+FEFF alone.
    static func storedVocabularyJSON(_ file: SafetensorsFile, bytes: [UInt8]) -> String? {
        guard let parsed = file.metadata["vocabulary"], bytes.count >= 8 else { return file.metadata["vocabulary"] }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length <= UInt64(bytes.count - 8) else { return parsed }
        let header = bytes[8..<(8 + Int(length))]
        var hasByteOrderMark = false
        var i = header.startIndex
        while i + 2 < header.endIndex {
            if header[i] == 0xEF && header[i + 1] == 0xBB && header[i + 2] == 0xBF { hasByteOrderMark = true; break }
            i += 1
        }
        guard hasByteOrderMark else { return parsed }
        struct Header: Decodable {
            struct Metadata: Decodable { let vocabulary: String? }
            let metadata: Metadata?
            enum CodingKeys: String, CodingKey { case metadata = "__metadata__" }
        }
        guard let exact = (try? JSONDecoder().decode(Header.self, from: Data(header)))?.metadata?.vocabulary else {
            return parsed
        }
        let mark: Unicode.Scalar = "\u{FEFF}"
        guard
            exact.unicodeScalars.lazy.filter({ $0 != mark }).elementsEqual(
                parsed.unicodeScalars.lazy.filter { $0 != mark })
        else {
            return parsed
        }
        return exact
    }
}

func shortDescription(_ error: Error) -> String {
    if let e = error as? RecurrentKitError { return e.message }
    if let e = error as? DecodingError {
        switch e {
        case .keyNotFound(let key, _): return "missing field \(key.stringValue)"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return c.codingPath.isEmpty
                ? c.debugDescription
                : "field \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
    return "\(error)"
}
