#!/usr/bin/env python3
"""The PyTorch reference run of issue #18: a plain 2-layer LSTM character model on tiny Shakespeare for a fixed time.

    python3 Scripts/bench/torch_char_lstm.py [--seconds 180] [--threads 2] [--hidden 512] [--embedding 512]
                                             [--batch 64] [--steps 100] [--lr 2e-3] [--dropout 0]

Adam, gradient clipping 1, random windows, no schedule; the first 90% of the characters train, and the validation loss
is measured as `rnn eval --batch 1 --steps 1000` measures it: the last 10% read as one stream (state carried across
chunks of 1000), mean cross-entropy in nats per character. Prints updates, tokens/s and that loss.
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(REPO_ROOT, "Sources", "_RecurrentKitCorpora", "corpora", "tinyshakespeare.txt")


class CharLSTM(nn.Module):
    def __init__(self, vocab, hidden, embedding, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.rnn = nn.LSTM(embedding, hidden, num_layers=2, dropout=dropout)
        self.output = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        y, state = self.rnn(self.embedding(x), state)
        return self.output(y), state


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--embedding", type=int, default=512)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = open(CORPUS, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text], dtype=torch.int64)
    cut = int(len(data) * 0.9)
    train, val = data[:cut], data[cut:]
    model = CharLSTM(len(chars), a.hidden, a.embedding, a.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    updates, start = 0, time.perf_counter()
    model.train()
    while time.perf_counter() - start < a.seconds:
        starts = torch.randint(0, len(train) - a.steps - 1, (a.batch,))
        x = torch.stack([train[s:s + a.steps] for s in starts], dim=1)
        y = torch.stack([train[s + 1:s + a.steps + 1] for s in starts], dim=1)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        updates += 1
    elapsed = time.perf_counter() - start
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for i in range(0, len(val) - 1, 1000):
            x = val[i:min(i + 1000, len(val) - 1)].reshape(-1, 1)
            y = val[i + 1:i + 1 + len(x)].reshape(-1)
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, len(chars)), y, reduction="sum").item()
            count += len(y)
    ce = total / count
    print("torch %s, threads %d: %d updates in %.0f s, %.0f tokens/s, validation %.4f nats/char (perplexity %.3f)"
          % (torch.__version__, a.threads, updates, elapsed, updates * a.batch * a.steps / elapsed, ce, math.exp(ce)))


if __name__ == "__main__":
    main()
