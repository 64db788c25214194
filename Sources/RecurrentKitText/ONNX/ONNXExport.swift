import Foundation
import RecurrentKit

/// ONNX interchange of a ``LanguageModel``: one graph of standard operators (opset ``opset``) that ONNX Runtime and
/// other engines run, using the native `RNN`, `GRU` and `LSTM` operators.
///
/// The exported graph, for V tokens, S = directions x L state rows, R = the state width and H = the hidden size:
/// - inputs: `tokens` (T, B) int64 (T and B dynamic); `h0` (S, B, R) and, for the LSTM, `c0` (S, B, H): optional, each
///   has a (S, 1, ·) zero initializer that is broadcast to the batch, so a caller may omit them (zeros) or pass the
///   previous call's `hn` / `cn` to continue token by token;
/// - `embedding.weight` gathered by `Gather`, or one-hot rows by `OneHot`; one recurrent operator per layer (gate blocks
///   reordered to ONNX's: LSTM i|o|f|c from PyTorch's i|f|g|o, GRU z|r|h from r|z|n with `linear_before_reset = 1`,
///   which is PyTorch's GRU; `direction = bidirectional` for bidirectional layers); the head as `MatMul` + `Add`;
/// - outputs: `logits` (T, B, V), `hn` (S, B, R) and, for the LSTM, `cn` (S, B, H).
/// The model configuration and the vocabulary travel in the file's `metadata_props`, so ``importLanguageModel(_:)``
/// restores both. An LSTM projection (`proj_size`) has no ONNX operator equivalent and is refused.
public enum ONNX {
    /// The operator set the exporter writes.
    public static let opset = 14
    /// The IR version written (ONNX 1.9's, which introduced opset 14).
    public static let irVersion = 7
    /// The `metadata_props` key of the model configuration (JSON, as in checkpoints).
    public static let modelKey = "recurrentkit.model"
    /// The `metadata_props` key of the vocabulary (JSON, as in checkpoints).
    public static let vocabularyKey = "recurrentkit.vocabulary"

