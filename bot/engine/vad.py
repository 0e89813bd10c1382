"""Silero VAD as a streaming batch model: one ONNX call for every live call's 32 ms chunk.

The ONNX file comes from the installed `silero-vad` wheel (never torch). Each stream keeps its own
recurrent state (2 x 128) and its last 64 samples of context, exactly as Silero's own wrapper does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .onnx import make_session, wheel_file

CONTEXT = 64
CHUNK = 512
RATE = 16000


def silero_model_path() -> Path:
    return wheel_file("silero_vad", "data/silero_vad.onnx", "scripts/install.sh installs it with --no-deps")


class SileroVad:
    name = "vad"

    def __init__(self, path: Path | None = None, threads: int = 1, device: str = "auto"):
        self.session = make_session(path or silero_model_path(), threads=threads, device=device)
        self._state: dict[str, np.ndarray] = {}  # [2, 128]
        self._context: dict[str, np.ndarray] = {}  # [64]
        self._sr = np.array(RATE, np.int64)

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, stream_ids: list[str], inputs: np.ndarray) -> np.ndarray:
        """inputs [B, 512] float32 at 16 kHz -> speech probabilities [B, 1]."""
        b = len(stream_ids)
        if inputs.shape != (b, CHUNK):
            raise ValueError(f"VAD expects [{b}, {CHUNK}] float32, got {inputs.shape}")
        ctx = np.stack([self._context.get(s, np.zeros(CONTEXT, np.float32)) for s in stream_ids])
        state = np.stack([self._state.get(s, np.zeros((2, 128), np.float32)) for s in stream_ids], axis=1)
        x = np.concatenate([ctx, inputs.astype(np.float32)], axis=1)
        out, new_state = self.session.run(None, {"input": x, "state": state, "sr": self._sr})
        for i, s in enumerate(stream_ids):
            self._state[s] = new_state[:, i, :]
            self._context[s] = x[i, -CONTEXT:]
        return out.astype(np.float32)

    def drop(self, stream_id: str) -> None:
        self._state.pop(stream_id, None)
        self._context.pop(stream_id, None)
