// A tape of layer records for models whose forward is free-form code (two inputs, a residual, an encoder and a
// decoder loop): each layer applied through the tape leaves its record, and one backward call runs the recorded
// backwards in reverse, adding the gradients of values used more than once. Not an autodiff: the layers' backwards
// are the hand-written ones; the tape only keeps their order and routes their gradients.

/// A value computed while a ``Tape`` records, and its place on the tape.
public struct Traced<Value: LayerValue> {
    /// The value.
    public let value: Value
    let slot: Int
    let tape: ObjectIdentifier
    let pass: Int
}

/// Records a forward pass made of layer calls, then backpropagates through all of them in reverse.
///
/// ```swift
/// let tape = Tape(seed: 1)
/// let x = tape.input(SequenceBatch(inputs))                     // (T, B, I)
/// let h = try tape(FinalHiddenState<Float>(), try tape(encoder, x))   // (B, H)
/// let y = try tape.adding(try tape(head, h), h)                 // a residual: head(h) + h
/// let (loss, dy) = try meanSquaredError(predictions: y.value, targets: targets)
/// parameters.zeroGradients()
/// try tape.backward(y, gradient: dy)                            // head, encoder; h's two gradients are added
/// let dx = tape.gradient(of: x)?.input                          // dL/dinputs
/// ```
///
/// A pass starts with ``reset()`` (or the first call after a backward); values of an earlier pass are refused. A
/// recurrent network (``RecurrentNetwork``) keeps one forward at a time, so apply it once per pass; a single-step
/// cell (``RecurrentCell``) may be applied any number of times, as in a decoder loop. Layers run in their own mode:
/// call ``Layer/setTraining(_:)`` on them (or ``Sequential/eval()`` on a container) as with any layer.
public final class Tape {
    /// Draws the dropout masks of the layers applied through the tape.
    public var generator: SeededGenerator
    /// Incremented by every ``reset()``: a ``Traced`` value belongs to one pass.
    public private(set) var pass = 0
    private var gradients: [Any?] = []
    private var steps: [(Tape) throws -> Void] = []
    private var finished = false

    /// An empty tape whose generator is seeded with `seed`.
    public init(seed: UInt64 = 0) { generator = SeededGenerator(seed: seed) }

    /// Starts a new pass: forgets every record and value of the previous one (their storage is kept for reuse).
    public func reset() {
        gradients.removeAll(keepingCapacity: true)
        steps.removeAll(keepingCapacity: true)
        pass &+= 1
        finished = false
    }

    /// Layer calls recorded in the current pass.
    public var recordCount: Int { steps.count }

    /// An input of the pass: a value whose gradient ``gradient(of:)`` returns after the backward.
    public func input<Value: LayerValue>(_ value: Value) -> Traced<Value> {
        if finished { reset() }
        gradients.append(nil)
        return Traced(value: value, slot: gradients.count - 1, tape: ObjectIdentifier(self), pass: pass)
    }

    /// Applies `layer` to `input` and records it.
    public func callAsFunction<L: Layer>(_ layer: L, _ input: Traced<L.Input>) throws -> Traced<L.Output> {
        try check(input)
        let (output, layerRecord) = try layer.forward(input.value, generator: &generator)
        let into = input.slot
        return record(output) { tape, dOutput in
            try tape.accumulate(try layer.backward(layerRecord, outputGradient: dOutput), into: into, as: L.Input.self)
        }
    }

    /// a + b element-wise (a residual connection); both receive the sum's gradient.
    /// - Throws: when the shapes differ.
    public func adding<Scalar: RecurrentScalar>(
        _ a: Traced<Tensor<Scalar>>, _ b: Traced<Tensor<Scalar>>
    ) throws -> Traced<Tensor<Scalar>> {
        try combine(a, b, { try Tensor.accumulate($0, $1) }, adjoint: { ($0, $0) })
    }

    /// The tensors joined along `axis` (``Tensor/concatenated(_:along:)``); the gradient is split back.
    public func concatenated<Scalar: RecurrentScalar>(
        _ tensors: [Traced<Tensor<Scalar>>], along axis: Int
    ) throws -> Traced<Tensor<Scalar>> {
        for t in tensors { try check(t) }
        let joined = try Tensor.concatenated(tensors.map(\.value), along: axis)
        let a = try joined.axis(axis, operation: "concatenated")
        let sizes = tensors.map { $0.value.shape[a] }, slots = tensors.map(\.slot)
        return record(joined) { tape, dJoined in
            for (slot, g) in zip(slots, try dJoined.split(sizes: sizes, along: a)) {
                try tape.accumulate(g, into: slot, as: Tensor<Scalar>.self)
            }
        }
    }

