"""Mutations of ONNX files (protobuf) for `rnn import`: varints, lengths, dimensions, data types, attribute counts,
initializers shared by many layers, nesting, truncation and random bytes.

The file is decoded into a tree of fields [number, wire type, value] following ONNX's schema for the messages the
importer reads (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, ...), mutated and
encoded again; a length may be written wrong on purpose. `mutate(base, rng)` returns (bytes, description).
"""

import json
import struct

# Message fields that hold messages: (message, field number) -> message type. Everything else length-delimited is
# kept as bytes (strings, raw data, packed numbers).
SCHEMA = {
    ("model", 7): "graph", ("model", 8): "opset", ("model", 14): "entry",
    ("graph", 1): "node", ("graph", 5): "tensor", ("graph", 11): "valueinfo", ("graph", 12): "valueinfo",
    ("graph", 13): "valueinfo",
    ("node", 5): "attribute",
    ("attribute", 5): "tensor", ("attribute", 6): "graph", ("attribute", 10): "tensor", ("attribute", 11): "graph",
    ("valueinfo", 2): "type", ("type", 1): "tensortype", ("tensortype", 2): "shape", ("shape", 1): "dim",
}
HOSTILE_VARINTS = [0, 1, 2, 3, 7, 8, 31, 64, 65, 2**16, 2**16 + 1, 2**31 - 1, 2**31, 2**32, 2**32 + 3, 2**62,
                   2**63 - 1, 2**63, 2**64 - 1, 2**64 - 2]
OPS = ["LSTM", "GRU", "RNN", "Gather", "OneHot", "MatMul", "Gemm", "Add", "Constant", "ConstantOfShape", "Loop",
       "If", "Scan", "Identity", "Reshape", "Concat", "", "lstm", "Softmax"]
ATTRIBUTES = ["hidden_size", "direction", "activations", "clip", "layout", "linear_before_reset", "input_forget",
              "transB", "axis", "value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value",
              "activation_alpha"]
STRINGS = [b"", b"forward", b"reverse", b"bidirectional", b"Tanh", b"Relu", b"Sigmoid", b"\xff\xfe", b"\xc3",
           b"x" * 5000, b"\x00", b"ai.onnx", b"com.microsoft", b"W", b"R", b"B", b"X"]
DATA_TYPES = [0, 1, 2, 6, 7, 9, 10, 11, 13, 16, 17, 255, 2**31, 2**64 - 1]


def varint(value):
    value %= 2**64
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data, i):
    result = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def decode(data, kind="model"):
    """The fields of a message as a list of [number, wire type, value]; nested messages decoded per SCHEMA."""
    fields, i = [], 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        elif wire == 2:
            length, i = read_varint(data, i)
            value, i = data[i:i + length], i + length
            sub = SCHEMA.get((kind, number))
            if sub:
                value = Message(sub, decode(value, sub))
        else:
            raise ValueError(f"wire type {wire}")
        fields.append([number, wire, value])
    return fields


class Message:
    """A nested message: its type name, its fields, and an optional wrong length to write (a hostile file)."""

    def __init__(self, kind, fields, length=None):
        self.kind, self.fields, self.length = kind, fields, length


def encode(fields):
    out = bytearray()
    for number, wire, value in fields:
        out += varint(number << 3 | wire)
        if wire == 0:
            out += varint(value)
        elif wire in (1, 5):
            out += value
        else:
            payload = encode(value.fields) if isinstance(value, Message) else value
            length = value.length if isinstance(value, Message) and value.length is not None else len(payload)
            out += varint(length) + payload
    return bytes(out)


def walk(fields, kind="model", path=()):
    """Every (fields list, index, message kind, path) in the tree, depth first."""
    for index, field in enumerate(fields):
        yield fields, index, kind, path + (field[0],)
        if isinstance(field[2], Message):
            yield from walk(field[2].fields, field[2].kind, path + (field[0],))


def messages(fields, kind):
    """Every nested message of type `kind`."""
    return [f[2] for (lst, i, _, _) in walk(fields) for f in [lst[i]] if isinstance(f[2], Message) and
            f[2].kind == kind]


