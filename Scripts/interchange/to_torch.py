#!/usr/bin/env python3
"""Load a RecurrentKit checkpoint into PyTorch modules and run a text through it.

    python3 Scripts/interchange/to_torch.py runs/d2l-lstm/model.safetensors --text "the time traveller"

Builds `embedding` (optional) / `rnn` (nn.RNN / nn.GRU / nn.LSTM, with bias=False / bidirectional=True when the
model says "bias": false / "bidirectional": true) / `output` (nn.Linear(D*H, V)) from `__metadata__["model"]`,
drops the `_trainer.*` tensors and calls `load_state_dict(strict=True)`.
The text is prepared as `rnn eval` does: d2l-normalised when the vocabulary mode is d2l (pass --raw to
use the text exactly as given, e.g. when it is already normalised), then encoded one token per code point.
The whole text is run as one row and one chunk from a zero state (= `rnn eval --batch 1 --steps N` with N
at least the number of tokens). Prints the logits of the last step, the mean cross-entropy of predicting each
next token (nats) and the perplexity. `--json` prints everything (all logits) as one JSON object instead.
A bidirectional model is run the same way, with a note: its logits have seen the whole text, so the
cross-entropy is not a next-character prediction score (`rnn eval` refuses such models).

Exit status 1 with a one-line message on stderr for a bad file or text; 2 for bad arguments.
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # keep Scripts/interchange free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rk_interchange import (InterchangeError, evaluate, load_checkpoint, model_bias,  # noqa: E402
                            model_bidirectional, perplexity, prepare_and_encode)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="safetensors file written by `rnn train` or from_torch.py")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="text to run")
    src.add_argument("--text-file", help="UTF-8 file with the text to run")
    p.add_argument("--raw", action="store_true", help="do not d2l-normalise the text (use it as given)")
    p.add_argument("--json", action="store_true", help="print a JSON object (all logits, tokens, CE, perplexity)")
    args = p.parse_args(argv)
    try:
        model, cfg, vocab, metadata, dropped = load_checkpoint(args.checkpoint)
        if args.text is not None:
            text = args.text
        else:
            try:
                with open(args.text_file, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise InterchangeError("cannot read text file %s: %s" % (args.text_file, e)) from None
        prepared, tokens = prepare_and_encode(vocab, text, already_prepared=args.raw)
        if len(tokens) < 1:
            raise InterchangeError("the text has no tokens after preparation")
        logits, ce = evaluate(model, tokens)
    except InterchangeError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    import torch
    if args.json:
        json.dump({"torch": torch.__version__, "model": cfg, "vocabulary_mode": vocab["mode"],
                   "dropped_tensors": dropped, "text": prepared, "tokens": tokens,
                   "logits": [[float(v) for v in row] for row in logits.tolist()],
                   "mean_cross_entropy": ce, "perplexity": perplexity(ce)}, sys.stdout)
        print()
        return 0
    E = cfg.get("embeddingSize")
    print("model %s, %d layer(s)%s, hidden %d, vocabulary %d (%s), %s input%s; loaded with strict=True%s"
          % (cfg["cell"], cfg["numLayers"], ", bidirectional" if model_bidirectional(cfg) else "",
             cfg["hiddenSize"], cfg["vocabularySize"], vocab["mode"], "embedding %d" % E if E else "one-hot",
             "" if model_bias(cfg) else ", no recurrent biases",
             ", dropped %d _trainer.* tensor(s)" % len(dropped) if dropped else ""))
    if model_bidirectional(cfg):
        print("note: bidirectional: every step's logits have seen the whole text, so the cross-entropy below is "
              "not a next-character prediction score")
    print("tokens %d (%d predicted)" % (len(tokens), len(tokens) - 1))
    print("last-step logits " + " ".join("%.6g" % v for v in logits[-1].tolist()))
    if len(tokens) >= 2:
        print("cross-entropy %.6f nats/char" % ce)
        print("perplexity %.6f" % perplexity(ce))
    else:
        print("cross-entropy n/a (one token: nothing to predict)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
