#!/usr/bin/env python3
"""Fuzzes the `rnn` command-line tool as a hostile user would (issue #30): mutated training checkpoints through
`train --resume`, `sample`, `eval` and `export`; hostile ONNX files through `import`; special files in every path
argument of every command; hostile corpora; memory cases under `ulimit -v 4194304`.

Prints a table of outcomes per category and exits 1 when any case crashed, hung (except the documented FIFO read as
a stream), printed an unclear error, lost data (exit 0, but a checkpoint it wrote does not load), accepted a special
file as an output, or replaced a special file. Failing cases are saved under --out (the mutant, the command line and
its output); `--only CATEGORY --index N` with the same --seed runs one case again. Standard library only.

usage: fuzz.py [--rnn .build/release/rnn] [--cases N] [--seed S] [--out DIR] [--only CATEGORY] [--index N] [-v]
       RK_FUZZ_LONG=1 fuzz.py ...     the long run: 5,000 checkpoint and 5,000 ONNX mutants, random corpora, large
                                      corpora and ONNX files (about an hour on one core)
"""

import argparse
import json
import os
import random
import shutil
import stat
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpora  # noqa: E402
import harness  # noqa: E402
import memory  # noqa: E402
import onnx_mutants  # noqa: E402
import safetensors_mutants  # noqa: E402
import special_files  # noqa: E402

CATEGORIES = ("checkpoint", "onnx", "special", "corpora", "memory")
TINY = ["--hidden", "8", "--epochs", "1", "--batch", "2", "--steps", "5", "--max-tokens", "300", "--threads", "1",
        "--sample-every", "0"]
# The base checkpoints: small runs covering the cells, optimizers, schedules, text modes and trainer state.
BASES = {
    "rnn-sgd-d2l": [],
    "lstm-adam-raw": ["--cell", "lstm", "--layers", "2", "--dropout", "0.1", "--embedding", "4", "--optimizer", "adam",
                      "--lr", "0.01", "--text-mode", "raw", "--eval-every", "20", "--projection", "4",
                      "--corpus", "{corpus}"],
    "gru-rmsprop-words": ["--cell", "gru", "--optimizer", "rmsprop", "--lr", "0.002", "--schedule", "cosine",
                          "--warmup", "3", "--text-mode", "words", "--embedding", "4", "--bptt", "randomized",
                          "--corpus", "{corpus}"],
    "lstm-momentum-nobias": ["--cell", "lstm", "--layers", "2", "--no-bias", "--momentum", "0.9", "--sampling",
                             "random", "--schedule", "step", "--decay-every", "5", "--decay-factor", "0.9"],
}


def fail_setup(message, result=None):
    print(f"fuzz: setup failed: {message}" + (f": {result.summary()}" if result else ""), file=sys.stderr)
    sys.exit(2)


def with_more_epochs(data, epochs):
    """The checkpoint with its run's epoch count raised: a finished run that `--resume` continues; its timings fixed,
    so that the same seed and index give the same mutant on every run (on machines of one kernel level)."""
    head, body = safetensors_mutants.parse(data)
    training = json.loads(head["__metadata__"]["training"])
    training["options"]["epochs"] = epochs
    training["elapsedSeconds"], training["epochSeconds"] = 0.25, 0.25
    for report in training.get("history", []):
        report["elapsedSeconds"], report["tokensPerSecond"] = 0.25, 10000.0
    head["__metadata__"]["training"] = json.dumps(training)
    return safetensors_mutants.assemble(head, body)


