#!/usr/bin/env python3
"""Write the PyTorch-made checkpoint fixtures for Tests/RecurrentKitTests/InterchangeTests.swift, and check the
other direction (a checkpoint written by `rnn train` loaded into PyTorch) with the Swift CLI.

    python3 Scripts/interchange/make_fixtures.py              # fixtures + self-checks + CLI round trip
    python3 Scripts/interchange/make_fixtures.py --skip-cli   # fixtures + self-checks only (no Swift toolchain)

For every case it writes, into Tests/RecurrentKitTests/Fixtures/interchange/:
  NAME.safetensors  a checkpoint written by from_torch.py's code (seeded default PyTorch init + 30 SGD steps)
  NAME.json         {"text", "tokens", "logits" [T][V] (float32 values from torch in float32, zero initial state,
                     one row), "mean_cross_entropy" (F.cross_entropy of logits[0..T-2] vs tokens[1..T-1], nats),
                     "perplexity", plus the case description (with "bias": false / "bidirectional": true
                     only when set) and the torch version}

Then it re-reads every fixture through to_torch.py's loader and checks the logits are reproduced bit for bit,
checks that malformed files are rejected with a one-line message, and (unless --skip-cli) builds the `rnn` CLI,
trains a small LSTM with it, loads that checkpoint with to_torch.py (strict=True) and compares torch's perplexity
with `rnn eval --batch 1 --steps 1000` on the same text; it also runs `rnn eval` on every fixture except the
bidirectional ones (`rnn eval` refuses a model that reads the future, d2l 9.4; their stored logits, from a zero
initial state over the whole text, are still well defined and are checked by InterchangeTests).
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

sys.dont_write_bytecode = True  # keep Scripts/interchange free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import rk_safetensors  # noqa: E402
from from_torch import make  # noqa: E402
from rk_interchange import (REPO_ROOT, InterchangeError, evaluate, load_checkpoint, perplexity,  # noqa: E402
                            prepare_and_encode, save_checkpoint)

FIXTURES = os.path.join(REPO_ROOT, "Tests", "RecurrentKitTests", "Fixtures", "interchange")
TEXT = "the time traveller for so it will be convenient to speak of him"
RAW_TEXT = "The Time Traveller (for so it will be convenient to speak of him)"
SCRATCH = os.path.join(REPO_ROOT, ".build-interchange")
MAX_FIXTURE_BYTES = 30_000

NO_BIAS = {"bias": False}
BIDIRECTIONAL = {"bidirectional": True}

# name, cell, layers, hidden, embedding, vocabulary mode, options (non-default "bias" / "bidirectional")
CASES = [
    ("rnn_tanh_l1", "rnn_tanh", 1, 8, 0, "d2l", {}),
    ("rnn_relu_l2", "rnn_relu", 2, 8, 0, "d2l", {}),
    ("gru_l3", "gru", 3, 6, 0, "d2l", {}),
    ("lstm_l1", "lstm", 1, 10, 0, "d2l", {}),
    ("lstm_l2_emb8", "lstm", 2, 8, 8, "d2l", {}),
    ("gru_l1_emb6", "gru", 1, 12, 6, "d2l", {}),
    ("rnn_tanh_l3", "rnn_tanh", 3, 6, 0, "d2l", {}),
    ("rnn_relu_l1_raw", "rnn_relu", 1, 8, 0, "raw", {}),  # raw-mode vocabulary: sorted characters of RAW_TEXT
    ("gru_l2_bidirectional", "gru", 2, 6, 0, "d2l", BIDIRECTIONAL),
    ("lstm_l1_nobias", "lstm", 1, 8, 0, "d2l", NO_BIAS),
    ("lstm_l2_emb8_bidirectional_nobias", "lstm", 2, 8, 8, "d2l", dict(BIDIRECTIONAL, **NO_BIAS)),
    ("lstm_l2_proj4", "lstm", 2, 8, 0, "d2l", {"projectionSize": 4}),  # PyTorch proj_size: h of width 4, c of width 8
    ("lstm_l2_emb8_bidirectional_proj4", "lstm", 2, 8, 8, "d2l", dict(BIDIRECTIONAL, projectionSize=4)),
]


def is_bidirectional(fixture):
    return fixture["case"].get("bidirectional", False)


def seed_for(name):
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def f32(x):
    """A float32 value as the Python float of its shortest round-tripping decimal form (so the JSON stays small):
    float32(float(result)) == float32(x) exactly."""
    (v,) = struct.unpack("<f", struct.pack("<f", x))
    for digits in range(6, 10):
        short = float("%.*g" % (digits, v))
        if struct.unpack("<f", struct.pack("<f", short))[0] == v:
            return short
    return v


def write_fixtures(tmp):
    os.makedirs(FIXTURES, exist_ok=True)
    raw_file = os.path.join(tmp, "raw.txt")
    with open(raw_file, "w", encoding="utf-8") as f:
        f.write(RAW_TEXT)
    written = []
    for name, cell, layers, hidden, emb, mode, options in CASES:
        seed = seed_for(name)
        bias, bidirectional = options.get("bias", True), options.get("bidirectional", False)
        proj = options.get("projectionSize", 0)
        model, cfg, vocab, losses = make(cell, layers, hidden, emb, mode, raw_file if mode == "raw" else None,
                                         seed=seed, train_steps=30, lr=1.0, bias=bias, bidirectional=bidirectional, proj_size=proj)
        ckpt = os.path.join(FIXTURES, name + ".safetensors")
        save_checkpoint(ckpt, model, cfg, vocab)
        text = TEXT if mode == "d2l" else RAW_TEXT
        prepared, tokens = prepare_and_encode(vocab, text)
        assert prepared == text, "fixture text must already be prepared"
        logits, ce = evaluate(model, tokens)
        if not torch.isfinite(logits).all():
            raise SystemExit("%s: non-finite logits" % name)
        case = {"cell": cell, "numLayers": layers, "hiddenSize": hidden, "embeddingSize": emb or None}
        if not bias:
            case["bias"] = False  # only when not the default, so the older fixtures stay byte-identical
        if bidirectional:
            case["bidirectional"] = True
        if proj:
            case["projectionSize"] = proj
        case.update({"vocabularyMode": mode, "seed": seed, "sgdSteps": len(losses)})
        fixture = {
            "generator": "Scripts/interchange/make_fixtures.py",
            "torch": torch.__version__,
            "case": case,
            "checkpoint": name + ".safetensors",
            "text": text,
            "tokens": tokens,
            "logits": [[f32(v) for v in row] for row in logits.tolist()],
            "mean_cross_entropy": ce,
            "perplexity": perplexity(ce),
        }
        with open(os.path.join(FIXTURES, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(fixture, f, separators=(",", ":"))
            f.write("\n")
        size = os.path.getsize(ckpt)
        if size > MAX_FIXTURE_BYTES:
            raise SystemExit("%s is %d bytes (limit %d)" % (ckpt, size, MAX_FIXTURE_BYTES))
        written.append((name, ckpt, text, fixture))
        print("wrote %-33s %6d bytes  %s L=%d H=%d%s V=%d%s%s  CE %.6f  ppl %.4f"
              % (name, size, cell, layers, hidden, " E=%d" % emb if emb else "", cfg["vocabularySize"],
                 " bidirectional" if bidirectional else "", " no-bias" if not bias else "", ce, perplexity(ce)))
        if proj:
            print("    (projection %d)" % proj)
    return written


def check_reload(written):
    """to_torch's loader reproduces the stored logits exactly."""
    for name, ckpt, text, fixture in written:
        model, cfg, vocab, meta, dropped = load_checkpoint(ckpt)
        _, tokens = prepare_and_encode(vocab, text)
        assert tokens == fixture["tokens"], name
        logits, ce = evaluate(model, tokens)
        diff = (logits - torch.tensor(fixture["logits"], dtype=torch.float32)).abs().max().item()  # stored as shortest f32 decimals
        assert diff == 0.0 and ce == fixture["mean_cross_entropy"], (name, diff)
    print("reload through to_torch: all %d fixtures reproduce their logits exactly" % len(written))


