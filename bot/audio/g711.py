"""G.711 mu-law and A-law (ITU-T G.711), vectorised with lookup tables built once at import."""
from __future__ import annotations

import numpy as np

_BIAS = 0x84
_CLIP = 32635


def _ulaw_encode_scalar(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    mag = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (mag & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_scalar(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    mag = ((mantissa << 3) + _BIAS) << exponent
    mag -= _BIAS
    return -mag if sign else mag


_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _alaw_encode_scalar(sample: int) -> int:
    val = sample >> 3  # 13-bit
    if val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        val = -val - 1
    seg = next((i for i, end in enumerate(_ALAW_SEG_END) if val <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (val >> 1) & 0x0F if seg < 2 else (val >> seg) & 0x0F
    return aval ^ mask


def _alaw_decode_scalar(byte: int) -> int:
    byte ^= 0x55
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    if exponent == 0:
        mag = (mantissa << 4) + 8
    else:
        mag = ((mantissa << 4) + 0x108) << (exponent - 1)
    return mag if sign else -mag


_ALL = np.arange(-32768, 32768)
ULAW_ENCODE = np.array([_ulaw_encode_scalar(int(s)) for s in _ALL], np.uint8)
ULAW_DECODE = np.array([_ulaw_decode_scalar(b) for b in range(256)], np.int16)
ALAW_ENCODE = np.array([_alaw_encode_scalar(int(s)) for s in _ALL], np.uint8)
ALAW_DECODE = np.array([_alaw_decode_scalar(b) for b in range(256)], np.int16)


def ulaw_encode(pcm: np.ndarray) -> bytes:
    return ULAW_ENCODE[pcm.astype(np.int32) + 32768].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    return ULAW_DECODE[np.frombuffer(data, np.uint8)]


def alaw_encode(pcm: np.ndarray) -> bytes:
    return ALAW_ENCODE[pcm.astype(np.int32) + 32768].tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    return ALAW_DECODE[np.frombuffer(data, np.uint8)]
