"""Opus (RFC 7587) for RTP, optional: 8 kHz PCM16 in and out, 48 kHz on the wire, via PyAV's libopus.

Only used when `UaSettings.codecs` lists "OPUS" (DUPLEXBOT_SIP_CODECS). About ten times the CPU of
G.711 per frame (encode + decode + resampling), so it stays off by default for telephony trunks.
"""
from __future__ import annotations

import fractions

import numpy as np

CLOCK = 48000
FRAME_48K = 960


class OpusCodec:
    name = "OPUS"
    clock = CLOCK

    def __init__(self) -> None:
        import av  # heavy: imported only when a call actually negotiates Opus

        self._av = av
        self._enc = av.CodecContext.create("libopus", "w")
        self._enc.sample_rate = CLOCK
        self._enc.format = "s16"
        self._enc.layout = "mono"
        self._enc.bit_rate = 32000
        self._enc.options = {"application": "voip"}
        self._enc.time_base = fractions.Fraction(1, CLOCK)
        self._up = av.AudioResampler(format="s16", layout="mono", rate=CLOCK, frame_size=FRAME_48K)
        self._dec = av.CodecContext.create("libopus", "r")
        self._dec.sample_rate = CLOCK
        self._dec.format = "s16"
        self._dec.layout = "mono"
        self._down = av.AudioResampler(format="s16", layout="mono", rate=8000)
        self._pending = np.zeros(0, np.int16)

    def encode(self, pcm8k: np.ndarray) -> bytes | None:
        """One 20 ms packet, or None while the resampler fills up (the first frame or so)."""
        frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm8k, np.int16).reshape(1, -1),
                                                 format="s16", layout="mono")
        frame.sample_rate = 8000
        packets = []
        for f in self._up.resample(frame):
            packets += self._enc.encode(f)
        return bytes(packets[0]) if packets else None

    def decode(self, payload: bytes) -> np.ndarray:
        """The packet's audio at 8 kHz: exactly its duration (160 samples per 20 ms), so it lines up
        with the RTP timestamp; the resampler's start-up delay is filled with silence once."""
        try:
            frames = self._dec.decode(self._av.Packet(payload))
        except self._av.error.FFmpegError as e:   # corrupt packet: the caller counts the drop
            raise ValueError(f"bad Opus packet: {e}") from None
        duration = sum(f.samples for f in frames) // 6
        out = [self._pending]
        for f in frames:
            for g in self._down.resample(f):
                out.append(g.to_ndarray().reshape(-1).astype(np.int16))
        pcm = np.concatenate(out)
        if len(pcm) < duration:
            pcm = np.concatenate([np.zeros(duration - len(pcm), np.int16), pcm])
        self._pending = pcm[duration:]
        return pcm[:duration]
