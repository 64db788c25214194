import ArgumentParser
import Foundation
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn analyze`: gradient norms through time and spectral radii.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract:
            "Gradient flow through time: ||dL/dh_t|| per step and layer for a loss on the last step, and the spectral "
            + "radius of W_hh.",
        discussion:
            "With --demo, compares a tanh RNN with small recurrent weights (vanishing), a linear RNN with radius 1.1 "
            + "(exploding) and an LSTM on the same text."
    )

    @Option(help: "Checkpoint to analyse (default: a fresh model built from --cell/--hidden/--init).") var checkpoint:
        String?
    @OptionGroup(title: "A fresh model (defaults: rnn_tanh, --hidden 64, --layers 1)") var model: ModelOptions
    @Option(help: "Initialisation of a fresh model.") var initialization: Initialization = .pytorch
    @Option(help: "Rescale each W_hh gate block to this spectral radius (> 0).") var radius: Double?
    @Option(help: "UTF-8 text file (default: the embedded corpus).") var text: String?
    @Option(help: "Embedded corpus when --text is absent.") var corpus: String = "timemachine"
    @Option(help: "Steps T to backpropagate through.") var steps: Int = 100
    @Flag(help: "Compare vanishing (tanh, radius 0.5), exploding (linear, radius 1.1) and an LSTM in one plot.")
    var demo = false
    @Option(parsing: .singleValue, help: "With --demo, also plot this trained checkpoint (repeatable).") var also:
        [String] = []
    @Option(help: "Folder for gradient-flow.csv and gradient-flow.svg.") var output: String = "runs/analyze"
    @Option(help: "Seed of a fresh model.") var seed: UInt64 = 0

    func run() throws {
        guard steps >= 1, steps <= 1_000_000 else {
            throw RecurrentKitError.invalidArgument("steps", steps, "must be in 1...1000000")
        }
        guard !also.isEmpty ? demo : true else { throw RecurrentKitError("--also needs --demo") }
        guard text != nil || EmbeddedCorpus(rawValue: corpus) != nil else {
            throw RecurrentKitError.invalidArgument("corpus", "'\(corpus)'", "expected timemachine or tinyshakespeare")
        }
        try model.refuse([.dropout, .embedding, .noBias, .projection], in: "analyze")
        if checkpoint != nil, !demo { try model.refuseShape(because: "--checkpoint gives the model") }
        if demo, model.cell != nil || model.layers != nil {
            throw RecurrentKitError("--cell and --layers cannot be given with --demo, which compares its own cells")
        }
        let hidden = model.hiddenSize ?? 64
        let raw = try loadCorpusText(text ?? corpus)
        try createFolder(output)
        try checkWritableLocation(output + "/gradient-flow.svg")  // before the work, not after it
        var series: [(label: String, norms: [Double])] = []
        var csv = "model,layer,t,distance,grad_norm\n"
        func add(_ label: String, _ model: LanguageModel<Float>, _ vocabulary: Vocabulary) throws {
            let prepared = TextPreparation.prepared(raw, mode: vocabulary.mode)
            let tokens = Array(
                try vocabulary.encode(String(String.UnicodeScalarView(prepared.unicodeScalars.prefix(steps + 1)))))
            guard tokens.count == steps + 1 else {
                throw RecurrentKitError(
                    "text has only \(tokens.count) tokens; \(steps + 1) needed for --steps \(steps)")
            }
            let report = try GradientFlow.analyze(model: model, tokens: tokens)
            for (k, norms) in report.hiddenGradientNorms.enumerated() {
                let name = report.hiddenGradientNorms.count > 1 ? "\(label) l\(k)" : label
                series.append((name, norms))
                for (t, n) in norms.enumerated() { csv += "\(label),\(k),\(t),\(steps - 1 - t),\(n)\n" }
                let radii = report.spectralRadius[k].map { String(format: "%.3f", $0) }.joined(separator: "/")
                let sigmas = report.largestSingularValue[k].map { String(format: "%.3f", $0) }.joined(separator: "/")
                print(
                    "\(name): spectral radius of W_hh gate blocks \(radii), largest singular value \(sigmas); "
                        + "||dL/dh|| at distance 0: \(sci(norms.last!)), at distance \(steps - 1): \(sci(norms.first!))"
                )
            }
        }
        if demo {
            let vocabulary = try PreparedCorpus.prepare(text: raw, mode: .d2l).vocabulary
            for (label, kind, r) in [
                ("tanh r=0.5", CellKind.rnnTanh, 0.5), ("linear r=1.1", .rnnLinear, 1.1),
                ("lstm", .lstm, nil as Double?),
            ] {
                var g = SeededGenerator(seed: seed)
                let model = try LanguageModel<Float>(
                    .init(vocabularySize: vocabulary.count, cell: kind, hiddenSize: hidden), generator: &g)
                if let r { try GradientFlow.setRecurrentSpectralRadius(model, radius: r) }
                try add(label, model, vocabulary)
            }
            for path in also {
                let loaded = try Checkpoint.load(from: path)
                try add("trained \(loaded.model.configuration.cell.rawValue)", loaded.model, loaded.vocabulary)
            }
        } else if let checkpoint {
            let loaded = try Checkpoint.load(from: checkpoint)
            if let radius { try GradientFlow.setRecurrentSpectralRadius(loaded.model, radius: radius) }
            try add(loaded.model.configuration.cell.rawValue, loaded.model, loaded.vocabulary)
        } else {
            let kind = model.cell ?? .rnnTanh, layers = model.layers ?? 1, initial = initialization
            let vocabulary = try PreparedCorpus.prepare(text: raw, mode: .d2l).vocabulary
            var g = SeededGenerator(seed: seed)
            let model = try LanguageModel<Float>(
                .init(vocabularySize: vocabulary.count, cell: kind, hiddenSize: hidden, numLayers: layers),
                initialization: initial, generator: &g)
            if let radius { try GradientFlow.setRecurrentSpectralRadius(model, radius: radius) }
            try add(kind.rawValue + (radius.map { " r=\($0)" } ?? ""), model, vocabulary)
        }
        try writeFileAtomically(Array(csv.utf8), to: output + "/gradient-flow.csv")
        try writeFileAtomically(
            Array(GradientFlow.svg(series, title: "Gradient norm through time (loss on the last step)").utf8),
            to: output + "/gradient-flow.svg")
        print("wrote \(output)/gradient-flow.csv and \(output)/gradient-flow.svg")
    }
}

func sci(_ x: Double) -> String { String(format: "%.3e", x) }

/// `rnn task`: built-in long-range tasks.
struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Long-range benchmark tasks.",
        subcommands: [AddingCommand.self])
}

/// `rnn task adding`: the adding problem.
struct AddingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adding",
        abstract: "The adding problem: sum the two marked values of a sequence (baseline MSE 1/6 = 0.167).",
        discussion: "IRNN (Le et al. 2015) = --cell rnn_relu --initialization identity."
    )

    @Option(help: "Sequence length T.") var length: Int = 100
    @OptionGroup(title: "Model (defaults: lstm, --hidden 64)") var model: ModelOptions
    @Option(help: "Initialisation (identity with rnn_relu: IRNN).") var initialization: Initialization = .pytorch
    @Option(help: "Adam updates.") var updates: Int = 2000
    @Option(help: "Sequences per update.") var batch: Int = 50
    @Option(help: "Adam learning rate.") var lr: Double = 1e-3
    @Option(help: "Gradient clipping (0 disables).") var clip: Double = 1
    @Option(help: "Evaluate on 1,000 test sequences every N updates.") var evaluateEvery: Int = 200
    @Option(help: "Seed.") var seed: UInt64 = 0

    /// The most updates, and the most updates between evaluations, `rnn task adding` accepts (like `rnn train`'s
    /// epochs).
    static let maximumUpdates = 1_000_000

    func run() throws {
        try model.refuse([.dropout, .embedding, .noBias, .projection], in: "task adding")
        if model.layers != nil { throw RecurrentKitError("--layers is not used by rnn task adding (one layer)") }
        let cell = model.cell ?? .lstm, hidden = model.hiddenSize ?? 64
        // Every count bounded before anything runs: a huge --updates would run until killed, a huge --hidden would
        // allocate until the process dies.
        guard (1...Self.maximumUpdates).contains(updates) else {
            throw RecurrentKitError.invalidArgument("updates", updates, "must be in 1...\(Self.maximumUpdates)")
        }
        guard (1...Self.maximumUpdates).contains(evaluateEvery) else {
            throw RecurrentKitError.invalidArgument(
                "evaluate-every", evaluateEvery, "must be in 1...\(Self.maximumUpdates)")
        }
        guard (1...(1 << 16)).contains(hidden) else {
            throw RecurrentKitError.invalidArgument("hidden", hidden, "must be in 1...65536")
        }
        var o = AddingProblem.Options()
        o.length = length
        o.cell = cell
        o.hiddenSize = hidden
        o.initialization = initialization
        o.updates = updates
        o.batchSize = batch
        o.learningRate = lr
        o.clip = clip
        o.evaluateEvery = evaluateEvery
        o.seed = seed
        try o.validate()  // length, batch, learning rate and clip, before the first line is printed
        // Memory as `rnn train` counts it: one layer, input width 2, Adam, the larger of the batch and the 1,000 test
        // sequences (a slight overestimate: the read-out has one output, not two).
        var estimate = TrainingOptions()
        estimate.cell = cell
        estimate.hiddenSize = hidden
        estimate.numLayers = 1
        estimate.embeddingSize = nil
        estimate.optimizer = .adam
        estimate.batchSize = max(batch, o.testSize)
        guard let bytes = estimate.estimatedMemoryBytes(vocabularySize: 2, chunkLength: length) else {
            throw RecurrentKitError(
                "the adding problem's sizes are too large: the memory they need does not fit in a 64-bit count")
        }
        try checkMemory(
            bytes,
            for:
                "the adding problem with \(cell.rawValue) H \(hidden), length \(length), batch \(batch) and "
                + "\(o.testSize) test sequences"
        )
        let start = Date()
        print(
            "adding problem T=\(length) \(o.cell.rawValue) H=\(hidden) init \(o.initialization.rawValue), \(updates) "
                + "Adam updates of \(batch), lr \(lr); baseline MSE 0.1667"
        )
        let results = try AddingProblem.train(o) { e in
            print(
                "update \(e.update) train MSE \(String(format: "%.4f", e.trainMSE)) test MSE "
                    + "\(String(format: "%.4f", e.testMSE))"
            )
        }
        print(
            "final test MSE \(String(format: "%.4f", results.last!.testMSE)) after "
                + "\(String(format: "%.1f", Date().timeIntervalSince(start))) s"
        )
    }
}

/// `rnn compare-bptt`: d2l 8.7's comparison on The Time Machine in one command.
struct CompareBPTTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare-bptt",
        abstract:
            "d2l 8.7 comparison: sequential vs random sampling, truncated vs randomized vs full BPTT; one SVG of "
            + "perplexity curves."
    )

    @OptionGroup(title: "Model (defaults: rnn_tanh, --hidden 256)") var model: ModelOptions
    @Option(help: "Epochs per run.") var epochs: Int = 100
    @Option(help: "Learning rate (SGD, clip 1).") var lr: Double = 1
    @Option(help: "Folder for comparison.svg and comparison.csv.") var output: String = "runs/compare-bptt"
    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "Seed.") var seed: UInt64 = 0

    func run() throws {
        try model.refuse([.dropout, .embedding, .noBias, .projection], in: "compare-bptt")
        if model.layers != nil {
            throw RecurrentKitError("--layers is not used by rnn compare-bptt (one layer, as d2l 8.7)")
        }
        let cell = model.cell ?? .rnnTanh, hidden = model.hiddenSize ?? 256
        try threadOptions.apply()
        try createFolder(output)
        try checkWritableLocation(output + "/comparison.svg")  // before the work, not after it
        var series: [(label: String, points: [(Int, Double)])] = []
        var csv = "run,epoch,updates,train_perplexity,seconds\n"
        let runs: [(String, SamplingStrategy, BPTTStrategy)] = [
            ("sequential / truncated", .sequential, .truncated), ("random / truncated", .random, .truncated),
            ("sequential / randomized", .sequential, .randomized), ("sequential / full", .sequential, .full),
        ]
        for (label, sampling, bptt) in runs {
            var o = TrainingOptions()
            o.maxTokens = 10_000  // d2l 8.7: the first 10,000 tokens
            o.cell = cell
            o.hiddenSize = hidden
            o.epochs = epochs
            o.learningRate = lr
            o.sampling = sampling
            o.bptt = bptt
            o.seed = seed
            o.sampleEvery = 0
            let trainer = try LanguageModelTrainer(options: o)
            try trainer.train()
            let last = trainer.history.last!
            print(
                "\(label): chunks of \(trainer.chunkLength) steps, \(trainer.step) updates, final perplexity "
                    + "\(fixed(last.trainPerplexity, 2)), \(duration(last.elapsedSeconds))"
            )
            series.append((label, trainer.history.map { ($0.epoch, $0.trainPerplexity) }))
            for r in trainer.history {
                csv += "\(label),\(r.epoch),\(r.step),\(r.trainPerplexity),\(r.elapsedSeconds)\n"
            }
        }
        try writeFileAtomically(Array(csv.utf8), to: output + "/comparison.csv")
        try writeFileAtomically(
            Array(
                TrainingReports.perplexitySVG(
                    series: series, title: "BPTT strategies on The Time Machine (\(cell.rawValue) H\(hidden))"
                ).utf8),
            to: output + "/comparison.svg")
        print("wrote \(output)/comparison.svg and \(output)/comparison.csv")
    }
}
