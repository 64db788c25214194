import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit
@testable import RecurrentKitText

/// Mixed-precision training: bf16 products (Kernels.productPrecision), Float everything else.
final class MixedPrecisionTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { super.setUp(); savedThreads = Kernels.threadCount }
    override func tearDown() {
        Kernels.threadCount = savedThreads; Kernels.productPrecision = .float32
        Kernels.usesBFloat16DotInstructions = true; super.tearDown()
    }

    func gradients(
        _ cell: CellKind, precision: ProductPrecision, threads: Int = 1
    ) throws -> (loss: Double, gradients: [Float]) {
        Kernels.threadCount = threads
        var g = SeededGenerator(seed: 31)
        let model = try LanguageModel<Float>(
            .init(vocabularySize: 23, cell: cell, hiddenSize: 40, numLayers: 2, dropout: 0.1, embeddingSize: 24),
            initialization: .pytorch, generator: &g)
        let T = 48, B = 5  // T long enough for the pre-packed recurrent weights
        let inputs = (0..<(T * B)).map { _ in g.nextInt(below: 23) },
            targets = (0..<(T * B)).map { _ in g.nextInt(below: 23) }
        model.parameters.zeroGradients()
        var drops = SeededGenerator(seed: 5)
        let loss = try Kernels.withProductPrecision(precision) {
            try model.loss(inputs: inputs, targets: targets, steps: T, batch: B, training: true, generator: &drops)
        }
        XCTAssertEqual(Kernels.productPrecision, .float32, "restored after the body")
        return (loss, Array(UnsafeBufferPointer(start: model.parameters.gradients, count: model.parameters.count)))
    }

    /// On a CPU with AVX512_BF16 also without it (the path of an Ice Lake Xeon: the same bf16 operands through Float
    /// multiply-adds).
    func testBFloat16GradientsAreCloseToFloatAndDeterministic() throws {
        XCTAssertGreaterThanOrEqual(48, OneDirectionStack<Float>.packingMinimumSteps)
        let dotPaths = Kernels.usesBFloat16DotInstructions ? [true, false] : [false]
        for (cell, dot) in [CellKind.rnnTanh, .gru, .lstm].flatMap({ c in dotPaths.map { (c, $0) } }) {
            Kernels.usesBFloat16DotInstructions = dot
            let f32 = try gradients(cell, precision: .float32), bf16 = try gradients(cell, precision: .bfloat16)
            XCTAssertEqual(bf16.loss, f32.loss, accuracy: 2e-3 * f32.loss, "\(cell): loss")
            let diff = zip(f32.gradients, bf16.gradients).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
                .squareRoot()
            let norm = f32.gradients.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
            XCTAssertGreaterThan(diff, 0, "\(cell): the products really are bf16")
            XCTAssertLessThan(diff / norm, 3e-2, "\(cell): gradient within bf16 rounding")
            // The same bits at 2 threads, and again at 1.
            XCTAssertEqual(
                try gradients(cell, precision: .bfloat16, threads: 2).gradients, bf16.gradients, "\(cell): 2 threads")
            XCTAssertEqual(try gradients(cell, precision: .bfloat16).gradients, bf16.gradients, "\(cell): repeated")
        }
    }

    func testMixedPrecisionTrainingLearnsAndResumesExactly() throws {
        var o = TrainingOptions()
        o.cell = .lstm
        o.hiddenSize = 32
        o.numLayers = 2
        o.embeddingSize = 16
        o.dropout = 0.1
        o.optimizer = .adam
        o.learningRate = 0.01
        o.initialization = .pytorch
        o.maxTokens = 4000
        o.batchSize = 8
        o.numSteps = 48
        o.epochs = 4
        o.sampleEvery = 0
        o.precision = .bfloat16
        func losses(_ t: LanguageModelTrainer, stopAfter: Int? = nil) throws -> [Double] {
            try t.trainCollectingLosses(stopAfter: stopAfter).losses
        }
        let whole = try LanguageModelTrainer(options: o)
        let all = try losses(whole)
        XCTAssertLessThan(all.suffix(5).reduce(0, +) / 5, all.prefix(5).reduce(0, +) / 5, "the loss falls")
        XCTAssertEqual(Kernels.productPrecision, .float32, "the trainer restores Float products")
        let first = try LanguageModelTrainer(options: o)
        let head = try losses(first, stopAfter: 7)
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(try first.checkpoint().serialized()))
        XCTAssertEqual(resumed.options.precision, .bfloat16)
        XCTAssertEqual(head + (try losses(resumed)), all, "bit-identical resume in mixed precision")
        var f32 = o
        f32.precision = nil
        let float = try LanguageModelTrainer(options: f32)
        let floatLosses = try losses(float)
        XCTAssertNotEqual(floatLosses, all)
        XCTAssertEqual(floatLosses.last!, all.last!, accuracy: 0.05 * floatLosses.last!)
    }
}
