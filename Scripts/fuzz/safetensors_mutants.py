"""Mutations of RecurrentKit checkpoints (safetensors): the header's JSON (the `training`, `model` and `vocabulary`
metadata strings, counters, tensor dtypes, shapes and offsets), the tensors' bytes, the size field and the length.

`mutate(base, rng)` returns (bytes, description); the same base and the same `random.Random` state give the same
mutant, so a case is reproduced from (seed, index) alone.
"""

import json
import struct

# Values a hostile file may hold where the reader expects a number, a string, a list or an object.
HOSTILE = [None, 0, -1, 1, 2, 3, 7, 29, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1,
           2**64, -(2**63), 10**30, 1e308, -1e308, 1e-308, 0.5, -0.5, 1.5, "inf", "-inf", "nan", "", "0", "-1",
           "1e999", "18446744073709551615", "99999999999999999999999", "9" * 400, True, False, [], {},
           ["0", "0", "0", "0"], [0, 0, 0, 0], ["1"], ["1", "2", "3"], "lstm", "gru", "words", "raw", "adam",
           "/dev/zero", "/dev/null", "/proc/self/fd/0", "timemachine", "tinyshakespeare", "\u0000", "\ufeff",
           "a" * 5000, "\ud7ff\ue000", {"a": 1}]
# Raw JSON texts that Python's encoder would not write: numbers beyond double, NaN literals, deep nesting.
HOSTILE_JSON = ["1e999", "-1e999", "NaN", "Infinity", "-0", "0.0000000000000000000000001", "1" + "0" * 400,
                "[" * 5000 + "]" * 5000, '"\\ud800"', '"\\u0000"', "18446744073709551616", "-9223372036854775809"]
DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "", "f32", "XYZ", 4, None]
FLOAT_BITS = [float("nan"), float("inf"), float("-inf"), -1.0, -1e-30, 3.4e38, -3.4e38, 1e-45, 0.0, -0.0, 1e30]
# (3.4e38 and 1e30 are finite: a weight or moment that large is possible, and the run it resumes may diverge.)


def parse(data):
    """(header dict, tensor data bytes) of a well-formed file."""
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + size]), data[8 + size:]


