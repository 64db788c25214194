#!/usr/bin/env python3
"""Compares two RecurrentKit checkpoints (safetensors) bit for bit; used by Scripts/check-bit-identity.sh.

usage: compare-safetensors.py A.safetensors B.safetensors

Prints one line: "identical (...)" or the first difference, and exits 0 (identical), 1 (different) or 2 (unreadable).
Compared: every tensor (name, dtype, shape, raw bytes), the model weights and the trainer's `_trainer.*` tensors
(optimizer moments, carried state) alike, then the metadata that defines the model (`model`, `vocabulary`,
`kernel_level`) and the training state JSON (`training`: position, random streams, loss sums, per-epoch history).
Ignored: `library_version` and `format` (legitimately change), and timing (`epochSeconds`, `elapsedSeconds`,
`tokensPerSecond`); a training-state field present in only one file is ignored too (a new field is not a change).
Standard library only.
"""
import array
import json
import math
import struct
import sys

IGNORED_METADATA = {"library_version", "format"}
STRICT_METADATA = ("model", "vocabulary", "kernel_level")
TIMING_KEYS = {"epochSeconds", "elapsedSeconds", "tokensPerSecond"}
# dtype -> (array typecode, bytes per element); BF16 is widened to F32 for the difference.
DTYPES = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "BF16": ("bf16", 2),
          "I64": ("q", 8), "I32": ("i", 4), "I16": ("h", 2), "I8": ("b", 1), "U8": ("B", 1), "BOOL": ("B", 1)}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end <= len(body):
            raise ValueError(f"{path}: tensor {name} has offsets {begin}..{end} outside the data ({len(body)} bytes)")
        tensors[name] = (entry["dtype"], list(entry["shape"]), bytes(body[begin:end]))
    return metadata, tensors


def values(dtype, raw):
    code = DTYPES.get(dtype, (None, 0))[0]
    if code is None:
        return None
    if code == "bf16":
        widened = bytearray(2 * len(raw))
        widened[2::4], widened[3::4] = raw[0::2], raw[1::2]  # little-endian: the bf16 bits are the f32's high half
        raw, code = bytes(widened), "f"
    a = array.array(code)
    a.frombytes(raw)
    if sys.byteorder != "little":
        a.byteswap()
    return a


def describe_difference(dtype, raw_a, raw_b):
    a, b = values(dtype, raw_a), values(dtype, raw_b)
    if a is None:
        return "bytes differ (dtype not decoded)"
    size = DTYPES[dtype][1]
    differing, largest, first = 0, 0.0, None
    for i, (x, y) in enumerate(zip(a, b)):
        if raw_a[i * size:(i + 1) * size] == raw_b[i * size:(i + 1) * size]:
            continue
        differing += 1
        if first is None:
            first = i
        nan = isinstance(x, float) and (math.isnan(x) or math.isnan(y))
        largest = max(largest, math.inf if nan else abs(x - y))
    return f"{differing} of {len(a)} elements differ (first at flat index {first}), max abs difference {largest:.6g}"


def compare_json(a, b, path="training"):
    """The first difference between two JSON values outside TIMING_KEYS, or None; keys in only one side are skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) & set(b)):
            if key in TIMING_KEYS:
                continue
            found = compare_json(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            found = compare_json(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if a != b or type(a) is not type(b):
        return f"{path}: {a!r} vs {b!r}"
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        meta_a, tensors_a = read(sys.argv[1])
        meta_b, tensors_b = read(sys.argv[2])
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"unreadable: {error}")
        return 2

    only_a, only_b = sorted(set(tensors_a) - set(tensors_b)), sorted(set(tensors_b) - set(tensors_a))
    if only_a or only_b:
        print(f"DIFFERENT: tensors only in the first: {only_a or 'none'}; only in the second: {only_b or 'none'}")
        return 1
    # Model weights first (in name order), then the trainer's tensors.
    names = sorted(tensors_a, key=lambda n: (n.startswith("_trainer."), n))
    for name in names:
        (dtype_a, shape_a, raw_a), (dtype_b, shape_b, raw_b) = tensors_a[name], tensors_b[name]
        if dtype_a != dtype_b or shape_a != shape_b:
            print(f"DIFFERENT: tensor {name}: {dtype_a}{shape_a} vs {dtype_b}{shape_b}")
            return 1
        if raw_a != raw_b:
            print(f"DIFFERENT: first differing tensor {name} ({dtype_a}{shape_a}): {describe_difference(dtype_a, raw_a, raw_b)}")
            return 1

    for key in STRICT_METADATA:
        if meta_a.get(key) != meta_b.get(key):
            print(f"DIFFERENT: tensors identical, but __metadata__[{key!r}] differs: {meta_a.get(key)!r} vs {meta_b.get(key)!r}")
            return 1
    training_a, training_b = meta_a.get("training"), meta_b.get("training")
    if (training_a is None) != (training_b is None):
        print("DIFFERENT: tensors identical, but only one file has a training state")
        return 1
    if training_a is not None:
        found = compare_json(json.loads(training_a), json.loads(training_b))
        if found:
            print(f"DIFFERENT: tensors identical, but the training state differs: {found}")
            return 1
    notes = [k for k in sorted(set(meta_a) | set(meta_b))
             if k not in STRICT_METADATA and k != "training" and meta_a.get(k) != meta_b.get(k)]
    weights = [n for n in names if not n.startswith("_trainer.")]
    trainer = [n for n in names if n.startswith("_trainer.")]
    size = sum(len(tensors_a[n][2]) for n in names)
    print(f"identical ({len(weights)} weight tensors + {len(trainer)} trainer tensors"
          + (f" [{', '.join(trainer)}]" if trainer else "") + f", {size} bytes; model, vocabulary, kernel level and"
          + " training state equal, timing ignored" + (f"; ignored differing {', '.join(notes)}" if notes else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
