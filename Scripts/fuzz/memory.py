"""Memory cases, run under `ulimit -v 4194304` (4 GiB of address space): models, minibatches, corpora, ONNX files
and adding-problem sizes that need more than that must be refused with one line before anything is allocated, never
trap when an allocation fails; those that fit must run (bounded by --time-limit) and save a model that loads.
"""

import os
import random

import onnx_mutants

TRAIN = ["--epochs", "1", "--max-tokens", "300", "--threads", "1", "--sample-every", "0", "--time-limit", "2"]
# Long enough for a million rows of one step (raw mode, no validation).
SHAKESPEARE = ["--corpus", "tinyshakespeare", "--text-mode", "raw", "--validation-fraction", "0", "--max-tokens", "0"]


def train_cases(folder, long_run):
    """(label, args, written) for `rnn train` at sizes around and beyond the limit (the slow ones in long runs)."""
    cases = []
    slow = {"train --hidden 6000 lstm", "train --hidden 8000 adam", "train --hidden 2000 lstm",
            "train --batch 1000000 --steps 1"}
    for label, options in [
        ("train --hidden 32000", ["--hidden", "32000", "--batch", "2", "--steps", "5"]),
        ("train --hidden 16000", ["--hidden", "16000", "--batch", "2", "--steps", "5"]),
        ("train --hidden 12000 adam", ["--hidden", "12000", "--optimizer", "adam", "--batch", "2", "--steps", "5"]),
        ("train --hidden 8000 adam", ["--hidden", "8000", "--optimizer", "adam", "--batch", "2", "--steps", "5"]),
        ("train --hidden 2000 lstm", ["--hidden", "2000", "--cell", "lstm", "--batch", "2", "--steps", "5"]),
        ("train --hidden 512 lstm", ["--hidden", "512", "--cell", "lstm", "--batch", "2", "--steps", "5"]),
        ("train --hidden 6000 lstm", ["--hidden", "6000", "--cell", "lstm", "--batch", "2", "--steps", "5"]),
        ("train --hidden 45000 adam", ["--hidden", "45000", "--optimizer", "adam", "--max-tokens", "0"]),
        ("train --hidden 65536 lstm layers 4", ["--hidden", "65536", "--cell", "lstm", "--layers", "4",
                                                "--max-tokens", "0"]),
        ("train --batch 1000000 --steps 1", ["--hidden", "8", "--batch", "1000000", "--steps", "1"] + SHAKESPEARE),
        ("train --batch 200000 --steps 1000", ["--hidden", "64", "--batch", "200000", "--steps", "1000"]),
        ("train --steps 500000", ["--hidden", "8", "--batch", "1", "--steps", "500000"] + SHAKESPEARE),
        ("train --embedding 1000000", ["--hidden", "8", "--embedding", "1000000", "--batch", "2", "--steps", "5"]),
        ("train --projection lstm", ["--hidden", "30000", "--cell", "lstm", "--projection", "16000",
                                     "--max-tokens", "0"]),
        ("train bptt full", ["--hidden", "2048", "--bptt", "full", "--batch", "64", "--max-tokens", "0",
                             "--cell", "lstm"]),
        ("train --recompute-interval", ["--hidden", "20000", "--bptt", "full", "--recompute-interval", "16",
                                        "--max-tokens", "0"]),
        ("train --validation-fraction", ["--hidden", "8", "--batch", "5000", "--steps", "100",
                                         "--validation-fraction", "0.5", "--eval-every", "1", "--corpus",
                                         "tinyshakespeare", "--text-mode", "raw", "--max-tokens", "0"]),
    ]:
        if label in slow and not long_run:
            continue
        run = os.path.join(folder, label.replace(" ", "_").replace("-", ""))
        cases.append((label, ["train"] + TRAIN + options + ["--output", run], [run + "/model.safetensors"]))
    return cases