    /// The ONNX file (protobuf bytes) of `model`, with `vocabulary` in its metadata when given.
    /// - Throws: for a model option ONNX's operators cannot express (an LSTM projection, the linear RNN), or NaN weights.
    public static func export(_ model: LanguageModel<Float>, vocabulary: Vocabulary? = nil) throws -> [UInt8] {
        let c = model.configuration
        guard c.projectionSize == 0 else {
            throw onnxError(
                "an LSTM projection (proj_size) has no ONNX operator equivalent: ONNX's LSTM has no weight_hr; export "
                    + "a model without one"
            )
        }
        guard c.cell != .rnnLinear else {
            throw onnxError("the linear RNN has no ONNX RNN activation equivalent (ONNX RNN needs Tanh, Relu, ...)")
        }
        guard model.parameters.valuesAreFinite() else { throw onnxError("refusing to export NaN or infinite weights") }
        if let vocabulary, vocabulary.count != c.vocabularySize {
            throw onnxError("the vocabulary has \(vocabulary.count) tokens but the model expects \(c.vocabularySize)")
        }
        var graph = GraphBuilder()
        let rc = c.recurrent
        let (L, D, H, R, V) = (c.numLayers, rc.directions, c.hiddenSize, rc.stateSize, c.vocabularySize)
        let S = L * D, lstm = c.cell == .lstm
        graph.input("tokens", elementType: TensorType.int64, shape: [.named("T"), .named("B")])
        graph.input("h0", elementType: TensorType.float, shape: [.fixed(S), .named("B"), .fixed(R)])
        graph.initializer("h0", floats: [Float](repeating: 0, count: S * R), shape: [S, 1, R])
        if lstm {
            graph.input("c0", elementType: TensorType.float, shape: [.fixed(S), .named("B"), .fixed(H)])
            graph.initializer("c0", floats: [Float](repeating: 0, count: S * H), shape: [S, 1, H])
        }

        // Layer 0's input: gathered embedding rows, or one-hot rows of width V.
        if let embedding = model.embedding {
            graph.initializer(
                "embedding.weight", floats: try embedding.weight.tensor().scalars, shape: [V, embedding.dimension])
            graph.node("Gather", ["embedding.weight", "tokens"], ["x0"], [.int("axis", 0)])
        } else {
            graph.initializer("onehot.depth", ints: [V], shape: [1])
            graph.initializer("onehot.values", floats: [0, 1], shape: [2])
            graph.node("OneHot", ["tokens", "onehot.depth", "onehot.values"], ["x0"], [.int("axis", -1)])
        }
        // States broadcast from (S, 1, .) to (S, B, .): B is the tokens' second dimension.
        graph.node("Shape", ["tokens"], ["tokens.shape"])
        graph.initializer("const.1", ints: [1], shape: [1])
        graph.initializer("const.2", ints: [2], shape: [1])
        graph.initializer("const.0", ints: [0], shape: [1])
        graph.node("Slice", ["tokens.shape", "const.1", "const.2", "const.0"], ["batch"])
        graph.initializer("state.rows", ints: [S], shape: [1])
        graph.initializer("state.h.width", ints: [R], shape: [1])
        graph.node("Concat", ["state.rows", "batch", "state.h.width"], ["h0.shape"], [.int("axis", 0)])
        graph.node("Expand", ["h0", "h0.shape"], ["h0.batch"])
        if lstm {
            graph.initializer("state.c.width", ints: [H], shape: [1])
            graph.node("Concat", ["state.rows", "batch", "state.c.width"], ["c0.shape"], [.int("axis", 0)])
            graph.node("Expand", ["c0", "c0.shape"], ["c0.batch"])
        }

        let order = onnxGateOrder(c.cell), G = c.cell.gateCount
        var finalH: [String] = [], finalC: [String] = []
        graph.initializer("reshape.joined", ints: [0, 0, -1], shape: [3])
        for k in 0..<L {
            let input = "x\(k)", In = rc.layerInputSize(k)
            var w: [Float] = [], r: [Float] = [], b: [Float] = []
            for reverse in D == 2 ? [false, true] : [false] {
                w += reordered(
                    try model.recurrent.weightIH(layer: k, reverse: reverse).tensor().scalars, order: order,
                    block: H * In)
                r += reordered(
                    try model.recurrent.weightHH(layer: k, reverse: reverse).tensor().scalars, order: order,
                    block: H * R)
                if c.bias {
                    b += reordered(
                        try model.recurrent.biasIH(layer: k, reverse: reverse).tensor().scalars, order: order, block: H)
                    b += reordered(
                        try model.recurrent.biasHH(layer: k, reverse: reverse).tensor().scalars, order: order, block: H)
                }
            }
            let name = "rnn.l\(k)"
            graph.initializer("\(name).W", floats: w, shape: [D, G * H, In])
            graph.initializer("\(name).R", floats: r, shape: [D, G * H, R])
            if c.bias { graph.initializer("\(name).B", floats: b, shape: [D, 2 * G * H]) }
            graph.initializer("\(name).start", ints: [k * D], shape: [1])
            graph.initializer("\(name).end", ints: [(k + 1) * D], shape: [1])
            graph.node("Slice", ["h0.batch", "\(name).start", "\(name).end", "const.0"], ["\(name).h0"])
            var inputs = [input, "\(name).W", "\(name).R", c.bias ? "\(name).B" : "", "", "\(name).h0"]
            var outputs = ["\(name).Y", "\(name).hn"]
            var attributes: [Attribute] = [
                .int("hidden_size", H), .string("direction", D == 2 ? "bidirectional" : "forward"),
            ]
            let op: String
            switch c.cell {
            case .lstm:
                op = "LSTM"
                graph.node("Slice", ["c0.batch", "\(name).start", "\(name).end", "const.0"], ["\(name).c0"])
                inputs.append("\(name).c0")
                outputs.append("\(name).cn")
                finalC.append("\(name).cn")
            case .gru:
                op = "GRU"
                attributes.append(.int("linear_before_reset", 1))
            case .rnnTanh, .rnnReLU:
                op = "RNN"
                attributes.append(
                    .strings("activations", Array(repeating: c.cell == .rnnTanh ? "Tanh" : "Relu", count: D)))
            case .rnnLinear: throw onnxError("the linear RNN has no ONNX RNN activation equivalent")
            }
            graph.node(op, inputs, outputs, attributes)
            finalH.append("\(name).hn")
            // Y (T, D, B, H) -> (T, B, D, H) -> (T, B, D*H): the next layer's input (PyTorch's joined output).
            graph.node("Transpose", ["\(name).Y"], ["\(name).Y.t"], [.ints("perm", [0, 2, 1, 3])])
            graph.node("Reshape", ["\(name).Y.t", "reshape.joined"], ["x\(k + 1)"])
        }
        graph.node("Concat", finalH, ["hn"], [.int("axis", 0)])
        if lstm { graph.node("Concat", finalC, ["cn"], [.int("axis", 0)]) }
        // Head: logits = x W^T + b, W^T stored (D*R, V).
        let headWeight = try model.output.weight.tensor().scalars, O = rc.outputSize
        graph.initializer("output.weight.T", floats: transposed(headWeight, rows: V, columns: O), shape: [O, V])
        graph.node("MatMul", ["x\(L)", "output.weight.T"], ["logits.nobias"])
        if let bias = model.output.bias {
            graph.initializer("output.bias", floats: try bias.tensor().scalars, shape: [V])
            graph.node("Add", ["logits.nobias", "output.bias"], ["logits"])
        } else {
            graph.node("Identity", ["logits.nobias"], ["logits"])
        }
        graph.output("logits", elementType: TensorType.float, shape: [.named("T"), .named("B"), .fixed(V)])
        graph.output("hn", elementType: TensorType.float, shape: [.fixed(S), .named("B"), .fixed(R)])
        if lstm { graph.output("cn", elementType: TensorType.float, shape: [.fixed(S), .named("B"), .fixed(H)]) }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = [(modelKey, String(decoding: try encoder.encode(c), as: UTF8.self))]
        if let vocabulary {
            metadata.append((vocabularyKey, String(decoding: try encoder.encode(vocabulary), as: UTF8.self)))
        }
        var file = ProtobufWriter()
        file.int(1, irVersion)
        file.string(2, "RecurrentKit")
        file.string(3, RecurrentKitVersion.string)
        file.message(7) { graph.write(into: &$0, name: "recurrentkit_language_model") }
        file.message(8) {
            $0.string(1, ""); $0.int(2, opset)
        }
        for (key, value) in metadata {
            file.message(14) {
                $0.string(1, key); $0.string(2, value)
            }
        }
        return file.bytes
    }

