/// The recurrent cell: vanilla RNN (tanh or ReLU), GRU or LSTM, with PyTorch's equations.
public enum CellKind: String, Codable, CaseIterable, Sendable {
    /// `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)` (PyTorch `nn.RNN`, the default nonlinearity).
    case rnnTanh = "rnn_tanh"
    /// `h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)` (`nn.RNN(nonlinearity='relu')`).
    case rnnReLU = "rnn_relu"
    /// `h_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`, no nonlinearity: the linear RNN of d2l 8.7 eq. (9), for analysis.
    case rnnLinear = "rnn_linear"
    /// PyTorch `nn.GRU`, gates r|z|n, `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`.
    case gru
    /// PyTorch `nn.LSTM`, gates i|f|g|o.
    case lstm

    /// Number of gate blocks G stacked along dim 0 of the weights: 1, 1, 3, 4.
    public var gateCount: Int {
        switch self {
        case .rnnTanh, .rnnReLU, .rnnLinear: return 1
        case .gru: return 3
        case .lstm: return 4
        }
    }

    /// True for the LSTM, the only cell with a memory cell state `c`.
    public var hasCellState: Bool { self == .lstm }

    /// Parses "rnn" / "rnn_tanh" / "tanh", "rnn_relu" / "relu", "rnn_linear" / "linear", "gru", "lstm"
    /// (case-insensitive).
    public init(parsing name: String) throws {
        switch name.lowercased() {
        case "rnn", "rnn_tanh", "rnn-tanh", "tanh": self = .rnnTanh
        case "rnn_relu", "rnn-relu", "relu": self = .rnnReLU
        case "rnn_linear", "rnn-linear", "linear": self = .rnnLinear
        case "gru": self = .gru
        case "lstm": self = .lstm
        default:
            throw RecurrentKitError.invalidArgument(
                "cell", "'\(name)'", "expected one of rnn_tanh, rnn_relu, rnn_linear, gru, lstm")
        }
    }

    /// The vanilla RNN for a PyTorch `nonlinearity` string: "tanh" or "relu"; anything else throws.
    public static func rnn(nonlinearity: String) throws -> CellKind {
        switch nonlinearity {
        case "tanh": return .rnnTanh
        case "relu": return .rnnReLU
        default:
            throw RecurrentKitError.invalidArgument("nonlinearity", "'\(nonlinearity)'", "expected 'tanh' or 'relu'")
        }
    }
}

/// How parameters are initialised.
public enum Initialization: String, Codable, CaseIterable, Sendable {
    /// PyTorch: every weight and bias from U(-1/sqrt(H), 1/sqrt(H)).
    case pytorch
    /// d2l's scratch models: weights from N(0, 0.01^2), biases zero.
    case d2l
    /// IRNN (Le et al. 2015): each H x H gate block of W_hh = identity, W_ih from N(0, 0.001^2), biases zero (meant for
    /// ReLU RNNs).
    case identity
    /// Orthogonal recurrent weights (Saxe et al. 2014): each H x H gate block of W_hh a random orthogonal matrix (QR of
    /// a Gaussian, signs fixed as `torch.nn.init.orthogonal_`); W_ih and biases as ``pytorch``. Other layers as
    /// ``pytorch``.
    case orthogonal
}

extension Initialization {
    /// Parses "pytorch", "d2l", "identity" or "orthogonal"; anything else throws an error naming the value.
    public init(parsing name: String) throws {
        guard let value = Initialization(rawValue: name) else {
            throw RecurrentKitError.invalidArgument(
                "initialization", "'\(name)'", "expected pytorch, d2l, identity or orthogonal")
        }
        self = value
    }
}

