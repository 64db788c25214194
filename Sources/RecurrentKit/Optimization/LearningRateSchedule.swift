import RealModule

/// How the learning rate changes with the number of updates, a function of the update count only (so a resumed or a
/// distributed run computes the same rate): constant, step decay (PyTorch `StepLR`, char-rnn's `learning_rate_decay`),
/// or linear warm-up then cosine decay (nanoGPT's `get_lr`).
///
/// Set the optimizer's rate before each update: `optimizer.learningRate = schedule.learningRate(base: lr, update: step,
/// totalUpdates: total)`, where `step` counts the updates already applied.
public enum LearningRateSchedule: Codable, Equatable, Sendable {
    /// The base rate at every update.
    case constant
    /// base x `factor`^(update / `every`) (integer division): PyTorch `StepLR(step_size: every, gamma: factor)`.
    case step(every: Int, factor: Double)
    /// nanoGPT: base x (u + 1) / (`warmup` + 1) for the first `warmup` updates, then a cosine from base down to
    /// base x `minimumFactor` at `totalUpdates`, and base x `minimumFactor` after it.
    case cosine(warmup: Int, minimumFactor: Double)

    /// Throws naming the first invalid value.
    public func validate() throws {
        switch self {
        case .constant: break
        case .step(let every, let factor):
            guard every >= 1 else {
                throw RecurrentKitError.invalidArgument("decay every", every, "must be at least 1 update")
            }
            guard factor.isFinite, factor > 0, factor <= 1 else {
                throw RecurrentKitError.invalidArgument("decay factor", factor, "must be in (0, 1]")
            }
        case .cosine(let warmup, let minimumFactor):
            guard warmup >= 0, warmup <= 1 << 40 else {
                throw RecurrentKitError.invalidArgument("warmup", warmup, "must be in 0...2^40 updates")
            }
            guard minimumFactor.isFinite, minimumFactor >= 0, minimumFactor <= 1 else {
                throw RecurrentKitError.invalidArgument(
                    "minimum learning-rate factor", minimumFactor, "must be in [0, 1]")
            }
        }
    }

    /// The rate for the update after `update` updates (0 for the first).
    /// - Parameters:
    ///   - base: the schedule's peak rate.
    ///   - update: updates applied so far, >= 0.
    ///   - totalUpdates: where the cosine reaches its minimum (ignored by the other schedules).
    public func learningRate(base: Double, update: Int, totalUpdates: Int) -> Double {
        let u = max(update, 0)
        switch self {
        case .constant:
            return base
        case .step(let every, let factor):
            return base * Double.pow(factor, Double(u / max(every, 1)))
        case .cosine(let warmup, let minimumFactor):
            if u < warmup { return base * Double(u + 1) / Double(warmup + 1) }
            let minimum = base * minimumFactor
            if u > totalUpdates || totalUpdates <= warmup { return minimum }
            let ratio = Double(u - warmup) / Double(totalUpdates - warmup)
            return minimum + 0.5 * (1 + Double.cos(Double.pi * ratio)) * (base - minimum)
        }
    }
}
