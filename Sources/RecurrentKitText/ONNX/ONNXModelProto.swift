import Foundation
import RecurrentKit

// The parts of an ONNX ModelProto the importer (ONNXImport.swift) reads: nodes, tensors, the graph and the file,
// each decoded from protobuf with every size and field checked.

struct ONNXNode {
    let op: String, name: String
    let inputs: [String], outputs: [String]
    /// Each attribute's encoded AttributeProto, a view into the file's bytes: decoded when it is read, so a file
    /// costs no more memory than its bytes whatever attributes its nodes carry.
    private let attributeBytes: [String: ArraySlice<UInt8>]
    /// Attributes one node may carry (an ONNX RNN, GRU or LSTM node has at most 9).
    static let maximumAttributes = 64

    init(_ bytes: ArraySlice<UInt8>, index: Int) throws {
        var reader = ProtobufReader(bytes)
        var op = "", name = "", inputs: [String] = [], outputs: [String] = [],
            attributes: [String: ArraySlice<UInt8>] = [:]
        while let f = try reader.next() {
            switch f.number {
            case 1: inputs.append(try f.string("node input name"))
            case 2: outputs.append(try f.string("node output name"))
            case 3: name = try f.string("node name")
            case 4: op = try f.string("op_type")
            case 7:
                let domain = try f.string("node domain")
                guard domain.isEmpty || domain == "ai.onnx" else {
                    throw onnxError("node \(index) uses operator domain \(domain)")
                }
            case 5:
                // Checked now (well-formed, named, at most 2^16 fields), decoded when read.
                let bytes = try f.bytes("attribute")
                var a = ProtobufReader(bytes)
                var attributeName: String? = nil, count = 0
                while let field = try a.next() {
                    count += 1
                    guard count <= 1 << 16 else {
                        throw onnxError("an attribute of node \(index) has more than 65536 fields")
                    }
                    if field.number == 1, attributeName == nil { attributeName = try field.string("attribute name") }
                }
                guard let attributeName else { throw onnxError("an attribute of node \(index) has no name") }
                guard attributes.count < ONNXNode.maximumAttributes || attributes[attributeName] != nil else {
                    throw onnxError("node \(index) has more than \(ONNXNode.maximumAttributes) attributes")
                }
                attributes[attributeName] = bytes
            default: break
            }
            guard inputs.count <= 64, outputs.count <= 64 else {
                throw onnxError("node \(index) has too many inputs or outputs")
            }
        }
        guard !op.isEmpty else { throw onnxError("node \(index) has no op_type") }
        self.op = op
        self.name = name.isEmpty ? "#\(index)" : name
        self.inputs = inputs; self.outputs = outputs; self.attributeBytes = attributes
    }

    /// Whether the node has the attribute `key`.
    func hasAttribute(_ key: String) -> Bool { attributeBytes[key] != nil }

    /// The fields of attribute `key`, decoded from the file's bytes, or nil when absent.
    func attributeFields(_ key: String) throws -> [ProtobufField]? {
        guard let bytes = attributeBytes[key] else { return nil }
        var reader = ProtobufReader(bytes)
        return try reader.fields(maximumCount: 1 << 16)
    }

    /// An INT attribute (field i), or nil when absent.
    func int(_ key: String) throws -> Int? {
        guard let fields = try attributeFields(key) else { return nil }
        guard let f = fields.first(where: { $0.number == 3 }) else {
            throw onnxError("node \(name): attribute \(key) is not an integer")
        }
        return try f.int("attribute \(key)")
    }

    /// A STRING attribute (field s), or nil when absent.
    func string(_ key: String) throws -> String? {
        guard let fields = try attributeFields(key) else { return nil }
        guard let f = fields.first(where: { $0.number == 4 }) else {
            throw onnxError("node \(name): attribute \(key) is not a string")
        }
        return try f.string("attribute \(key)")
    }

    /// A TENSOR attribute (field t), or nil when absent.
    func tensor(_ key: String) throws -> ONNXTensor? {
        guard let fields = try attributeFields(key) else { return nil }
        guard let f = fields.first(where: { $0.number == 5 }) else {
            throw onnxError("node \(name): attribute \(key) is not a tensor")
        }
        var tensorName = "\(name).\(key)"
        return try ONNXTensor(try f.bytes("attribute \(key)"), name: &tensorName)
    }