def assemble(head, body, raw_header=None):
    """A file from a header (dict, or raw JSON text) and the data bytes, padded as safetensors writers do."""
    text = raw_header if raw_header is not None else json.dumps(head, separators=(",", ":"), ensure_ascii=False)
    encoded = text.encode("utf-8", "surrogatepass")
    encoded += b" " * ((8 - len(encoded) % 8) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + body


def leaves(value, path=()):
    """Every path into a JSON value (objects by key, arrays by index), the value's own path first."""
    out = [path]
    if isinstance(value, dict):
        for key in sorted(value):
            out += leaves(value[key], path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += leaves(item, path + (i,))
    return out


def replaced(value, path, new, delete=False):
    """`value` with the item at `path` replaced by `new` (or deleted)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if (isinstance(value, dict) and head in value) or (
            isinstance(value, list) and isinstance(head, int) and head < len(value)):
        copy = value.copy()  # a dict or a list: the same steps for a key or an index
        if delete and not rest:
            del copy[head]
        else:
            copy[head] = replaced(value[head], rest, new, delete)
        return copy
    return value


def nearby(value, rng):
    """A number near `value` (off by one, doubled, negated): the counters' cross-checks are tested by these."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return rng.choice(HOSTILE)
    return rng.choice([value + 1, value - 1, value * 2, -value, value // 2 if isinstance(value, int) else value / 2,
                       value + 29, value - 29, 0])


def mutate_json_string(text, rng, what):
    """A metadata string holding JSON (training state, model, vocabulary), one to three fields changed."""
    try:
        value = json.loads(text)
    except ValueError:
        return rng.choice(HOSTILE_JSON), f"{what}: not JSON"
    notes = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        paths = leaves(value)
        path = rng.choice(paths)
        roll = rng.random()
        current = value
        for p in path:
            current = current[p]
        if roll < 0.35:
            new = rng.choice(HOSTILE)
            value = replaced(value, path, new)
            notes.append(f"{'.'.join(map(str, path))}={json.dumps(new)[:40]}")
        elif roll < 0.6:
            new = nearby(current, rng)
            value = replaced(value, path, new)
            notes.append(f"{'.'.join(map(str, path))}={json.dumps(new)[:40]}")
        elif roll < 0.75 and path:
            value = replaced(value, path, None, delete=True)
            notes.append(f"{'.'.join(map(str, path))} deleted")
        elif roll < 0.85 and isinstance(current, list):
            new = current + [rng.choice(current) if current else 0] * rng.choice([1, 2, 1000])
            value = replaced(value, path, new)
            notes.append(f"{'.'.join(map(str, path))} grown to {len(new)}")
        elif roll < 0.9 and isinstance(current, dict):
            new = dict(current, **{rng.choice(["extra", "epoch", "tokens", "__proto__"]): rng.choice(HOSTILE)})
            value = replaced(value, path, new)
            notes.append(f"{'.'.join(map(str, path))} gained a key")
        elif isinstance(current, str) and current:
            cut = rng.randrange(len(current))
            new = current[:cut] + rng.choice(["", "\ufeff", "\u0301", "\u0000", "\uffff", "x", "\U0010ffff"]) \
                + current[cut + 1:]
            value = replaced(value, path, new)
            notes.append(f"{'.'.join(map(str, path))} character {cut} changed")
        else:
            # A JSON text no encoder writes, in place of the value at `path` when a key names it.
            raw, token = json.dumps(value), rng.choice(HOSTILE_JSON)
            field = f"{json.dumps(path[-1])}: {json.dumps(current)}" if path and isinstance(path[-1], str) else None
            if field and field in raw:
                return raw.replace(field, f"{json.dumps(path[-1])}: {token}", 1), \
                    f"{what}: {'.'.join(map(str, path))} as {token[:20]}"
            return token, f"{what}: replaced by {token[:20]}"
    return json.dumps(value, ensure_ascii=rng.random() < 0.5), f"{what}: " + ", ".join(notes)


def mutate(base, rng):
    """One mutant of the checkpoint bytes `base`: (bytes, description)."""
    head, body = parse(base)
    meta = dict(head.get("__metadata__", {}))
    tensors = sorted(k for k in head if k != "__metadata__")
    kind = rng.choices(["training", "model", "vocabulary", "metadata", "dtype", "shape", "offsets", "tensor set",
                        "values", "bytes", "header bytes", "size field", "truncate", "append"],
                       weights=[30, 6, 6, 4, 4, 5, 6, 3, 8, 3, 4, 3, 4, 2])[0]
    if kind in ("training", "model", "vocabulary") and kind in meta:
        meta[kind], note = mutate_json_string(meta[kind], rng, kind)
        head["__metadata__"] = meta
        return assemble(head, body), note
    if kind in ("training", "model", "vocabulary", "metadata"):
        key = rng.choice(sorted(meta) + ["format", "extra"])
        roll = rng.random()
        if roll < 0.3 and key in meta:
            del meta[key]
            note = f"metadata {key} deleted"
        else:
            new = rng.choice(HOSTILE + HOSTILE_JSON)
            meta[key] = new if isinstance(new, str) or roll < 0.5 else json.dumps(new)
            note = f"metadata {key}={json.dumps(meta[key])[:40]}"
        head["__metadata__"] = meta
        return assemble(head, body), note
    name = rng.choice(tensors)
    entry = dict(head[name])
    if kind == "dtype":
        entry["dtype"] = rng.choice(DTYPES)
        head[name] = entry
        return assemble(head, body), f"{name} dtype {entry['dtype']}"
    if kind == "shape":
        shape = list(entry.get("shape", []))
        choice = rng.randrange(7)
        if choice == 0 and shape:
            shape = shape[::-1]
        elif choice == 1:
            shape = shape + [1]
        elif choice == 2 and shape:
            shape = shape[:-1]
        elif choice == 3 and shape:
            shape[rng.randrange(len(shape))] = rng.choice([0, -1, 2**31, 2**62, 2**64 - 1, 1.5, "8"])
        elif choice == 4 and len(shape) >= 2:
            shape = [shape[0] * shape[1]] + shape[2:]
        elif choice == 5:
            shape = [1] * rng.choice([0, 9, 64, 1000])
        elif shape:
            i = rng.randrange(len(shape))
            shape[i] = nearby(shape[i], rng)
        entry["shape"] = shape
        head[name] = entry
        return assemble(head, body), f"{name} shape {json.dumps(shape)[:60]}"
    if kind == "offsets":
        start, end = entry["data_offsets"]
        choice = rng.randrange(6)
        if choice == 0:
            offsets = [end, start]
        elif choice == 1:
            offsets = [start + 4, end + 4]
        elif choice == 2:
            offsets = [start, len(body) + rng.choice([4, 8, 2**32, 2**63])]
        elif choice == 3:
            other = head[rng.choice(tensors)]["data_offsets"]
            offsets = list(other)
        elif choice == 4:
            offsets = [rng.choice(HOSTILE), end]
        else:
            offsets = [start, rng.choice([start, start - 4, end - 4, end + 1])]
        entry["data_offsets"] = offsets
        head[name] = entry
        return assemble(head, body), f"{name} data_offsets {json.dumps(offsets)[:60]}"
    if kind == "tensor set":
        choice = rng.randrange(3)
        if choice == 0:
            del head[name]
            return assemble(head, body), f"{name} removed"
        if choice == 1:
            new = rng.choice(["_trainer.extra", "rnn.weight_ih_l9", name + " ", "__metadata__x", "", name.upper()])
            head[new] = entry
            return assemble(head, body), f"{name} also as {new!r}"
        new = rng.choice(["rnn.weight_ih_l9", "_trainer.state.c", name + "_", "embedding.weight"])
        head[new] = head.pop(name)
        return assemble(head, body), f"{name} renamed {new}"
    if kind == "values":
        start, end = entry["data_offsets"]
        data = bytearray(body)
        value = rng.choice(FLOAT_BITS)
        width, code = {"F32": (4, "<f"), "F64": (8, "<d")}.get(entry.get("dtype"), (0, ""))
        if not width or end - start < width:
            return base[:len(base) - 1], f"{name} is not F32 or F64: truncated by one byte instead"
        count = (end - start) // width
        positions = range(count) if rng.random() < 0.2 else [rng.randrange(count) for _ in range(rng.choice([1, 3]))]
        for i in positions:
            data[start + width * i:start + width * (i + 1)] = struct.pack(code, value)
        scope = "every value" if len(positions) == count else f"{len(positions)} value(s)"
        return assemble(head, bytes(data)), f"{name}: {scope} = {value}"
    if kind == "bytes":
        data = bytearray(body)
        for _ in range(rng.choice([1, 2, 8])):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return assemble(head, bytes(data)), "random tensor bytes changed"
    size = struct.unpack("<Q", base[:8])[0]
    if kind == "header bytes":
        data = bytearray(base)
        for _ in range(rng.choice([1, 2, 4])):
            data[8 + rng.randrange(size)] = rng.choice([0, 0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x2C, 0x30, 0xFF, 0xC3,
                                                        rng.randrange(256)])
        return bytes(data), "header bytes changed"
    if kind == "size field":
        new = rng.choice([0, 1, 2, 7, size - 1, size + 1, size + 8, len(base), len(base) - 7, 2**32, 2**63,
                          2**64 - 1, 100_000_000, 100_000_001])
        return struct.pack("<Q", new % 2**64) + base[8:], f"header length {new}"
    if kind == "truncate":
        cut = rng.choice([0, 1, 7, 8, 9, size, size + 8, size + 9, len(base) - 1, rng.randrange(len(base))])
        return base[:cut], f"truncated to {cut} of {len(base)} bytes"
    extra = rng.choice([b"\0" * 4, b"\0" * 8, bytes(rng.randrange(256) for _ in range(rng.choice([1, 64]))),
                        base[8:8 + size]])
    return base + extra, f"{len(extra)} bytes appended"
