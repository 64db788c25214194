import RecurrentKit
import RecurrentKitText

/// Throughput measurements (run in release builds; tests never assert a time).
public enum Benchmarks {
    /// One measured row.
    public struct Result: Sendable {
        /// What was measured, e.g. "train RNN tanh H512 B32 T35 V28 one-hot".
        public var name: String
        /// Tokens per second (training: T*B predictions per update; generation: new tokens).
        public var tokensPerSecond: Double
        /// Estimated floating-point operations per second (multiply-add = 2), in GFLOP/s.
        public var gflops: Double
        /// Wall seconds measured (after warm-up).
        public var seconds: Double
        /// Bytes the recurrent layers held for activations and backward scratch (training rows).
        public var activationBytes: Int? = nil
    }

    /// Trains on random tokens: zero gradients, forward, cross-entropy, backward, clip 1, SGD, for at least `seconds`.
    /// - Parameters:
    ///   - cell: recurrent cell.
    ///   - H: hidden units.
    ///   - layers: recurrent layers.
    ///   - B: batch rows.
    ///   - T: steps per chunk.
    ///   - V: vocabulary size.
    ///   - embedding: embedding width, nil for one-hot input.
    ///   - seconds: minimum measured time after warm-up.
    ///   - recomputeInterval: memory-efficient BPTT interval (`RecurrentNetwork.recomputeInterval`), nil keeps everything.
    ///   - precision: the products' precision (`Kernels.productPrecision`): Float, or bf16 for mixed precision.
    public static func training(
        cell: CellKind, hidden H: Int, layers: Int = 1, batch B: Int, steps T: Int, vocabulary V: Int,
        embedding: Int? = nil, seconds: Double = 3, recomputeInterval: Int? = nil,
        precision: ProductPrecision = .float32
    ) throws -> Result {
        var g = SeededGenerator(seed: 1)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: V, cell: cell, hiddenSize: H, numLayers: layers, embeddingSize: embedding),
            generator: &g)
        model.recurrent.recomputeInterval = recomputeInterval
        let sgd = try SGD(learningRate: 0.01)
        let inputs = (0..<(T * B)).map { _ in g.nextInt(below: V) },
            targets = (0..<(T * B)).map { _ in g.nextInt(below: V) }
        func update() throws {
            model.parameters.zeroGradients()
            _ = try Kernels.withProductPrecision(precision) {
                try model.loss(inputs: inputs, targets: targets, steps: T, batch: B, training: true, generator: &g)
            }
            try clipGradientNorm(model.parameters, maxNorm: 1)
            try sgd.step(model.parameters)
        }
        for _ in 0..<2 { try update() }  // warm-up: buffers reach their size, caches warm
        var updates = 0
        let start = monotonicSeconds()
        var elapsed = 0.0
        repeat { try update(); updates += 1; elapsed = monotonicSeconds() - start } while elapsed < seconds
        // Multiply-adds per token: recurrent G*H*(In+H) per layer (no input product for one-hot rows), output H*V;
        // backward costs about twice the forward.
        let G = Double(cell.gateCount), h = Double(H)
        var perToken = h * Double(V)
        for k in 0..<layers {
            let inputWidth = k == 0 ? (embedding.map(Double.init) ?? 0) : h
            perToken += G * h * (inputWidth + h)
        }
        let flops = 2 * 3 * perToken * Double(T * B * updates)
        let tokens = Double(T * B * updates)
        return Result(
            name:
                "train \(cell.rawValue) H\(H)\(layers > 1 ? " L\(layers)" : "") B\(B) T\(T) V\(V) "
                + "\(embedding.map { "embedding \($0)" } ?? "one-hot")"
                + (recomputeInterval.map { " recompute \($0)" } ?? "") + (precision == .bfloat16 ? " bf16" : ""),
            tokensPerSecond: tokens / elapsed, gflops: flops / elapsed / 1e9, seconds: elapsed,
            activationBytes: model.recurrent.activationMemoryBytes)
    }

    /// The lengths of the variable-length rows: 10 + (37 b mod 91) for row b, spread over [10, 100] (mean 55 for
    /// B = 64), the same formula as Scripts/bench/torch_bench.py.
    public static func variableLengths(batch B: Int) -> [Int] { (0..<B).map { 10 + (37 * $0) % 91 } }

    /// Trains one recurrent layer on a variable-length batch of dense sequences (B rows of lengths
    /// ``variableLengths(batch:)``, padded to their longest): zero gradients, forward, a gradient on every valid
    /// output, backward, SGD, for at least `seconds`. Tokens count valid steps only, so the packed run (`packed`,
    /// lengths given to the layer) and the padded one (every row runs all steps) compare useful work per second.
    public static func variableLengthTraining(
        cell: CellKind, hidden H: Int, input I: Int, batch B: Int, packed: Bool,
        seconds: Double = 3
    ) throws -> Result {
        var g = SeededGenerator(seed: 1)
        let lengths = variableLengths(batch: B), T = lengths.max()!
        let network = try RecurrentNetwork<Float>(.init(cell: cell, inputSize: I, hiddenSize: H), generator: &g)
        let sgd = try SGD(learningRate: 0.01)
        let x = Tensor<Float>(shape: [T, B, I]) { Float(g.normal()) }
        var dOut = Tensor<Float>(shape: [T, B, H]) { Float(g.normal()) * 1e-3 }
        for t in 0..<T {
            for b in 0..<B where t >= lengths[b] { for j in 0..<H { dOut.scalars[(t * B + b) * H + j] = 0 } }
        }
        func update() throws {
            network.parameters.zeroGradients()
            try x.scalars.withUnsafeBufferPointer { xp in
                try dOut.scalars.withUnsafeBufferPointer { dp in
                    let record = try network.forward(
                        steps: T, batch: B, input: xp.baseAddress!, tokens: nil, lengths: packed ? lengths : nil,
                        training: false, generator: &g)
                    try network.backward(record, outputGradient: dp.baseAddress!)
                }
            }
            try sgd.step(network.parameters)
        }
        for _ in 0..<2 { try update() }
        var updates = 0
        let start = monotonicSeconds()
        var elapsed = 0.0
        repeat { try update(); updates += 1; elapsed = monotonicSeconds() - start } while elapsed < seconds
        let valid = Double(lengths.reduce(0, +)), computed = packed ? valid : Double(T * B)
        let flops = 2 * 3 * Double(cell.gateCount * H * (I + H)) * computed * Double(updates)
        return Result(
            name: "train \(cell.rawValue) H\(H) B\(B) I\(I) lengths 10-\(T) \(packed ? "packed" : "padded to \(T)")",
            tokensPerSecond: valid * Double(updates) / elapsed, gflops: flops / elapsed / 1e9, seconds: elapsed)
    }

    /// d2l 8.5's `train_ch8` as `LanguageModelTrainer` runs it (preset `d2l-rnn`: tanh RNN H512, B 32, T 35, one-hot,
    /// SGD, d2l clipping, sequential minibatches from The Time Machine with the state carried), for at least `seconds`.
    public static func d2lTrainingLoop(seconds: Double = 3) throws -> Result {
        var options = TrainingPreset.d2lRNN.options
        options.epochs = 1_000_000
        options.sampleEvery = 0
        let trainer = try LanguageModelTrainer(options: options)
        var start = 0.0, elapsed = 0.0, updates = 0
        _ = try trainer.train(
            shouldStop: { elapsed >= seconds },
            afterStep: { trainer in
                if trainer.step == 2 { start = monotonicSeconds() }  // after warm-up
                if trainer.step > 2 { updates += 1; elapsed = monotonicSeconds() - start }
            })
        let T = options.numSteps, B = options.batchSize, H = options.hiddenSize,
            V = trainer.model.configuration.vocabularySize
        let flops = 2 * 3 * Double(H * H + H * V) * Double(T * B * updates)
        return Result(
            name: "train rnn_tanh H\(H) B\(B) T\(T) V\(V) d2l scratch loop",
            tokensPerSecond: Double(T * B * updates) / elapsed, gflops: flops / elapsed / 1e9, seconds: elapsed)
    }

    /// Batch-1 greedy generation of `tokens` new tokens after a 10-token prefix, weights stored in `precision` (a
    /// `CompactGenerationSession` made before the clock starts). GFLOP/s counts the products done per token: layer
    /// 0's recurrent one (its input part is a table row), both of every other layer, and the head.
    public static func generation(
        cell: CellKind, hidden H: Int, layers: Int, vocabulary V: Int, embedding: Int? = nil,
        tokens: Int = 2000, precision: WeightPrecision = .float32
    ) throws -> Result {
        var g = SeededGenerator(seed: 2)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: V, cell: cell, hiddenSize: H, numLayers: layers, embeddingSize: embedding),
            generator: &g)
        let prefix = (0..<10).map { _ in g.nextInt(below: V) }
        // Compact weights are copied (and quantized) once, before the clock starts, as PyTorch's rows quantize first.
        let session = precision.isCompact ? try CompactGenerationSession(model: model, format: precision) : nil
        func run(_ length: Int) throws {
            if let session {
                _ = try TextGenerator.generate(
                    session: session, prefix: prefix, length: length, decoding: .greedy, generator: &g)
            } else {
                _ = try TextGenerator.generate(
                    model: model, prefix: prefix, length: length, decoding: .greedy, generator: &g)
            }
        }
        try run(50)
        let start = monotonicSeconds()
        try run(tokens)
        let elapsed = monotonicSeconds() - start
        let G = Double(cell.gateCount), h = Double(H)
        var perToken = h * Double(V)
        // Layer 0's input projection is a row of a per-token table in every precision (no product), so it is not
        // counted.
        for k in 0..<layers { perToken += G * h * ((k == 0 ? 0 : h) + h) }
        return Result(
            name: "generate \(cell.rawValue) H\(H) L\(layers) V\(V) batch 1 greedy"
                + (precision == .bfloat16 ? " bf16" : precision == .int8 ? " int8" : ""),
            tokensPerSecond: Double(tokens) / elapsed, gflops: 2 * perToken * Double(tokens) / elapsed / 1e9,
            seconds: elapsed)
    }

    /// Runs exactly `updates` training updates after two warm-up updates (zero gradients, forward, cross-entropy,
    /// backward, clip 1, optimizer step) on random tokens. Used to count heap allocations per update: the same call
    /// with `updates` N and 2N must allocate the same number of times (`Scripts/check-allocations.sh`).
    /// - Parameters:
    ///   - cell: recurrent cell.
    ///   - H: hidden units.
    ///   - layers: recurrent layers.
    ///   - B: batch rows.
    ///   - T: steps per chunk.
    ///   - V: vocabulary size.
    ///   - embedding: embedding width, nil for one-hot input.
    ///   - dropout: dropout between layers.
    ///   - optimizer: `OptimizerKind.sgd` (learning rate 0.01) or `OptimizerKind.adam`/`OptimizerKind.adamw` (1e-3).
    ///   - recomputeInterval: memory-efficient BPTT interval, nil keeps every step.
    ///   - precision: matrix-product precision of forward and backward (`ProductPrecision.bfloat16`: mixed precision).
    ///   - updates: measured updates (>= 0).
    public static func trainingUpdates(
        cell: CellKind, hidden H: Int, layers: Int = 1, batch B: Int, steps T: Int, vocabulary V: Int,
        embedding: Int? = nil, dropout: Double = 0, optimizer: OptimizerKind = .sgd,
        recomputeInterval: Int? = nil, precision: ProductPrecision = .float32, updates: Int
    ) throws {
        guard updates >= 0 else { throw RecurrentKitError.invalidArgument("updates", updates, "must be >= 0") }
        var g = SeededGenerator(seed: 1)
        let model = try LanguageModel<Float>(
            .init(
                vocabularySize: V, cell: cell, hiddenSize: H, numLayers: layers, dropout: dropout,
                embeddingSize: embedding), generator: &g)
        model.recurrent.recomputeInterval = recomputeInterval
        let step: Optimizer
        switch optimizer {
        case .sgd: step = try SGD(learningRate: 0.01)
        case .adam: step = try Adam(learningRate: 1e-3)
        case .adamw: step = try Adam.adamW(learningRate: 1e-3)
        case .rmsprop: step = try RMSprop(learningRate: 1e-3)
        }
        let inputs = (0..<(T * B)).map { _ in g.nextInt(below: V) },
            targets = (0..<(T * B)).map { _ in g.nextInt(below: V) }
        for _ in 0..<(2 + updates) {
            model.parameters.zeroGradients()
            _ = try Kernels.withProductPrecision(precision) {
                try model.loss(inputs: inputs, targets: targets, steps: T, batch: B, training: true, generator: &g)
            }
            try clipGradientNorm(model.parameters, maxNorm: 1)
            try step.step(model.parameters)
        }
    }

    /// Batch-1 generation of `tokens` new tokens after a 10-token prefix (and a 50-token warm-up run), for counting
    /// heap allocations per generated token like
    /// ``trainingUpdates(cell:hidden:layers:batch:steps:vocabulary:embedding:dropout:optimizer:recomputeInterval:precision:updates:)``.
    public static func generationTokens(
        cell: CellKind, hidden H: Int, layers: Int, vocabulary V: Int, embedding: Int? = nil,
        decoding: TextGenerator.Decoding, precision: WeightPrecision = .float32, tokens: Int
    ) throws {
        var g = SeededGenerator(seed: 2)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: V, cell: cell, hiddenSize: H, numLayers: layers, embeddingSize: embedding),
            generator: &g)
        let prefix = (0..<10).map { _ in g.nextInt(below: V) }
        _ = try TextGenerator.generate(
            model: model, prefix: prefix, length: 50, decoding: decoding, generator: &g, precision: precision)
        _ = try TextGenerator.generate(
            model: model, prefix: prefix, length: tokens, decoding: decoding, generator: &g, precision: precision)
    }

    /// Runs `LanguageModelTrainer` with `options` (sampling off) for `epochs` epochs, stopping after `updates` updates
    /// when given. Counting heap allocations of two runs that differ only in `updates` gives the loop's allocations per
    /// update; of two runs that differ only in `epochs`, its allocations per epoch (minibatch arrays and the epoch
    /// report).
    public static func trainerRun(options: TrainingOptions, epochs: Int, updates: Int? = nil) throws {
        var options = options
        options.epochs = epochs
        options.sampleEvery = 0
        let trainer = try LanguageModelTrainer(options: options)
        _ = try trainer.train(shouldStop: { updates.map { trainer.step >= $0 } ?? false })
    }

    /// Measured single-core FMA peak in GFLOP/s at an instruction-set level (0 portable, 1 AVX2+FMA, 2 AVX-512).
    /// (`Kernels.fmaPeak(level:)` of RecurrentKit with a raw level; an unknown level measures the portable loop.)
    public static func fmaPeak(level: Int) -> Double {
        Kernels.fmaPeak(level: Kernels.Level(rawValue: level) ?? .portable)
    }
}