    /// Writes ``export(_:vocabulary:)``'s bytes to `path` atomically.
    public static func export(_ model: LanguageModel<Float>, vocabulary: Vocabulary?, to path: String) throws {
        try writeFileAtomically(try export(model, vocabulary: vocabulary), to: path)
    }
}

/// For each ONNX gate block, the PyTorch block it comes from: LSTM i|o|f|c <- i|f|g|o, GRU z|r|h <- r|z|n.
func onnxGateOrder(_ cell: CellKind) -> [Int] {
    switch cell {
    case .lstm: return [0, 3, 1, 2]
    case .gru: return [1, 0, 2]
    case .rnnTanh, .rnnReLU, .rnnLinear: return [0]
    }
}

/// The (columns, rows) transpose of a row-major (rows, columns) matrix: the head's weight as `MatMul` reads it, and
/// back.
func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows * columns)
    for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = values[r * columns + c] } }
    return out
}

/// `values` made of gate blocks of `block` elements, the blocks taken in `order`.
func reordered(_ values: [Float], order: [Int], block: Int) -> [Float] {
    order.flatMap { values[($0 * block)..<(($0 + 1) * block)] }
}

/// ONNX `TensorProto.DataType` values.
enum TensorType {
    static let float = 1, int32 = 6, int64 = 7
}