def prepare(fz, work, long_run):
    """Trains the base models and exports them: {name: bytes} checkpoints, ONNX files and the shared inputs."""
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(corpora.text(random.Random(0), 3000))
    bases, onnx = {}, {}
    for name, options in BASES.items():
        folder = os.path.join(work, "bases", name)
        args = [fz.rnn, "train"] + TINY + [o.replace("{corpus}", corpus) for o in options] + ["--output", folder]
        result = harness.run(args, work, 120)
        if result.returncode != 0:
            fail_setup(f"training base {name}", result)
        with open(os.path.join(folder, "model.safetensors"), "rb") as f:
            bases[name] = with_more_epochs(f.read(), 2)
        check = os.path.join(work, "check")
        shutil.rmtree(check, ignore_errors=True)
        os.makedirs(check)
        with open(os.path.join(check, "model.safetensors"), "wb") as f:
            f.write(bases[name])
        result = harness.run([fz.rnn, "train", "--resume", os.path.join(check, "model.safetensors")], work, 120)
        if result.returncode != 0:
            fail_setup(f"base {name} does not resume", result)
        path = os.path.join(work, f"{name}.onnx")
        result = harness.run([fz.rnn, "export", os.path.join(folder, "model.safetensors"), path], work, 120)
        if result.returncode == 0:
            with open(path, "rb") as f:
                onnx[name] = f.read()
    # A larger LSTM (H 256 reading a 256-wide embedding, about 2 MB of ONNX) for the shared-initializer bombs, larger
    # ones (about 40, 198 and 788 MB) in long runs.
    big = {"lstm-256": 256} | ({"lstm-1560": 1560, "lstm-3500": 3500, "lstm-7000": 7000} if long_run else {})
    large = {}
    for name, hidden in big.items():
        folder = os.path.join(work, "bases", name)
        options = ["--cell", "lstm", "--hidden", str(hidden), "--epochs", "1", "--batch", "1", "--steps", "5",
                   "--max-tokens", "30", "--threads", "1", "--sample-every", "0", "--output", folder]
        embedding = ["--embedding", "256"] if hidden == 256 else []
        result = harness.run([fz.rnn, "train"] + options + embedding, work, 600)
        path = os.path.join(work, f"{name}.onnx")
        if result.returncode != 0 or harness.run([fz.rnn, "export", folder + "/model.safetensors", path], work,
                                                 600).returncode != 0:
            fail_setup(f"training and exporting {name}", result)
        large[name] = path
    files = {"checkpoint": os.path.join(work, "bases", "rnn-sgd-d2l", "model.safetensors"),
             "onnx": os.path.join(work, "rnn-sgd-d2l.onnx"),
             "metrics": os.path.join(work, "bases", "rnn-sgd-d2l", "metrics.jsonl"), "corpus": corpus}
    return bases, onnx, large, files


def fz_corpus(work):
    """The text the base models were trained on."""
    return os.path.join(work, "corpus.txt")


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def impossible_tensor(note):
    """The tensor a mutation made impossible (NaN or infinite values; a negative second moment), or None."""
    name, _, rest = note.partition(": ")
    value = rest.rpartition(" = ")[2]
    if value in ("nan", "inf", "-inf"):
        return name
    second_moment = name.endswith("exp_avg_sq") or name.endswith("square_avg")
    return name if second_moment and value.startswith("-") and value not in ("-0.0",) else None


def guarded(fz, category, index, body):
    """Runs one case; an exception in the fuzzer itself is reported as a failure and the run goes on."""
    try:
        body()
    except Exception as error:  # noqa: BLE001 (a long run must not end on one bad case)
        fz.failures.append((category, index, [f"fuzzer error: {type(error).__name__}: {error}"[:300]], ""))
        print(f"FAIL {category} #{index}: fuzzer error: {traceback.format_exc()}", flush=True)


def checkpoint_category(fz, work, bases, files, count, wanted):
    for i in range(count):
        if wanted(i):
            guarded(fz, "checkpoint", i, lambda: checkpoint_case(fz, work, bases, files, i))