def fixture_path(written, name):
    return next(path for n, path, _, _ in written if n == name)


def edited_model(meta, edit):
    """A copy of `meta` whose "model" JSON has been changed by `edit(cfg)`."""
    m = dict(meta)
    cfg = json.loads(m["model"])
    edit(cfg)
    m["model"] = json.dumps(cfg)
    return m


def check_bad_files(tmp, written):
    """Malformed or unsupported files give one-line errors from to_torch.py (exit status 1)."""
    good = written[0][1]
    blob = open(good, "rb").read()
    tensors, meta = rk_safetensors.parse(blob)
    cases = {}
    cases["truncated"] = blob[:-4]
    cases["short"] = blob[:5]
    cases["huge header"] = struct.pack("<Q", 1 << 40) + blob[8:]
    cases["not json"] = blob[:8] + b"{" * (len(blob[8:8 + struct.unpack("<Q", blob[:8])[0]])) + blob[8 + struct.unpack("<Q", blob[:8])[0]:]
    m = edited_model(meta, lambda cfg: cfg.__setitem__("cell", "rnn_linear"))
    cases["rnn_linear"] = rk_safetensors.serialize(tensors, m)
    m = dict(meta)
    m["format"] = "something.else"
    cases["wrong format"] = rk_safetensors.serialize(tensors, m)
    t = dict(tensors)
    del t["output.bias"]
    cases["missing tensor"] = rk_safetensors.serialize(t, meta)
    t = dict(tensors)
    t["rnn.weight_ih_l9"] = tensors["output.bias"]
    cases["extra tensor"] = rk_safetensors.serialize(t, meta)
    t = dict(tensors)
    e = tensors["output.bias"]
    t["output.bias"] = rk_safetensors.Entry("F32", [e.count - 1], e.data[:-4])
    cases["wrong shape"] = rk_safetensors.serialize(t, meta)
    t = dict(tensors)
    t["output.bias"] = rk_safetensors.Entry("F32", e.shape, struct.pack("<f", float("nan")) + e.data[4:])
    cases["nan"] = rk_safetensors.serialize(t, meta)
    m = dict(meta)
    m["vocabulary"] = json.dumps({"mode": "d2l", "tokens": ["<unk>", "a"]})
    cases["vocabulary size"] = rk_safetensors.serialize(tensors, m)
    # overlapping ranges: hand-edit the header so two tensors share bytes
    hlen = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + hlen])
    names = sorted(k for k in header if k != "__metadata__")
    header[names[1]]["data_offsets"] = header[names[0]]["data_offsets"]
    header[names[1]]["shape"] = header[names[0]]["shape"]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    cases["overlap"] = struct.pack("<Q", len(text)) + text + blob[8 + hlen:]
    # the optional "bias" / "bidirectional" fields
    for key, value in (("bidirectional", "yes"), ("bias", 0), ("bias", None)):
        m = edited_model(meta, lambda cfg: cfg.__setitem__(key, value))
        cases["%s %s" % (key, json.dumps(value))] = rk_safetensors.serialize(tensors, m)
    bi_tensors, bi_meta = rk_safetensors.parse(open(fixture_path(written, "gru_l2_bidirectional"), "rb").read())
    t = dict(bi_tensors)
    del t["rnn.weight_hh_l1_reverse"]
    cases["no reverse tensor"] = rk_safetensors.serialize(t, bi_meta)
    m = edited_model(bi_meta, lambda cfg: cfg.pop("bidirectional"))
    cases["not bidirectional"] = rk_safetensors.serialize(bi_tensors, m)  # *_reverse tensors left over
    t = dict(bi_tensors)
    e = bi_tensors["output.weight"]
    t["output.weight"] = rk_safetensors.Entry("F32", [e.shape[0], e.shape[1] // 2], e.data[:len(e.data) // 2])
    cases["head (V, H)"] = rk_safetensors.serialize(t, bi_meta)  # a bidirectional head is nn.Linear(2H, V)
    nb_tensors, nb_meta = rk_safetensors.parse(open(fixture_path(written, "lstm_l1_nobias"), "rb").read())
    t = dict(nb_tensors)
    e = nb_tensors["rnn.weight_hh_l0"]
    t["rnn.bias_ih_l0"] = rk_safetensors.Entry("F32", [e.shape[0]], e.data[:4 * e.shape[0]])
    cases["bias in no-bias"] = rk_safetensors.serialize(t, nb_meta)
    m = edited_model(nb_meta, lambda cfg: cfg.pop("bias"))
    cases["biases missing"] = rk_safetensors.serialize(nb_tensors, m)
    # LSTM projections (proj_size): the width must be in [0, hiddenSize), and weight_hr must be there
    pj_tensors, pj_meta = rk_safetensors.parse(open(fixture_path(written, "lstm_l2_proj4"), "rb").read())
    for value in (8, -1, "4"):
        m = edited_model(pj_meta, lambda cfg: cfg.__setitem__("projectionSize", value))
        cases["projection %s" % json.dumps(value)] = rk_safetensors.serialize(pj_tensors, m)
    t = dict(pj_tensors)
    del t["rnn.weight_hr_l1"]
    cases["no weight_hr"] = rk_safetensors.serialize(t, pj_meta)
    m = edited_model(pj_meta, lambda cfg: cfg.pop("projectionSize"))
    cases["projection missing"] = rk_safetensors.serialize(pj_tensors, m)
    for label, data in cases.items():
        path = os.path.join(tmp, "bad.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        r = subprocess.run([sys.executable, os.path.join(HERE, "to_torch.py"), path, "--text", TEXT],
                           capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        ok = r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ")
        print("  bad file %-20s -> exit %d  %s" % (label, r.returncode, lines[-1] if lines else "(no message)"))
        if not ok:
            raise SystemExit("to_torch.py did not reject the %s file with a one-line message" % label)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("command failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout[-2000:], r.stderr[-4000:]))
    return r.stdout


def rnn_eval_perplexity(rnn, ckpt, text_file):
    out = run([rnn, "eval", "--checkpoint", ckpt, "--text", text_file, "--batch", "1", "--steps", "1000"])
    ce = float(re.search(r"cross-entropy ([0-9.]+)", out).group(1))
    ppl = float(re.search(r"perplexity ([0-9.]+)", out).group(1))
    return ce, ppl


def cli_round_trip(tmp, written):
    print("building the rnn CLI (swift build -c release --product rnn --scratch-path %s) ..." % SCRATCH)
    run(["swift", "build", "-c", "release", "--product", "rnn", "--scratch-path", SCRATCH], cwd=REPO_ROOT)
    rnn = os.path.join(SCRATCH, "release", "rnn")
    text_file = os.path.join(tmp, "text.txt")
    with open(text_file, "w", encoding="utf-8") as f:
        f.write(TEXT + "\n")
    worst = 0.0

    # Swift -> torch: a checkpoint written by `rnn train`.
    out_dir = os.path.join(tmp, "ix")
    run([rnn, "train", "--preset", "d2l-lstm", "--hidden", "16", "--layers", "2", "--epochs", "2", "--output", out_dir])
    ckpt = os.path.join(out_dir, "model.safetensors")
    tensors, meta = rk_safetensors.read(ckpt)
    print("rnn train wrote %s: model %s; tensors %s" % (ckpt, meta["model"], ", ".join(sorted(tensors))))
    human = run([sys.executable, os.path.join(HERE, "to_torch.py"), ckpt, "--text-file", text_file])
    print("to_torch.py output:\n  " + human.strip().replace("\n", "\n  "))
    res = json.loads(run([sys.executable, os.path.join(HERE, "to_torch.py"), ckpt, "--text-file", text_file, "--json"]))
    ce, ppl = rnn_eval_perplexity(rnn, ckpt, text_file)
    diff = abs(ppl - res["perplexity"])
    print("Swift-trained LSTM on %r: torch CE %.6f ppl %.6f | rnn eval CE %.4f ppl %.4f | |ppl diff| %.2e"
          % (TEXT, res["mean_cross_entropy"], res["perplexity"], ce, ppl, diff))
    if diff > 5e-5 + 1e-4 * ppl:
        raise SystemExit("torch and rnn eval disagree on the Swift-trained checkpoint")

    # torch -> Swift CLI: every fixture through `rnn eval`, except the bidirectional ones (`rnn eval` refuses a
    # model that reads the future: it cannot be scored as a next-character predictor, d2l 9.4).
    for name, path, text, fixture in written:
        if is_bidirectional(fixture):
            print("  rnn eval %-33s skipped (bidirectional)" % name)
            continue
        tf = os.path.join(tmp, name + ".txt")
        with open(tf, "w", encoding="utf-8") as f:
            f.write(text)
        ce, ppl = rnn_eval_perplexity(rnn, path, tf)
        diff = abs(ppl - fixture["perplexity"])
        worst = max(worst, diff / fixture["perplexity"])
        print("  rnn eval %-33s ppl %.4f vs torch %.6f  |diff| %.2e" % (name, ppl, fixture["perplexity"], diff))
        if diff > 5e-5 + 1e-4 * ppl:
            raise SystemExit("rnn eval disagrees with torch on %s" % name)
    print("rnn eval agrees with torch on every unidirectional fixture (worst relative perplexity difference %.2e)"
          % worst)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--skip-cli", action="store_true", help="skip the Swift CLI round trip")
    args = p.parse_args()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="rk-interchange-")
    try:
        written = write_fixtures(tmp)
        check_reload(written)
        print("malformed files:")
        check_bad_files(tmp, written)
        if not args.skip_cli:
            cli_round_trip(tmp, written)
    except InterchangeError as e:
        raise SystemExit("error: %s" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