    /// The value a Constant node produces, or the fill value of a ConstantOfShape node (0 by default); nil for other
    /// operators and for values that are not numbers.
    func constantValue() throws -> ONNXTensor? {
        switch op {
        case "ConstantOfShape":
            return try tensor("value") ?? ONNXTensor(scalar: 0)
        case "Constant":
            if hasAttribute("sparse_value") { throw onnxError("node \(name): sparse constants are not supported") }
            if let t = try tensor("value") { return t }
            if let fields = try attributeFields("value_float") {
                guard let f = fields.first(where: { $0.number == 2 }) else {
                    throw onnxError("node \(name): value_float is not a float")
                }
                return ONNXTensor(scalar: try f.float("attribute value_float"))
            }
            if let fields = try attributeFields("value_floats") {
                var values: [Float] = []
                for f in fields where f.number == 7 {
                    switch f.value {
                    case .fixed32(let v): values.append(Float(bitPattern: v))
                    case .bytes(let b):
                        guard b.count % 4 == 0 else {
                            throw onnxError("node \(name): value_floats has \(b.count) bytes")
                        }
                        values += littleEndianFloats(b)
                    default: throw onnxError("node \(name): value_floats is not a list of floats")
                    }
                }
                return ONNXTensor(floats: values)
            }
            if let i = try int("value_int") { return ONNXTensor(int64s: [i], shape: []) }
            if let fields = try attributeFields("value_ints") {
                let values = try fields.filter { $0.number == 8 }.flatMap { try $0.ints("attribute value_ints") }
                return ONNXTensor(int64s: values, shape: [values.count])
            }
            return nil
        default:
            return nil
        }
    }

    /// The inputs whose values flow into the outputs (the data, not the indices, shapes or axes): every input of a
    /// Concat, the first of the other plumbing operators, none for Shape, Constant and ConstantOfShape (their outputs
    /// do not depend on any input's values).
    var dataInputs: [String] {
        switch op {
        case "Concat": return inputs.filter { !$0.isEmpty }
        case "Shape", "Constant", "ConstantOfShape": return []
        default: return inputs.first.map { $0.isEmpty ? [] : [$0] } ?? []
        }
    }

    /// A STRINGS attribute (fields strings), or nil when absent.
    func strings(_ key: String) throws -> [String]? {
        guard let fields = try attributeFields(key) else { return nil }
        return try fields.filter { $0.number == 9 }.map { try $0.string("attribute \(key)") }
    }
}

/// An initializer (or a Constant node's value): name, shape and the values of a float or int64 tensor.
struct ONNXTensor {
    let shape: [Int]
    let dataType: Int
    let floats: [Float]
    /// The values of an int64 tensor (empty for other types).
    let int64s: [Int]
    /// Whether a float or double tensor holds a NaN or infinite value.
    let hasNonFiniteValue: Bool