/// Sizes and options of a stack of recurrent layers (PyTorch `nn.RNN`/`nn.GRU`/`nn.LSTM` arguments).
public struct RecurrentConfiguration: Codable, Equatable, Sendable {
    /// Which cell every layer uses.
    public var cell: CellKind
    /// Features per input step I (>= 1); for one-hot input, the vocabulary size.
    public var inputSize: Int
    /// Hidden units per layer H (>= 1).
    public var hiddenSize: Int
    /// Stacked layers L (>= 1).
    public var numLayers: Int
    /// Dropout probability on the outputs of every layer but the last, in training only; in [0, 1). Default 0.
    public var dropout: Double
    /// Whether the layers have `bias_ih_l{k}` and `bias_hh_l{k}` (PyTorch `bias=True`, the default). Without them the
    /// pre-activations have no bias terms and the store declares no bias tensors.
    public var bias: Bool
    /// Whether every layer runs in both directions (PyTorch `bidirectional=True`): the reverse direction reads the
    /// sequence from its end, with its own parameters `*_l{k}_reverse`; outputs are (T, B, 2H), forward then reverse
    /// halves, and states (2L, B, H) in the order layer 0 forward, layer 0 reverse, layer 1 forward, ...
    public var bidirectional: Bool
    /// LSTM only: the width P of the projected hidden state (PyTorch `proj_size`; 0, the default, for none). With
    /// P > 0 every layer has `weight_hr_l{k}` (P, H) and h_t = W_hr (o * tanh(c_t)): h, the outputs and the next
    /// layer's input have width P, `weight_hh_l{k}` is (4H, P), and c keeps width H. Must be below H.
    public var projectionSize: Int

    /// Creates a configuration (validated by ``validate()`` when a network is built).
    public init(
        cell: CellKind, inputSize: Int, hiddenSize: Int, numLayers: Int = 1, dropout: Double = 0, bias: Bool = true,
        bidirectional: Bool = false, projectionSize: Int = 0
    ) {
        self.cell = cell
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
        self.bias = bias
        self.bidirectional = bidirectional
        self.projectionSize = projectionSize
    }

    private enum CodingKeys: String, CodingKey {
        case cell, inputSize, hiddenSize, numLayers, dropout, bias, bidirectional, projectionSize
    }