    /// A function of one traced value with the adjoint you give (a slice, a reshape, a scaling, picking a part):
    /// the forward computes `function(a)`, the backward calls `adjoint(dL/doutput)` for dL/da.
    public func map<A: LayerValue, V: LayerValue>(
        _ a: Traced<A>, _ function: (A) throws -> V,
        adjoint: @escaping (V.Gradient) throws -> A.Gradient
    ) throws -> Traced<V> {
        try check(a)
        let slot = a.slot
        return record(try function(a.value)) { tape, g in try tape.accumulate(try adjoint(g), into: slot, as: A.self) }
    }

    /// A function of two traced values with the adjoint you give, which returns dL/da and dL/db (nil: none).
    public func combine<A: LayerValue, B: LayerValue, V: LayerValue>(
        _ a: Traced<A>, _ b: Traced<B>, _ function: (A, B) throws -> V,
        adjoint: @escaping (V.Gradient) throws -> (A.Gradient?, B.Gradient?)
    ) throws -> Traced<V> {
        try check(a)
        try check(b)
        let (slotA, slotB) = (a.slot, b.slot)
        return record(try function(a.value, b.value)) { tape, g in
            let (ga, gb) = try adjoint(g)
            if let ga { try tape.accumulate(ga, into: slotA, as: A.self) }
            if let gb { try tape.accumulate(gb, into: slotB, as: B.self) }
        }
    }

    /// One step of `cell` from x (B, I) and the state (PyTorch `cell(x, (h, c))`; zeros when nil).
    public func callAsFunction<Scalar: RecurrentScalar>(
        _ cell: RecurrentCell<Scalar>, _ x: Traced<Tensor<Scalar>>,
        state: Traced<RecurrentState<Scalar>>?
    ) throws -> Traced<RecurrentState<Scalar>> {
        let input: Traced<CellInput<Scalar>>
        if let state {
            input = try combine(x, state, { CellInput($0, state: $1) }, adjoint: { ($0.x, $0.state) })
        } else {
            input = try map(x, { CellInput($0) }, adjoint: { $0.x })
        }
        return try self(cell, input)
    }

    /// The hidden state h of a cell's state; its gradient reaches h only.
    public func hidden<Scalar: RecurrentScalar>(
        _ state: Traced<RecurrentState<Scalar>>
    ) throws -> Traced<Tensor<Scalar>> {
        try map(state, \.h, adjoint: { RecurrentState(h: $0) })
    }

    /// A cell state from traced tensors h (B, H) and, for the LSTM, c (B, H) (zeros when nil).
    public func cellState<Scalar: RecurrentScalar>(
        h: Traced<Tensor<Scalar>>, c: Traced<Tensor<Scalar>>? = nil
    ) throws -> Traced<RecurrentState<Scalar>> {
        guard let c else { return try map(h, { RecurrentState(h: $0) }, adjoint: \.h) }
        return try combine(h, c, { RecurrentState(h: $0, c: $1) }, adjoint: { ($0.h, $0.c) })
    }

    /// Runs every recorded backward, last first, from dL/d`output`: parameter gradients are added into the layers'
    /// stores (zero them first) and every traced value's gradient is kept for ``gradient(of:)``. Values nothing
    /// reached get no gradient, and the layers that produced them are not run.
    /// - Throws: when `output` belongs to another tape or pass, or a layer's backward throws (e.g. a recurrent
    ///   network's record made stale by a second forward in the same pass).
    public func backward<Value: LayerValue>(_ output: Traced<Value>, gradient: Value.Gradient) throws {
        try check(output)
        try accumulate(gradient, into: output.slot, as: Value.self)
        for step in steps.reversed() { try step(self) }
        finished = true
    }

    /// dL/d`value` after ``backward(_:gradient:)`` (nil when nothing reached it).
    public func gradient<Value: LayerValue>(of value: Traced<Value>) -> Value.Gradient? {
        guard value.tape == ObjectIdentifier(self), value.pass == pass, value.slot < gradients.count else { return nil }
        return gradients[value.slot] as? Value.Gradient
    }

    // MARK: - Helpers

    private func check<Value>(_ value: Traced<Value>) throws {
        guard value.tape == ObjectIdentifier(self) else {
            throw RecurrentKitError("a value from another tape was given to this tape")
        }
        guard value.pass == pass, !finished else {
            throw RecurrentKitError("a value from an earlier pass was given to the tape; a pass ends with its backward")
        }
    }

    /// Records a value whose backward, given dL/dvalue, adds the inputs' gradients.
    private func record<V: LayerValue>(_ value: V, backward: @escaping (Tape, V.Gradient) throws -> Void) -> Traced<V> {
        let from = gradients.count
        gradients.append(nil)
        steps.append { tape in
            guard let g = tape.gradients[from] as? V.Gradient else { return }
            try backward(tape, g)
        }
        return Traced(value: value, slot: from, tape: ObjectIdentifier(self), pass: pass)
    }

    private func accumulate<Value: LayerValue>(_ gradient: Value.Gradient, into slot: Int, as: Value.Type) throws {
        if let earlier = gradients[slot] as? Value.Gradient {
            gradients[slot] = try Value.accumulate(earlier, gradient)
        } else {
            gradients[slot] = gradient
        }
    }
}
