#!/usr/bin/env python3
"""Rewrites a .safetensors file with every F32 tensor stored as F16, in place (atomically).

Used for the committed agent weights under notebooks/results/ (half the size; `rwt`'s
`models::weights::load` converts them back to the variables' dtype). Pure Python: the
standard library's struct module has the IEEE half format ('e').

    python3 data-scripts/safetensors_f16.py runs/<run>/checkpoint/agent.safetensors
"""
import json
import os
import struct
import sys


def to_f16(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    meta = header.pop("__metadata__", None)
    out_header, chunks, offset = {}, [], 0
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        start, end = t["data_offsets"]
        raw = body[start:end]
        dtype = t["dtype"]
        if dtype == "F32":
            values = struct.unpack(f"<{len(raw) // 4}f", raw)
            raw = struct.pack(f"<{len(values)}e", *values)
            dtype = "F16"
        out_header[name] = {"dtype": dtype, "shape": t["shape"], "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if meta is not None:
        out_header["__metadata__"] = meta
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: safetensors_f16.py FILE.safetensors [...]")
    for p in sys.argv[1:]:
        to_f16(p)
        print(f"{p}: F32 tensors now F16 ({os.path.getsize(p)} bytes)")
