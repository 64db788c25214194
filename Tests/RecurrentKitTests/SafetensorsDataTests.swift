import Foundation
import RecurrentKitTestSupport
import XCTest
@testable import RecurrentKit

/// Integer and bool tensors in safetensors files (read exactly from files PyTorch wrote, written back, every
/// conversion range-checked), and PyTorch `state_dict`s loaded into a layer by prefix, strictly or not.
/// Fixtures: Fixtures/safetensors/, written by Scripts/fixtures/safetensors_dtypes.py.
final class SafetensorsDataTests: XCTestCase {
    static let folder = Fixture.directory.appendingPathComponent("safetensors")

    func fixture(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(contentsOfFile: Self.folder.appendingPathComponent(name).path)
    }

    func assertRefused(
        _ fragment: String, _ body: @autoclosure () throws -> Any, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue(error is RecurrentKitError, "\(error)", file: file, line: line)
            XCTAssertTrue(
                "\(error)".contains(fragment), "\(error) does not contain \(fragment)", file: file, line: line)
            XCTAssertFalse("\(error)".contains("\n"), "\(error)", file: file, line: line)
        }
    }

    // MARK: - Data tensors

    func testReadsPyTorchIntegerAndBoolTensorsExactly() throws {
        let file = try fixture("dtypes.safetensors")
        XCTAssertEqual(file.metadata["torch"], "2.15.0+cu132")
        XCTAssertEqual(file.metadata["safetensors"], "0.8.0")
        let dtypes = [
            "int8": "I8", "int16": "I16", "int32": "I32", "int64": "I64", "uint8": "U8", "uint16": "U16",
            "uint32": "U32", "uint64": "U64", "bool": "BOOL", "mask": "BOOL", "lengths": "I64", "f32": "F32",
            "f64": "F64", "f16": "F16", "bf16": "BF16",
        ]
        for (name, dtype) in dtypes { XCTAssertEqual(file.tensors[name]?.dtype.rawValue, dtype, name) }

        let int8 = try file.integerTensor("int8", as: Int8.self)
        XCTAssertEqual(int8.shape, [2, 3])
        XCTAssertEqual(int8.scalars, [-128, -1, 0, 1, 100, 127])
        XCTAssertEqual(try file.integerTensor("int16", as: Int16.self).scalars, [.min, -300, 0, 300, .max])
        XCTAssertEqual(try file.integerTensor("int32", as: Int32.self).scalars, [.min, -1, 0, 70000, .max])
        let int64 = try file.integerTensor("int64", as: Int64.self)
        XCTAssertEqual(int64.shape, [2, 2])
        XCTAssertEqual(int64.scalars, [.min, -1, 4_294_967_296, .max])
        XCTAssertEqual(try file.integerTensor("uint8", as: UInt8.self).scalars, [0, 1, 128, 255])
        XCTAssertEqual(try file.integerTensor("uint16", as: UInt16.self).scalars, [0, .max])
        XCTAssertEqual(try file.integerTensor("uint32", as: UInt32.self).scalars, [0, .max])
        XCTAssertEqual(try file.integerTensor("uint64", as: UInt64.self).scalars, [0, .max])
        // Widening reads of every integer dtype are exact.
        XCTAssertEqual(try file.integerTensor("int8", as: Int.self).scalars, [-128, -1, 0, 1, 100, 127])
        XCTAssertEqual(try file.integerTensor("uint32", as: Int64.self).scalars, [0, 4_294_967_295])
        XCTAssertEqual(try file.integerTensor("uint8", as: Int16.self).scalars, [0, 1, 128, 255])
        // A 0-d and an empty tensor.
        XCTAssertEqual(try file.integerTensor("scalar", as: Int.self), try IntegerTensor(shape: [], scalars: [42]))
        XCTAssertEqual(try file.integerTensor("empty", as: Int.self), try IntegerTensor(shape: [2, 0], scalars: []))
        // What a data loader saves: lengths, labels and a mask of the valid steps (T = 5, B = 3).
        XCTAssertEqual(try file.integerTensor("lengths", as: Int.self), IntegerTensor([5, 3, 1]))
        XCTAssertEqual(try file.integerTensor("labels", as: Int.self).scalars, [2, 0, 1])
        let bools = try file.boolTensor("bool")
        XCTAssertEqual(bools.shape, [2, 3])
        XCTAssertEqual(bools.scalars, [true, false, true, false, false, true])
        let mask = try file.boolTensor("mask")
        XCTAssertEqual(mask.shape, [5, 3])
        XCTAssertEqual(mask.scalars, (0..<5).flatMap { t in [5, 3, 1].map { t < $0 } })
        // Float tensors still read as before.
        XCTAssertEqual(try file.tensor("f32", as: Float.self).scalars, [1.5, -2.25, 3.0e-3])
        XCTAssertEqual(try file.tensor("f64", as: Double.self).scalars, [1.0 / 3.0, -1.0e300])
        XCTAssertEqual(try file.tensor("f16", as: Float.self).scalars, [0.5, -65504])
        XCTAssertEqual(try file.tensor("bf16", as: Float.self).scalars[0], 1)
    }

    func testEveryDTypeRoundTrips() throws {
        // The fixture written again: identical tensors, and bytes that parse to the same entries.
        let original = try fixture("dtypes.safetensors")
        let again = try SafetensorsFile(bytes: try original.serialized())
        XCTAssertEqual(Set(again.tensors.keys), Set(original.tensors.keys))
        for (name, entry) in original.tensors {
            XCTAssertEqual(again.tensors[name]?.dtype, entry.dtype, name)
            XCTAssertEqual(again.tensors[name]?.shape, entry.shape, name)
            XCTAssertEqual(again.tensors[name]?.bytes, entry.bytes, name)
        }
        // Every integer dtype, written from Int with its extreme values and read back as its own type and as Int.
        var file = SafetensorsFile(metadata: ["kind": "test"])
        let extremes: [SafetensorsFile.DType: [Int]] = [
            .i8: [Int(Int8.min), -1, 0, Int(Int8.max)], .i16: [Int(Int16.min), 0, Int(Int16.max)],
            .i32: [Int(Int32.min), 0, Int(Int32.max)], .i64: [Int.min, -1, 0, Int.max],
            .u8: [0, 1, Int(UInt8.max)], .u16: [0, Int(UInt16.max)], .u32: [0, Int(UInt32.max)], .u64: [0, Int.max],
        ]
        for (dtype, values) in extremes {
            try file.add(dtype.rawValue, try IntegerTensor(shape: [1, values.count], scalars: values), as: dtype)
        }
        try file.add("u64max", IntegerTensor<UInt64>([.max, 0]))  // no dtype: UInt64's own, U64
        try file.add("int", IntegerTensor<Int>([7]))  // no dtype: I64
        try file.add("int32", try IntegerTensor<Int32>(shape: [], scalars: [-5]))
        try file.add("mask", try BoolTensor(shape: [2, 2], scalars: [true, false, false, true]))
        try file.add("empty", try BoolTensor(shape: [0, 3], scalars: []))
        try file.add("weights", try Tensor<Float>(shape: [2], scalars: [0.25, -1]))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rk-dtypes-\(UUID().uuidString).safetensors"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try file.write(toFile: path)
        let read = try SafetensorsFile(contentsOfFile: path)
        XCTAssertEqual(read.metadata, ["kind": "test"])
        for (dtype, values) in extremes {
            XCTAssertEqual(read.tensors[dtype.rawValue]?.dtype, dtype)
            XCTAssertEqual(read.tensors[dtype.rawValue]?.bytes.count, values.count * dtype.size)
            XCTAssertEqual(
                try read.integerTensor(dtype.rawValue, as: Int.self),
                try IntegerTensor(shape: [1, values.count], scalars: values), dtype.rawValue)
        }
        XCTAssertEqual(try read.integerTensor("I8", as: Int8.self).scalars, [.min, -1, 0, .max])
        XCTAssertEqual(try read.integerTensor("U32", as: UInt32.self).scalars, [0, .max])
        XCTAssertEqual(read.tensors["u64max"]?.dtype, .u64)
        XCTAssertEqual(try read.integerTensor("u64max", as: UInt64.self).scalars, [.max, 0])
        XCTAssertEqual(read.tensors["int"]?.dtype, .i64)
        XCTAssertEqual(read.tensors["int32"]?.dtype, .i32)
        XCTAssertEqual(try read.integerTensor("int32", as: Int32.self), try IntegerTensor(shape: [], scalars: [-5]))
        XCTAssertEqual(read.tensors["mask"]?.dtype, .bool)
        XCTAssertEqual(read.tensors["mask"]?.bytes, [1, 0, 0, 1])
        XCTAssertEqual(
            try read.boolTensor("mask"), try BoolTensor(shape: [2, 2], scalars: [true, false, false, true]))
        XCTAssertEqual(try read.boolTensor("empty").shape, [0, 3])
        XCTAssertEqual(try read.tensor("weights", as: Float.self).scalars, [0.25, -1])
        // Integer tensors convert between widths, range-checked.
        XCTAssertEqual(try IntegerTensor<Int>([1, -2]).converted(to: Int8.self), IntegerTensor<Int8>([1, -2]))
        XCTAssertEqual(
            DType.allCases.filter(\.isInteger).map(\.rawValue), ["I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64"])
        XCTAssertEqual(DType.allCases.filter(\.isFloatingPoint).map(\.rawValue), ["F16", "BF16", "F32", "F64"])
    }

    typealias DType = SafetensorsFile.DType

    func testOutOfRangeWritesAndConversionsAreRefused() throws {
        var file = SafetensorsFile()
        assertRefused(
            "value 128 at index [1] of tensor t does not fit I8 (-128...127)",
            try file.add("t", IntegerTensor<Int>([0, 128]), as: .i8))
        assertRefused(
            "value -1 at index [0, 1] of tensor t does not fit U64",
            try file.add("t", try IntegerTensor<Int>(shape: [1, 2], scalars: [0, -1]), as: .u64))
        assertRefused("does not fit U16 (0...65535)", try file.add("t", IntegerTensor<Int32>([65536]), as: .u16))
        assertRefused("does not fit I64", try file.add("t", IntegerTensor<UInt64>([UInt64(Int64.max) + 1]), as: .i64))
        assertRefused("does not fit I32", try file.add("t", IntegerTensor<Int>([Int(Int32.min) - 1]), as: .i32))
        // Not an integer dtype, no dtype of its own, or a tensor whose values do not fill its shape.
        assertRefused("cannot be written as BOOL", try file.add("t", IntegerTensor<Int>([1]), as: .bool))
        assertRefused("cannot be written as F32", try file.add("t", IntegerTensor<Int>([1]), as: .f32))
        if #available(macOS 15, iOS 18, *) {
            assertRefused("Int128 has no safetensors dtype", try file.add("t", IntegerTensor<Int128>([1])))
            try file.add("t", IntegerTensor<Int128>([-1]), as: .i8)
            XCTAssertEqual(try file.integerTensor("t", as: Int128.self).scalars, [-1])
            file.tensors["t"] = nil
        }
        var ragged = IntegerTensor<Int>([1, 2])
        ragged.scalars.append(3)
        assertRefused("tensor t of shape [2] holds 3 values", try file.add("t", ragged))
        var raggedMask = BoolTensor([true])
        raggedMask.scalars = []
        assertRefused("tensor m of shape [1] holds 0 values", try file.add("m", raggedMask))
        XCTAssertTrue(file.tensors.isEmpty, "a refused tensor is not added")
        assertRefused(
            "tensor of shape [2, 2] needs 4 values, got 3", try IntegerTensor<Int>(shape: [2, 2], scalars: [1, 2, 3]))
        assertRefused("negative dimension", try BoolTensor(shape: [-1], scalars: []))

        // Reading as a type that cannot hold a value: the value, its index, the dtype and the range are named.
        let pytorch = try fixture("dtypes.safetensors")
        assertRefused(
            "tensor int8 (I8) holds -128 at index [0, 0], outside the range of UInt8 (0...255)",
            try pytorch.integerTensor("int8", as: UInt8.self))
        assertRefused(
            "tensor uint64 (U64) holds 18446744073709551615 at index [1], outside the range of Int",
            try pytorch.integerTensor("uint64", as: Int.self))
        assertRefused(
            "tensor int64 (I64) holds -9223372036854775808 at index [0, 0], outside the range of Int32",
            try pytorch.integerTensor("int64", as: Int32.self))
        assertRefused(
            "tensor uint8 (U8) holds 128 at index [2], outside the range of Int8 (-128...127)",
            try pytorch.integerTensor("uint8", as: Int8.self))
        assertRefused(
            "holds 65535 at index [1], outside the range of Int16", try pytorch.integerTensor("uint16", as: Int16.self))
        assertRefused(
            "value 300 at index [1] is outside the range of Int8 (-128...127)",
            try IntegerTensor<Int>([1, 300]).converted(to: Int8.self))
    }

    func testReadersRefuseOtherKindsOfDType() throws {
        let file = try fixture("dtypes.safetensors")
        // A float read of integer or bool data does not pretend: it points at the right reader.
        assertRefused(
            "tensor lengths has dtype I64, not a floating-point dtype; read it with integerTensor(_:as:)",
            try file.tensor("lengths", as: Float.self))
        assertRefused(
            "tensor uint8 has dtype U8, not a floating-point dtype; read it with integerTensor(_:as:)",
            try file.tensor("uint8", as: Double.self))
        assertRefused(
            "tensor mask has dtype BOOL, not a floating-point dtype; read it with boolTensor(_:)",
            try file.tensor("mask", as: Float.self))
        assertRefused(
            "tensor f32 has dtype F32, not an integer dtype; read it with tensor(_:as:)",
            try file.integerTensor("f32", as: Int.self))
        assertRefused(
            "tensor mask has dtype BOOL, not an integer dtype; read it with boolTensor(_:)",
            try file.integerTensor("mask", as: Int.self))
        assertRefused(
            "tensor labels has dtype I64, not BOOL; read it with integerTensor(_:as:)", try file.boolTensor("labels"))
        assertRefused("tensor bf16 has dtype BF16, not BOOL; read it with tensor(_:as:)", try file.boolTensor("bf16"))
        assertRefused("no tensor named nothing", try file.integerTensor("nothing", as: Int.self))
        assertRefused("no tensor named nothing", try file.boolTensor("nothing"))
        // A language-model checkpoint or parameter file holding an integer tensor where a weight should be.
        let gathered = try model(hidden: 4)
        var weights = try SafetensorsFile(bytes: try gathered.store.serialized())
        try weights.add("head.bias", IntegerTensor<Int>([1, 2]))
        assertRefused(
            "tensor head.bias has dtype I64, not a floating-point dtype",
            try gathered.store.load(serialized: try weights.serialized()))
        assertRefused(
            "tensor head.bias has dtype I64, not a floating-point dtype",
            try gathered.store.loadStateDict(weights, strict: false))
    }

    /// A file of one tensor `name` with `dtype`, `shape`, `data_offsets` [0, data.count] (or `offsets`) and `data`.
    func handWritten(_ dtype: String, shape: [Any], data: [UInt8], offsets: [Any]? = nil) -> [UInt8] {
        let entry: [String: Any] = ["dtype": dtype, "shape": shape, "data_offsets": offsets ?? [0, data.count]]
        var header = Array(try! JSONSerialization.data(withJSONObject: ["t": entry]))
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + header + data
    }

    func testMalformedBoolAndIntegerEntriesAreRefused() throws {
        // BOOL bytes other than 0 and 1: safetensors does not check them and torch reads 2 as True (undefined
        // behaviour for a C++ bool); the file is refused when parsed, naming the tensor, the index and the byte.
        XCTAssertEqual(
            try SafetensorsFile(bytes: handWritten("BOOL", shape: [2, 2], data: [0, 1, 1, 0])).boolTensor("t").scalars,
            [false, true, true, false])
        assertRefused(
            "BOOL tensor t holds byte 2 at index [1, 0]; BOOL bytes must be 0 or 1",
            try SafetensorsFile(bytes: handWritten("BOOL", shape: [2, 2], data: [0, 1, 2, 0])))
        assertRefused(
            "holds byte 255 at index [0]", try SafetensorsFile(bytes: handWritten("BOOL", shape: [1], data: [255])))
        // Sizes, offsets and overflow are checked for the integer dtypes as for the float ones.
        assertRefused(
            "tensor t has 7 bytes, but shape [1] of I64 needs 8",
            try SafetensorsFile(bytes: handWritten("I64", shape: [1], data: [UInt8](repeating: 0, count: 7))))
        assertRefused(
            "tensor t has 4 bytes, but shape [2] of U32 needs 8",
            try SafetensorsFile(
                bytes: handWritten("U32", shape: [2], data: [UInt8](repeating: 0, count: 8), offsets: [0, 4])))
        assertRefused(
            "is larger than the file",
            try SafetensorsFile(bytes: handWritten("U16", shape: [1 << 31 - 1, 1 << 31 - 1, 1 << 31 - 1], data: [])))
        assertRefused(
            "data_offsets [0, 16] fall outside the 8 data bytes",
            try SafetensorsFile(
                bytes: handWritten("I16", shape: [8], data: [UInt8](repeating: 0, count: 8), offsets: [0, 16])))
        assertRefused("invalid dimension -1", try SafetensorsFile(bytes: handWritten("I8", shape: [-1], data: [])))
        assertRefused(
            "dtype F8_E4M3; supported: F16, BF16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, BOOL",
            try SafetensorsFile(bytes: handWritten("F8_E4M3", shape: [1], data: [0])))
        assertRefused(
            "dtype i64",
            try SafetensorsFile(bytes: handWritten("i64", shape: [1], data: [UInt8](repeating: 0, count: 8))))
        // Little-endian, two's complement.
        let minusTwo = try SafetensorsFile(bytes: handWritten("I16", shape: [2], data: [0xFE, 0xFF, 0x34, 0x12]))
        XCTAssertEqual(try minusTwo.integerTensor("t", as: Int.self).scalars, [-2, 0x1234])
        XCTAssertEqual(
            try SafetensorsFile(bytes: handWritten("U16", shape: [1], data: [0xFE, 0xFF])).integerTensor(
                "t", as: Int.self
            ).scalars, [65534])
    }

    // MARK: - Loading a state_dict

    /// An LSTM(3, H) + Linear(H, 2) model gathered under "lstm" and "head".
    func model(
        hidden: Int, layers: Int = 1
    ) throws -> (store: ParameterStore<Float>, lstm: LSTM<Float>, head: Linear<Float>) {
        var g = SeededGenerator(seed: 5)
        let lstm = try LSTM<Float>(inputSize: 3, hiddenSize: hidden, numLayers: layers, generator: &g)
        let head = try Linear<Float>(inputSize: hidden, outputSize: 2, generator: &g)
        return (try ParameterStore<Float>(gathering: ["lstm": lstm, "head": head]), lstm, head)
    }

    func values(_ store: ParameterStore<Float>) -> [Float] {
        Array(UnsafeBufferPointer(start: store.values, count: store.count))
    }

    func testLoadsABareLSTMStateDictUnderAPrefix() throws {
        let stateDict = try fixture("lstm_state_dict.safetensors")
        XCTAssertEqual(stateDict.tensors.keys.sorted(), ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"])
        let data = try fixture("dtypes.safetensors")
        let x = try data.tensor("lstm_input", as: Float.self), expected = try data.tensor("lstm_output", as: Float.self)

        // A gathered model: the LSTM's keys go under "lstm.", the head keeps its values.
        let m = try model(hidden: 4)
        let head = try m.store.tensor("head.weight")
        XCTAssertThrowsError(try m.store.load(serialized: try stateDict.serialized()))  // load(serialized:) stays exact
        let report = try m.store.loadStateDict(
            from: Self.folder.appendingPathComponent("lstm_state_dict.safetensors").path, into: "lstm.")
        XCTAssertEqual(
            report.loadedKeys, ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0"])
        XCTAssertTrue(report.isComplete)
        XCTAssertEqual(report.description, "loaded 4 tensor(s)")
        for key in stateDict.tensors.keys {
            XCTAssertEqual(try m.store.tensor("lstm." + key), try stateDict.tensor(key, as: Float.self), key)
        }
        XCTAssertEqual(try m.store.tensor("head.weight"), head)
        var g = SeededGenerator(seed: 0)
        let (output, _) = try m.lstm.forwardTensors(.dense(x), generator: &g)
        assertClose(output, expected, tolerance: 1e-6, "nn.LSTM output")

        // A Sequential model names its layers the same way: nn.Sequential(OrderedDict(lstm=..., ...)).
        var g2 = SeededGenerator(seed: 6)
        let sequential = try Sequential {
            ("lstm", try LSTM<Float>(inputSize: 3, hiddenSize: 4, generator: &g2))
            LastStep<Float>()
        }
        XCTAssertTrue(try sequential.parameters.loadStateDict(stateDict, into: "lstm.").isComplete)
        let T = x.shape[0]
        let expectedLast = try Tensor<Float>(shape: [2, 4], scalars: Array(expected.scalars[((T - 1) * 8)...]))
        assertClose(try sequential(x), expectedLast, tolerance: 1e-6, "last step")

        // The other way round: a whole model's file into a bare LSTM, by stripping "lstm." from its keys.
        let whole = try SafetensorsFile(bytes: try m.store.serialized())
        var h = SeededGenerator(seed: 7)
        let bare = try LSTM<Float>(inputSize: 3, hiddenSize: 4, generator: &h)
        let stripped = try bare.parameters.loadStateDict(whole, stripping: "lstm.")
        XCTAssertEqual(
            stripped,
            StateDictLoadReport(
                loadedKeys: ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"], missingKeys: [],
                unexpectedKeys: []))
        XCTAssertEqual(try bare.parameters.tensor("weight_hh_l0"), try m.store.tensor("lstm.weight_hh_l0"))
        // A Double store converts the F32 file.
        var d = SeededGenerator(seed: 8)
        let double = try LSTM<Double>(inputSize: 3, hiddenSize: 4, generator: &d)
        try double.parameters.loadStateDict(stateDict)
        XCTAssertEqual(try double.parameters.tensor("bias_ih_l0"), try stateDict.tensor("bias_ih_l0", as: Double.self))
    }

    func testNonStrictLoadingReportsMissingAndUnexpectedKeys() throws {
        let stateDict = try fixture("lstm_state_dict.safetensors")
        // Two layers in the model, one in the file: layer 0 loads, layer 1 is missing; extra keys are unexpected.
        var file = stateDict
        try file.add("weight_ih_l9", Tensor<Float>(zeros: [1]))
        try file.add("num_batches_tracked", try IntegerTensor<Int64>(shape: [], scalars: [3]))
        // skipped, never unexpected
        try file.add(ParameterStore<Float>.optimizerPrefix + "adam.m", Tensor<Float>(zeros: [1]))
        let m = try model(hidden: 4, layers: 2)
        let before = values(m.store)
        // Strict (the default): one line naming every mismatch; nothing changes.
        assertRefused(
            "state_dict does not match the parameters under 'lstm.': missing lstm.weight_ih_l1, lstm.weight_hh_l1, "
                + "lstm.bias_ih_l1, lstm.bias_hh_l1; unexpected num_batches_tracked, weight_ih_l9 (pass strict: false "
                + "to load the tensors that match)",
            try m.store.loadStateDict(file, into: "lstm."))
        XCTAssertEqual(values(m.store), before)
        let report = try m.store.loadStateDict(file, into: "lstm.", strict: false)
        XCTAssertEqual(
            report.loadedKeys, ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0"])
        XCTAssertEqual(
            report.missingKeys, ["lstm.weight_ih_l1", "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1"])
        XCTAssertEqual(report.unexpectedKeys, ["num_batches_tracked", "weight_ih_l9"])
        XCTAssertFalse(report.isComplete)
        XCTAssertEqual(
            report.description,
            "loaded 4 tensor(s); missing lstm.weight_ih_l1, lstm.weight_hh_l1, lstm.bias_ih_l1, lstm.bias_hh_l1; "
                + "unexpected num_batches_tracked, weight_ih_l9"
        )
        XCTAssertEqual(try m.store.tensor("lstm.weight_ih_l0"), try stateDict.tensor("weight_ih_l0", as: Float.self))
        XCTAssertEqual(
            try m.store.tensor("lstm.weight_ih_l1").scalars,
            Array(before[m.store.entry(named: "lstm.weight_ih_l1")!.offset...].prefix(64)))

        // Without a prefix the whole model is the target: a PyTorch model whose head is called "fc".
        let n = try model(hidden: 4)
        var renamed = try SafetensorsFile(bytes: try n.store.serialized())
        for name in ["weight", "bias"] {
            renamed.tensors["fc." + name] = renamed.tensors.removeValue(forKey: "head." + name)
        }
        let partial = try n.store.loadStateDict(renamed, strict: false)
        XCTAssertEqual(partial.missingKeys, ["head.weight", "head.bias"])
        XCTAssertEqual(partial.unexpectedKeys, ["fc.bias", "fc.weight"])
        XCTAssertEqual(partial.loadedKeys.count, 4)
        assertRefused(
            "state_dict does not match the parameters: missing head.weight, head.bias; unexpected fc.bias, fc.weight",
            try n.store.loadStateDict(renamed))
        // Stripping skips the keys without that prefix: only "fc." keys are considered, loaded into "head.".
        XCTAssertEqual(
            try n.store.loadStateDict(renamed, into: "head.", stripping: "fc."),
            StateDictLoadReport(loadedKeys: ["head.weight", "head.bias"], missingKeys: [], unexpectedKeys: []))
    }

    func testShapeMismatchesAndBadPrefixesAlwaysThrow() throws {
        let stateDict = try fixture("lstm_state_dict.safetensors")  // hidden size 4
        let m = try model(hidden: 5)
        let before = values(m.store)
        for strict in [true, false] {
            assertRefused(
                "tensor weight_ih_l0 (for lstm.weight_ih_l0) has shape [16, 3], expected [20, 3]",
                try m.store.loadStateDict(stateDict, into: "lstm.", strict: strict))
        }
        assertRefused(
            "no parameter name starts with 'decoder.'; the model has lstm.weight_ih_l0, lstm.weight_hh_l0, "
                + "lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight, head.bias",
            try m.store.loadStateDict(stateDict, into: "decoder.", strict: false))
        var nonFinite = try SafetensorsFile(bytes: try m.store.serialized())
        try nonFinite.add("head.bias", try Tensor<Float>(shape: [2], scalars: [0, .infinity]))
        assertRefused("tensor head.bias holds a non-finite value", try m.store.loadStateDict(nonFinite, strict: false))
        XCTAssertEqual(values(m.store), before, "nothing changes unless the whole load succeeds")
        assertRefused(
            "state_dict file not found: /nonexistent/x.safetensors does not exist",
            try m.store.loadStateDict(from: "/nonexistent/x.safetensors"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rk-bad-\(UUID().uuidString).safetensors"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(handWritten("BOOL", shape: [1], data: [7])).write(to: URL(fileURLWithPath: path))
        assertRefused(
            "state_dict file \(path): not a valid safetensors file: BOOL tensor t holds byte 7",
            try m.store.loadStateDict(from: path, strict: false))
        assertRefused(
            "safetensors file \(path): not a valid safetensors file", try SafetensorsFile(contentsOfFile: path))
    }

    /// Metadata of any scalars round-trips: the header is written as ASCII JSON (Foundation's parser on Linux drops a
    /// U+FEFF that starts an unescaped run of a string, e.g. a corpus path or sample prefix beginning with a BOM).
    func testMetadataOfAnyScalarsRoundTrips() throws {
        let values = [
            "\u{FEFF}starts with a BOM", "after \"quote\u{FEFF}", "é", "😀\u{10FFFF}", "\u{0}\u{FFFE}", "plain/ascii",
        ]
        var file = SafetensorsFile(
            metadata: Dictionary(uniqueKeysWithValues: values.enumerated().map { ("k\($0.offset)", $0.element) }))
        try file.add("t", Tensor<Float>(zeros: [1]))
        let bytes = try file.serialized()
        let headerLength = Int(
            bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        XCTAssertTrue(bytes[8..<(8 + headerLength)].allSatisfy { $0 < 0x80 }, "the header is ASCII")
        let read = try SafetensorsFile(bytes: bytes)
        for (i, value) in values.enumerated() {
            XCTAssertEqual(read.metadata["k\(i)"]?.unicodeScalars.map(\.value), value.unicodeScalars.map(\.value))
        }
    }
}