def checkpoint_case(fz, work, bases, files, i):
    names = sorted(bases)
    rng = random.Random(f"{fz.seed}:checkpoint:{i}")
    name = names[i % len(names)]
    data, note = safetensors_mutants.mutate(bases[name], rng)
    describe = f"base {name}: {note}"
    impossible = impossible_tensor(note)
    folder = fresh(os.path.join(work, "case"))
    path = os.path.join(folder, "model.safetensors")
    with open(path, "wb") as f:
        f.write(data)
    mutant = os.path.join(folder, "mutant.safetensors")
    shutil.copy(path, mutant)
    step = i % 4
    if step == 0:
        prefix = os.path.join(folder, "prefix.txt")
        with open(prefix, "w", encoding="utf-8") as f:
            f.write(harness.prefix_candidates(mutant)[0])
        fz.case("checkpoint: sample", i, [fz.rnn, "sample", "--checkpoint", mutant, "--prefix-file", prefix,
                                          "--length", "5"], folder, keep=[mutant], describe=describe,
                must_name=impossible)
    elif step == 1:
        fz.case("checkpoint: eval", i, [fz.rnn, "eval", "--checkpoint", mutant, "--text", files["corpus"],
                                        "--max-chars", "300", "--threads", "1"], folder, keep=[mutant],
                describe=describe, must_name=impossible)
    elif step == 2:
        exported = os.path.join(folder, "exported.onnx")
        outcome, _ = fz.case("checkpoint: export", i, [fz.rnn, "export", mutant, exported], folder,
                             keep=[mutant], describe=describe, must_name=impossible)
        if outcome == "exit0":
            # What export wrote must import again (and the imported checkpoint load).
            fz.case("checkpoint: import of export", i, [fz.rnn, "import", exported,
                                                         folder + "/reimported.safetensors"],
                    folder, written=[folder + "/reimported.safetensors"], keep=[mutant, exported],
                    describe=describe + " (import of the exported file)", expect_success=True)
    # A resumed run reads every tensor: an impossible one must be refused by name (never blamed on divergence).
    fz.case("checkpoint: train --resume", i, [fz.rnn, "train", "--resume", path, "--threads", "1"], folder,
            written=[path, os.path.join(folder, "best.safetensors")], keep=[mutant], describe=describe,
            must_name=impossible, expect_refusal=impossible is not None, resumes=True)


def onnx_category(fz, work, onnx, count, wanted):
    for i in range(count):
        if wanted(i):
            guarded(fz, "onnx", i, lambda: onnx_case(fz, work, onnx, i))


def onnx_case(fz, work, onnx, i):
    names = sorted(onnx)
    rng = random.Random(f"{fz.seed}:onnx:{i}")
    name = names[i % len(names)]
    data, note = onnx_mutants.mutate(onnx[name], rng)
    folder = fresh(os.path.join(work, "case"))
    path = os.path.join(folder, "mutant.onnx")
    with open(path, "wb") as f:
        f.write(data)
    out = os.path.join(folder, "model.safetensors")
    fz.case("onnx: import", i, [fz.rnn, "import", path, out], folder, written=[out], keep=[path],
            describe=f"base {name}: {note}")


def special_category(fz, work, files, long_run, wanted):
    nodes = special_files.devices(fresh(os.path.join(work, "nodes")))
    if nodes == (None, None):
        fz.notes.append("device cases skipped: running as root and mknod is not permitted")
    index = -1
    for label, role, build, stream in special_files.arguments(files):
        for kind in special_files.KINDS:
            index += 1
            if not wanted(index) or (kind in ("null", "zero", "link-null") and nodes[0] is None):
                continue
            if kind == "zero" and stream and label != "train --corpus" and not long_run:
                continue  # reading 1 GiB of zeros to the limit takes seconds; once is enough in CI
            # A writer that came first is a race (the reader's open against the writer's): run it several times.
            for _ in range((20 if long_run else 5) if kind == "fifo-writer" and stream else 1):
                guarded(fz, "special", index, lambda: special_case(fz, work, nodes, label, role, build, stream,
                                                                   kind, index))


def special_case(fz, work, nodes, label, role, build, stream, kind, index):
    folder = fresh(os.path.join(work, "case"))
    with open(fz_corpus(work), "rb") as f:
        text = f.read()
    path, keep_alive = special_files.make(kind, folder, nodes, text)
    allowed, hang = special_files.expectation(role, kind, stream)
    args = [fz.rnn] + build(path, folder)
    category = "special files: " + ("inputs" if role == "in" else "outputs")
    try:
        fz.case(category, index, args, folder, timeout=20, hang_expected=hang, fifo=path if kind == "fifo" else None,
                written=special_files.written(role, path, folder), watched=[path], expect_refusal=not allowed,
                describe=f"{label} = {special_files.KINDS[kind]} ({path})")
    finally:
        if keep_alive:
            keep_alive.close()


def corpora_category(fz, work, files, onnx_path, extra, wanted):
    index = -1
    for name, data in corpora.corpora(random.Random(f"{fz.seed}:corpora"), extra, extra > 0):
        path = os.path.join(work, "corpus-case.txt")
        with open(path, "wb") as f:
            f.write(data)
        for label, args, written in corpora.commands(path, files["checkpoint"], onnx_path,
                                                     os.path.join(work, "case")):
            index += 1
            if not wanted(index):
                continue
            guarded(fz, "corpora", index, lambda: fz.case(
                "hostile corpora", index, [fz.rnn] + args, fresh(os.path.join(work, "case")), written=written,
                keep=[path], describe=f"{name}: {label}", resumes=True))


