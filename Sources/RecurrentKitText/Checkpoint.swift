import RecurrentKit
import Foundation

/// A trained language model as stored on disk: weights under PyTorch `state_dict` names in a safetensors file,
/// with the model configuration, the vocabulary and training progress as JSON strings in `__metadata__`.
public struct Checkpoint {
    /// `__metadata__["format"]` of files this version writes.
    public static let formatName = "recurrentkit.checkpoint.v1"

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

    /// Prefix of tensors that are not model weights; PyTorch loaders drop them before `load_state_dict`.
    public static let trainingTensorPrefix = "_trainer."

    /// Packages a model and its vocabulary (the vocabulary size must equal the model's V).
    public init(model: LanguageModel<Float>, vocabulary: Vocabulary, training: String = "",
                extraTensors: [String: Tensor<Float>] = [:], extraDoubleTensors: [String: Tensor<Double>] = [:]) throws {
        guard vocabulary.count == model.configuration.vocabularySize else {
            throw RecurrentKitError("vocabulary has \(vocabulary.count) tokens but the model expects \(model.configuration.vocabularySize)")
        }
        for name in Array(extraTensors.keys) + Array(extraDoubleTensors.keys) where !name.hasPrefix(Self.trainingTensorPrefix) {
            throw RecurrentKitError("training tensor \(name) must start with \(Self.trainingTensorPrefix)")
        }
        self.model = model
        self.vocabulary = vocabulary
        self.training = training
        self.extraTensors = extraTensors
        self.extraDoubleTensors = extraDoubleTensors
    }

    /// The safetensors bytes. Throws if any weight is NaN or infinite (such a model is never written).
    public func serialized() throws -> [UInt8] {
        guard model.parameters.valuesAreFinite() else {
            throw RecurrentKitError("refusing to save a checkpoint with NaN or infinite weights")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var file = SafetensorsFile(metadata: [
            "format": Self.formatName,
            "model": String(decoding: try encoder.encode(model.configuration), as: UTF8.self),
            "vocabulary": String(decoding: try encoder.encode(vocabulary), as: UTF8.self),
        ])
        if !training.isEmpty { file.metadata["training"] = training }
        for entry in model.parameters.entries { file.add(entry.name, try model.parameters.tensor(entry.name)) }
        for (name, tensor) in extraTensors { file.add(name, tensor, as: .f32) }
        for (name, tensor) in extraDoubleTensors { file.add(name, tensor, as: .f64) }
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
        if let format = file.metadata["format"], format != formatName {
            throw RecurrentKitError("format \(format) is not supported (expected \(formatName))")
        }
        guard let modelJSON = file.metadata["model"] else {
            throw RecurrentKitError("no model configuration in __metadata__[\"model\"] (was it written by RecurrentKit or Scripts/interchange?)")
        }
        guard let vocabularyJSON = file.metadata["vocabulary"] else { throw RecurrentKitError("no vocabulary in __metadata__[\"vocabulary\"]") }
        let decoder = JSONDecoder()
        let configuration: LanguageModelConfiguration
        do { configuration = try decoder.decode(LanguageModelConfiguration.self, from: Data(modelJSON.utf8)) }
        catch { throw RecurrentKitError("model configuration is not valid: \(shortDescription(error))") }
        let vocabulary: Vocabulary
        do { vocabulary = try decoder.decode(Vocabulary.self, from: Data(vocabularyJSON.utf8)) }
        catch let error as RecurrentKitError { throw error }
        catch { throw RecurrentKitError("vocabulary is not valid: \(shortDescription(error))") }
        try configuration.validate()
        guard vocabulary.count == configuration.vocabularySize else {
            throw RecurrentKitError("vocabulary has \(vocabulary.count) tokens but the model expects \(configuration.vocabularySize)")
        }
        // Refuse absurd sizes before allocating: the weights must be in the file, so its size bounds the model.
        let expectedCount = configuration.parameterLayout.entries.reduce(0) { $0 + $1.count }
        guard expectedCount <= bytes.count else {
            throw RecurrentKitError("model configuration needs \(expectedCount) weights but the file has only \(bytes.count) bytes")
        }
        let model = try LanguageModel<Float>(configuration)
        let expected = Set(model.parameters.entries.map(\.name))
        let present = Set(file.tensors.keys.filter { !$0.hasPrefix(trainingTensorPrefix) })
        if let missing = expected.subtracting(present).sorted().first { throw RecurrentKitError("tensor \(missing) is missing") }
        if let extra = present.subtracting(expected).sorted().first {
            throw RecurrentKitError("unexpected tensor \(extra) for a \(configuration.cell.rawValue) model with \(configuration.numLayers) layer(s)")
        }
        for entry in model.parameters.entries {
            let tensor: Tensor<Float> = try file.tensor(entry.name)
            guard tensor.shape == entry.shape else { throw RecurrentKitError.shapeMismatch(entry.name, expected: entry.shape, got: tensor.shape) }
            guard tensor.scalars.allSatisfy(\.isFinite) else { throw RecurrentKitError("tensor \(entry.name) holds NaN or infinite values") }
            try model.parameters.setTensor(entry.name, tensor)
        }
        var extra: [String: Tensor<Float>] = [:], extra64: [String: Tensor<Double>] = [:]
        for (name, entry) in file.tensors where name.hasPrefix(trainingTensorPrefix) {
            if entry.dtype == .f64 { extra64[name] = try file.tensor(name) } else { extra[name] = try file.tensor(name) }
        }
        return try Checkpoint(model: model, vocabulary: vocabulary, training: file.metadata["training"] ?? "",
                              extraTensors: extra, extraDoubleTensors: extra64)
    }
}

func shortDescription(_ error: Error) -> String {
    if let e = error as? RecurrentKitError { return e.message }
    if let e = error as? DecodingError {
        switch e {
        case .keyNotFound(let key, _): return "missing field \(key.stringValue)"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return c.codingPath.isEmpty ? c.debugDescription : "field \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
    return "\(error)"
}
