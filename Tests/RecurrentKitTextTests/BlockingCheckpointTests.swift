import _RecurrentKitKernels
import Foundation
import RecurrentKit
import RecurrentKitTestSupport
import XCTest

@testable import RecurrentKitText

/// The blocking in checkpoints (issue #29): every file records it beside the kernel level, files without it still
/// load, a value that is not a blocking is refused, and a resume reports the blocking it was trained with, which sums
/// like today's only when the tile and kc agree.
final class BlockingCheckpointTests: XCTestCase {
    override func tearDown() {
        XCTAssertEqual(rk_set_blocking(rk_active_level(), 4, 0, 0, 0), 0)
        Kernels.usesBFloat16DotInstructions = true  // back to what the CPU has
        super.tearDown()
    }

    private func smallTrainer() throws -> LanguageModelTrainer {
        var o = TrainingOptions()
        (o.cell, o.hiddenSize, o.optimizer, o.learningRate, o.epochs) = (.gru, 8, .adam, 0.01, 3)
        (o.sampleEvery, o.maxTokens, o.batchSize, o.numSteps) = (0, 2000, 4, 6)
        let trainer = try LanguageModelTrainer(options: o)
        try trainer.train(shouldStop: { trainer.step >= 2 })
        return trainer
    }

    func testCheckpointsRecordTheBlocking() throws {
        let trainer = try smallTrainer()
        let description = Kernels.blocking.description
        XCTAssertEqual(trainer.trainer.state.kernelBlocking, description)
        let bytes = try trainer.checkpoint().serialized()
        let file = try SafetensorsFile(bytes: bytes)
        XCTAssertEqual(file.metadata["kernel_blocking"], description)
        XCTAssertEqual(try Checkpoint.parse(bytes).savedKernelBlocking, description)
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(bytes))
        XCTAssertEqual(resumed.savedKernelBlocking, description)
        XCTAssertTrue(Kernels.blocking.sumsLike(description))
        XCTAssertThrowsError(try trainer.model.parameters.serialized(metadata: ["kernel_blocking": "mine"])) {
            XCTAssertTrue("\($0)".contains("reserved"), "\($0)")
        }

        // Files written before the blocking was recorded load, and resume; a value that is not a blocking is refused.
        let old = try checkpoint(bytes) { $0.metadata["kernel_blocking"] = nil }
        XCTAssertNil(old.savedKernelBlocking)
        XCTAssertEqual(try LanguageModelTrainer(resumingFrom: old).step, trainer.step)
        for junk in ["", "f32 8x32 kc512", "f32 8x32 kc512 mc192 nc1024, f64 8x16 kc256 mc224 nc1024\nx", "AVX-512"] {
            XCTAssertThrowsError(try checkpoint(bytes) { $0.metadata["kernel_blocking"] = junk }) {
                XCTAssertTrue("\($0)".contains("kernel_blocking"), "\($0)")
            }
        }
        let training = try trainer.checkpoint().training
        let withoutState = try checkpoint(bytes) {
            $0.metadata["training"] = try editingJSON(training, ["kernelBlocking": nil])
        }
        XCTAssertNil(try LanguageModelTrainer(resumingFrom: withoutState).savedKernelBlocking)
        let badState = try checkpoint(bytes) {
            $0.metadata["training"] = try editingJSON(training, ["kernelBlocking": "kc 512"])
        }
        XCTAssertThrowsError(try LanguageModelTrainer(resumingFrom: badState)) {
            XCTAssertTrue("\($0)".contains("kernelBlocking"), "\($0)")
        }
    }

    /// A resume under another kc (forced here; another CPU's caches in practice) knows it does not sum alike.
    func testAnotherKcDoesNotSumAlike() throws {
        let trainer = try smallTrainer()
        let saved = try trainer.checkpoint().serialized()
        let level = rk_active_level(), model = rk_blocking(level, 4)
        // Another mc and nc only partition the work: the sums are the same.
        XCTAssertEqual(rk_set_blocking(level, 4, model.kc, model.mr, model.nr * 2), 0)
        XCTAssertTrue(Kernels.blocking.sumsLike(try XCTUnwrap(try Checkpoint.parse(saved).savedKernelBlocking)))
        XCTAssertEqual(rk_set_blocking(level, 4, model.kc / 2, model.mc, model.nc), 0)
        let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(saved))
        let recorded = try XCTUnwrap(resumed.savedKernelBlocking)
        XCTAssertFalse(Kernels.blocking.sumsLike(recorded), "\(recorded) vs \(Kernels.blocking)")
        // What it saves next records the blocking it continued with.
        try resumed.train(shouldStop: { resumed.step >= 3 })
        let next = try SafetensorsFile(bytes: try resumed.checkpoint().serialized())
        XCTAssertEqual(next.metadata["kernel_blocking"], Kernels.blocking.description)
        XCTAssertNotEqual(next.metadata["kernel_blocking"], recorded)
        XCTAssertFalse(Kernels.blocking.sumsLike("not a blocking"))
    }

    /// The bfloat16 product path (dot instructions or widened) is in every training state: a resume knows how its run
    /// summed bf16 products; files without it load; a value that is neither is refused.
    func testTrainingStatesRecordTheBFloat16Path() throws {
        let trainer = try smallTrainer()
        let path = Kernels.bfloat16Products
        XCTAssertTrue(Kernels.bfloat16ProductPaths.contains(path))
        XCTAssertEqual(trainer.trainer.state.kernelBFloat16Products, path)
        let bytes = try trainer.checkpoint().serialized()
        XCTAssertEqual(try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(bytes)).savedBFloat16Products, path)
        // On a CPU with AVX512_BF16, switching the instructions off is another path; the resume still knows the saved.
        Kernels.usesBFloat16DotInstructions = false
        XCTAssertEqual(Kernels.bfloat16Products, "widened")
        if path == "vdpbf16ps" {
            let resumed = try LanguageModelTrainer(resumingFrom: try Checkpoint.parse(bytes))
            XCTAssertEqual(resumed.savedBFloat16Products, "vdpbf16ps")
            XCTAssertEqual(resumed.trainer.state.kernelBFloat16Products, "widened")  // what it saves next
        }
        Kernels.usesBFloat16DotInstructions = true
        XCTAssertEqual(Kernels.bfloat16Products, path)

        let training = try trainer.checkpoint().training
        let old = try checkpoint(bytes) {
            $0.metadata["training"] = try editingJSON(training, ["kernelBFloat16Products": nil])
        }
        XCTAssertNil(try LanguageModelTrainer(resumingFrom: old).savedBFloat16Products)
        for junk in ["", "bf16", "vdpbf16ps ", "Widened"] {
            let bad = try checkpoint(bytes) {
                $0.metadata["training"] = try editingJSON(training, ["kernelBFloat16Products": junk])
            }
            XCTAssertThrowsError(try LanguageModelTrainer(resumingFrom: bad)) {
                XCTAssertTrue("\($0)".contains("kernelBFloat16Products"), "\($0)")
            }
        }
        // The generic trainer's state refuses it too.
        var state = trainer.trainer.state
        state.kernelBFloat16Products = "bf16"
        XCTAssertThrowsError(try trainer.trainer.restore(state: state)) {
            XCTAssertTrue("\($0)".contains("bfloat16 product path"), "\($0)")
        }
    }
}
