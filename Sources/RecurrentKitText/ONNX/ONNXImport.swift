import Foundation
import RecurrentKit

// Reading ONNX language models: files written by ``ONNX/export(_:vocabulary:)`` and by `torch.onnx.export` from
// nn.Embedding (or one-hot rows) + nn.RNN/GRU/LSTM + nn.Linear. The recurrent operators, the embedding `Gather` and the
// head `MatMul`/`Gemm` + `Add` carry every weight; the other nodes may only be the shape plumbing such graphs use
// (Transpose, Reshape, Squeeze, Concat, ...), and anything else is refused by name. The reader is hostile-input safe:
// bounded sizes, checked shapes and counts, no external data, no trap on any byte string.

extension ONNX {
    /// The most bytes ``importLanguageModel(_:)`` reads (2 GiB, protobuf's own limit).
    public static let maximumFileBytes = Int(Int32.max)

    /// The memory ``importLanguageModel(_:)`` and saving its model take beyond a file of `count` bytes, about.
    static func bytesNeededBeyondTheFile(_ count: Int) -> Int { 5 * count }

    /// Operators allowed between the weight-carrying ones: they move or reshape values, never compute new ones.
    static let plumbing: Set<String> = [
        "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Concat", "Slice", "Shape", "Gather",
        "Constant", "ConstantOfShape", "Expand", "Identity", "Cast", "Split",
    ]

