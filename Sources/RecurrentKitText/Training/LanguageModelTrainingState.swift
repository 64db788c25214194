// The training state a language-model checkpoint holds (format versions 1 and 2), and its checks against what a
// run could have written.

import RecurrentKit
import Foundation

/// What a checkpoint's `training` metadata holds for ``LanguageModelTrainer/init(resumingFrom:)``.
struct LanguageModelTrainingState: Codable {
    var options: TrainingOptions
    var epoch: Int
    var doneInEpoch: Int
    var step: Int
    var skippedSteps: Int
    var optimizerSteps: Int
    var learningRate: Double
    var dataGenerator: [String]
    var epochStartGenerator: [String]
    var dropoutGenerator: [String]
    var lossSum: Double
    var tokenCount: Int
    var normSum: Double
    var epochSeconds: Double
    var elapsedSeconds: Double
    var history: [EpochReport]
    /// The kernels' instruction-set level the run used ("AVX-512", ...); absent in files of 0.1.
    var kernelLevel: String? = nil
    /// The matrix products' blocking the run used (`Kernels.Blocking.description`); absent before it was recorded.
    var kernelBlocking: String? = nil
    /// How the run's bfloat16 products were computed (`Kernels.bfloat16Products`); absent before it was recorded.
    var kernelBFloat16Products: String? = nil
    /// The fixed length of the learning-rate schedule; absent before it is fixed and in files of 0.1.
    var scheduledUpdates: Int? = nil
    /// Best validation loss so far, its update, measurements since, and whether early stopping ended the run
    /// (absent in files of 0.1).
    var bestValidationLoss: Double? = nil
    var bestValidationStep: Int? = nil
    var measurementsSinceBest: Int? = nil
    var stoppedEarly: Bool? = nil

    /// Every field within what a run with these options could have reached; a hostile or corrupted file gets an error
    /// naming the field, never a trap or a hang later.
    func validate(minibatchesPerEpoch: Int, tokensPerUpdate: Int) throws {
        func bad(_ field: String, _ value: Any, _ rule: String) -> RecurrentKitError {
            RecurrentKitError("checkpoint training state: \(field) \(value) \(rule)")
        }
        let perEpoch = minibatchesPerEpoch + 1  // an epoch may have one more for some offsets
        let (maximumUpdates, overflow) = options.epochs.multipliedReportingOverflow(by: perEpoch)
        guard !overflow else { throw bad("epochs", options.epochs, "is too large") }
        guard epoch >= 1, epoch <= options.epochs + 1 else {
            throw bad("epoch", epoch, "is outside 1...\(options.epochs + 1)")
        }
        guard doneInEpoch >= 0, doneInEpoch <= perEpoch else {
            throw bad("doneInEpoch", doneInEpoch, "is outside 0...\(perEpoch)")
        }
        guard step >= 0, step <= maximumUpdates else { throw bad("step", step, "is outside 0...\(maximumUpdates)") }
        guard skippedSteps >= 0, skippedSteps <= maximumUpdates else {
            throw bad("skippedSteps", skippedSteps, "is outside 0...\(maximumUpdates)")
        }
        guard optimizerSteps >= 0, optimizerSteps <= step else {
            throw bad("optimizerSteps", optimizerSteps, "is outside 0...\(step) (the updates done)")
        }
        guard learningRate.isFinite, learningRate >= 0 else {
            throw bad("learningRate", learningRate, "must be finite and >= 0")
        }
        if let s = scheduledUpdates, s < 1 || s > max(maximumUpdates, 1) {
            throw bad("scheduledUpdates", s, "is outside 1...\(max(maximumUpdates, 1))")
        }
        if let loss = bestValidationLoss, !(loss.isFinite && loss >= 0) {
            throw bad("bestValidationLoss", loss, "must be finite and >= 0")
        }
        if let s = bestValidationStep, s < 0 || s > step {
            throw bad("bestValidationStep", s, "is outside 0...\(step)")
        }
        if let n = measurementsSinceBest, n < 0 || n > maximumUpdates + options.epochs {
            throw bad("measurementsSinceBest", n, "is outside 0...\(maximumUpdates + options.epochs)")
        }
        let maximumTokens = perEpoch * tokensPerUpdate  // the sums of the current or (between epochs) the last epoch
        guard tokenCount >= 0, tokenCount <= maximumTokens else {
            throw bad("tokenCount", tokenCount, "is outside 0...\(maximumTokens)")
        }
        guard lossSum.isFinite, lossSum >= 0 else { throw bad("lossSum", lossSum, "must be finite and >= 0") }
        guard normSum.isFinite, normSum >= 0 else { throw bad("normSum", normSum, "must be finite and >= 0") }
        for (name, value) in [("epochSeconds", epochSeconds), ("elapsedSeconds", elapsedSeconds)] {
            guard value.isFinite, value >= 0, value <= TrainingOptions.maximumSeconds else {
                throw bad(
                    name, value, "must be a finite duration in [0, \(Int(TrainingOptions.maximumSeconds))] seconds")
            }
        }
        if let level = kernelLevel, !Kernels.Level.allCases.contains(where: { $0.name == level }) {
            throw bad(
                "kernelLevel", "'\(level.prefix(40))'",
                "is not a kernel level (\(Kernels.Level.allCases.map(\.name).joined(separator: ", ")))")
        }
        if let path = kernelBFloat16Products, !Kernels.bfloat16ProductPaths.contains(path) {
            throw bad(
                "kernelBFloat16Products", "'\(path.prefix(40))'",
                "is not one of \(Kernels.bfloat16ProductPaths.sorted())")
        }
        if let blocking = kernelBlocking, !Kernels.Blocking.isDescription(blocking) {
            throw bad(
                "kernelBlocking", "'\(blocking.prefix(40))'", "is not a blocking (such as '\(Kernels.blocking)')")
        }
        guard history.count <= epoch else {
            throw bad("history", "of \(history.count) epochs", "is longer than the epochs done")
        }
        for (i, report) in history.enumerated() {
            guard report.epoch >= 1, report.epoch <= options.epochs, report.step >= 0, report.step <= maximumUpdates,
                report.elapsedSeconds.isFinite, report.elapsedSeconds >= 0,
                report.elapsedSeconds <= TrainingOptions.maximumSeconds,
                !report.tokensPerSecond.isNaN, report.tokensPerSecond >= 0
            else {
                throw bad("history[\(i)]", "(epoch \(report.epoch))", "has a counter or duration out of range")
            }
        }
        try validateCounters(minibatchesPerEpoch: minibatchesPerEpoch, tokensPerUpdate: tokensPerUpdate)
    }

