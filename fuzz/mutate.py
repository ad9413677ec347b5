"""Byte-level and structure-aware mutations (deterministic for a given ``random.Random``)."""
from __future__ import annotations

import json
import random
import struct
from typing import Any, Callable, Sequence

Mutator = Callable[[bytes, random.Random], bytes]

_INTERESTING = [0, 1, 2, 7, 8, 16, 32, 64, 100, 127, 128, 255, 256, 1024, 4096, 32767, 32768, 65535, 65536,
                2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**64 - 1]


def _pos(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data)) if data else 0


def flip_bit(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    b = bytearray(data)
    i = _pos(data, rng)
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def set_byte(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    b[_pos(data, rng)] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    return bytes(b)


def set_int(data: bytes, rng: random.Random) -> bytes:
    """Overwrite 1, 2, 4 or 8 bytes with an interesting integer (either byte order), e.g. a length field."""
    width = rng.choice([1, 2, 4, 8])
    if len(data) < width:
        return data
    value = rng.choice(_INTERESTING) % (1 << (8 * width))
    if rng.random() < 0.3:
        value = (-value) % (1 << (8 * width))
    raw = value.to_bytes(width, rng.choice(["little", "big"]))
    i = rng.randrange(len(data) - width + 1)
    return data[:i] + raw + data[i + width:]


def delete_range(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 2:
        return data
    i = _pos(data, rng)
    n = rng.randint(1, max(1, min(len(data) - i, rng.choice([1, 4, 16, 256, 4096]))))
    return data[:i] + data[i + n:]


def insert_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randint(0, len(data))
    n = rng.choice([1, 2, 4, 8, 64])
    chunk = bytes(rng.randrange(256) for _ in range(n)) if rng.random() < 0.5 else bytes([rng.randrange(256)]) * n
    return data[:i] + chunk + data[i:]


def duplicate_range(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = _pos(data, rng)
    n = rng.randint(1, min(len(data) - i, 512))
    j = rng.randint(0, len(data))
    return data[:j] + data[i:i + n] + data[j:]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randint(0, len(data))] if data else data


BYTE_MUTATORS: Sequence[Mutator] = (flip_bit, flip_bit, set_byte, set_int, set_int, delete_range, insert_bytes,
                                    duplicate_range, truncate)


def splice(a: bytes, b: bytes, rng: random.Random) -> bytes:
    """Head of ``a`` + tail of ``b``."""
    return a[:rng.randint(0, len(a))] + b[rng.randint(0, len(b)):]


def mutate_bytes(data: bytes, rng: random.Random, max_len: int) -> bytes:
    for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
        data = rng.choice(BYTE_MUTATORS)(data, rng)
    return data[:max_len]


# --- JSON-like values (YAML documents, safetensors and ONNX metadata) --------------------------------------

def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A value of a random JSON type, biased towards the edge cases parsers get wrong."""
    kinds = ["none", "bool", "int", "float", "str", "list", "dict"] if depth < 2 else ["none", "int", "str"]
    kind = rng.choice(kinds)
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, 1, -1, 3, 11, 19, 255, 2**31, -2**63, 10**30])
    if kind == "float":
        return rng.choice([0.0, -0.5, 0.5, 1e308, -1e-308, float("nan"), float("inf")])
    if kind == "str":
        return rng.choice(["", "x", "Normalize", "pp_liteseg_t", "model.pdmodel", "../../etc/passwd", "a" * 300,
                           "UAFM_SpAtten", "argmax", "none", "\x00", "é"])
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 3]))]
    return {rng.choice(["type", "mean", "std", "model", "params", "Deploy", "num_classes", "x"]):
            random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2]))}


def mutate_tree(value: Any, rng: random.Random) -> Any:
    """Replace, delete or retype one random node of a JSON-like tree (a copy is returned)."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        out = dict(value)
        r = rng.random()
        if r < 0.15:
            del out[key]
        elif r < 0.25:
            out[rng.choice(["", "x", 0, "Deploy"]) if isinstance(key, str) else key] = random_value(rng)
        else:
            out[key] = mutate_tree(value[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        out = list(value)
        i = rng.randrange(len(out))
        r = rng.random()
        if r < 0.15:
            del out[i]
        elif r < 0.3:
            out.append(random_value(rng))
        else:
            out[i] = mutate_tree(out[i], rng)
        return out
    return random_value(rng)


def json_mutator(text: str, rng: random.Random) -> str:
    """Mutate the JSON document ``text`` structurally (falls back to the text itself if it does not parse)."""
    try:
        tree = json.loads(text)
    except ValueError:
        return text
    for _ in range(rng.choice([1, 1, 2, 3])):
        tree = mutate_tree(tree, rng)
    return json.dumps(tree, allow_nan=True)


def pack_u32(value: int) -> bytes:
    return struct.pack("<I", value & 0xFFFFFFFF)
