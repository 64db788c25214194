#!/usr/bin/env python3
"""ONNX fixtures and checks for `rnn export` / `rnn import` (ONNX.export / ONNX.importLanguageModel).

    pip install -r Scripts/onnx/requirements.txt      # torch, onnx, onnxruntime (pinned)
    python3 Scripts/onnx/make_fixtures.py [--rnn PATH]  # PATH: an `rnn` binary (default: builds one in .build-onnx)

Export: every checkpoint under Tests/RecurrentKitTests/Fixtures/interchange/ (every cell, 1-3 layers, one-hot and
embedding, bidirectional, no-bias) goes through `rnn export --format onnx`; `onnx.checker.check_model(full_check=True)`
must pass; ONNX Runtime runs each file on a batch of two rows, once with the default (zero) states and once with given
h0/c0, and its logits and final states are written to Fixtures/onnx/export_<name>.json, which `swift test` compares
with RecurrentKit's own forward (<= 1e-5, no ONNX Runtime needed). Models with an LSTM projection must be refused with
one line. Streaming: 200 greedy tokens generated step by step in ONNX Runtime, feeding hn/cn back, equal
`rnn sample --temperature 0`.

Import: small PyTorch models (nn.Embedding or one-hot + nn.RNN/GRU/LSTM + nn.Linear) exported by
`torch.onnx.export(..., dynamo=False)` are written to Fixtures/onnx/torch_<name>.onnx with PyTorch's logits in
torch_<name>.json; `swift test` imports them and compares (<= 1e-5). The dynamo exporter is tried too and reported.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "Scripts", "interchange"))
from rk_interchange import build_model, time_machine_vocabulary, encode  # noqa: E402

FIXTURES = os.path.join(REPO_ROOT, "Tests", "RecurrentKitTests", "Fixtures")
INTERCHANGE = os.path.join(FIXTURES, "interchange")
OUT = os.path.join(FIXTURES, "onnx")
TEXT = "the time traveller for so it will be convenient to speak of him"
STEPS = 12


def seed_for(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def f32(values):
    return [float(np.float32(v)) for v in np.asarray(values, dtype=np.float32).reshape(-1)]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # h0/c0 are initializers listed as inputs on purpose (overridable defaults)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def export_cases(rnn, tmp):
    names = sorted(f[:-len(".safetensors")] for f in os.listdir(INTERCHANGE) if f.endswith(".safetensors"))
    report = []
    for name in names:
        ckpt = os.path.join(INTERCHANGE, name + ".safetensors")
        meta = json.load(open(os.path.join(INTERCHANGE, name + ".json")))
        path = os.path.join(tmp, name + ".onnx")
        code, out, err = run([rnn, "export", "--format", "onnx", ckpt, path])
        if meta["case"].get("projectionSize"):
            lines = err.strip().splitlines()
            assert code != 0 and len(lines) == 1, (name, code, err)
            print("  export %-36s refused: %s" % (name, lines[0]))
            report.append((name, "refused"))
            continue
        assert code == 0, (name, err)
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        sess = session(path)
        lstm = meta["case"]["cell"] == "lstm"
        tokens = np.array(meta["tokens"][:STEPS], dtype=np.int64)
        batch = np.stack([tokens, tokens[::-1]], axis=1)  # (T, 2)
        doc = {"generator": "Scripts/onnx/make_fixtures.py", "onnxruntime": ort.__version__, "onnx": onnx.__version__,
               "checkpoint": name + ".safetensors", "tokens": batch.tolist()}
        outputs = [o.name for o in sess.get_outputs()]
        res = sess.run(outputs, {"tokens": batch})
        doc["default"] = {k: f32(v) for k, v in zip(outputs, res)}
        doc["shapes"] = {k: list(v.shape) for k, v in zip(outputs, res)}
        rng = np.random.default_rng(seed_for(name))
        def input_shape(name):  # h0/c0 are overridable initializers: ORT lists them apart, so read the graph
            dims = next(i for i in model.graph.input if i.name == name).type.tensor_type.shape.dim
            return [d.dim_value if d.dim_value else 2 for d in dims]
        h_shape = input_shape("h0")
        feed = {"tokens": batch, "h0": (0.5 * rng.standard_normal(h_shape)).astype(np.float32)}
        doc["h0"] = f32(feed["h0"])
        if lstm:
            c_shape = input_shape("c0")
            feed["c0"] = (0.5 * rng.standard_normal(c_shape)).astype(np.float32)
            doc["c0"] = f32(feed["c0"])
        res = sess.run(outputs, feed)
        doc["given_state"] = {k: f32(v) for k, v in zip(outputs, res)}
        with open(os.path.join(OUT, "export_%s.json" % name), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print("  export %-36s checker ok, %d nodes, %d bytes" % (name, len(model.graph.node), os.path.getsize(path)))
        report.append((name, path))
    return report


def streaming(rnn, tmp):
    """200 greedy tokens generated step by step in ONNX Runtime (hn/cn fed back as h0/c0) equal
    `rnn sample --temperature 0`, for models trained briefly by `rnn train` (so they produce varied text)."""
    prefix = "time traveller"
    runs = [("lstm", ["--preset", "d2l-lstm", "--hidden", "64", "--layers", "2", "--embedding", "16", "--epochs", "150",
                      "--optimizer", "adam", "--lr", "0.01"]),
            ("gru", ["--preset", "d2l-gru", "--hidden", "64", "--epochs", "40"]),
            ("rnn_tanh", ["--preset", "d2l-rnn", "--hidden", "64", "--epochs", "40"])]
    for name, args in runs:
        folder = os.path.join(tmp, "trained_" + name)
        code, out, err = run([rnn, "train"] + args + ["--output", folder, "--sample-every", "0"])
        assert code == 0, err
        ckpt = os.path.join(folder, "model.safetensors")
        path = os.path.join(tmp, "trained_%s.onnx" % name)
        code, out, err = run([rnn, "export", "--format", "onnx", ckpt, path])
        assert code == 0, err
        model = onnx.load(path)
        vocab = json.loads({p.key: p.value for p in model.metadata_props}["recurrentkit.vocabulary"])
        sess = session(path)
        outputs = [o.name for o in sess.get_outputs()]
        ids = encode(vocab, prefix)
        res = dict(zip(outputs, sess.run(outputs, {"tokens": np.array(ids, dtype=np.int64).reshape(-1, 1)})))
        text = ""
        for _ in range(200):
            nxt = int(np.argmax(res["logits"][-1, 0]))
            text += vocab["tokens"][nxt]
            feed = {"tokens": np.array([[nxt]], dtype=np.int64), "h0": res["hn"]}
            if "cn" in res:
                feed["c0"] = res["cn"]
            res = dict(zip(outputs, sess.run(outputs, feed)))
        code, out, err = run([rnn, "sample", "--checkpoint", ckpt, "--prefix", prefix, "--length", "200", "--temperature", "0"])
        assert code == 0, err
        ours = out.rstrip("\n").splitlines()[-1]
        same = ours == prefix + text
        print("  stream %-8s 200 tokens step by step in ONNX Runtime: %s  (%r...)"
              % (name, "identical to rnn sample --temperature 0" if same else "DIFFERENT", text[:40]))
        if not same:
            raise SystemExit("ONNX Runtime streaming differs from rnn sample for %s:\n  ort: %r\n  rnn: %r" % (name, prefix + text, ours))


IMPORT_CASES = [  # name, cell, layers, hidden, embedding, bidirectional, bias
    ("lstm_l2_emb8", "lstm", 2, 8, 8, False, True),
    ("gru_l1_emb6", "gru", 1, 10, 6, False, True),
    ("rnn_tanh_l3_emb5", "rnn_tanh", 3, 6, 5, False, True),
    ("rnn_relu_l1_onehot", "rnn_relu", 1, 7, 0, False, True),
    ("gru_l2_emb8_bidirectional", "gru", 2, 6, 8, True, True),
    ("lstm_l1_emb4_nobias", "lstm", 1, 6, 4, False, False),
]


def import_cases(rnn, tmp):
    vocab = time_machine_vocabulary()
    tokens = encode(vocab, TEXT)[:STEPS * 2]
    for name, cell, layers, hidden, emb, bidirectional, bias in IMPORT_CASES:
        cfg = {"cell": cell, "hiddenSize": hidden, "numLayers": layers, "vocabularySize": len(vocab["tokens"]), "dropout": 0}
        if emb:
            cfg["embeddingSize"] = emb
        if bidirectional:
            cfg["bidirectional"] = True
        if not bias:
            cfg["bias"] = False
        torch.manual_seed(seed_for(name))
        model = build_model(cfg).eval()

        class Logits(torch.nn.Module):  # what a user exports: tokens -> logits
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, t):
                return self.m(t)[0]

        x = torch.tensor(tokens, dtype=torch.int64).reshape(-1, 1)
        with torch.no_grad():
            expected = model(x)[0]
        path = os.path.join(OUT, "torch_%s.onnx" % name)
        torch.onnx.export(Logits(model), (x,), path, input_names=["tokens"], output_names=["logits"],  # dynamo=False
                          dynamic_axes={"tokens": {0: "T", 1: "B"}, "logits": {0: "T", 1: "B"}}, opset_version=14, dynamo=False)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        ort_logits = session(path).run(["logits"], {"tokens": x.numpy()})[0]
        worst_ort = float(np.abs(ort_logits - expected.numpy()).max())
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        doc = {"generator": "Scripts/onnx/make_fixtures.py", "torch": torch.__version__, "case": cfg, "onnx": "torch_%s.onnx" % name,
               "tokens": tokens, "logits": f32(expected.numpy()), "operators": ops}
        with open(os.path.join(OUT, "torch_%s.json" % name), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print("  import %-36s torch.onnx.export(dynamo=False): %d bytes, ops %s; ORT vs torch %.2e"
              % (name, os.path.getsize(path), ",".join(ops), worst_ort))
        code, out, err = run([rnn, "import", path, os.path.join(tmp, name + ".safetensors"), "--corpus", "timemachine", "--text-mode", "d2l"])
        assert code == 0, (name, err)
        # The dynamo exporter (torch.export + onnxscript): its graph uses the same operators here, so it is a fixture too.
        try:
            prog = torch.onnx.export(Logits(model), (x,), dynamo=True, opset_version=18, verbose=False)
        except Exception as e:  # noqa: BLE001
            print("         dynamo=True: failed (%s)" % str(e).splitlines()[0][:120])
            continue
        dpath = os.path.join(OUT, "torch_%s_dynamo.onnx" % name)
        prog.save(dpath, external_data=False)
        onnx.checker.check_model(onnx.load(dpath), full_check=True)
        worst_d = float(np.abs(session(dpath).run(None, {session(dpath).get_inputs()[0].name: x.numpy()})[0] - expected.numpy()).max())
        dops = sorted({n.op_type for n in onnx.load(dpath).graph.node})
        if not {"LSTM", "GRU", "RNN"} & set(dops):  # unrolled into elementwise operators: not the same graph
            code, out, err = run([rnn, "import", dpath, os.path.join(tmp, "x.safetensors"), "--corpus", "timemachine"])
            lines = err.strip().splitlines()
            assert code != 0 and len(lines) == 1, (name, err)
            print("         dynamo=True (opset 18): unrolled (ops %s); rnn import refuses it: %s" % (",".join(dops), lines[0]))
            os.remove(dpath)
            continue
        doc.update({"onnx": os.path.basename(dpath), "operators": dops, "exporter": "dynamo"})
        with open(os.path.join(OUT, "torch_%s_dynamo.json" % name), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print("         dynamo=True (opset 18): %d bytes, ops %s; ORT vs torch %.2e" % (os.path.getsize(dpath), ",".join(dops), worst_d))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rnn", help="path of an rnn binary (default: swift build -c release in .build-onnx)")
    a = p.parse_args()
    rnn = a.rnn
    if not rnn:
        scratch = os.path.join(REPO_ROOT, ".build-onnx")
        subprocess.run(["swift", "build", "-c", "release", "--product", "rnn", "--scratch-path", scratch], cwd=REPO_ROOT, check=True)
        rnn = os.path.join(scratch, "release", "rnn")
    os.makedirs(OUT, exist_ok=True)
    print("onnx %s, onnxruntime %s, torch %s" % (onnx.__version__, ort.__version__, torch.__version__))
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_cases(rnn, tmp)
        streaming(rnn, tmp)
        import_cases(rnn, tmp)
    print("done")


if __name__ == "__main__":
    main()