    /// The counters against each other, as
    /// ``LanguageModelTrainer/train(progress:shouldStop:afterStep:afterValidation:)`` advances them: every minibatch of
    /// an epoch (``LanguageModelTrainer/minibatchesPerEpoch`` m, or m + 1) adds 1 to `doneInEpoch` and either applies
    /// an update (`step` and the optimizer's count + 1, `tokenCount` + T x B, the loss and norm added to the sums) or
    /// is skipped (`skippedSteps` + 1, only with `skipNonFinite`); the epoch's end appends one ``EpochReport`` (its
    /// number, `step`), then `epoch` + 1 and `doneInEpoch` = 0, and the next epoch's first minibatch zeroes the sums.
    /// Checked on resume: a file no run could write is refused, naming the field.
    private func validateCounters(minibatchesPerEpoch m: Int, tokensPerUpdate: Int) throws {
        func bad(_ field: String, _ value: Any, _ rule: String) -> RecurrentKitError {
            RecurrentKitError("checkpoint training state: \(field) \(value) \(rule)")
        }
        guard optimizerSteps == step else {
            throw bad(
                "optimizerSteps", optimizerSteps,
                "differs from step \(step): the optimizer steps once per update applied")
        }
        guard skippedSteps == 0 || options.skipNonFinite else {
            throw bad(
                "skippedSteps", skippedSteps, "is not 0, but skipNonFinite is off (no update can have been skipped)")
        }
        guard epoch <= options.epochs || doneInEpoch == 0 else {
            throw bad("doneInEpoch", doneInEpoch, "is not 0 after the last epoch (\(options.epochs)) ended")
        }
        guard tokenCount % tokensPerUpdate == 0 else {
            throw bad(
                "tokenCount", tokenCount,
                "is not a multiple of the \(tokensPerUpdate) tokens of an update (steps x batch)")
        }
        let counted = tokenCount / tokensPerUpdate  // the updates the epoch's sums hold
        guard counted > 0 || (lossSum == 0 && normSum == 0) else {
            throw bad(
                lossSum != 0 ? "lossSum" : "normSum", lossSum != 0 ? lossSum : normSum,
                "is not 0, but tokenCount 0 counts no update")
        }
        // One report per finished epoch; one more (the current epoch's, at `step`) when an error came after the epoch's
        // report and before its number advanced (a library caller may still save that trainer).
        let finished = epoch - 1
        guard
            history.count == finished
                || (history.count == epoch && doneInEpoch > 0 && history.last?.epoch == epoch
                    && history.last?.step == step)
        else {
            throw bad("history", "of \(history.count) epochs", "does not match epoch \(epoch) (\(finished) finished)")
        }
        var previousStep = 0
        for (i, report) in history.enumerated() {
            let updates = report.step - previousStep
            guard report.epoch == i + 1, updates >= 0, updates <= m + 1, updates >= m || skippedSteps > 0 else {
                throw bad(
                    "history[\(i)]", "(epoch \(report.epoch), step \(report.step))",
                    "is not epoch \(i + 1) of \(m) or \(m + 1) updates after step \(previousStep)")
            }
            previousStep = report.step
        }
        // Every minibatch processed is an update or a skip.
        let processed = step + skippedSteps
        let lowest = finished * m + doneInEpoch, highest = finished * (m + 1) + doneInEpoch
        guard processed >= lowest, processed <= highest else {
            throw bad(
                "step", step,
                "plus skippedSteps \(skippedSteps) is outside \(lowest)...\(highest), the minibatches of \(finished) "
                    + "finished epoch(s) of \(m) or \(m + 1) and \(doneInEpoch) of epoch \(epoch) (is this the text "
                    + "the checkpoint was trained on?)"
            )
        }
        let atEpochStart = history.prefix(finished).last?.step ?? 0  // `step` when this epoch began
        if doneInEpoch > 0 {
            guard step - atEpochStart == counted else {
                throw bad(
                    "tokenCount", tokenCount,
                    "counts \(counted) update(s), but epoch \(epoch) has applied \(step - atEpochStart) (step \(step), "
                        + "\(atEpochStart) when it began)"
                )
            }
            guard counted <= doneInEpoch, doneInEpoch - counted <= skippedSteps else {
                throw bad(
                    "doneInEpoch", doneInEpoch,
                    "is not the epoch's \(counted) update(s) plus at most \(skippedSteps) skipped")
            }
        } else {
            // Between epochs: nothing applied since the last report; the sums are the last epoch's (zero after an error
            // in the next epoch's first update, which zeroes them first).
            guard step == atEpochStart else {
                throw bad(
                    "step", step,
                    "differs from \(atEpochStart), the step of the last finished epoch, with no minibatch done in "
                        + "epoch \(epoch)"
                )
            }
            let lastEpochUpdates = finished > 0 ? atEpochStart - (history.prefix(finished - 1).last?.step ?? 0) : 0
            guard counted == 0 || counted == lastEpochUpdates else {
                throw bad(
                    "tokenCount", tokenCount,
                    "counts \(counted) update(s), but the last finished epoch had \(lastEpochUpdates)")
            }
        }
        if bestValidationLoss == nil, let s = bestValidationStep, s != 0 {
            throw bad("bestValidationStep", s, "is set, but there is no bestValidationLoss")
        }
        if stoppedEarly == true {
            guard let patience = options.earlyStopPatience, (measurementsSinceBest ?? 0) >= patience else {
                throw bad(
                    "stoppedEarly", true,
                    "but earlyStopPatience \(options.earlyStopPatience.map(String.init) ?? "nil") is not used up "
                        + "(measurementsSinceBest \(measurementsSinceBest ?? 0))"
                )
            }
        }
        if let s = scheduledUpdates,
            options.learningRateSchedule.map({ if case .cosine = $0 { return false } else { return true } }) ?? true
        {
            throw bad("scheduledUpdates", s, "is set, but only a cosine learning-rate schedule has a length")
        }
    }
}