def graph_of(model):
    return next(f[2] for f in model if f[0] == 7)


def strings(message, number):
    return [f[2] for f in message.fields if f[0] == number and isinstance(f[2], bytes)]


def string_field(value):
    return [4, 2, value]


def packed(data):
    """The varints of a packed repeated field."""
    values, i = [], 0
    while i < len(data):
        value, i = read_varint(data, i)
        values.append(value)
    return values


def recurrent_nodes(model):
    return [n for n in messages(model, "node") if any(s in (b"LSTM", b"GRU", b"RNN") for s in strings(n, 4))]


def share_initializers(model, rng):
    """The last recurrent node repeated many times, every copy naming the same W, R and B (a parameter bomb: the
    copies pass the importer's shape checks when that node reads H inputs, as every layer above the first does)."""
    graph = graph_of(model)
    nodes = recurrent_nodes(model)
    if not nodes:
        return "no recurrent node"
    node = nodes[-1]
    count = rng.choice([2, 3, 16, 1024, 4096])
    position = next(i for i, f in enumerate(graph.fields) if f[2] is node)
    copies = []
    for k in range(1, count):
        fields = [list(f) for f in node.fields]
        for f in fields:
            if f[0] == 3:
                f[2] = f[2] + b"_copy%d" % k
            if f[0] == 2:
                f[2] = f[2] + b"_copy%d" % k
        copies.append([1, 2, Message("node", fields)])
    graph.fields[position + 1:position + 1] = copies
    return f"recurrent node repeated {count} times, sharing its initializers"