    init(_ bytes: ArraySlice<UInt8>, name: inout String) throws {
        var reader = ProtobufReader(bytes)
        var dims: [Int] = [], type = 0, raw: ArraySlice<UInt8>? = nil, floatData: [Float] = [], int64Data: [Int] = []
        var doubleData: [Double] = []
        // The TensorProto fields that hold values (non-empty ones): a tensor has its values in exactly one of them.
        var dataFields: [String] = []
        func holds(_ field: String) { if !dataFields.contains(field) { dataFields.append(field) } }
        while let f = try reader.next() {
            switch f.number {
            case 1: dims += try f.ints("tensor dims", maximumCount: 16)
            case 2: type = try f.int("tensor data_type")
            case 4:
                if case .bytes(let b) = f.value {
                    guard b.count % 4 == 0 else { throw onnxError("tensor float_data has \(b.count) bytes") }
                    floatData += littleEndianFloats(b)
                } else {
                    floatData.append(try f.float("tensor float_data"))
                }
                if !floatData.isEmpty { holds("float_data") }
            case 5: if case .bytes(let b) = f.value, b.isEmpty {} else { holds("int32_data") }
            case 6: holds("string_data")
            case 7:
                int64Data += try f.ints("tensor int64_data")
                if !int64Data.isEmpty { holds("int64_data") }
            case 8: name = try f.string("tensor name")
            case 9:
                raw = try f.bytes("tensor raw_data")
                if raw?.isEmpty == false { holds("raw_data") }
            case 10:
                switch f.value {
                case .fixed64(let v): doubleData.append(Double(bitPattern: v))
                case .bytes(let b):
                    guard b.count % 8 == 0 else { throw onnxError("tensor double_data has \(b.count) bytes") }
                    doubleData += littleEndianWords(b).map(Double.init(bitPattern:))
                default: throw onnxError("tensor double_data is not a list of doubles")
                }
                if !doubleData.isEmpty { holds("double_data") }
            case 11: if case .bytes(let b) = f.value, b.isEmpty {} else { holds("uint64_data") }
            case 13, 14:
                throw onnxError(
                    "tensor \(name) uses external data, which is not read (save the model with its weights inside)")
            default: break
            }
        }
        guard dataFields.count <= 1 else {
            throw onnxError(
                "tensor \(name) sets both \(dataFields[0]) and \(dataFields[1]): its values are contradictory (a "
                    + "tensor holds them in one field)"
            )
        }
        guard dims.count <= 8, dims.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 }) else {
            throw onnxError("tensor \(name) has dimensions \(dims)")
        }
        var count = 1
        for d in dims {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= 1 << 31 else { throw onnxError("tensor \(name) of shape \(dims) is too large") }
            count = p
        }
        shape = dims
        dataType = type
        /// The type's own field, or raw_data: values in another field contradict the data type.
        func requireField(_ own: String, of typeName: String) throws {
            if let other = dataFields.first, other != own, other != "raw_data" {
                throw onnxError(
                    "tensor \(name) of type \(typeName) holds its values in \(other) (expected \(own) or raw_data)")
            }
        }
        switch type {
        case TensorType.float:
            try requireField("float_data", of: "float")
            if let raw {
                guard raw.count == count * 4 else {
                    throw onnxError("tensor \(name) has \(raw.count) bytes of data for \(count) floats")
                }
                floats = littleEndianFloats(raw)
            } else {
                guard floatData.count == count else {
                    throw onnxError("tensor \(name) has \(floatData.count) floats for shape \(dims)")
                }
                floats = floatData
            }
            int64s = []
            hasNonFiniteValue = !floats.allSatisfy(\.isFinite)
        case TensorType.int64:
            try requireField("int64_data", of: "int64")
            if let raw {
                guard raw.count == count * 8 else {
                    throw onnxError("tensor \(name) has the wrong amount of int64 data")
                }
                int64s = littleEndianWords(raw).map { Int(Int64(bitPattern: $0)) }
            } else {
                guard int64Data.count == count else {
                    throw onnxError("tensor \(name) has the wrong amount of int64 data")
                }
                int64s = int64Data
            }
            floats = []
            hasNonFiniteValue = false
        case onnxDoubleType:
            try requireField("double_data", of: "double")
            let values = raw.map { littleEndianWords($0).map(Double.init(bitPattern:)) } ?? doubleData
            floats = []
            int64s = []
            hasNonFiniteValue = !values.allSatisfy(\.isFinite)
        default:
            floats = []  // other types are only ever plumbing constants; a weight of another type is refused where used
            int64s = []
            hasNonFiniteValue = false
        }
    }

    /// A one-value float tensor (a Constant's `value_float`, ConstantOfShape's default 0).
    init(scalar: Float) {
        shape = []
        dataType = TensorType.float
        floats = [scalar]
        int64s = []
        hasNonFiniteValue = !scalar.isFinite
    }

    /// A float tensor of `values` (a Constant's `value_floats`).
    init(floats values: [Float]) {
        shape = [values.count]
        dataType = TensorType.float
        floats = values
        int64s = []
        hasNonFiniteValue = !values.allSatisfy(\.isFinite)
    }

    /// An int64 tensor of `values` (a Constant's `value_int` or `value_ints`).
    init(int64s values: [Int], shape: [Int]) {
        self.shape = shape
        dataType = TensorType.int64
        floats = []
        int64s = values
        hasNonFiniteValue = false
    }

    /// The values as Doubles for a float or int64 tensor, nil for other types.
    var numbers: [Double]? {
        switch dataType {
        case TensorType.float: return floats.map(Double.init)
        case TensorType.int64: return int64s.map(Double.init)
        default: return nil
        }
    }
}

/// ONNX `TensorProto.DataType` DOUBLE.
private let onnxDoubleType = 11

