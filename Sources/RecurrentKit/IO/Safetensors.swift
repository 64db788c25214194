import Foundation

/// A parsed safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
/// a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}`, then the data.
///
/// Parsing validates everything before any tensor is read: header length within bounds and the file, JSON well
/// formed, known dtypes, non-negative shapes whose byte size matches the offsets, every range inside the data,
/// no overlaps and no holes, BOOL bytes 0 or 1. A bad file gets an error naming the problem, never a trap or an
/// out-of-bounds read.
///
/// Floating-point tensors (parameters, inputs) are read and written as ``Tensor`` with ``tensor(_:as:)`` and
/// `add(_:_:as:)`; integer and bool tensors (lengths, labels, token ids, masks) as ``IntegerTensor`` and
/// ``BoolTensor`` with ``integerTensor(_:as:)`` and ``boolTensor(_:)``, never converted to or from floats:
///
/// ```swift
/// let batch = try SafetensorsFile(contentsOfFile: "batch.safetensors")   // torch.save_file({"x": ..., "lengths": ...})
/// let x: Tensor<Float> = try batch.tensor("x")                            // F32 (T, B, I)
/// let lengths = try batch.integerTensor("lengths", as: Int.self).scalars  // I64 (B), any integer dtype
/// ```
public struct SafetensorsFile: Sendable {
    /// Element types this reader understands, spelled as in the safetensors header.
    public enum DType: String, Sendable, CaseIterable {
        /// IEEE half precision.
        case f16 = "F16"
        /// bfloat16.
        case bf16 = "BF16"
        /// IEEE single precision.
        case f32 = "F32"
        /// IEEE double precision.
        case f64 = "F64"
        /// Signed 8-bit integer (`torch.int8`).
        case i8 = "I8"
        /// Signed 16-bit integer (`torch.int16`).
        case i16 = "I16"
        /// Signed 32-bit integer (`torch.int32`).
        case i32 = "I32"
        /// Signed 64-bit integer (`torch.int64`, PyTorch's `long`: lengths, labels, token ids).
        case i64 = "I64"
        /// Unsigned 8-bit integer (`torch.uint8`).
        case u8 = "U8"
        /// Unsigned 16-bit integer (`torch.uint16`).
        case u16 = "U16"
        /// Unsigned 32-bit integer (`torch.uint32`).
        case u32 = "U32"
        /// Unsigned 64-bit integer (`torch.uint64`).
        case u64 = "U64"
        /// Boolean, one byte per element that is 0 (false) or 1 (true) (`torch.bool`).
        case bool = "BOOL"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .i8, .u8, .bool: return 1
            case .f16, .bf16, .i16, .u16: return 2
            case .f32, .i32, .u32: return 4
            case .f64, .i64, .u64: return 8
            }
        }

        /// Whether this is F16, BF16, F32 or F64 (read with ``SafetensorsFile/tensor(_:as:)``).
        public var isFloatingPoint: Bool {
            switch self {
            case .f16, .bf16, .f32, .f64: return true
            default: return false
            }
        }

        /// Whether this is one of I8 to I64 or U8 to U64 (read with ``SafetensorsFile/integerTensor(_:as:)``).
        public var isInteger: Bool { !isFloatingPoint && self != .bool }
    }

    /// One tensor's description and bytes.
    public struct Entry: Sendable {
        /// Element type.
        public let dtype: DType
        /// Dimensions.
        public let shape: [Int]
        /// Little-endian element bytes, `shape.product * dtype.size` of them.
        public let bytes: [UInt8]
    }

    /// Largest header accepted (100 MB), so a hostile length cannot make us allocate gigabytes.
    public static let maximumHeaderBytes = 100_000_000

    /// Free-form string metadata (`__metadata__`).
    public var metadata: [String: String]
    /// Tensors by name.
    public var tensors: [String: Entry]

    /// An empty file.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
        tensors = [:]
    }

    /// Reads and parses the safetensors file at `path` (see ``init(bytes:maximumHeaderBytes:)``); errors name the path.
    public init(contentsOfFile path: String) throws {
        let bytes = try readFileBytes(path, what: "safetensors file")
        do { try self.init(bytes: bytes) } catch let error as RecurrentKitError {
            throw RecurrentKitError("safetensors file \(path): \(error.message)")
        }
    }

    /// Writes ``serialized()`` to `path` atomically (the previous file stays intact on any failure).
    public func write(toFile path: String) throws {
        try writeFileAtomically(try serialized(), to: path)
    }

    /// Adds a float tensor stored as `dtype` (F32 by default; F64, F16 and BF16 are rounded from the values).
    ///
    /// - Throws: when `dtype` is not floating-point (``DType/isFloatingPoint``): integer and bool data are written
    ///   from an ``IntegerTensor`` or a ``BoolTensor``, whose `add` overloads check every value.
    public mutating func add<Scalar: RecurrentScalar>(
        _ name: String, _ tensor: Tensor<Scalar>, as dtype: DType = .f32
    ) throws {
        guard dtype.isFloatingPoint else {
            throw RecurrentKitError(
                "tensor \(name): a Tensor is written as F16, BF16, F32 or F64, not \(dtype.rawValue); write integer or "
                    + "bool data from an IntegerTensor or a BoolTensor"
            )
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(tensor.count * dtype.size)
        for v in tensor.scalars {
            switch dtype {
            case .f64: withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case .f16: withUnsafeBytes(of: halfBits(Float(v)).littleEndian) { bytes.append(contentsOf: $0) }
            case .bf16:
                let bits = Float(v).bitPattern
                let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
                withUnsafeBytes(of: rounded.littleEndian) { bytes.append(contentsOf: $0) }
            case .f32: withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            default: break  // refused above
            }
        }
        tensors[name] = Entry(dtype: dtype, shape: tensor.shape, bytes: bytes)
    }

    /// The floating-point tensor `name` (F16, BF16, F32 or F64) converted to `Scalar`, with the file's shape.
    ///
    /// Throws if it is missing, or if it holds integers or bools: those are data, not values to compute with, and are
    /// read exactly with ``integerTensor(_:as:)`` or ``boolTensor(_:)``.
    public func tensor<Scalar: RecurrentScalar>(_ name: String, as: Scalar.Type = Scalar.self) throws -> Tensor<Scalar>
    {
        guard let entry = tensors[name] else { throw RecurrentKitError("checkpoint has no tensor named \(name)") }
        guard entry.dtype.isFloatingPoint else {
            let reader = entry.dtype == .bool ? "boolTensor(_:)" : "integerTensor(_:as:)"
            throw RecurrentKitError(
                "tensor \(name) has dtype \(entry.dtype.rawValue), not a floating-point dtype; read it with \(reader)")
        }
        let count = entry.shape.reduce(1, *)
        var values = [Scalar]()
        values.reserveCapacity(count)
        entry.bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                switch entry.dtype {
                case .f32:
                    values.append(
                        Scalar(
                            Float(
                                bitPattern: UInt32(
                                    littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))))
                case .f64:
                    values.append(
                        Scalar(
                            Double(
                                bitPattern: UInt64(
                                    littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))))
                case .f16:
                    values.append(
                        Scalar(
                            floatFromHalf(
                                UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))))
                case .bf16:
                    let bits =
                        UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16
                    values.append(Scalar(Float(bitPattern: bits)))
                default: break  // refused above
                }
            }
        }
        return try Tensor(shape: entry.shape, scalars: values)
    }

    /// `json` with every non-ASCII scalar written as a `\uXXXX` escape (a surrogate pair above U+FFFF). Such scalars
    /// can only stand inside strings, where the escape means the same; it keeps them intact through every JSON reader
    /// (Foundation's JSONSerialization on Linux drops a U+FEFF that starts an unescaped run of a string).
    static func asciiJSON(_ json: Foundation.Data) -> [UInt8] {
        guard json.contains(where: { $0 >= 0x80 }) else { return Array(json) }
        var out = [UInt8]()
        out.reserveCapacity(json.count + 64)
        func escape(_ unit: UInt16) {
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [0x5C, 0x75] + [12, 8, 4, 0].map { hex[Int((unit >> UInt16($0)) & 0xF)] })
        }
        for scalar in String(decoding: json, as: UTF8.self).unicodeScalars {
            if scalar.value < 0x80 { out.append(UInt8(scalar.value)); continue }
            for unit in String(scalar).utf16 { escape(unit) }
        }
        return out
    }

    /// The file's bytes: header padded with spaces to a multiple of 8, tensors in name order, no holes.
    public func serialized() throws -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let entry = tensors[name]!
            header[name] =
                [
                    "dtype": entry.dtype.rawValue, "shape": entry.shape,
                    "data_offsets": [offset, offset + entry.bytes.count],
                ] as [String: Any]
            offset += entry.bytes.count
        }
        var json = Self.asciiJSON(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for name in names { out.append(contentsOf: tensors[name]!.bytes) }
        return out
    }

    /// Parses and validates a whole file.
    public init(bytes: [UInt8], maximumHeaderBytes: Int = SafetensorsFile.maximumHeaderBytes) throws {
        func bad(_ reason: String) -> RecurrentKitError { RecurrentKitError("not a valid safetensors file: \(reason)") }
        guard bytes.count >= 8 else { throw bad("\(bytes.count) bytes, shorter than the 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(maximumHeaderBytes) else {
            throw bad("header length \(headerLength) exceeds the limit of \(maximumHeaderBytes) bytes")
        }
        guard headerLength >= 2, Int(headerLength) <= bytes.count - 8 else {
            throw bad("header length \(headerLength) does not fit in a \(bytes.count)-byte file")
        }
        let headerEnd = 8 + Int(headerLength)
        let headerBytes = Data(bytes[8..<headerEnd])
        guard String(data: headerBytes, encoding: .utf8) != nil else { throw bad("header is not UTF-8") }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: headerBytes) } catch {
            throw bad("header is not well-formed JSON")
        }
        guard let header = parsed as? [String: Any] else { throw bad("header is not a JSON object") }
        let dataCount = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        var ranges: [(name: String, begin: Int, end: Int)] = []
        var entries: [String: (DType, [Int])] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let dict = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in dict {
                    guard let s = v as? String else { throw bad("metadata value for \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw bad("entry \(name) is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw bad("tensor \(name) has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw bad(
                    "tensor \(name) has dtype \(dtypeName); supported: "
                        + "\(DType.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard let shapeValues = info["shape"] as? [Any] else { throw bad("tensor \(name) has no shape") }
            var shape: [Int] = []
            var count = 1
            for d in shapeValues {
                guard let n = exactInteger(d), n >= 0, n <= Int(Int32.max) else {
                    throw bad("tensor \(name) has an invalid dimension \(d)")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow, product <= bytes.count else {
                    throw bad("tensor \(name) with shape \(shapeValues) is larger than the file")
                }
                count = product
                shape.append(n)
            }
            guard let offsets = info["data_offsets"] as? [Any], offsets.count == 2,
                let begin = exactInteger(offsets[0]), let end = exactInteger(offsets[1])
            else {
                throw bad("tensor \(name) has no valid data_offsets")
            }
            guard begin >= 0, end >= begin, end <= dataCount else {
                throw bad("tensor \(name) data_offsets [\(begin), \(end)] fall outside the \(dataCount) data bytes")
            }
            guard end - begin == count * dtype.size else {
                throw bad(
                    "tensor \(name) has \(end - begin) bytes, but shape \(shape) of \(dtype.rawValue) needs "
                        + "\(count * dtype.size)"
                )
            }
            ranges.append((name, begin, end))
            entries[name] = (dtype, shape)
        }
        ranges.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        for r in ranges {
            guard r.begin >= position else { throw bad("tensor \(r.name) overlaps the previous tensor") }
            guard r.begin == position else { throw bad("unused bytes before tensor \(r.name)") }
            position = r.end
        }
        guard position == dataCount else { throw bad("\(dataCount - position) unused bytes after the last tensor") }
        self.metadata = metadata
        var tensors: [String: Entry] = [:]
        for r in ranges {
            let (dtype, shape) = entries[r.name]!
            let data = Array(bytes[(headerEnd + r.begin)..<(headerEnd + r.end)])
            // safetensors and PyTorch do not check BOOL bytes (torch reads 2 as True, but a C++ bool holding 2 is
            // undefined behaviour): anything but 0 and 1 is a corrupt or hostile file.
            if dtype == .bool, let i = data.firstIndex(where: { $0 > 1 }) {
                throw bad(
                    "BOOL tensor \(r.name) holds byte \(data[i]) at index "
                        + "\(safetensorsIndex(ofFlat: i, shape: shape)); BOOL bytes must be 0 or 1"
                )
            }
            tensors[r.name] = Entry(dtype: dtype, shape: shape, bytes: data)
        }
        self.tensors = tensors
    }
}

/// An integer JSON number (not fractional, not huge), or nil.
private func exactInteger(_ value: Any) -> Int? {
    guard let number = value as? NSNumber else { return nil }
    let d = number.doubleValue
    guard d.isFinite, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
    return number.intValue
}

// IEEE 754 binary16 by hand, as bfloat16 is: Swift's `Float16` is not available on every platform (macOS on x86_64).

/// The Float value of half-precision bits (exact: every half is a Float).
func floatFromHalf(_ h: UInt16) -> Float {
    let sign: Float = h & 0x8000 != 0 ? -1 : 1
    let exponent = UInt32((h >> 10) & 0x1F), mantissa = UInt32(h & 0x3FF)
    if exponent == 0 { return sign * Float(mantissa) * 0x1p-24 }  // zero and subnormals
    if exponent == 31 { return Float(bitPattern: UInt32(h & 0x8000) << 16 | 0x7F80_0000 | mantissa << 13) }  // inf, NaN
    return Float(bitPattern: UInt32(h & 0x8000) << 16 | (exponent + 112) << 23 | mantissa << 13)
}

/// Half-precision bits of `x`, rounded to nearest even (overflow to infinity), as `Float16(x)` gives.
func halfBits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    let sign = UInt16(truncatingIfNeeded: bits >> 16) & 0x8000
    if x.isNaN { return sign | 0x7E00 | UInt16(truncatingIfNeeded: (bits >> 13) & 0x3FF) }
    let magnitude = abs(x)
    if magnitude >= 65520 { return sign | 0x7C00 }  // rounds past the largest half, 65504
    if magnitude < 0x1p-14 {
        // Subnormal halves are multiples of 2^-24; scaling by 2^24 is exact, and 1024 is the smallest normal's bits.
        return sign | UInt16((magnitude * 0x1p24).rounded(.toNearestOrEven))
    }
    let exponent = (bits >> 23) & 0xFF, mantissa = bits & 0x7F_FFFF
    var half = (exponent - 112) << 10 | mantissa >> 13
    let rest = mantissa & 0x1FFF
    if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) { half += 1 }  // a carry moves into the exponent correctly
    return sign | UInt16(half)
}
