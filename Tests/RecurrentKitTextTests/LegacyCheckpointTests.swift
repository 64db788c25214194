import Foundation
import RecurrentKitTestSupport
import XCTest
import _RecurrentKitKernels
@testable import RecurrentKit
@testable import RecurrentKitText

/// Issue #27, "What must not change": resumable training checkpoints written by earlier versions still load, and
/// resuming them today ends on the weights of that version's uninterrupted run.
///
/// Fixtures/legacy-checkpoints/NAME/ (made by Scripts/fixtures/legacy-checkpoints.sh with that commit's `rnn`):
/// `interrupted.safetensors`, a run stopped after update 10 of 21 (mid-epoch 2: carried LSTM state, Adam moments,
/// dropout and data streams), `uninterrupted.safetensors`, the same run trained to the end in one go, and
/// `fixture.json` (commit, commands, CPU, kernel level). NAME 0.1 is da46681 (checkpoint format 1, before 4af8557),
/// 0.2.0 is cc145aa (format 2).
///
/// Bit for bit at the kernel level the fixture was made with (AVX-512, recorded in the checkpoint's training state by
/// both versions and in format 2's header; forced with `rk_set_level`, which only caps the level) when the Float
/// products' kc there is the fixture's (512, ``fixtureFloatKC``): the Float kernels' sums depend on the level and kc
/// alone, and the blocking model gives kc 512 at AVX-512 on every CPU with 768 KiB or more of L2 per core (Ice Lake
/// with or without AVX512_BF16, Zen 4/5). Every other level the CPU has (or the fixture's level under another kc) is
/// also resumed and compared within ``crossLevelTolerance``: its matrix products may round differently. A CPU without
/// the fixture's level (AVX2 only, ARM) gets only those.
final class LegacyCheckpointTests: XCTestCase {
    /// max |resumed - uninterrupted| of any weight at a level other than the fixture's. Measured here (11 Adam updates
    /// at lr 0.01, weights of magnitude <= 0.6): 6e-8 at portable and 0 at AVX2+FMA against AVX-512, for both
    /// fixtures; the bound leaves a factor of ~170 for other compilers' contractions (e.g. an ARM build's portable C).
    static let crossLevelTolerance: Float = 1e-5
    /// The Float products' kc at AVX-512 when the fixtures were made (before the blocking depended on the caches).
    static let fixtureFloatKC = 512

    func testResumesACheckpointOfVersion0_1() throws {
        try checkLegacyResume("0.1", formatVersion: 1, writtenByVersion: nil)
    }

    func testResumesACheckpointOfVersion0_2_0() throws {
        try checkLegacyResume("0.2.0", formatVersion: 2, writtenByVersion: "0.2.0")
    }

    // MARK: -