def memory_category(fz, work, onnx_bytes, large, long_run, wanted):
    folder = fresh(os.path.join(work, "memory"))
    cases = [c + ((),) for c in memory.train_cases(folder, long_run) + memory.task_cases()]
    cases += memory.shared_initializer_bombs(onnx_bytes, folder)
    for name, path in large.items():
        out = os.path.join(folder, f"{name}.safetensors")
        cases.append((f"import {os.path.getsize(path) / 1e6:.0f} MB ONNX ({name})", ["import", path, out], [out], ()))
    cases += [c + ((),) for c in memory.big_corpus_cases(folder, long_run)]
    for index, (label, args, written, keep) in enumerate(cases):
        if wanted(index):
            guarded(fz, "memory", index, lambda: fz.case(
                "memory (ulimit -v 4 GiB)", index, [fz.rnn] + args, folder, timeout=60, memory_limit=True,
                written=written, keep=keep, describe=label))
        for p in written:  # large outputs go at once
            if p.endswith("/model.safetensors"):
                shutil.rmtree(os.path.dirname(p), ignore_errors=True)
            elif os.path.exists(p):
                os.unlink(p)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rnn", default=".build/release/rnn", help="the rnn binary (build: swift build -c release)")
    parser.add_argument("--cases", type=int, help="mutants per mutation category (default 150, long run 5000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every mutation (default 1)")
    parser.add_argument("--out", default="fuzz-failures", help="folder for failing cases (default fuzz-failures)")
    parser.add_argument("--only", action="append", choices=CATEGORIES, help="run only this category (repeatable)")
    parser.add_argument("--index", type=int, help="with --only: run only the case of this index")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    options = parser.parse_args()
    long_run = os.environ.get("RK_FUZZ_LONG") == "1"
    count = options.cases if options.cases is not None else (5000 if long_run else 150)
    rnn = os.path.abspath(options.rnn)
    if not os.access(rnn, os.X_OK):
        fail_setup(f"no executable {rnn}; build it first: swift build -c release --product rnn")
    fz = harness.Fuzzer(rnn, os.path.abspath(options.out), options.seed, options.verbose or options.index is not None)
    only = set(options.only or CATEGORIES)

    def wanted(i):
        return options.index is None or i == options.index

    null_before = harness.snapshot("/dev/null")
    start = time.monotonic()
    work = tempfile.mkdtemp(prefix="rk-fuzz-")
    try:
        bases, onnx, large, files = prepare(fz, work, long_run and "memory" in only)
        print(f"fuzz: seed {options.seed}, {count} mutants per mutation category, bases ready in "
              f"{time.monotonic() - start:.1f} s ({'long run' if long_run else 'CI subset'})", flush=True)
        if "checkpoint" in only:
            checkpoint_category(fz, work, bases, files, count, wanted)
        if "onnx" in only:
            onnx_category(fz, work, onnx, count, wanted)
        if "special" in only:
            special_category(fz, work, files, long_run, wanted)
        if "corpora" in only:
            corpora_category(fz, work, files, files["onnx"], 200 if long_run else 0, wanted)
        if "memory" in only:
            with open(large["lstm-256"], "rb") as f:
                memory_category(fz, work, f.read(), large, long_run, wanted)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    null_after = harness.snapshot("/dev/null")
    if null_after != null_before or not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        fz.failures.append(("system", 0, ["/dev/null changed"], ""))
        print("FAIL: /dev/null is no longer the character device it was", flush=True)
    print()
    print(fz.table())
    print(f"\n{time.monotonic() - start:.0f} s; seed {options.seed}; " + "; ".join(fz.notes))
    if fz.failures:
        print(f"{len(fz.failures)} failing case(s), saved under {fz.out}:")
        for category, index, problems, describe in fz.failures[:50]:
            print(f"  {category} #{index}: {'; '.join(problems)} [{describe}]")
        return 1
    print("no crash, hang, unclear error, data loss, accepted special output or replaced file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
