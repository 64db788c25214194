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


def timed(update, seconds):
    """Two warm-up calls, then calls until `seconds` have passed: (calls, elapsed seconds)."""
    for _ in range(2):
        update()
    n, start = 0, time.perf_counter()
    while True:
        update()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n, elapsed


def train_row(cell, hidden, batch, steps, vocab, embedding, seconds, autocast=False):
    """One update: forward, cross-entropy, backward, clipping, SGD. With autocast, forward and loss run under
    torch.autocast("cpu", dtype=torch.bfloat16) (float32 master weights; the mixed-precision row to compare with)."""
    torch.manual_seed(1)
    model = Model(cell, vocab, hidden, 1, embedding)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randint(0, vocab, (steps, batch))
    y = torch.randint(0, vocab, (steps * batch,))

    def update():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits, _ = model(x)
            loss = F.cross_entropy(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    n, elapsed = timed(update, seconds)
    emb = f"embedding {embedding}" if embedding else "one-hot"
    return f"train {cell} H{hidden} B{batch} T{steps} V{vocab} {emb}" + (" autocast bf16" if autocast else ""), n * steps * batch / elapsed


def d2l_scratch_row(seconds, hidden=512, batch=32, steps=35, vocab=28):
    """d2l 8.5's from-scratch RNN and train_epoch_ch8: parameters as plain tensors, one-hot input, a Python loop
    over the steps, d2l's grad_clipping(theta=1) and its sgd; the state carried between minibatches and detached."""
    torch.manual_seed(1)
    def normal(*shape):
        return (torch.randn(*shape) * 0.01).requires_grad_()
    W_xh, W_hh, b_h = normal(vocab, hidden), normal(hidden, hidden), torch.zeros(hidden, requires_grad=True)
    W_hq, b_q = normal(hidden, vocab), torch.zeros(vocab, requires_grad=True)
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    x = torch.randint(0, vocab, (batch, steps))
    y = torch.randint(0, vocab, (batch, steps))
    state = torch.zeros(batch, hidden)

    def update(state):
        state = state.detach()
        outputs = []
        for X in F.one_hot(x.T, vocab).float():  # (T, B, V): d2l's forward loop
            state = torch.tanh(X @ W_xh + state @ W_hh + b_h)
            outputs.append(state @ W_hq + b_q)
        loss = F.cross_entropy(torch.cat(outputs, dim=0), y.T.reshape(-1))
        loss.backward()
        norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))  # d2l grad_clipping
        if norm > 1:
            for p in params:
                p.grad[:] *= 1 / norm
        with torch.no_grad():  # d2l sgd (the loss is already a mean, so batch_size=1)
            for p in params:
                p -= 1 * p.grad
                p.grad.zero_()
        return state

    for _ in range(2):
        state = update(state)
    n, start = 0, time.perf_counter()
    while True:
        state = update(state)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return f"train rnn_tanh H{hidden} B{batch} T{steps} V{vocab} d2l scratch loop", n * steps * batch / elapsed


def generate_row(cell, hidden, layers, vocab, embedding, tokens, dtype=torch.float32):
    """Per-layer nn.*Cell, batch 1, greedy: PyTorch's fast path for token-by-token generation.
    With dtype=torch.bfloat16 every module and state is bf16 (the row to compare with our bf16 weights); with
    dtype="int8" the cells and the head go through torch.ao.quantization.quantize_dynamic (int8 weights, activations
    quantized on the fly; the row to compare with our int8 weights)."""
    torch.manual_seed(2)
    int8 = dtype == "int8"
    if int8:
        dtype = torch.float32
    emb = nn.Embedding(vocab, embedding).to(dtype)
    cls = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn_tanh": nn.RNNCell}[cell]
    cells = nn.ModuleList([cls(embedding if k == 0 else hidden, hidden).to(dtype) for k in range(layers)])
    out = nn.Linear(hidden, vocab).to(dtype)
    if int8:
        quantized = torch.ao.quantization.quantize_dynamic(nn.ModuleDict({"cells": cells, "out": out}),
                                                           {nn.LSTMCell, nn.GRUCell, nn.RNNCell, nn.Linear}, dtype=torch.qint8)
        cells, out = quantized["cells"], quantized["out"]
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
    suffix = " int8" if int8 else " bf16" if dtype == torch.bfloat16 else ""
    return f"generate {cell} H{hidden} L{layers} V{vocab} batch 1 greedy{suffix}", tokens / elapsed


def variable_length_row(hidden, inp, batch, packed, seconds):
    """One nn.LSTM layer on 64 dense sequences of lengths 10 + (37 b mod 91), padded to the longest: forward (through
    pack_padded_sequence(enforce_sorted=False) when `packed`), a gradient on every valid output, backward, SGD.
    Tokens count valid steps only, as `rnn bench`."""
    torch.manual_seed(1)
    lengths = [10 + (37 * b) % 91 for b in range(batch)]
    T = max(lengths)
    lstm = nn.LSTM(inp, hidden)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
    x = torch.randn(T, batch, inp)
    mask = (torch.arange(T)[:, None] < torch.tensor(lengths)[None, :]).float()[:, :, None]
    d_out = torch.randn(T, batch, hidden) * 1e-3 * mask

    def update():
        opt.zero_grad()
        if packed:
            y, _ = lstm(nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False))
            y, _ = nn.utils.rnn.pad_packed_sequence(y, total_length=T)
        else:
            y, _ = lstm(x)
        (y * d_out).sum().backward()
        opt.step()

    n, elapsed = timed(update, seconds)
    name = f"train lstm H{hidden} B{batch} I{inp} lengths 10-{T} " + ("packed" if packed else f"padded to {T}")
    return name, n * sum(lengths) / elapsed


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
        rows.append(d2l_scratch_row(a.seconds))
        rows.append(train_row("lstm", 512, 32, 35, 28, None, a.seconds))
        rows.append(train_row("lstm", 1024, 64, 35, 65, 1024, a.seconds))
        rows.append(train_row("gru", 1024, 64, 35, 65, 1024, a.seconds))
        for packed in (True, False):
            rows.append(variable_length_row(512, 128, 64, packed, a.seconds))
        # PyTorch's mixed precision (issue #17's comparison; RecurrentKit has no bf16 training rows yet).
        rows.append(train_row("rnn_tanh", 512, 32, 35, 28, None, a.seconds, autocast=True))
        rows.append(train_row("lstm", 512, 32, 35, 28, None, a.seconds, autocast=True))
        rows.append(train_row("lstm", 1024, 64, 35, 65, 1024, a.seconds, autocast=True))
        rows.append(train_row("gru", 1024, 64, 35, 65, 1024, a.seconds, autocast=True))
    if a.rows != "train":
        rows.append(generate_row("lstm", 512, 2, 65, 512, 2000))
        rows.append(generate_row("gru", 512, 2, 65, 512, 2000))
        rows.append(generate_row("rnn_tanh", 512, 2, 65, 512, 2000))
        for cell in ["lstm", "gru", "rnn_tanh"]:
            rows.append(generate_row(cell, 512, 2, 65, 512, 2000, dtype=torch.bfloat16))
        for cell in ["lstm", "gru", "rnn_tanh"]:
            rows.append(generate_row(cell, 512, 2, 65, 512, 2000, dtype="int8"))
    if not a.csv:
        print(f"torch {torch.__version__}, threads {a.threads}")
    for name, rate in rows:
        print(f"{name},{int(rate)}" if a.csv else f"{name:58s} {int(rate):9d} tokens/s")


if __name__ == "__main__":
    main()