    /// A language model and, when the file carries one (files written by RecurrentKit), its vocabulary.
    /// - Throws: on a malformed file, external data, an unsupported operator (named) or attribute, or inconsistent shapes.
    public static func importLanguageModel(
        _ bytes: [UInt8]
    ) throws -> (model: LanguageModel<Float>, vocabulary: Vocabulary?) {
        guard bytes.count <= maximumFileBytes else {
            throw onnxError("file of \(bytes.count) bytes exceeds the 2 GiB protobuf limit")
        }
        // Memory known before it is spent: the values decoded from the file, the weight blocks reordered layer by
        // layer, the model and the checkpoint written from it take about 5 times the file's bytes beyond them (a
        // 198 MB file peaks at 967 MiB resident, the file included; a 788 MB one trapped under ulimit -v 4194304).
        try checkMemory(
            bytesNeededBeyondTheFile(bytes.count), for: "importing an ONNX file of \(bytes.count) bytes")
        let file = try ONNXFile(bytes[...])
        let g = file.graph
        // Every constant finite, named: weights, default states (h0, c0), one-hot values and the plumbing's constants.
        for name in g.initializers.keys.sorted() where g.initializers[name]!.hasNonFiniteValue {
            throw onnxError("initializer \(name) holds NaN or infinite values")
        }
        for node in g.nodes {
            if let value = try node.constantValue(), value.hasNonFiniteValue {
                throw onnxError("node \(node.name) (\(node.op)): its value holds NaN or infinite values")
            }
        }
        let recurrent = g.nodes.filter { ["LSTM", "GRU", "RNN"].contains($0.op) }
        guard let first = recurrent.first else { throw onnxError("the graph has no LSTM, GRU or RNN node") }
        guard recurrent.allSatisfy({ $0.op == first.op }) else {
            throw onnxError("the graph mixes \(Set(recurrent.map(\.op)).sorted().joined(separator: " and ")) nodes")
        }

        // Cell, sizes and options from the first recurrent node; every layer must agree.
        guard let H = try first.int("hidden_size") else { throw onnxError("node \(first.name) has no hidden_size") }
        guard H >= 1, H <= 1 << 16 else {
            throw onnxError("node \(first.name): hidden_size \(H) is outside [1, 65536]")
        }
        let directionName = try first.string("direction") ?? "forward"
        guard directionName == "forward" || directionName == "bidirectional" else {
            throw onnxError(
                "node \(first.name): direction \(directionName) is not supported (forward or bidirectional)")
        }
        let D = directionName == "bidirectional" ? 2 : 1
        var cell: CellKind
        switch first.op {
        case "LSTM": cell = .lstm
        case "GRU": cell = .gru
        default: cell = .rnnTanh
        }
        let G = cell.gateCount
        var bias: Bool? = nil
        var layerWeights: [(w: Tensor<Float>, r: Tensor<Float>, b: Tensor<Float>?)] = []
        for node in recurrent {
            guard try node.int("hidden_size") == H, (try node.string("direction") ?? "forward") == directionName else {
                throw onnxError(
                    "node \(node.name): every recurrent layer must have hidden_size \(H) and direction \(directionName)"
                )
            }
            for unsupported in ["clip", "activation_alpha", "activation_beta"] where node.hasAttribute(unsupported) {
                throw onnxError("node \(node.name): attribute \(unsupported) has no PyTorch equivalent")
            }
            if let coupled = try node.int("input_forget"), coupled != 0 {
                throw onnxError("node \(node.name): input_forget = 1 (coupled gates) has no PyTorch equivalent")
            }
            if let layout = try node.int("layout"), layout != 0 {
                throw onnxError("node \(node.name): layout \(layout) (batch-major) is not supported")
            }
            switch node.op {
            case "GRU":
                guard try node.int("linear_before_reset") == 1 else {
                    throw onnxError(
                        "node \(node.name): a GRU with linear_before_reset = 0 is not PyTorch's GRU (reset after "
                            + "the product)"
                    )
                }
                if let a = try node.strings("activations"),
                    a != Array(repeating: ["Sigmoid", "Tanh"], count: D).flatMap({ $0 })
                {
                    throw onnxError("node \(node.name): activations \(a) are not the GRU's sigmoid and tanh")
                }
            case "LSTM":
                if let a = try node.strings("activations"),
                    a != Array(repeating: ["Sigmoid", "Tanh", "Tanh"], count: D).flatMap({ $0 })
                {
                    throw onnxError("node \(node.name): activations \(a) are not the LSTM's sigmoid, tanh, tanh")
                }
                if node.inputs.count > 7, !node.inputs[7].isEmpty {
                    throw onnxError("node \(node.name): peephole weights P have no PyTorch equivalent")
                }
            default:
                let a = try node.strings("activations") ?? ["Tanh"]
                guard a.count == D, Set(a).count == 1, a[0] == "Tanh" || a[0] == "Relu" else {
                    throw onnxError(
                        "node \(node.name): activations \(a) (PyTorch's RNN has tanh or relu, the same in both "
                            + "directions)"
                    )
                }
                cell = a[0] == "Tanh" ? .rnnTanh : .rnnReLU
            }
            guard node.inputs.count >= 3 else {
                throw onnxError("node \(node.name) has \(node.inputs.count) inputs (needs X, W, R)")
            }
            if node.inputs.count > 4, !node.inputs[4].isEmpty, g.initializers[node.inputs[4]] != nil {
                throw onnxError("node \(node.name): a constant sequence_lens is not supported")
            }
            let w = try g.floatInitializer(node.inputs[1], for: node)
            let r = try g.floatInitializer(node.inputs[2], for: node)
            let b =
                node.inputs.count > 3 && !node.inputs[3].isEmpty
                ? try g.floatInitializer(node.inputs[3], for: node) : nil
            guard bias == nil || bias == (b != nil) else {
                throw onnxError("node \(node.name): some layers have biases and others not")
            }
            bias = b != nil
            guard w.shape.count == 3, w.shape[0] == D, w.shape[1] == G * H else {
                throw onnxError("node \(node.name): W has shape \(w.shape), expected (\(D), \(G * H), input size)")
            }
            guard r.shape == [D, G * H, H] else {
                throw onnxError("node \(node.name): R has shape \(r.shape), expected \([D, G * H, H])")
            }
            if let b, b.shape != [D, 2 * G * H] {
                throw onnxError("node \(node.name): B has shape \(b.shape), expected \([D, 2 * G * H])")
            }
            layerWeights.append((w, r, b))
        }
        let L = recurrent.count
        for k in 1..<max(L, 1) where layerWeights[k].w.shape[2] != D * H {
            throw onnxError(
                "node \(recurrent[k].name): W reads \(layerWeights[k].w.shape[2]) inputs, expected \(D * H) (the "
                    + "layer below)"
            )
        }

        // Input: embedding rows gathered from the token input, or one-hot rows.
        var embedding: Tensor<Float>? = nil
        let inputWidth = layerWeights[0].w.shape[2]
        if let gather = g.nodes.first(where: {
            $0.op == "Gather" && $0.inputs.count == 2 && g.initializers[$0.inputs[0]]?.shape.count == 2
                && g.graphInputs.contains($0.inputs[1])
        }) {
            embedding = try g.floatInitializer(gather.inputs[0], for: gather)
            guard embedding!.shape[1] == inputWidth else {
                throw onnxError(
                    "embedding \(gather.inputs[0]) has width \(embedding!.shape[1]) but the first layer reads "
                        + "\(inputWidth)"
                )
            }
        } else if !g.nodes.contains(where: { $0.op == "OneHot" }) {
            throw onnxError("found neither an embedding Gather nor a OneHot node on the token input")
        }
        let V = embedding?.shape[0] ?? inputWidth
        // One-hot rows are 0 with a 1 at the token (values [off, on] = [0, 1]), V wide; other values or widths would
        // make the file compute something else than the model imported from it.
        for node in g.nodes where node.op == "OneHot" {
            guard node.inputs.count == 3 else {
                throw onnxError(
                    "node \(node.name) (OneHot) has \(node.inputs.count) inputs (needs indices, depth, values)")
            }
            guard let values = try g.constant(node.inputs[2]), let numbers = values.tensor.numbers else {
                throw onnxError("node \(node.name) (OneHot): values \(node.inputs[2]) is not a constant of numbers")
            }
            guard numbers == [0, 1] else {
                throw onnxError(
                    "node \(node.name) (OneHot): values \(numbers) (from \(values.label)) are not [0.0, 1.0] (off, on)")
            }
            guard let depth = try g.constant(node.inputs[1]), let d = depth.tensor.numbers, d.count == 1 else {
                throw onnxError("node \(node.name) (OneHot): depth \(node.inputs[1]) is not a constant number")
            }
            guard d[0] == Double(V) else {
                throw onnxError(
                    "node \(node.name) (OneHot): depth \(d[0]) (from \(depth.label)) differs from the \(V) inputs the "
                        + "first layer reads"
                )
            }
        }
        // The initial states: a constant default (h0, c0 as initializers, or zeros made by ConstantOfShape) must be
        // zero, the state the imported model starts from; a state given at run time (a graph input) is the caller's.
        var seen: Set<String> = []
        for node in recurrent {
            for (index, role) in [(5, "initial_h"), (6, "initial_c")]
            where node.inputs.count > index && !node.inputs[index].isEmpty {
                for (label, tensor) in try g.constantSources(of: node.inputs[index], seen: &seen) ?? []
                where tensor.dataType == TensorType.float {
                    if let i = tensor.floats.firstIndex(where: { $0 != 0 }) {
                        throw onnxError(
                            "node \(node.name): \(role) comes from \(label), which is not zero (\(tensor.floats[i]) at "
                                + "index \(i)); the imported model starts from a zero state"
                        )
                    }
                }
            }
        }

        // Head: MatMul with a (D*H, V) initializer, or Gemm with (V, D*H) and transB = 1; an Add of a (V) initializer.
        var headWeight: Tensor<Float>? = nil, headBias: Tensor<Float>? = nil
        for node in g.nodes where node.op == "MatMul" || node.op == "Gemm" {
            guard node.inputs.count >= 2, let t = g.initializers[node.inputs[1]] else { continue }
            guard headWeight == nil else {
                throw onnxError("node \(node.name): a second matrix product (only one head is supported)")
            }
            let weight = try g.floatInitializer(node.inputs[1], for: node)
            if node.op == "Gemm" {
                guard try node.int("transB") == 1, weight.shape == [V, D * H] else {
                    throw onnxError("node \(node.name): Gemm head with B of shape \(t.shape)")
                }
                headWeight = weight
                if node.inputs.count > 2, !node.inputs[2].isEmpty {
                    headBias = try g.floatInitializer(node.inputs[2], for: node)
                }
            } else {
                guard weight.shape == [D * H, V] else {
                    throw onnxError("node \(node.name): head weight has shape \(weight.shape), expected \([D * H, V])")
                }
                headWeight = try Tensor(
                    shape: [V, D * H], scalars: transposed(weight.scalars, rows: D * H, columns: V))
            }
        }
        guard let headWeight else { throw onnxError("found no head (MatMul or Gemm with a weight initializer)") }
        for node in g.nodes where node.op == "Add" {
            guard let name = node.inputs.first(where: { g.initializers[$0] != nil }) else {
                throw onnxError("node \(node.name) (Add) adds no constant")
            }
            guard headBias == nil else {
                throw onnxError("node \(node.name): a second bias (only the head's is supported)")
            }
            headBias = try g.floatInitializer(name, for: node)
        }
        guard let headBias, headBias.shape == [V] else { throw onnxError("the head has no bias of shape [\(V)]") }

        // Nothing else may compute.
        let known: Set<String> = ["LSTM", "GRU", "RNN", "MatMul", "Gemm", "Add", "OneHot"]
        if let other = g.nodes.first(where: { !known.contains($0.op) && !plumbing.contains($0.op) }) {
            throw onnxError(
                "unsupported node \(other.name) (\(other.op)): only embedding/one-hot, RNN/GRU/LSTM and a linear head "
                    + "are imported"
            )
        }

        let configuration = LanguageModelConfiguration(
            vocabularySize: V, cell: cell, hiddenSize: H, numLayers: L,
            embeddingSize: embedding?.shape[1], bias: bias ?? true, bidirectional: D == 2)
        try configuration.validate()
        if let stored = file.metadata[modelKey] {
            let saved = try? JSONDecoder().decode(LanguageModelConfiguration.self, from: Data(stored.utf8))
            guard var saved else { throw onnxError("metadata \(modelKey) is not a model configuration") }
            saved.dropout = 0
            guard saved == configuration else {
                throw onnxError("metadata \(modelKey) does not match the graph's operators")
            }
        }
        // Nodes may share initializers (a tied head, or a hostile file whose 1,024 layers all name one set): the model
        // holds a copy per use. Bound what it will allocate by what the file stores, before allocating.
        let stored = g.initializers.values.reduce(0) { $0 + $1.floats.count }
        let parameterCount = configuration.parameterLayout.totalCount
        guard parameterCount <= 2 * stored + 1024 else {
            throw onnxError(
                "the graph's \(L) layer(s) of H \(H) need \(parameterCount) parameters, more than twice the \(stored) "
                    + "values the file stores: its nodes reuse initializers, which a RecurrentKit model cannot share"
            )
        }
        let model = try LanguageModel<Float>(configuration)
        if let embedding { try model.parameters.setTensor("embedding.weight", embedding) }
        // Undo ONNX's gate order: PyTorch block p sits at ONNX position order.firstIndex(of: p).
        let order = onnxGateOrder(cell), inverse = (0..<G).map { p in order.firstIndex(of: p)! }
        for k in 0..<L {
            let (w, r, b) = layerWeights[k]
            let In = w.shape[2]
            for d in 0..<D {
                let sfx = "_l\(k)" + (d == 1 ? "_reverse" : "")
                func block(_ t: Tensor<Float>, _ offset: Int, _ size: Int) -> [Float] {
                    Array(t.scalars[offset..<(offset + size)])
                }
                try model.parameters.setTensor(
                    "rnn.weight_ih" + sfx,
                    Tensor(
                        shape: [G * H, In],
                        scalars: reordered(block(w, d * G * H * In, G * H * In), order: inverse, block: H * In)))
                try model.parameters.setTensor(
                    "rnn.weight_hh" + sfx,
                    Tensor(
                        shape: [G * H, H],
                        scalars: reordered(block(r, d * G * H * H, G * H * H), order: inverse, block: H * H)))
                if let b {
                    try model.parameters.setTensor(
                        "rnn.bias_ih" + sfx,
                        Tensor(
                            shape: [G * H],
                            scalars: reordered(block(b, d * 2 * G * H, G * H), order: inverse, block: H)))
                    try model.parameters.setTensor(
                        "rnn.bias_hh" + sfx,
                        Tensor(
                            shape: [G * H],
                            scalars: reordered(block(b, d * 2 * G * H + G * H, G * H), order: inverse, block: H)))
                }
            }
        }
        try model.parameters.setTensor("output.weight", headWeight)
        try model.parameters.setTensor("output.bias", headBias)
        guard model.parameters.valuesAreFinite() else {
            throw onnxError("the file's weights hold NaN or infinite values")
        }
        var vocabulary: Vocabulary? = nil
        if let stored = file.metadata[vocabularyKey] {
            guard let v = try? JSONDecoder().decode(Vocabulary.self, from: Data(stored.utf8)) else {
                throw onnxError("metadata \(vocabularyKey) is not a vocabulary")
            }
            guard v.count == V else {
                throw onnxError("metadata \(vocabularyKey) has \(v.count) tokens but the model expects \(V)")
            }
            vocabulary = v
        }
        return (model, vocabulary)
    }
}