def tensor_mutation(tensor, rng):
    """Dimensions, data type, data bytes or a second data field of one TensorProto."""
    name = b"".join(strings(tensor, 8)).decode("utf-8", "replace")
    choice = rng.randrange(8)
    dims = []
    for f in tensor.fields:
        if f[0] == 1:
            dims += [f[2]] if f[1] == 0 else packed(f[2])
    if choice in (0, 1):
        if choice == 0 and dims:
            i = rng.randrange(len(dims))
            dims[i] = rng.choice([0, 1, dims[i] + 1, dims[i] * 2, 2**31, 2**63, 2**64 - 1, max(dims[i] - 1, 0)])
        else:
            dims = rng.choice([[], dims + [1], dims[::-1], [1] * 9, dims + [2**32, 0], [2**16] * 3])
        rest = [f for f in tensor.fields if f[0] != 1]
        tensor.fields[:] = ([[1, 2, b"".join(map(varint, dims))]] if rng.random() < 0.7
                            else [[1, 0, d] for d in dims]) + rest
        return f"tensor {name} dims {dims}"
    if choice == 2:
        for f in tensor.fields:
            if f[0] == 2:
                f[2] = rng.choice(DATA_TYPES)
                return f"tensor {name} data_type {f[2]}"
    raw = [f for f in tensor.fields if f[0] == 9]
    if choice == 3 and raw:
        f = raw[0]
        f[2] = f[2][:rng.choice([0, 1, 4, max(len(f[2]) - 4, 0)])] if rng.random() < 0.5 else f[2] + b"\0" * 4
        return f"tensor {name} raw_data of {len(f[2])} bytes"
    if choice == 4 and raw and len(raw[0][2]) >= 4:
        data = bytearray(raw[0][2])
        value = rng.choice([float("nan"), float("inf"), float("-inf"), 3.4e38, -1.0])
        i = rng.randrange(len(data) // 4)
        data[4 * i:4 * i + 4] = struct.pack("<f", value)
        raw[0][2] = bytes(data)
        return f"tensor {name} value {i} = {value}"
    if choice == 5:
        tensor.fields.append([4, 2, struct.pack("<4f", 1, 2, 3, 4)])
        return f"tensor {name} also has float_data"
    if choice == 6:
        tensor.fields.append([rng.choice([13, 14]), 2 if rng.random() < 0.5 else 0,
                              Message("entry", [[1, 2, b"location"], [2, 2, b"/etc/passwd"]])])
        if tensor.fields[-1][1] == 0:
            tensor.fields[-1][2] = 1
        return f"tensor {name} external data"
    for f in tensor.fields:
        if f[0] == 9:
            tensor.fields.remove(f)
            return f"tensor {name} lost its raw_data"
    return f"tensor {name} unchanged"


def attribute_mutation(model, rng):
    nodes = messages(model, "node")
    node = rng.choice(recurrent_nodes(model) or nodes)
    attributes = [f for f in node.fields if f[0] == 5]
    choice = rng.randrange(5)
    if choice == 0 and attributes:
        count = rng.choice([2, 64, 65, 1000, 70000])
        source = rng.choice(attributes)
        for k in range(count):
            fields = [list(f) for f in source[2].fields]
            if k % 2:
                fields = [[1, 2, b"x%d" % k] if f[0] == 1 else f for f in fields]
            node.fields.append([5, 2, Message("attribute", fields)])
        return f"attribute repeated {count} times"
    if choice == 1:
        name = rng.choice(ATTRIBUTES).encode()
        kind = rng.randrange(5)
        value = [[3, 0, rng.choice(HOSTILE_VARINTS)], [4, 2, rng.choice(STRINGS)],
                 [2, 5, struct.pack("<f", rng.choice([float("nan"), 1.0, float("inf")]))],
                 [9, 2, rng.choice(STRINGS)], [8, 0, rng.choice(HOSTILE_VARINTS)]][kind]
        node.fields.append([5, 2, Message("attribute", [[1, 2, name], value, [20, 0, rng.randrange(16)]])])
        return f"attribute {name.decode()} added ({value[0]})"
    if choice == 2 and attributes:
        a = rng.choice(attributes)[2]
        for f in a.fields:
            if f[0] != 1 and f[1] == 0:
                f[2] = rng.choice(HOSTILE_VARINTS)
                return f"an attribute's varint {f[0]} = {f[2]}"
            if f[0] != 1 and f[1] == 2 and not isinstance(f[2], Message):
                f[2] = rng.choice(STRINGS)
                return f"an attribute's bytes {f[0]} = {f[2][:20]!r}"
    if choice == 3 and attributes:
        node.fields.remove(rng.choice(attributes))
        return "an attribute removed"
    # An attribute holding a deeply nested graph (attribute -> graph -> node -> attribute -> ...), encoded inside out.
    depth = rng.choice([10, 1000, 20000])
    core = encode([[1, 2, b"body"]])
    size, prefixes = len(core), []
    for _ in range(depth):
        for prefix in (encode([[4, 2, b"Identity"]]) + varint(5 << 3 | 2), varint(1 << 3 | 2),
                       encode([[1, 2, b"g"]]) + varint(6 << 3 | 2)):
            prefixes.append(prefix + varint(size))
            size += len(prefixes[-1])
    node.fields.append([5, 2, b"".join(reversed(prefixes)) + core])
    return f"an attribute nested {depth} deep"


def mutate(base, rng):
    """One mutant of the ONNX bytes `base`: (bytes, description)."""
    kind = rng.choices(["varint", "length", "delete", "duplicate", "string", "tensor", "attribute", "shared",
                        "nodes", "metadata", "truncate", "flip", "random", "splice"],
                       weights=[14, 8, 7, 5, 7, 14, 10, 4, 3, 6, 6, 8, 2, 6])[0]
    if kind == "truncate":
        cut = rng.randrange(len(base))
        return base[:cut], f"truncated to {cut} of {len(base)} bytes"
    if kind == "flip":
        data = bytearray(base)
        for _ in range(rng.choice([1, 1, 2, 4, 16])):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data), "bits flipped"
    if kind == "random":
        size = rng.choice([0, 1, 8, 100, 4096])
        return bytes(rng.randrange(256) for _ in range(size)), f"{size} random bytes"
    model = decode(base)
    places = list(walk(model))
    if kind == "varint":
        candidates = [(lst, i, k, p) for (lst, i, k, p) in places if lst[i][1] == 0]
        lst, i, k, path = rng.choice(candidates)
        old = lst[i][2]
        lst[i][2] = rng.choice(HOSTILE_VARINTS + [old + 1, max(old - 1, 0), old * 2, 2**64 - old])
        note = f"varint {k}{list(path)}: {old} -> {lst[i][2]}"
    elif kind == "length":
        candidates = [(lst, i, k, p) for (lst, i, k, p) in places if isinstance(lst[i][2], Message)]
        lst, i, k, path = rng.choice(candidates)
        size = len(encode(lst[i][2].fields))
        lst[i][2].length = rng.choice([0, 1, size - 1, size + 1, size + 100, 2**31, 2**63, 2**64 - 1])
        note = f"length of {lst[i][2].kind}{list(path)}: {size} -> {lst[i][2].length}"
    elif kind == "delete":
        lst, i, k, path = rng.choice(places)
        del lst[i]
        note = f"field {k}{list(path)} deleted"
    elif kind == "duplicate":
        lst, i, k, path = rng.choice(places)
        lst.insert(i, lst[i])
        note = f"field {k}{list(path)} duplicated"
    elif kind == "string":
        candidates = [(lst, i, k, p) for (lst, i, k, p) in places if lst[i][1] == 2 and
                      not isinstance(lst[i][2], Message) and len(lst[i][2]) < 256]
        lst, i, k, path = rng.choice(candidates)
        if k == "node" and lst[i][0] == 4:
            lst[i][2] = rng.choice(OPS).encode()
        else:
            names = [f[2] for (l2, j, _, _) in places for f in [l2[j]] if f[1] == 2 and isinstance(f[2], bytes)
                     and 0 < len(f[2]) < 40]
            lst[i][2] = rng.choice(STRINGS + names)
        note = f"string {k}{list(path)} = {lst[i][2][:30]!r}"
    elif kind == "tensor":
        tensor = rng.choice(messages(model, "tensor"))
        note = tensor_mutation(tensor, rng)
    elif kind == "attribute":
        note = attribute_mutation(model, rng)
    elif kind == "shared":
        note = share_initializers(model, rng)
    elif kind == "nodes":
        graph = graph_of(model)
        node = rng.choice([f for f in graph.fields if f[0] == 1])
        count = rng.choice([10, 1000, 100001])
        graph.fields[0:0] = [node] * count
        note = f"a node repeated {count} times"
    elif kind == "metadata":
        entries = [f[2] for f in model if f[0] == 14]
        if not entries or rng.random() < 0.2:
            model.append([14, 2, Message("entry", [[1, 2, b"recurrentkit.vocabulary"], [2, 2, b"{}"]])])
            note = "a metadata entry added"
        else:
            entry = rng.choice(entries)
            key = b"".join(strings(entry, 1)).decode("utf-8", "replace")
            value = b"".join(strings(entry, 2))
            try:
                data = json.loads(value)
                if isinstance(data, dict) and data:
                    field = rng.choice(sorted(data))
                    data[field] = rng.choice([None, 0, -1, 2**63, "", [], {}, ["a"] * 3, "\ufeff", data[field]])
                    if isinstance(data.get("tokens"), list) and rng.random() < 0.5:
                        data["tokens"] = data["tokens"][:-1] if rng.random() < 0.5 else data["tokens"] + ["dup"]
                new = json.dumps(data).encode()
            except ValueError:
                new = b"{"
            if rng.random() < 0.2:
                new = rng.choice([b"", b"\xff", b"[", b"x" * (17 << 20)])
            entry.fields = [f for f in entry.fields if f[0] != 2] + [[2, 2, new]]
            note = f"metadata {key} = {new[:40]!r}"
    else:
        lst, i, k, path = rng.choice(places)
        number = rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 13, 14, 15, 536870911])
        wire = rng.choice([0, 1, 2, 5])
        value = {0: rng.choice(HOSTILE_VARINTS), 1: b"\xff" * 8, 5: b"\x00\x00\xc0\x7f",
                 2: bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 40])))}[wire]
        lst.insert(i, [number, wire, value])
        note = f"field {number} (wire {wire}) inserted in {k}{list(path)}"
    return encode(model), note
