import RecurrentKit

/// One sequence found by ``TextGenerator/beamSearch(model:prefix:length:beamWidth:lengthPenalty:stop:)``.
public struct BeamHypothesis: Equatable, Sendable {
    /// The prefix followed by the new tokens.
    public var tokens: [Int]
    /// log P(new tokens | prefix) under the model, natural log.
    public var logProbability: Double
    /// The ranking score: `logProbability` / L^lengthPenalty with L the number of new tokens (d2l 9.8.4).
    public var score: Double
}

extension TextGenerator {
    /// Beam search (d2l 9.8): keeps the `beamWidth` most likely partial continuations after every step, each extended
    /// by every token, and returns the finished ones best first. With `beamWidth` 1 it is greedy decoding; with
    /// `beamWidth` >= V^(length-1) it finds the exact most likely continuations.
    /// - Parameters:
    ///   - model: the language model (causal).
    ///   - prefix: at least one token, read first.
    ///   - length: new tokens per hypothesis (1...10,000).
    ///   - beamWidth: hypotheses kept per step (1...1,000).
    ///   - lengthPenalty: α in the score log P / L^α (d2l uses 0.75); only matters when `stop` ends some early.
    ///   - stop: when non-empty, a hypothesis whose new tokens end with it is finished there.
    /// - Returns: up to `beamWidth` hypotheses, best score first (ties: lower token sequence first).
    public static func beamSearch(
        model: LanguageModel<Float>, prefix: [Int], length: Int, beamWidth: Int,
        lengthPenalty: Double = 0.75, stop: [Int] = []
    ) throws -> [BeamHypothesis] {
        try model.configuration.requireCausal(for: "beam search")
        guard !prefix.isEmpty else { throw RecurrentKitError("prefix must contain at least one token") }
        guard length >= 1, length <= 10_000 else {
            throw RecurrentKitError.invalidArgument("length", length, "must be in 1...10000")
        }
        guard beamWidth >= 1, beamWidth <= 1000 else {
            throw RecurrentKitError.invalidArgument("beam", beamWidth, "must be in 1...1000")
        }
        guard lengthPenalty.isFinite, lengthPenalty >= 0 else {
            throw RecurrentKitError.invalidArgument("length penalty", lengthPenalty, "must be >= 0")
        }
        let V = model.configuration.vocabularySize
        for (i, t) in (prefix + stop).enumerated() where t < 0 || t >= V {
            throw RecurrentKitError("token \(t) at position \(i) is outside the vocabulary [0, \(V))")
        }
        // Read the prefix once (batch 1); its last logits and final state start every hypothesis.
        var logits = try model.logits(inputs: prefix, steps: prefix.count, batch: 1)
        var state = try model.finalState()
        var rows = [0]  // row of `logits` (its last step) and of `state` for each live hypothesis
        var live: [(tokens: [Int], logP: Double)] = [(prefix, 0)]
        var finished: [BeamHypothesis] = []
        func score(_ logP: Double, _ newTokens: Int) -> Double {
            logP / Double.pow(Double(max(newTokens, 1)), lengthPenalty)
        }
        for produced in 1...length {
            let T = produced == 1 ? prefix.count : 1
            // Every extension of every live hypothesis, by log-probability.
            var candidates: [(parent: Int, token: Int, logP: Double)] = []
            candidates.reserveCapacity(live.count * V)
            for (h, hypothesis) in live.enumerated() {
                let base = ((T - 1) * (produced == 1 ? 1 : live.count) + rows[h]) * V
                var maximum = -Double.infinity
                for v in 0..<V { maximum = max(maximum, Double(logits.scalars[base + v])) }
                var sum = 0.0
                for v in 0..<V { sum += Double.exp(Double(logits.scalars[base + v]) - maximum) }
                let logZ = maximum + Double.log(sum)
                for v in 0..<V { candidates.append((h, v, hypothesis.logP + Double(logits.scalars[base + v]) - logZ)) }
            }
            candidates.sort {
                $0.logP > $1.logP
                    || ($0.logP == $1.logP
                        && (live[$0.parent].tokens + [$0.token]).lexicographicallyPrecedes(
                            live[$1.parent].tokens + [$1.token]))
            }
            // The best `beamWidth` extensions; those that end with `stop`, and all of them at the last step, are
            // finished.
            var next: [(tokens: [Int], logP: Double)] = [], parents: [Int] = []
            for c in candidates.prefix(beamWidth) {
                let tokens = live[c.parent].tokens + [c.token]
                let stopped = !stop.isEmpty && produced >= stop.count && tokens.suffix(stop.count).elementsEqual(stop)
                if stopped || produced == length {
                    finished.append(
                        BeamHypothesis(tokens: tokens, logProbability: c.logP, score: score(c.logP, produced)))
                } else {
                    next.append((tokens, c.logP))
                    parents.append(c.parent)
                }
            }
            guard produced < length, !next.isEmpty else { break }
            // The kept hypotheses' states, gathered from their parents' rows; one step for all of them at once.
            // h width (P with a projection), c width
            let L = state.h.shape[0], R = state.h.shape[2], H = model.configuration.hiddenSize
            var h = Tensor<Float>(zeros: [L, next.count, R]),
                c: Tensor<Float>? = state.c.map { _ in Tensor(zeros: [L, next.count, H]) }
            let previousBatch = state.h.shape[1]
            for (i, parent) in parents.enumerated() {
                for layer in 0..<L {
                    for j in 0..<R {
                        h.scalars[(layer * next.count + i) * R + j] =
                            state.h.scalars[(layer * previousBatch + rows[parent]) * R + j]
                    }
                    if let sc = state.c {
                        for j in 0..<H {
                            c!.scalars[(layer * next.count + i) * H + j] =
                                sc.scalars[(layer * previousBatch + rows[parent]) * H + j]
                        }
                    }
                }
            }
            live = next
            rows = Array(0..<next.count)
            logits = try model.logits(
                inputs: next.map { $0.tokens.last! }, steps: 1, batch: next.count, state: RecurrentState(h: h, c: c))
            state = try model.finalState()
        }
        finished.sort {
            $0.score > $1.score || ($0.score == $1.score && $0.tokens.lexicographicallyPrecedes($1.tokens))
        }
        return Array(finished.prefix(beamWidth))
    }
}