    private func checkLegacyResume(
        _ name: String, formatVersion: Int, writtenByVersion: String?,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let folder = Fixture.directory.appendingPathComponent("legacy-checkpoints/\(name)")
        let manifest = try Fixture.load("legacy-checkpoints/\(name)/fixture.json")
        let interruptedPath = folder.appendingPathComponent("interrupted.safetensors").path
        let interrupted = try Checkpoint.load(from: interruptedPath)
        let final = try Checkpoint.load(from: folder.appendingPathComponent("uninterrupted.safetensors").path)

        // The files as the old version wrote them.
        for (checkpoint, what) in [(interrupted, "interrupted"), (final, "uninterrupted")] {
            XCTAssertEqual(checkpoint.fileFormatVersion, formatVersion, "\(name) \(what)", file: file, line: line)
            XCTAssertEqual(checkpoint.writtenByVersion, writtenByVersion, "\(name) \(what)", file: file, line: line)
            assertFinite(checkpoint, "\(name) \(what)", file: file, line: line)
        }
        let expectedInterrupted = manifest["interrupted.safetensors"] as! [String: Any]
        let expectedFinal = manifest["uninterrupted.safetensors"] as! [String: Any]
        let stoppedState = try trainerState(interrupted), finalState = try trainerState(final)
        XCTAssertEqual(stoppedState.step, expectedInterrupted["step"] as? Int, file: file, line: line)
        XCTAssertEqual(stoppedState.epoch, expectedInterrupted["epoch"] as? Int, file: file, line: line)
        XCTAssertGreaterThan(stoppedState.doneInEpoch, 0, "\(name): stopped mid-epoch", file: file, line: line)
        XCTAssertEqual(finalState.step, expectedFinal["step"] as? Int, file: file, line: line)
        XCTAssertEqual(finalState.epoch, stoppedState.options.epochs + 1, file: file, line: line)
        XCTAssertNotNil(
            interrupted.extraTensors["_trainer.state.c"], "\(name): a carried LSTM state", file: file, line: line)

        // The level the old run used: both versions record it in the training state, format 2 in the header too.
        let levelName = try XCTUnwrap(stoppedState.kernelLevel, file: file, line: line)
        XCTAssertEqual(levelName, manifest["kernel_level"] as? String, file: file, line: line)
        if formatVersion >= 2 { XCTAssertEqual(interrupted.savedKernelLevel?.name, levelName, file: file, line: line) }
        let fixtureLevel = try XCTUnwrap(Kernels.Level.allCases.first { $0.name == levelName }, file: file, line: line)

        let detected = Kernels.detectedLevel
        for level in Kernels.Level.allCases where level.rawValue <= min(detected.rawValue, fixtureLevel.rawValue) {
            // A fresh parse each time: the checkpoint's model is not shared between runs.
            let resumed = try resumeToTheEnd(try Checkpoint.load(from: interruptedPath), at: level)
            let label = "\(name) resumed at \(level.name) (fixture: \(fixtureLevel.name))"
            XCTAssertEqual(resumed.savedKernelLevel, levelName, label, file: file, line: line)
            XCTAssertTrue(resumed.isFinished, label, file: file, line: line)
            XCTAssertEqual(resumed.step, finalState.step, label, file: file, line: line)
            XCTAssertEqual(resumed.optimizer.stepCount, finalState.optimizerSteps, label, file: file, line: line)
            XCTAssertEqual(resumed.history.map(\.epoch), finalState.history.map(\.epoch), label, file: file, line: line)
            XCTAssertEqual(resumed.history.map(\.step), finalState.history.map(\.step), label, file: file, line: line)
            let state = try resumed.checkpoint()
            assertFinite(state, label, file: file, line: line)
            if level == fixtureLevel && Kernels.blocking(at: level).float.kc == Self.fixtureFloatKC {
                assertBitIdentical(state, final, label, file: file, line: line)
                // Every loss was the same: the epochs' perplexities and mean gradient norms are too.
                XCTAssertEqual(
                    resumed.history.map(\.trainPerplexity), finalState.history.map(\.trainPerplexity), label,
                    file: file, line: line)
                XCTAssertEqual(
                    resumed.history.map(\.gradientNorm), finalState.history.map(\.gradientNorm), label, file: file,
                    line: line)
            } else {
                var worst: Float = 0
                for entry in final.model.parameters.entries {
                    let a = try state.model.parameters.tensor(entry.name),
                        b = try final.model.parameters.tensor(entry.name)
                    worst = max(worst, zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0)
                }
                XCTAssertLessThanOrEqual(worst, Self.crossLevelTolerance, label, file: file, line: line)
                for (r, f) in zip(resumed.history, finalState.history) {
                    XCTAssertEqual(
                        r.trainPerplexity, f.trainPerplexity, accuracy: 1e-5 * f.trainPerplexity, label, file: file,
                        line: line)
                }
                print("\(label): max |weight difference| \(worst)")
            }
        }
    }

