#!/usr/bin/env python3
"""Build (and briefly train) a PyTorch character model and write it as a RecurrentKit checkpoint.

    python3 Scripts/interchange/from_torch.py --cell lstm --layers 2 --hidden 16 --vocab-mode d2l --out model.safetensors
    rnn eval --checkpoint model.safetensors        # or rnn sample / rnn train --resume-free use in Swift

The module is `embedding` (nn.Embedding(V, E), only with --embedding E) / `rnn` (nn.RNN tanh|relu, nn.GRU,
nn.LSTM; time-major; bias=False with --no-bias, bidirectional=True with --bidirectional) / `output`
(nn.Linear(D*H, V), D = 2 when bidirectional), created after `torch.manual_seed(--seed)` with PyTorch's
default initialisation. With --train-steps N > 0 (default 30) it then takes N SGD steps (gradient norm clipped
to 1) on random windows of the training text, so the weights are not just the initialisation.

Vocabulary: --vocab-mode d2l uses d2l 0.17's vocabulary of The Time Machine (28 tokens: <unk>, ' ', e, t, a, ...;
recomputed from the text and checked) and trains on the first 10,000 d2l-normalised characters;
--vocab-mode raw uses the sorted distinct characters of --text-file and trains on that text.

Written: F32 tensors under the state_dict names, `__metadata__` = {"format": "recurrentkit.checkpoint.v1",
"model": {...}, "vocabulary": {"mode", "tokens"}}; "model" has "bias": false / "bidirectional": true only when
set (read from the module's `rnn`, so your own module converts the same way:
`rk_interchange.save_checkpoint(path, module, None, vocab)`). No "training" entry (RecurrentKit reads that as its own
resume state) and no `_trainer.*` tensors, so the file can be evaluated, sampled or fine-tuned from scratch.
A bidirectional model reads the future, so `rnn eval` refuses it as a next-character predictor (d2l 9.4); the
SGD steps here train it on the same next-character loss anyway (it then learns to look ahead).
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep Scripts/interchange free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rk_interchange import (CELLS, InterchangeError, build_model, config_from_module, d2l_normalize,  # noqa: E402
                            describe_model, encode, raw_vocabulary, save_checkpoint, time_machine_text,
                            time_machine_vocabulary)


def train(model, tokens, steps, lr, seed, batch=8, window=20):
    """`steps` SGD steps of mean next-token cross-entropy on random windows (no state carried)."""
    import torch
    import torch.nn.functional as F
    if steps <= 0:
        return []
    if len(tokens) < window + 2:
        raise InterchangeError("training text has %d tokens; need at least %d" % (len(tokens), window + 2))
    data = torch.tensor(tokens, dtype=torch.int64)
    g = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        starts = torch.randint(0, len(tokens) - window - 1, (batch,), generator=g)
        x = torch.stack([data[s:s + window] for s in starts], dim=1)         # (T, B)
        y = torch.stack([data[s + 1:s + window + 1] for s in starts], dim=1)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def make(cell, layers, hidden, embedding, vocab_mode, text_file=None, dropout=0.0, seed=0, train_steps=30, lr=1.0,
         bias=True, bidirectional=False, proj_size=0):
    """Returns (model, cfg, vocab, losses). `cfg` has "bias"/"bidirectional"/"projectionSize" only when not the default."""
    import torch
    if vocab_mode == "d2l":
        vocab = time_machine_vocabulary()
        corpus = d2l_normalize(time_machine_text())[:10000]
        if text_file:
            with open(text_file, encoding="utf-8") as f:
                corpus = d2l_normalize(f.read())
    elif vocab_mode == "raw":
        if not text_file:
            raise InterchangeError("--vocab-mode raw needs --text-file (its sorted characters are the vocabulary)")
        with open(text_file, encoding="utf-8") as f:
            corpus = f.read()
        vocab = raw_vocabulary(corpus)
        if not vocab["tokens"]:
            raise InterchangeError("--text-file is empty")
    else:
        raise InterchangeError("unknown vocabulary mode %r" % vocab_mode)
    cfg = {"cell": cell, "dropout": dropout, "hiddenSize": hidden, "numLayers": layers,
           "vocabularySize": len(vocab["tokens"])}
    if embedding:
        cfg["embeddingSize"] = embedding
    if not bias:
        cfg["bias"] = False
    if bidirectional:
        cfg["bidirectional"] = True
    if proj_size:
        cfg["projectionSize"] = proj_size
    torch.manual_seed(seed)
    model = build_model(cfg)
    if config_from_module(model, dropout=dropout) != cfg:  # the options as a user's module would carry them
        raise InterchangeError("internal: module configuration %r differs from %r" % (config_from_module(model), cfg))
    losses = train(model, encode(vocab, corpus), train_steps, lr, seed)
    return model, cfg, vocab, losses


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", choices=CELLS, required=True)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--embedding", type=int, default=0, help="embedding width E (0 = one-hot input)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout between layers (stored in the config)")
    p.add_argument("--no-bias", action="store_true", help="recurrent layers without biases (PyTorch bias=False)")
    p.add_argument("--bidirectional", action="store_true",
                   help="bidirectional recurrent layers (PyTorch bidirectional=True; `rnn eval` refuses these)")
    p.add_argument("--proj-size", type=int, default=0, help="LSTM projection width (PyTorch proj_size, 0 = none)")
    p.add_argument("--vocab-mode", choices=("d2l", "raw"), default="d2l")
    p.add_argument("--text-file", help="raw mode: vocabulary and training text; d2l mode: training text (default The Time Machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-steps", type=int, default=30, help="SGD steps before writing (0 = initialisation only)")
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.layers < 1 or args.hidden < 1 or args.embedding < 0 or not (0 <= args.dropout < 1):
        p.error("--layers and --hidden must be >= 1, --embedding >= 0, --dropout in [0, 1)")
    try:
        model, cfg, vocab, losses = make(args.cell, args.layers, args.hidden, args.embedding, args.vocab_mode,
                                         args.text_file, args.dropout, args.seed, args.train_steps, args.lr,
                                         bias=not args.no_bias, bidirectional=args.bidirectional, proj_size=args.proj_size)
        save_checkpoint(args.out, model, cfg, vocab)
    except (InterchangeError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    msg = "wrote %s: %s L=%d H=%d V=%d%s" % (args.out, cfg["cell"], cfg["numLayers"], cfg["hiddenSize"],
                                           cfg["vocabularySize"], " E=%d" % args.embedding if args.embedding else "")
    if args.bidirectional or args.no_bias or args.proj_size:
        msg += " (%s)" % describe_model(cfg).split(", ", 1)[1]
    if losses:
        msg += ", %d SGD steps, loss %.4f -> %.4f" % (len(losses), losses[0], losses[-1])
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
