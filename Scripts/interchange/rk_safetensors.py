"""A tiny, dependency-free safetensors reader/writer (F32 / F64 only) for RecurrentKit interchange.

Format (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 header length N, N bytes of
JSON header `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}` padded with
spaces to a multiple of 8, then the raw little-endian tensor bytes; offsets are relative to the data start and
the tensors tile the data exactly (no holes, no overlaps).

Reading validates the same things as RecurrentKit's `SafetensorsFile` (Sources/RecurrentKit/IO/Safetensors.swift):
header length within the file, UTF-8 JSON object, string metadata, known dtypes, integer non-negative shapes whose
byte size matches the offsets, ranges inside the data, no overlaps, no holes. Errors raise `SafetensorsError`.

Tensors are exchanged as torch tensors when torch is importable (`load_torch` / `save_torch`), and as
(dtype, shape, bytes) triples otherwise (`read` / `write`), so this module itself needs only the standard library.
"""

import json
import struct

# dtype name -> (bytes per element, struct code)
DTYPES = {"F32": (4, "f"), "F64": (8, "d")}
MAX_HEADER_BYTES = 100_000_000


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file (or uses a dtype this module does not handle)."""


class Entry:
    """One tensor: dtype name, shape (list of ints) and little-endian element bytes."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, list(shape), bytes(data)

    @property
    def count(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def values(self):
        """The elements as a flat list of Python floats (row-major)."""
        size, code = DTYPES[self.dtype]
        return list(struct.unpack("<%d%s" % (self.count, code), self.data))


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def parse(blob):
    """Parses and validates safetensors bytes; returns (tensors: {name: Entry}, metadata: {str: str})."""
    def bad(reason):
        return SafetensorsError("not a valid safetensors file: " + reason)

    blob = bytes(blob)
    if len(blob) < 8:
        raise bad("%d bytes, shorter than the 8-byte header length" % len(blob))
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_BYTES:
        raise bad("header length %d exceeds the limit of %d bytes" % (n, MAX_HEADER_BYTES))
    if n < 2 or n > len(blob) - 8:
        raise bad("header length %d does not fit in a %d-byte file" % (n, len(blob)))
    try:
        text = blob[8:8 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise bad("header is not UTF-8") from None
    try:
        header = json.loads(text)
    except ValueError:
        raise bad("header is not well-formed JSON") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    data = blob[8 + n:]
    metadata, ranges, info = {}, [], {}
    for name, value in header.items():
        if name == "__metadata__":
            if not isinstance(value, dict):
                raise bad("__metadata__ is not an object")
            for k, v in value.items():
                if not isinstance(v, str):
                    raise bad("metadata value for %s is not a string" % k)
                metadata[k] = v
            continue
        if not isinstance(value, dict):
            raise bad("entry %s is not an object" % name)
        dtype = value.get("dtype")
        if not isinstance(dtype, str):
            raise bad("tensor %s has no dtype" % name)
        if dtype not in DTYPES:
            raise bad("tensor %s has dtype %s; supported: %s" % (name, dtype, ", ".join(DTYPES)))
        shape = value.get("shape")
        if not isinstance(shape, list):
            raise bad("tensor %s has no shape" % name)
        count = 1
        for d in shape:
            if not _is_int(d) or d < 0 or d > 2**31 - 1:
                raise bad("tensor %s has an invalid dimension %r" % (name, d))
            count *= d
            if count > len(blob):
                raise bad("tensor %s with shape %s is larger than the file" % (name, shape))
        offsets = value.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
            raise bad("tensor %s has no valid data_offsets" % name)
        begin, end = offsets
        if begin < 0 or end < begin or end > len(data):
            raise bad("tensor %s data_offsets [%d, %d] fall outside the %d data bytes" % (name, begin, end, len(data)))
        need = count * DTYPES[dtype][0]
        if end - begin != need:
            raise bad("tensor %s has %d bytes, but shape %s of %s needs %d" % (name, end - begin, shape, dtype, need))
        ranges.append((begin, end, name))
        info[name] = (dtype, shape)
    ranges.sort()
    position = 0
    for begin, end, name in ranges:
        if begin < position:
            raise bad("tensor %s overlaps the previous tensor" % name)
        if begin > position:
            raise bad("unused bytes before tensor %s" % name)
        position = end
    if position != len(data):
        raise bad("%d unused bytes after the last tensor" % (len(data) - position))
    tensors = {name: Entry(info[name][0], info[name][1], data[b:e]) for b, e, name in ranges}
    return tensors, metadata


def read(path):
    """Reads and validates a file; returns (tensors: {name: Entry}, metadata: {str: str})."""
    with open(path, "rb") as f:
        return parse(f.read())


def serialize(tensors, metadata=None):
    """Bytes of a safetensors file. `tensors`: {name: Entry}; written in name order, header keys sorted."""
    header, offset, chunks = {}, 0, []
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError("metadata keys and values must be strings (%r: %r)" % (k, v))
        header["__metadata__"] = dict(metadata)
    for name in sorted(tensors):
        if name == "__metadata__":
            raise SafetensorsError("a tensor cannot be named __metadata__")
        e = tensors[name]
        if e.dtype not in DTYPES:
            raise SafetensorsError("tensor %s: unsupported dtype %s" % (name, e.dtype))
        if len(e.data) != e.count * DTYPES[e.dtype][0]:
            raise SafetensorsError("tensor %s: %d bytes for shape %s" % (name, len(e.data), e.shape))
        header[name] = {"dtype": e.dtype, "shape": list(e.shape), "data_offsets": [offset, offset + len(e.data)]}
        offset += len(e.data)
        chunks.append(e.data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write(path, tensors, metadata=None):
    """Writes a file atomically enough for scripts (temporary file, then rename)."""
    import os
    blob = serialize(tensors, metadata)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# torch helpers (torch is imported lazily)
# ---------------------------------------------------------------------------

def entry_to_torch(entry):
    import torch
    dtype = {"F32": torch.float32, "F64": torch.float64}[entry.dtype]
    if entry.count == 0:
        return torch.zeros(entry.shape, dtype=dtype)
    # frombuffer reads native order; every platform torch supports for this is little-endian.
    t = torch.frombuffer(bytearray(entry.data), dtype=dtype)
    return t.reshape(entry.shape).clone()


def torch_to_entry(tensor, dtype="F32"):
    """A torch tensor converted to `dtype` ("F32" or "F64") as an Entry (exact: floats go through struct)."""
    import torch
    t = tensor.detach().to("cpu", {"F32": torch.float32, "F64": torch.float64}[dtype]).contiguous()
    size, code = DTYPES[dtype]
    return Entry(dtype, list(t.shape), struct.pack("<%d%s" % (t.numel(), code), *t.reshape(-1).tolist()))


def load_torch(path):
    """Reads a file; returns ({name: torch.Tensor}, metadata)."""
    tensors, metadata = read(path)
    return {name: entry_to_torch(e) for name, e in tensors.items()}, metadata


def save_torch(path, tensors, metadata=None, dtype="F32"):
    """Writes {name: torch.Tensor} (converted to `dtype`) with string metadata."""
    write(path, {name: torch_to_entry(t, dtype) for name, t in tensors.items()}, metadata)
