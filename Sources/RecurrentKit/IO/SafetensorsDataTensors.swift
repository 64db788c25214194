// Integer and bool tensors in safetensors files: lengths, labels, token ids and masks as PyTorch saves them, read and
// written exactly, with every conversion between integer widths checked. They are never floats: a float tensor is a
// `Tensor`, read with `SafetensorsFile.tensor(_:as:)`, and the two readers refuse each other's dtypes.

/// A dense row-major array of integers with a shape: data such as sequence lengths (B), class labels (B) or token ids
/// (T, B), as stored in a safetensors file's I8 to I64 and U8 to U64 tensors. Not a parameter: models compute with
/// ``Tensor``.
///
/// ```swift
/// var file = SafetensorsFile()
/// try file.add("lengths", IntegerTensor<Int>([5, 3, 1]))               // I64, PyTorch's default integer dtype
/// try file.add("labels", IntegerTensor<Int>([2, 0, 1]), as: .u8)      // each value checked to fit U8
/// let lengths = try file.integerTensor("lengths", as: Int32.self)     // any integer dtype, range-checked
/// ```
public struct IntegerTensor<Element: FixedWidthInteger>: Equatable, Hashable {
    /// Dimensions, outermost first; `[]` for a single value.
    public internal(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.product`.
    public var scalars: [Element]

    /// Creates a tensor; throws if a dimension is negative or `scalars.count` is not the product of `shape`.
    public init(shape: [Int], scalars: [Element]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw RecurrentKitError("tensor shape \(shape) has a negative dimension")
        }
        let count = try safetensorsElementCount(shape)
        guard count == scalars.count else {
            throw RecurrentKitError("tensor of shape \(shape) needs \(count) values, got \(scalars.count)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A one-dimensional tensor of shape (`scalars.count`).
    public init(_ scalars: [Element]) {
        shape = [scalars.count]
        self.scalars = scalars
    }

    /// Number of elements.
    public var count: Int { scalars.count }

    /// The same values as `Other`, with the same shape; throws naming the first value (and its index) that `Other`
    /// cannot represent.
    public func converted<Other: FixedWidthInteger>(to: Other.Type = Other.self) throws -> IntegerTensor<Other> {
        var values = [Other]()
        values.reserveCapacity(scalars.count)
        for (i, v) in scalars.enumerated() {
            guard let w = Other(exactly: v) else {
                throw RecurrentKitError(
                    "value \(v) at index \(safetensorsIndex(ofFlat: i, shape: shape)) is outside the range of "
                        + "\(Other.self) (\(Other.min)...\(Other.max))"
                )
            }
            values.append(w)
        }
        return try IntegerTensor<Other>(shape: shape, scalars: values)
    }
}

extension IntegerTensor: Sendable where Element: Sendable {}

/// A dense row-major array of booleans with a shape: a mask, e.g. the valid steps (T, B) of padded sequences, as
/// stored in a safetensors file's BOOL tensors (`torch.bool`).
public struct BoolTensor: Equatable, Hashable, Sendable {
    /// Dimensions, outermost first; `[]` for a single value.
    public internal(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.product`.
    public var scalars: [Bool]

    /// Creates a tensor; throws if a dimension is negative or `scalars.count` is not the product of `shape`.
    public init(shape: [Int], scalars: [Bool]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw RecurrentKitError("tensor shape \(shape) has a negative dimension")
        }
        let count = try safetensorsElementCount(shape)
        guard count == scalars.count else {
            throw RecurrentKitError("tensor of shape \(shape) needs \(count) values, got \(scalars.count)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A one-dimensional tensor of shape (`scalars.count`).
    public init(_ scalars: [Bool]) {
        shape = [scalars.count]
        self.scalars = scalars
    }

    /// Number of elements.
    public var count: Int { scalars.count }
}

extension SafetensorsFile.DType {
    /// The integer dtype of `Element`'s width and signedness (Int and Int64: I64, UInt8: U8, ...), or nil (Int128).
    static func integer<Element: FixedWidthInteger>(for _: Element.Type) -> Self? {
        switch (Element.isSigned, Element.bitWidth) {
        case (true, 8): return .i8
        case (true, 16): return .i16
        case (true, 32): return .i32
        case (true, 64): return .i64
        case (false, 8): return .u8
        case (false, 16): return .u16
        case (false, 32): return .u32
        case (false, 64): return .u64
        default: return nil
        }
    }
}

extension SafetensorsFile {
    /// Adds an integer tensor stored as `dtype`, with `tensor`'s shape.
    ///
    /// - Parameters:
    ///   - name: the tensor's name (replaces one of that name).
    ///   - tensor: the values, any shape.
    ///   - dtype: one of I8 to I64 or U8 to U64; nil (the default) stores `Element`'s own width and signedness
    ///     (`Int` and `Int64` as I64, PyTorch's `long`; `Int32` as I32; `UInt8` as U8, ...).
    /// - Throws: when `dtype` is not an integer dtype (bools are written from a ``BoolTensor``, floats from a
    ///   ``Tensor``), when `Element` has no dtype of its own and none is given, when `scalars.count` does not match
    ///   the shape, or naming the first value (and its index) that does not fit `dtype`. Nothing is added then.
    public mutating func add<Element: FixedWidthInteger>(
        _ name: String, _ tensor: IntegerTensor<Element>, as dtype: DType? = nil
    ) throws {
        guard let dtype = dtype ?? DType.integer(for: Element.self) else {
            throw RecurrentKitError(
                "\(Element.self) has no safetensors dtype of its own; pass one of I8 to I64 or U8 to U64 for "
                    + "tensor \(name)"
            )
        }
        guard dtype.isInteger else {
            throw RecurrentKitError(
                "tensor \(name) cannot be written as \(dtype.rawValue) from integers: use an integer dtype (I8 to I64, "
                    + "U8 to U64), a BoolTensor for BOOL or a Tensor for floats"
            )
        }
        guard tensor.shape.allSatisfy({ $0 >= 0 }), (try? safetensorsElementCount(tensor.shape)) == tensor.scalars.count
        else {
            throw RecurrentKitError("tensor \(name) of shape \(tensor.shape) holds \(tensor.scalars.count) values")
        }
        func encode<Target: FixedWidthInteger>(_: Target.Type) throws -> [UInt8] {
            var bytes = [UInt8]()
            bytes.reserveCapacity(tensor.scalars.count * MemoryLayout<Target>.size)
            for (i, v) in tensor.scalars.enumerated() {
                guard let t = Target(exactly: v) else {
                    throw RecurrentKitError(
                        "value \(v) at index \(safetensorsIndex(ofFlat: i, shape: tensor.shape)) of tensor \(name) "
                            + "does not fit \(dtype.rawValue) (\(Target.min)...\(Target.max))"
                    )
                }
                withUnsafeBytes(of: t.littleEndian) { bytes.append(contentsOf: $0) }
            }
            return bytes
        }
        let bytes: [UInt8]
        switch dtype {
        case .i8: bytes = try encode(Int8.self)
        case .i16: bytes = try encode(Int16.self)
        case .i32: bytes = try encode(Int32.self)
        case .i64: bytes = try encode(Int64.self)
        case .u8: bytes = try encode(UInt8.self)
        case .u16: bytes = try encode(UInt16.self)
        case .u32: bytes = try encode(UInt32.self)
        case .u64: bytes = try encode(UInt64.self)
        default: preconditionFailure("not an integer dtype")  // refused above
        }
        tensors[name] = Entry(dtype: dtype, shape: tensor.shape, bytes: bytes)
    }

    /// Adds a bool tensor stored as BOOL (one byte, 0 or 1, per element), with `tensor`'s shape.
    /// - Throws: when `scalars.count` does not match the shape.
    public mutating func add(_ name: String, _ tensor: BoolTensor) throws {
        guard tensor.shape.allSatisfy({ $0 >= 0 }), (try? safetensorsElementCount(tensor.shape)) == tensor.scalars.count
        else {
            throw RecurrentKitError("tensor \(name) of shape \(tensor.shape) holds \(tensor.scalars.count) values")
        }
        tensors[name] = Entry(dtype: .bool, shape: tensor.shape, bytes: tensor.scalars.map { $0 ? 1 : 0 })
    }

    /// The integer tensor `name` (any of I8 to I64 and U8 to U64) as `Element`, with the file's shape.
    ///
    /// ```swift
    /// let labels = try file.integerTensor("labels", as: Int.self)   // I64 (B) from torch.long
    /// ```
    /// - Throws: when it is missing, when it is a floating-point tensor (read it with ``tensor(_:as:)``) or a BOOL one
    ///   (``boolTensor(_:)``), or naming the first value (and its index) that `Element` cannot represent (a U64 above
    ///   `Int64.max` as `Int`, a negative I8 as `UInt8`, ...).
    public func integerTensor<Element: FixedWidthInteger>(
        _ name: String, as: Element.Type = Element.self
    ) throws -> IntegerTensor<Element> {
        guard let entry = tensors[name] else { throw RecurrentKitError("checkpoint has no tensor named \(name)") }
        guard entry.dtype.isInteger else {
            let reader = entry.dtype == .bool ? "boolTensor(_:)" : "tensor(_:as:)"
            throw RecurrentKitError(
                "tensor \(name) has dtype \(entry.dtype.rawValue), not an integer dtype; read it with \(reader)")
        }
        func decode<Source: FixedWidthInteger & BitwiseCopyable>(_: Source.Type) throws -> [Element] {
            let size = MemoryLayout<Source>.size, count = entry.bytes.count / size
            var values = [Element]()
            values.reserveCapacity(count)
            try entry.bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    let v = Source(littleEndian: raw.loadUnaligned(fromByteOffset: i * size, as: Source.self))
                    guard let e = Element(exactly: v) else {
                        throw RecurrentKitError(
                            "tensor \(name) (\(entry.dtype.rawValue)) holds \(v) at index "
                                + "\(safetensorsIndex(ofFlat: i, shape: entry.shape)), outside the range of "
                                + "\(Element.self) (\(Element.min)...\(Element.max))"
                        )
                    }
                    values.append(e)
                }
            }
            return values
        }
        let values: [Element]
        switch entry.dtype {
        case .i8: values = try decode(Int8.self)
        case .i16: values = try decode(Int16.self)
        case .i32: values = try decode(Int32.self)
        case .i64: values = try decode(Int64.self)
        case .u8: values = try decode(UInt8.self)
        case .u16: values = try decode(UInt16.self)
        case .u32: values = try decode(UInt32.self)
        case .u64: values = try decode(UInt64.self)
        default: preconditionFailure("not an integer dtype")  // refused above
        }
        return try IntegerTensor(shape: entry.shape, scalars: values)
    }

    /// The BOOL tensor `name`, with the file's shape.
    /// - Throws: when it is missing, or not BOOL (integers are read with ``integerTensor(_:as:)``, floats with
    ///   ``tensor(_:as:)``; a 0/1 integer mask is not taken for a bool one).
    public func boolTensor(_ name: String) throws -> BoolTensor {
        guard let entry = tensors[name] else { throw RecurrentKitError("checkpoint has no tensor named \(name)") }
        guard entry.dtype == .bool else {
            let reader = entry.dtype.isInteger ? "integerTensor(_:as:)" : "tensor(_:as:)"
            throw RecurrentKitError(
                "tensor \(name) has dtype \(entry.dtype.rawValue), not BOOL; read it with \(reader)")
        }
        var values = [Bool]()
        values.reserveCapacity(entry.bytes.count)
        for (i, byte) in entry.bytes.enumerated() {
            // Parsing refuses other bytes already; an entry is only made by parsing or `add`, so this is a guard.
            guard byte <= 1 else {
                throw RecurrentKitError(
                    "BOOL tensor \(name) holds byte \(byte) at index "
                        + "\(safetensorsIndex(ofFlat: i, shape: entry.shape)); BOOL bytes must be 0 or 1"
                )
            }
            values.append(byte == 1)
        }
        return try BoolTensor(shape: entry.shape, scalars: values)
    }
}

/// The product of `shape`, or an error when it overflows `Int`.
func safetensorsElementCount(_ shape: [Int]) throws -> Int {
    var count = 1
    for d in shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        guard !overflow else { throw RecurrentKitError("tensor shape \(shape) has too many elements") }
        count = product
    }
    return count
}

/// The row-major index of flat element `index` in `shape`.
func safetensorsIndex(ofFlat index: Int, shape: [Int]) -> [Int] {
    Tensor<Float>.multiIndex(ofFlat: index, shape: shape)
}