/// Little-endian 64-bit words from `bytes` (a multiple of 8 bytes, checked by the caller): int64 or double bits.
private func littleEndianWords(_ bytes: ArraySlice<UInt8>) -> [UInt64] {
    var values = [UInt64]()
    values.reserveCapacity(bytes.count / 8)
    var i = bytes.startIndex
    while i + 7 < bytes.endIndex {
        var bits: UInt64 = 0
        for k in 0..<8 { bits |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
        values.append(bits)
        i += 8
    }
    return values
}

/// Little-endian IEEE floats from `bytes` (a multiple of 4 bytes, checked by the caller).
private func littleEndianFloats(_ bytes: ArraySlice<UInt8>) -> [Float] {
    var values = [Float]()
    values.reserveCapacity(bytes.count / 4)
    var i = bytes.startIndex
    while i + 3 < bytes.endIndex {
        values.append(
            Float(
                bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(
                    bytes[i + 3]) << 24))
        i += 4
    }
    return values
}

/// The graph: nodes in order, initializers by name, the names of its inputs.
struct ONNXGraph {
    var nodes: [ONNXNode] = []
    var initializers: [String: ONNXTensor] = [:]
    var graphInputs: Set<String> = []
    /// The index in `nodes` of the node that produces each value (the first, when several claim it).
    var producers: [String: Int] = [:]

    init(_ bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        while let f = try reader.next() {
            switch f.number {
            case 1:
                guard nodes.count < 100_000 else { throw onnxError("the graph has more than 100000 nodes") }
                nodes.append(try ONNXNode(try f.bytes("node"), index: nodes.count))
            case 5:
                var name = ""
                let tensor = try ONNXTensor(try f.bytes("initializer"), name: &name)
                guard initializers[name] == nil else { throw onnxError("initializer \(name) appears twice") }
                initializers[name] = tensor
            case 11:
                var r = ProtobufReader(try f.bytes("graph input"))
                if let n = try r.fields(maximumCount: 64).first(where: { $0.number == 1 }) {
                    graphInputs.insert(try n.string("input name"))
                }
            case 15: throw onnxError("sparse initializers are not supported")
            default: break
            }
        }
        for (index, node) in nodes.enumerated() {
            for output in node.outputs where producers[output] == nil { producers[output] = index }
        }
    }

    /// The constants whose values reach `value` through plumbing operators (initializers, Constant and
    /// ConstantOfShape values), each with a label for messages; a value computed by any other operator, or a graph
    /// input without an initializer, contributes none. Values in `seen` are not visited again (a shared set keeps
    /// several walks linear in the graph's size); nil when the walk visits more than `limit` values.
    func constantSources(
        of value: String, seen: inout Set<String>, limit: Int = .max
    ) throws -> [(label: String, tensor: ONNXTensor)]? {
        var sources: [(label: String, tensor: ONNXTensor)] = []
        var pending = [value], visited = 0
        while let name = pending.popLast() {
            guard seen.insert(name).inserted else { continue }
            visited += 1
            guard visited <= limit else { return nil }
            if let t = initializers[name] { sources.append(("initializer \(name)", t)); continue }
            guard let index = producers[name], ONNX.plumbing.contains(nodes[index].op) else { continue }
            let node = nodes[index]
            if let t = try node.constantValue() { sources.append(("node \(node.name) (\(node.op))", t)); continue }
            pending += node.dataInputs
        }
        return sources
    }

    /// The single constant `value` comes from through at most a few plumbing operators, or nil.
    func constant(_ value: String) throws -> (label: String, tensor: ONNXTensor)? {
        var seen: Set<String> = []
        guard let sources = try constantSources(of: value, seen: &seen, limit: 64), sources.count == 1 else {
            return nil
        }
        return sources[0]
    }

    /// The float initializer `name` used by `node`, finite, as a tensor.
    func floatInitializer(_ name: String, for node: ONNXNode) throws -> Tensor<Float> {
        guard let t = initializers[name] else {
            throw onnxError("node \(node.name) (\(node.op)): input \(name) is not a constant initializer")
        }
        guard t.dataType == TensorType.float else {
            throw onnxError("node \(node.name): initializer \(name) is not float32 (data type \(t.dataType))")
        }
        return try Tensor(shape: t.shape, scalars: t.floats)
    }
}

/// A ModelProto: its graph, opset and metadata.
struct ONNXFile {
    let graph: ONNXGraph
    var metadata: [String: String] = [:]

    init(_ bytes: ArraySlice<UInt8>) throws {
        var reader = ProtobufReader(bytes)
        var graph: ONNXGraph? = nil, opset: Int? = nil
        while let f = try reader.next() {
            switch f.number {
            case 7:
                guard graph == nil else { throw onnxError("the model has two graphs") }
                graph = try ONNXGraph(try f.bytes("graph"))
            case 8:
                var r = ProtobufReader(try f.bytes("opset_import"))
                var domain = "", version = 0
                while let o = try r.next() {
                    if o.number == 1 { domain = try o.string("opset domain") }
                    if o.number == 2 { version = try o.int("opset version") }
                }
                if domain.isEmpty || domain == "ai.onnx" { opset = version }
            case 14:
                var r = ProtobufReader(try f.bytes("metadata_props"))
                var key = "", value = ""
                while let e = try r.next() {
                    if e.number == 1 { key = try e.string("metadata key") }
                    if e.number == 2 { value = try e.string("metadata value", maximumLength: 16 << 20) }
                }
                metadata[key] = value
            default: break
            }
        }
        guard let graph else { throw onnxError("not an ONNX model: no graph (is this an ONNX file?)") }
        guard let opset else { throw onnxError("the model imports no default-domain opset") }
        guard opset >= 7, opset <= 30 else { throw onnxError("opset \(opset) is not supported (7 to 30)") }
        self.graph = graph
    }
}