    /// Resumes at `level` (the previous level is restored) with the stored time limit lifted: the fixtures were
    /// stopped by `--time-limit 1e-9`, which the uninterrupted run did not have and which changes nothing else.
    private func resumeToTheEnd(_ checkpoint: Checkpoint, at level: Kernels.Level) throws -> LanguageModelTrainer {
        let saved = rk_active_level()
        defer { rk_set_level(saved) }
        XCTAssertEqual(Int(rk_set_level(Int32(level.rawValue))), level.rawValue)
        XCTAssertEqual(Kernels.activeLevel, level)
        let trainer = try LanguageModelTrainer(resumingFrom: checkpoint)
        try trainer.setTimeLimit(nil)
        XCTAssertTrue(try trainer.train())
        return trainer
    }

    private func trainerState(_ checkpoint: Checkpoint) throws -> LanguageModelTrainingState {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(LanguageModelTrainingState.self, from: Data(checkpoint.training.utf8))
    }

    /// Weights, optimizer moments and carried state, bit for bit (so -0.0 != 0.0 and NaN payloads count).
    private func assertBitIdentical(
        _ actual: Checkpoint, _ expected: Checkpoint, _ label: String, file: StaticString, line: UInt
    ) {
        XCTAssertEqual(actual.model.configuration, expected.model.configuration, label, file: file, line: line)
        for entry in expected.model.parameters.entries {
            let a = try! actual.model.parameters.tensor(entry.name),
                b = try! expected.model.parameters.tensor(entry.name)
            assertSameBits(
                a.shape, a.scalars.map { UInt64($0.bitPattern) }, b.shape, b.scalars.map { UInt64($0.bitPattern) },
                "\(label) \(entry.name)", file: file, line: line)
        }
        XCTAssertEqual(Set(actual.extraTensors.keys), Set(expected.extraTensors.keys), label, file: file, line: line)
        XCTAssertEqual(
            Set(actual.extraDoubleTensors.keys), Set(expected.extraDoubleTensors.keys), label, file: file, line: line)
        for (name, b) in expected.extraTensors {
            guard let a = actual.extraTensors[name] else { continue }
            assertSameBits(
                a.shape, a.scalars.map { UInt64($0.bitPattern) }, b.shape, b.scalars.map { UInt64($0.bitPattern) },
                "\(label) \(name)", file: file, line: line)
        }
        for (name, b) in expected.extraDoubleTensors {
            guard let a = actual.extraDoubleTensors[name] else { continue }
            assertSameBits(
                a.shape, a.scalars.map(\.bitPattern), b.shape, b.scalars.map(\.bitPattern), "\(label) \(name)",
                file: file, line: line)
        }
    }

    /// One failure naming the first differing element and how many differ.
    private func assertSameBits(
        _ shape: [Int], _ bits: [UInt64], _ expectedShape: [Int], _ expectedBits: [UInt64], _ label: String,
        file: StaticString, line: UInt
    ) {
        guard shape == expectedShape, bits.count == expectedBits.count else {
            XCTFail("\(label): shape \(shape) != \(expectedShape)", file: file, line: line)
            return
        }
        let differing = bits.indices.filter { bits[$0] != expectedBits[$0] }
        if let i = differing.first {
            XCTFail(
                "\(label): \(differing.count) of \(bits.count) values differ from the uninterrupted run's, first at "
                    + "[\(i)] (bits \(String(bits[i], radix: 16)) vs \(String(expectedBits[i], radix: 16)))",
                file: file, line: line)
        }
    }

    private func assertFinite(_ checkpoint: Checkpoint, _ label: String, file: StaticString, line: UInt) {
        XCTAssertTrue(checkpoint.model.parameters.valuesAreFinite(), "\(label): weights", file: file, line: line)
        for (name, t) in checkpoint.extraTensors {
            XCTAssertTrue(t.scalars.allSatisfy(\.isFinite), "\(label): \(name)", file: file, line: line)
        }
        for (name, t) in checkpoint.extraDoubleTensors {
            XCTAssertTrue(t.scalars.allSatisfy(\.isFinite), "\(label): \(name)", file: file, line: line)
        }
    }
}
