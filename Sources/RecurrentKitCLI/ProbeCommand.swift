import ArgumentParser
import RecurrentKit
import RecurrentKitAnalysis
import RecurrentKitText

/// `rnn probe`: runs a fixed amount of work and exits, so a heap-allocation counter (LD_PRELOAD) can compare N and 2N
/// units of work. `Scripts/check-allocations.sh` drives it; it prints nothing on success.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Run a fixed number of training updates or generated tokens (for allocation counting).",
        discussion:
            "Workloads: train (Benchmarks.trainingUpdates), generate (Benchmarks.generationTokens), trainer "
            + "(Benchmarks.trainerRun on the d2l preset of --cell, whole corpus), sequential "
            + "(Benchmarks.composedTrainerUpdates: a Sequential forecaster through the Trainer).",
        shouldDisplay: false
    )

    @Option(help: "What to run.") var workload: ProbeWorkload = .train
    @OptionGroup(title: "Model (defaults: lstm, --hidden 256, --layers 2, one-hot, no dropout)") var model: ModelOptions
    @Option(help: "Batch rows (train).") var batch: Int = 64
    @Option(help: "Steps per chunk (train).") var steps: Int = 32
    @Option(help: "Vocabulary size.") var vocabulary: Int = 65
    @Option(help: "Optimizer (train).") var optimizer: OptimizerKind = .sgd
    @Option(help: "Memory-efficient BPTT interval (train; 0 = off).") var recomputeInterval: Int = 0
    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "Decoding (generate; sample: temperature 0.8, top-k 10; nucleus: temperature 0.8, top-p 0.9).")
    var decoding: ProbeDecoding = .greedy
    @OptionGroup var weightPrecisionOption: WeightPrecisionOption
    @Option(name: .customLong("product-precision"), help: "Matrix-product precision (train).") var products:
        ProductPrecision = .float32
    @Option(help: "Units of work: updates, generated tokens, or (trainer) updates before stopping.") var count: Int = 10
    @Option(help: "Epochs (trainer).") var epochs: Int = 1

    func run() throws {
        guard count >= 0, count <= 1_000_000 else {
            throw RecurrentKitError.invalidArgument("count", count, "must be in 0...1000000")
        }
        guard epochs >= 1, epochs <= 1000 else {
            throw RecurrentKitError.invalidArgument("epochs", epochs, "must be in 1...1000")
        }
        try threadOptions.apply()
        try model.refuse([.noBias, .projection], in: "probe")
        let cell = model.cell ?? .lstm, hidden = model.hiddenSize ?? 256, layers = model.layers ?? 2
        let dropout = model.dropout ?? 0
        let width: Int? = (model.embedding ?? 0) > 0 ? model.embedding : nil
        switch workload {
        case .train:
            try Benchmarks.trainingUpdates(
                cell: cell, hidden: hidden, layers: layers, batch: batch, steps: steps, vocabulary: vocabulary,
                embedding: width, dropout: dropout, optimizer: optimizer,
                recomputeInterval: recomputeInterval > 0 ? recomputeInterval : nil, precision: products,
                updates: count)
        case .generate:
            let weights = weightPrecisionOption.resolved
            let choice: TextGenerator.Decoding =
                switch decoding {
                case .greedy: .greedy
                case .sample: .sample(temperature: 0.8, topK: 10)
                case .nucleus: .sample(temperature: 0.8, topK: nil, topP: 0.9)  // sorts every token in place
                }
            try Benchmarks.generationTokens(
                cell: cell, hidden: hidden, layers: layers, vocabulary: vocabulary, embedding: width,
                decoding: choice, precision: weights, tokens: count)
        case .sequential:
            try Benchmarks.composedTrainerUpdates(
                cell: cell, hidden: hidden, layers: layers, batch: batch, steps: steps, dropout: dropout,
                optimizer: optimizer, updates: count)
        case .trainer:
            let preset: TrainingPreset =
                switch cell {
                case .lstm: .d2lLSTM;
                case .gru: .d2lGRU;
                default: .d2lRNN
                }
            var options = preset.options
            options.cell = cell
            options.hiddenSize = hidden
            options.maxTokens = nil  // the whole Time Machine: about 150 updates per epoch
            try Benchmarks.trainerRun(options: options, epochs: epochs, updates: count)
        }
    }
}
