// Measuring a model with a Trainer's data: the validation loss and the mean loss of a batch source, in evaluation
// mode, summed over the processes of a data-parallel job.

extension Trainer {
    /// `a` and `b` summed over the processes (themselves with one process), without allocating.
    func collectiveSum(_ a: Double, _ b: Double = 0) throws -> (Double, Double) {
        guard reducer.processCount > 1 else { return (a, b) }
        (collective[0], collective[1]) = (a, b)
        try collective.withUnsafeMutableBufferPointer { try reducer.sum($0.baseAddress!, count: 2) }
        return (collective[0], collective[1])
    }

    /// The validation loss in evaluation mode: ``validationMeasure``'s figure, or the mean loss over the validation
    /// data (each batch weighted by its count); nil without either. The model's mode is restored afterwards; no
    /// random number is drawn.
    public func validationLoss() throws -> Double? {
        if let validationMeasure {
            model.setTraining(false)
            defer { model.setTraining(true) }
            return try validationMeasure(model)
        }
        guard let validationData else { return nil }
        return try meanLoss(on: validationData)
    }

    /// The mean loss of `source`'s first epoch in evaluation mode (each batch weighted by its count); in a
    /// data-parallel job each process measures its rows and the sums are added, so every process gets the same value.
    ///
    /// A ``StatefulLayer`` model reads the batches in order from a zero state, carrying its state across them as in
    /// training; its training state is put back afterwards.
    public func meanLoss(on source: Data) throws -> Double {
        model.setTraining(false)
        defer { model.setTraining(true) }
        var sums = [0.0, 0.0]
        var unused = SeededGenerator(seed: 0)
        defer { validationBatch = nil }  // the next validation may be far away: do not hold its memory
        func run() throws {
            for index in 0..<source.batchCount(epoch: 0) {
                let (batch, _, _) = try localBatch(source, epoch: 0, index: index, reuse: &validationBatch)
                if let stateful, index == 0 || batch.resetsState { stateful.resetCarriedState() }
                let output = try model.forward(batch.input, generator: &unused).output
                sums[0] += try loss(output, batch.target).loss * Double(batch.count)
                sums[1] += Double(batch.count)
                try stateful?.carryFinalState()
            }
        }
        if let stateful { try stateful.withCarriedStateSaved(run) } else { try run() }
        sums = try reducer.sum(sums)
        return sums[0] / max(sums[1], 1)
    }
}