    /// Decodes a configuration; `bias` (true), `bidirectional` (false) and `projectionSize` (0) are optional, as in
    /// files written before they existed.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            cell: try c.decode(CellKind.self, forKey: .cell), inputSize: try c.decode(Int.self, forKey: .inputSize),
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            numLayers: try c.decode(Int.self, forKey: .numLayers),
            dropout: try c.decode(Double.self, forKey: .dropout),
            bias: try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true,
            bidirectional: try c.decodeIfPresent(Bool.self, forKey: .bidirectional) ?? false,
            projectionSize: try c.decodeIfPresent(Int.self, forKey: .projectionSize) ?? 0)
    }

    /// Encodes every field; `projectionSize` only when set, so files without a projection read as before.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cell, forKey: .cell); try c.encode(inputSize, forKey: .inputSize);
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numLayers, forKey: .numLayers); try c.encode(dropout, forKey: .dropout);
        try c.encode(bias, forKey: .bias)
        try c.encode(bidirectional, forKey: .bidirectional)
        if projectionSize != 0 { try c.encode(projectionSize, forKey: .projectionSize) }
    }

    /// Directions per layer: 2 when ``bidirectional``, else 1.
    public var directions: Int { bidirectional ? 2 : 1 }
    /// Width of the hidden state h: ``projectionSize`` when set, else H.
    public var stateSize: Int { projectionSize > 0 ? projectionSize : hiddenSize }
    /// Width of every output step: directions x ``stateSize``.
    public var outputSize: Int { directions * stateSize }
    /// Rows of the initial and final states: directions x L (h is (directions x L, B, ``stateSize``), c (directions x
    /// L, B, H)).
    public var stateLayers: Int { directions * numLayers }

    /// Throws an error naming the first invalid field and its value.
    public func validate() throws {
        guard inputSize >= 1 else {
            throw RecurrentKitError.invalidArgument("inputSize", inputSize, "must be at least 1")
        }
        guard hiddenSize >= 1 else {
            throw RecurrentKitError.invalidArgument("hiddenSize", hiddenSize, "must be at least 1")
        }
        guard numLayers >= 1 else {
            throw RecurrentKitError.invalidArgument("numLayers", numLayers, "must be at least 1")
        }
        guard dropout.isFinite, dropout >= 0, dropout < 1 else {
            throw RecurrentKitError.invalidArgument("dropout", dropout, "must be in [0, 1)")
        }
        guard projectionSize >= 0, projectionSize < hiddenSize else {
            throw RecurrentKitError.invalidArgument(
                "projectionSize", projectionSize, "must be in [0, hiddenSize) (PyTorch proj_size)")
        }
        guard projectionSize == 0 || cell == .lstm else {
            throw RecurrentKitError("projectionSize (proj_size) is defined for the LSTM only")
        }
        // Sizes whose buffers would overflow Int arithmetic or any realistic memory are refused, not trapped on.
        guard hiddenSize <= 1 << 16, inputSize <= 1 << 24, numLayers <= 1024 else {
            throw RecurrentKitError(
                "configuration too large: inputSize \(inputSize) (max 16777216), hiddenSize \(hiddenSize) (max 65536), "
                    + "numLayers \(numLayers) (max 1024)"
            )
        }
        let gateRows = cell.gateCount * hiddenSize
        let perLayer = gateRows * (max(inputSize, hiddenSize) + hiddenSize + 2)
        guard perLayer * numLayers <= 1 << 31 else {
            throw RecurrentKitError(
                "configuration too large: \(perLayer * numLayers) recurrent parameters (max 2147483648)")
        }
    }

    /// Input features of layer `k`: `inputSize` for layer 0, the output width (directions x H) above.
    public func layerInputSize(_ k: Int) -> Int { k == 0 ? inputSize : outputSize }

    /// PyTorch parameter names and shapes in `state_dict` order, each name prefixed by `prefix`.
    public func declareParameters(prefix: String = "", into layout: inout ParameterLayout) {
        declareParameters(prefix: prefix, into: &layout, naming: .layers)
    }

    /// As ``declareParameters(prefix:into:)`` with the names of `naming`.
    func declareParameters(prefix: String, into layout: inout ParameterLayout, naming: ParameterNaming) {
        let rows = cell.gateCount * hiddenSize
        for k in 0..<numLayers {
            for reverse in bidirectional ? [false, true] : [false] {
                let suffix = naming.suffix(layer: k, reverse: reverse)
                layout.append("\(prefix)weight_ih\(suffix)", shape: [rows, layerInputSize(k)])
                layout.append("\(prefix)weight_hh\(suffix)", shape: [rows, stateSize])
                if bias {
                    layout.append("\(prefix)bias_ih\(suffix)", shape: [rows])
                    layout.append("\(prefix)bias_hh\(suffix)", shape: [rows])
                }
                if projectionSize > 0 {
                    layout.append("\(prefix)weight_hr\(suffix)", shape: [projectionSize, hiddenSize])
                }
            }
        }
    }
}

/// How a stack names its parameters' layer suffix.
enum ParameterNaming: Equatable {
    /// `_l{k}`, and `_l{k}_reverse` for the reverse direction (`nn.RNN`/`nn.GRU`/`nn.LSTM`).
    case layers
    /// No suffix (`nn.RNNCell`/`nn.GRUCell`/`nn.LSTMCell`; one layer, one direction).
    case cell
    /// One direction of one layer of a bidirectional stack: its single layer is named as layer `layer` of the stack.
    case direction(layer: Int, reverse: Bool)

    /// The suffix of layer `k` (direction `reverse`) under this naming.
    func suffix(layer k: Int, reverse: Bool) -> String {
        switch self {
        case .layers: return "_l\(k)" + (reverse ? "_reverse" : "")
        case .cell: return ""
        case .direction(let layer, let r): return "_l\(layer)" + (r ? "_reverse" : "")
        }
    }
}
