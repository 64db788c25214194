#!/usr/bin/env python3
"""PyTorch rows matching `rnn bench`: training (forward, backward, clip, SGD) and batch-1 greedy generation.

Usage: python3 torch_bench.py [--threads N] [--seconds S] [--rows all|train|generate] [--csv]
Prints one row per line; with --csv: name,tokens_per_second.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, cell, vocab, hidden, layers, embedding):
        super().__init__()
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab, embedding) if embedding else None
        inp = embedding or vocab
        if cell == "lstm":
            self.rnn = nn.LSTM(inp, hidden, layers)
        elif cell == "gru":
            self.rnn = nn.GRU(inp, hidden, layers)
        else:
            self.rnn = nn.RNN(inp, hidden, layers, nonlinearity="tanh")
        self.output = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):  # tokens (T, B)
        x = self.embedding(tokens) if self.embedding is not None else F.one_hot(tokens, self.vocab).float()
        y, state = self.rnn(x, state)
        return self.output(y.reshape(-1, y.shape[-1])), state


def train_row(cell, hidden, batch, steps, vocab, embedding, seconds):
    torch.manual_seed(1)
    model = Model(cell, vocab, hidden, 1, embedding)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randint(0, vocab, (steps, batch))
    y = torch.randint(0, vocab, (steps * batch,))

    def update():
        opt.zero_grad()
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(2):
        update()
    n, start = 0, time.perf_counter()
    while True:
        update()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    emb = f"embedding {embedding}" if embedding else "one-hot"
    return f"train {cell} H{hidden} B{batch} T{steps} V{vocab} {emb}", n * steps * batch / elapsed


def generate_row(cell, hidden, layers, vocab, embedding, tokens, dtype=torch.float32):
    """Per-layer nn.*Cell, batch 1, greedy: PyTorch's fast path for token-by-token generation.
    With dtype=torch.bfloat16 every module and state is bf16 (the row to compare with our bf16 weights)."""
    torch.manual_seed(2)
    emb = nn.Embedding(vocab, embedding).to(dtype)
    cls = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn_tanh": nn.RNNCell}[cell]
    cells = [cls(embedding if k == 0 else hidden, hidden).to(dtype) for k in range(layers)]
    out = nn.Linear(hidden, vocab).to(dtype)
    with torch.no_grad():
        def run(n):
            h = [torch.zeros(1, hidden, dtype=dtype) for _ in range(layers)]
            c = [torch.zeros(1, hidden, dtype=dtype) for _ in range(layers)]
            token = torch.tensor([1])
            for _ in range(n):
                x = emb(token)
                for k, cell_k in enumerate(cells):
                    if cell == "lstm":
                        h[k], c[k] = cell_k(x, (h[k], c[k]))
                    else:
                        h[k] = cell_k(x, h[k])
                    x = h[k]
                token = out(x).argmax(dim=1)
        run(50)
        start = time.perf_counter()
        run(tokens)
        elapsed = time.perf_counter() - start
    suffix = " bf16" if dtype == torch.bfloat16 else ""
    return f"generate {cell} H{hidden} L{layers} V{vocab} batch 1 greedy{suffix}", tokens / elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rows", default="all", choices=["all", "train", "generate"])
    p.add_argument("--csv", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    if a.rows != "generate":
        rows.append(train_row("rnn_tanh", 512, 32, 35, 28, None, a.seconds))
        rows.append(train_row("lstm", 512, 32, 35, 28, None, a.seconds))
        rows.append(train_row("lstm", 1024, 64, 35, 65, 1024, a.seconds))
        rows.append(train_row("gru", 1024, 64, 35, 65, 1024, a.seconds))
    if a.rows != "train":
        rows.append(generate_row("lstm", 512, 2, 65, 512, 2000))
        rows.append(generate_row("gru", 512, 2, 65, 512, 2000))
        rows.append(generate_row("rnn_tanh", 512, 2, 65, 512, 2000))
        for cell in ["lstm", "gru", "rnn_tanh"]:
            rows.append(generate_row(cell, 512, 2, 65, 512, 2000, dtype=torch.bfloat16))
    if not a.csv:
        print(f"torch {torch.__version__}, threads {a.threads}")
    for name, rate in rows:
        print(f"{name},{int(rate)}" if a.csv else f"{name:58s} {int(rate):9d} tokens/s")


if __name__ == "__main__":
    main()