def task_cases():
    return [
        (f"task adding {' '.join(o)}", ["task", "adding", "--updates", "1", "--evaluate-every", "1"] + o, [])
        for o in [["--length", "100000", "--batch", "100000"], ["--length", "2600", "--batch", "1000"],
                  ["--length", "1300", "--batch", "1000"], ["--hidden", "65536"], ["--hidden", "20000"],
                  ["--hidden", "8000", "--length", "10", "--batch", "10"], ["--length", "100000", "--batch", "671"],
                  ["--updates", "2147483648"], ["--batch", "30000", "--length", "2"]]
    ]


def big_corpus_cases(folder, long_run):
    """Large corpora: 16 MiB in raw and words mode always; 200 MB, 256 MiB, 700 MB and 1 GiB - 1 byte in raw, words
    and d2l mode in long runs."""
    sizes = [16 << 20] + ([200_000_000, 256 << 20, 700_000_000, (1 << 30) - 1] if long_run else [])
    cases = []
    for size in sizes:
        path = os.path.join(folder, f"corpus-{size}.txt")
        if not os.path.exists(path):
            line = b"the time traveller (for so it will be convenient to speak of him) was expounding\n"
            with open(path, "wb") as f:
                full, rest = divmod(size, len(line))
                block = line * 4096
                for _ in range(full // 4096):
                    f.write(block)
                f.write(line * (full % 4096) + line[:rest])
        modes = [("raw", []), ("words", []), ("d2l", []), ("raw", ["--max-tokens", "0", "--batch", "64"])]
        for mode, extra in modes if long_run else [("raw", ["--validation-fraction", "0"]), ("words", [])]:
            run = os.path.join(folder, f"big-{size}-{mode}")
            cases.append((f"train {size >> 20} MiB corpus {mode} {' '.join(extra)}".strip(),
                          ["train", "--corpus", path, "--text-mode", mode, "--hidden", "8", "--epochs", "1",
                           "--threads", "1", "--sample-every", "0", "--time-limit", "1", "--output", run] + extra,
                          [run + "/model.safetensors"]))
    if long_run:  # 200 MB of distinct seven-letter words: the word vocabulary needs far more than the text
        path = os.path.join(folder, "distinct-words.txt")
        if not os.path.exists(path):
            letters = bytes(97 + i % 26 for i in range(256))
            with open(path, "wb") as f:
                for block in range(29):
                    raw = random.Random(block).randbytes(7_000_000).translate(letters)
                    words = [raw[i:i + 7] for i in range(0, len(raw), 7)]
                    f.write(b"\n".join(b" ".join(words[j:j + 10]) for j in range(0, len(words), 10)) + b"\n")
        run = os.path.join(folder, "big-distinct-words")
        cases.append(("train 200 MB of distinct words (words mode)",
                      ["train", "--corpus", path, "--text-mode", "words", "--hidden", "8", "--epochs", "1",
                       "--threads", "1", "--sample-every", "0", "--time-limit", "1", "--output", run],
                      [run + "/model.safetensors"]))
    return cases


def shared_initializer_bombs(onnx_bytes, folder):
    """ONNX files whose many recurrent nodes all name one set of initializers (2 to 4096 layers); `onnx_bytes` is a
    model whose first layer reads H inputs (an embedding as wide as the hidden state), so every copy fits."""
    cases = []
    for count in (2, 64, 1024, 4096):
        model = onnx_mutants.decode(onnx_bytes)
        graph = onnx_mutants.graph_of(model)
        node = onnx_mutants.recurrent_nodes(model)[0]
        position = next(i for i, f in enumerate(graph.fields) if f[2] is node)
        copies = [[1, 2, onnx_mutants.Message("node", [[n, w, (v + b"_%d" % k if n in (2, 3) else v)]
                                                        for n, w, v in node.fields])] for k in range(1, count)]
        graph.fields[position + 1:position + 1] = copies
        # Without the model metadata (as a file from torch.onnx.export): the graph alone must be judged.
        model = [f for f in model if not (f[0] == 14 and b"recurrentkit.model" in onnx_mutants.strings(f[2], 1))]
        path = os.path.join(folder, f"shared-{count}.onnx")
        with open(path, "wb") as f:
            f.write(onnx_mutants.encode(model))
        out = os.path.join(folder, f"shared-{count}.safetensors")
        cases.append((f"import {count} layers sharing initializers", ["import", path, out], [out], [path]))
    return cases
