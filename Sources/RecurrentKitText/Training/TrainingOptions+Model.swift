import RecurrentKit

// The one translation between a run's options and its model's configuration, both ways.

extension TrainingOptions {
    /// The language model these options build over a vocabulary of `vocabularySize` tokens: the one translation from a
    /// run's options to the model's configuration (``LanguageModelTrainer`` builds its model from it).
    public func modelConfiguration(vocabularySize: Int) -> LanguageModelConfiguration {
        LanguageModelConfiguration(
            vocabularySize: vocabularySize, cell: cell, hiddenSize: hiddenSize, numLayers: numLayers, dropout: dropout,
            embeddingSize: embeddingSize, bias: recurrentBias ?? true, projectionSize: projectionSize ?? 0)
    }

    /// Takes the model shape (cell, hidden size, layers, embedding, biases, projection) of `configuration`, e.g. the
    /// model of a checkpoint a run starts from, so that ``modelConfiguration(vocabularySize:)`` gives it back; dropout
    /// and everything else stay these options'.
    public mutating func adoptModelShape(of configuration: LanguageModelConfiguration) {
        cell = configuration.cell
        hiddenSize = configuration.hiddenSize
        numLayers = configuration.numLayers
        embeddingSize = configuration.embeddingSize
        recurrentBias = configuration.bias ? nil : false
        projectionSize = configuration.projectionSize == 0 ? nil : configuration.projectionSize
    }
}
