"""G.711 mu-law (PCMU) and A-law (PCMA) with numpy lookup tables (ITU-T G.711).

The one G.711 of the project: SIP/RTP uses `encode`/`decode` by codec name, Twilio Media Streams
(mu-law) and the bench peers use `ulaw_encode`/`ulaw_decode` through `bot.audio`."""
from __future__ import annotations

import numpy as np


def _ulaw_decode_one(b: int) -> int:
    b = ~b & 0xFF
    t = ((b & 0x0F) << 3) + 0x84
    t <<= (b & 0x70) >> 4
    return (0x84 - t) if b & 0x80 else (t - 0x84)


def _alaw_decode_one(b: int) -> int:
    b ^= 0x55
    t = (b & 0x0F) << 4
    seg = (b & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if b & 0x80 else -t


def _ulaw_encode_table() -> np.ndarray:
    """mu-law for every int16 (the 14-bit reference algorithm of G.711 / Sun's g711.c)."""
    v = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), 8159) + 0x21
    ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    seg = np.searchsorted(ends, v)
    code = (seg << 4) | ((v >> (seg + 1)) & 0x0F)
    return (np.where(seg >= 8, 0x7F, code) ^ mask).astype(np.uint8)


def _alaw_encode_one(s: int) -> int:
    sign = 0x80 if s >= 0 else 0
    s = min(abs(s) if s >= 0 else (-s - 1), 32767) >> 3
    if s < 32:
        code = s >> 1
    else:
        exp = 1
        while exp < 7 and s >= (64 << (exp - 1)):
            exp += 1
        code = (exp << 4) | ((s >> exp) & 0x0F)
    return (code | sign) ^ 0x55


ULAW_DECODE = np.array([_ulaw_decode_one(i) for i in range(256)], np.int16)
ALAW_DECODE = np.array([_alaw_decode_one(i) for i in range(256)], np.int16)
_ALL = range(-32768, 32768)
ULAW_ENCODE = _ulaw_encode_table()
ALAW_ENCODE = np.array([_alaw_encode_one(s) for s in _ALL], np.uint8)


def decode(payload: bytes, codec: str) -> np.ndarray:
    table = ULAW_DECODE if codec == "PCMU" else ALAW_DECODE
    return table[np.frombuffer(payload, np.uint8)]


# the same tables indexed by the int16 sample's bit pattern (pcm.view(uint16)): one lookup, no arithmetic
_ORDER = np.arange(65536, dtype=np.uint32) ^ 0x8000
_ULAW_BY_BITS = ULAW_ENCODE[_ORDER]
_ALAW_BY_BITS = ALAW_ENCODE[_ORDER]


def encode(pcm: np.ndarray, codec: str) -> bytes:
    table = _ULAW_BY_BITS if codec == "PCMU" else _ALAW_BY_BITS
    return table[np.ascontiguousarray(pcm, np.int16).view(np.uint16)].tobytes()


def ulaw_encode(pcm: np.ndarray) -> bytes:
    return encode(pcm, "PCMU")


def ulaw_decode(data: bytes) -> np.ndarray:
    return decode(data, "PCMU")


def alaw_encode(pcm: np.ndarray) -> bytes:
    return encode(pcm, "PCMA")


def alaw_decode(data: bytes) -> np.ndarray:
    return decode(data, "PCMA")


def silence(codec: str, samples: int = 160) -> bytes:
    return (b"\xff" if codec == "PCMU" else b"\xd5") * samples