/// A node attribute.
enum Attribute {
    case int(String, Int)
    case ints(String, [Int])
    case string(String, String)
    case strings(String, [String])

    func write(into w: inout ProtobufWriter) {
        switch self {
        case .int(let name, let value): w.string(1, name); w.int(20, 2); w.int(3, value)
        case .ints(let name, let values): w.string(1, name); w.int(20, 7); w.packedInts(8, values)
        case .string(let name, let value): w.string(1, name); w.int(20, 3); w.string(4, value)
        case .strings(let name, let values): w.string(1, name); w.int(20, 8); for v in values { w.string(9, v) }
        }
    }
}

/// One dimension of a graph input or output.
enum Dimension {
    case fixed(Int)
    case named(String)
}

/// Collects a graph's nodes, initializers, inputs and outputs in order, then writes a `GraphProto`.
struct GraphBuilder {
    private var nodes: [ProtobufWriter] = []
    private var initializers: [ProtobufWriter] = []
    private var inputs: [ProtobufWriter] = []
    private var outputs: [ProtobufWriter] = []

    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], _ attributes: [Attribute] = []) {
        var w = ProtobufWriter()
        for i in inputs { w.string(1, i) }
        for o in outputs { w.string(2, o) }
        w.string(3, "\(op.lowercased())_\(nodes.count)")
        w.string(4, op)
        for a in attributes { w.message(5) { a.write(into: &$0) } }
        nodes.append(w)
    }

    mutating func initializer(_ name: String, floats: [Float], shape: [Int]) {
        var raw: [UInt8] = []
        raw.reserveCapacity(floats.count * 4)
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        tensor(name, type: TensorType.float, shape: shape, raw: raw)
    }

    mutating func initializer(_ name: String, ints: [Int], shape: [Int]) {
        var raw: [UInt8] = []
        for v in ints { withUnsafeBytes(of: Int64(v).littleEndian) { raw.append(contentsOf: $0) } }
        tensor(name, type: TensorType.int64, shape: shape, raw: raw)
    }

    private mutating func tensor(_ name: String, type: Int, shape: [Int], raw: [UInt8]) {
        var w = ProtobufWriter()
        w.packedInts(1, shape)
        w.int(2, type)
        w.string(8, name)
        w.bytes(9, raw)
        initializers.append(w)
    }

    private func valueInfo(_ name: String, elementType: Int, shape: [Dimension]) -> ProtobufWriter {
        var w = ProtobufWriter()
        w.string(1, name)
        w.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, elementType)
                tensor.message(2) { s in
                    for d in shape {
                        s.message(1) { dim in
                            switch d {
                            case .fixed(let n): dim.int(1, n)
                            case .named(let p): dim.string(2, p)
                            }
                        }
                    }
                }
            }
        }
        return w
    }

    mutating func input(_ name: String, elementType: Int, shape: [Dimension]) {
        inputs.append(valueInfo(name, elementType: elementType, shape: shape))
    }
    mutating func output(_ name: String, elementType: Int, shape: [Dimension]) {
        outputs.append(valueInfo(name, elementType: elementType, shape: shape))
    }

    func write(into w: inout ProtobufWriter, name: String) {
        for n in nodes { w.bytes(1, n.bytes) }
        w.string(2, name)
        for t in initializers { w.bytes(5, t.bytes) }
        for i in inputs { w.bytes(11, i.bytes) }
        for o in outputs { w.bytes(12, o.bytes) }
    }
}
