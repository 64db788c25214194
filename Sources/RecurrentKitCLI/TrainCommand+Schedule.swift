// The learning-rate schedule options of `rnn train` (--schedule, --decay-every, --decay-factor, --warmup,
// --min-lr-factor) applied to the options, and how the run's header line describes the schedule.

import RecurrentKit
import RecurrentKitText

extension TrainCommand {
    /// Sets `o.learningRateSchedule` from the schedule options; a preset's cosine (shakespeare-lstm's) takes
    /// --warmup and --min-lr-factor without --schedule.
    /// - Throws: when a step or cosine option is given without its schedule.
    func applySchedule(to o: inout TrainingOptions) throws {
        var presetCosine: (warmup: Int, minimumFactor: Double)? = nil
        if case let .cosine(w, f)? = o.learningRateSchedule { presetCosine = (w, f) }
        switch schedule {
        case .constant: o.learningRateSchedule = nil
        case .step: o.learningRateSchedule = .step(every: decayEvery ?? 1000, factor: decayFactor ?? 0.5)
        case .cosine: o.learningRateSchedule = .cosine(warmup: warmup ?? 0, minimumFactor: minLrFactor ?? 0.1)
        case nil:
            if let presetCosine {
                o.learningRateSchedule = .cosine(
                    warmup: warmup ?? presetCosine.warmup, minimumFactor: minLrFactor ?? presetCosine.minimumFactor)
            }
        }
        let stepOptions = decayEvery != nil || decayFactor != nil, cosineOptions = warmup != nil || minLrFactor != nil
        if stepOptions, schedule != .step {
            throw RecurrentKitError("--decay-every and --decay-factor need --schedule step")
        }
        if cosineOptions, schedule != .cosine, !(schedule == nil && presetCosine != nil) {
            throw RecurrentKitError("--warmup and --min-lr-factor need --schedule cosine")
        }
    }
}

/// " (cosine to 0.1x, over the updates the time limit allows)" and the like after the header's `lr=`, or "" for a
/// constant rate: what the learning rate does in this run.
func scheduleSummary(_ o: TrainingOptions) -> String {
    switch o.learningRateSchedule {
    case nil, .constant?: return ""
    case let .step(every, factor)?: return " (x\(factor) every \(every) updates)"
    case let .cosine(warmup, minimumFactor)?:
        return " (" + (warmup > 0 ? "warm-up \(warmup) updates, then " : "") + "cosine to \(minimumFactor)x over "
            + (o.timeLimitSeconds != nil ? "the updates the time limit allows)" : "\(o.epochs) epochs)")
    }
}
