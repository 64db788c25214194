// The one file format of RecurrentKit, designed once for every model: what a parameter file, a Trainer's checkpoint
// and a language model's checkpoint hold, and how earlier formats are recognized.

import Foundation

/// The file format every RecurrentKit writer uses (version 3): a safetensors file that PyTorch's `safetensors`
/// reads by name.
///
/// Tensors:
/// - every parameter under its PyTorch `state_dict` name, in the store's precision (F32 or F64);
/// - training state under `_trainer.` (PyTorch loaders drop these names): the optimizer's buffers
///   `_trainer.optimizer.<buffer>` (F64, one value per parameter, e.g. Adam's `exp_avg` and `exp_avg_sq`), and a
///   state carried between batches `_trainer.state.h` and `_trainer.state.c` (F32, (L, B, H)).
///
/// `__metadata__` strings:
/// - `format` = `recurrentkit.checkpoint.v3`, `library_version` (the writer's `RecurrentKitVersion`),
///   `kernel_level` (the kernels' level when saved: a resume is bit-exact on the same level), `kernel_blocking` (the
///   matrix products' blocking, ``Kernels/Blocking/description``, absent in files written before it: a resume is
///   bit-exact where ``Kernels/Blocking/sumsLike(_:)`` holds too);
/// - `optimizer.stepCount`, with optimizer buffers;
/// - `model`: a description of the model (a language model's configuration as JSON; your own string otherwise);
/// - `vocabulary`: a language model's vocabulary as JSON;
/// - `training`: the trainer's state as JSON (a ``TrainerState``, or a language-model trainer's state);
/// - your own keys.
///
/// Written by ``ParameterStore/checkpointFile(metadata:optimizer:)`` (and so by
/// ``ParameterStore/save(to:metadata:optimizer:)``, ``Trainer/save(to:metadata:)`` and `RecurrentKitText`'s
/// `Checkpoint`). Read: ``ParameterStore/load(from:optimizer:)`` takes the weights (and optimizer state) of every
/// version and of a plain PyTorch `state_dict`; ``Trainer/restore(from:)`` continues a run; `Checkpoint` loads a
/// language model. Earlier versions: `recurrentkit.checkpoint.v1` and `v2` (language models of RecurrentKit 0.1 and
/// 0.2, optimizer step count in their training state) and `recurrentkit.parameters.v1` (parameter files of 0.2,
/// optimizer buffers `_optimizer.<buffer>`).
public enum CheckpointFormat {
    /// The version this library writes.
    public static let version = 3
    /// The oldest `recurrentkit.checkpoint` version this library reads.
    public static let oldestReadableVersion = 1
    /// `recurrentkit.checkpoint.v` followed by the version.
    public static let namePrefix = "recurrentkit.checkpoint.v"
    /// `__metadata__["format"]` of the files this library writes.
    public static let name = namePrefix + String(version)
    /// The format name of the parameter files RecurrentKit 0.2 wrote (read as a version-0 checkpoint).
    public static let legacyParameterFileName = "recurrentkit.parameters.v1"
    /// Prefix of the tensors that are not model weights.
    public static let trainingTensorPrefix = "_trainer."
    /// Prefix of the optimizer's buffers.
    public static let optimizerTensorPrefix = "_trainer.optimizer."
    /// Prefix of the optimizer's buffers in `recurrentkit.parameters.v1` files.
    public static let legacyOptimizerTensorPrefix = "_optimizer."
    /// Metadata keys every writer sets; your own metadata may not use them (nor any key starting with `optimizer.`).
    public static let reservedKeys: Set<String> = ["format", "library_version", "kernel_level", "kernel_blocking"]

    /// The format version of a file's `__metadata__["format"]`: 1, 2 or 3 for `recurrentkit.checkpoint.vN`, 0 for
    /// `recurrentkit.parameters.v1`, nil without a `format` entry (a PyTorch `state_dict`, or a file of
    /// `Scripts/interchange` before it wrote one).
    /// - Throws: one line for another format name, or a version newer than this library reads.
    public static func version(of metadata: [String: String]) throws -> Int? {
        guard let format = metadata["format"] else { return nil }
        if format == legacyParameterFileName { return 0 }
        guard format.hasPrefix(namePrefix), let v = Int(format.dropFirst(namePrefix.count)), v >= oldestReadableVersion
        else {
            throw RecurrentKitError("format \(format.prefix(60)) is not a RecurrentKit checkpoint (expected \(name))")
        }
        guard v <= version else {
            throw RecurrentKitError(
                "format version \(v) was written by a newer RecurrentKit; this one (\(RecurrentKitVersion.string)) "
                    + "reads versions \(oldestReadableVersion) to \(version)"
            )
        }
        return v
    }

    /// The optimizer's step count a file records: `optimizer.stepCount` (versions 0 and 3), or `optimizerSteps` of
    /// the training state (language-model checkpoints of versions 1 and 2); nil when neither is there.
    static func optimizerStepCount(_ metadata: [String: String]) -> Int? {
        if let text = metadata["optimizer.stepCount"] { return Int(text) }
        guard let training = metadata["training"],
            let object = try? JSONSerialization.jsonObject(with: Data(training.utf8)),
            let steps = (object as? [String: Any])?["optimizerSteps"] as? Int
        else { return nil }
        return steps
    }
}
