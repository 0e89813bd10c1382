"""The shipped duplex model as a streaming batch model (onnxruntime only; no torch, no network).

    model = DuplexModel()                       # models/duplex.onnx, sha256 checked against the manifest
    probs = model.run(["call-1", "call-2"], x)  # x [B, 2, 512] float32 (caller, bot) -> [B, 6]
    model.drop("call-1")

Each stream keeps its own recurrent state (GRU hidden + 384 samples of audio context per channel),
keyed by stream id. Columns of the output are `HEADS`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = MODEL_DIR / "duplex.onnx"
HEADS = ("eot", "hold", "interrupt", "backchannel", "bc_opportunity", "speech")
CHUNK = 512
RATE = 16000


class ModelIntegrityError(RuntimeError):
    """The model file does not match its manifest (corrupt or replaced): not retryable."""


@dataclass(frozen=True)
class Manifest:
    model: str
    sha256: str
    sample_rate: int
    chunk_samples: int
    context_samples: int
    hidden: int
    heads: tuple[str, ...]
    raw: dict

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            d = json.loads(path.read_text())
            return cls(d["model"], d["sha256"], int(d["sample_rate"]), int(d["chunk_samples"]),
                       int(d["context_samples"]), int(d["hidden"]), tuple(d["heads"]), d)
        except (OSError, ValueError, KeyError) as e:
            raise ModelIntegrityError(f"unreadable model manifest {path}: {e}") from None


def recommended(path: str | Path | None = None) -> dict:
    """The policy thresholds tuned on the dev split for this model (manifest "recommended"), {} if none."""
    mpath = (Path(path) if path else DEFAULT_MODEL).with_name("manifest.json")
    return dict(Manifest.load(mpath).raw.get("recommended", {}))


def _providers(device: str) -> list[str]:
    import onnxruntime as ort
    gpu = os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")
    if device == "cpu" or (device == "auto" and not gpu):
        return ["CPUExecutionProvider"]
    avail = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in avail]


class DuplexModel:
    """StreamingBatchModel for the duplex heads."""

    name = "duplex"

    def __init__(self, path: str | Path | None = None, threads: int = 1, device: str | None = None,
                 verify: bool = True):
        import onnxruntime as ort
        self.path = Path(path) if path else DEFAULT_MODEL
        self.manifest = Manifest.load(self.path.with_name("manifest.json"))
        if verify:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
            expected = self.manifest.sha256
            if self.path.name != self.manifest.model:
                expected = self.manifest.raw.get("int8", {}).get("sha256", "")
            if digest != expected:
                raise ModelIntegrityError(f"{self.path} sha256 {digest[:12]}... does not match the manifest")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        wanted = _providers(device or "auto")
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=wanted)
        except Exception as e:  # CUDA provider that cannot start: CPU, loudly
            log.warning("duplex model on %s failed (%s); using CPU", wanted, e)
            self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        log.info("duplex model %s runs on %s", self.path.name, self.session.get_providers())
        self.hidden = self.manifest.hidden
        self.ctx_len = self.manifest.context_samples
        self._h: dict[str, np.ndarray] = {}
        self._ctx: dict[str, np.ndarray] = {}

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, stream_ids: list[str], inputs: np.ndarray) -> np.ndarray:
        b = len(stream_ids)
        if inputs.shape != (b, 2, CHUNK):
            raise ValueError(f"duplex model expects [{b}, 2, {CHUNK}] float32, got {inputs.shape}")
        if len(set(stream_ids)) != b:
            raise ValueError("a stream may appear once per batch (its state is sequential)")
        zh = np.zeros(self.hidden, np.float32)
        zc = np.zeros((2, self.ctx_len), np.float32)
        h = np.stack([self._h.get(s, zh) for s in stream_ids])
        ctx = np.stack([self._ctx.get(s, zc) for s in stream_ids])
        probs, ctx_out, h_out = self.session.run(
            None, {"audio": np.ascontiguousarray(inputs, np.float32), "ctx": ctx, "h": h})
        for i, s in enumerate(stream_ids):
            self._h[s] = h_out[i]
            self._ctx[s] = ctx_out[i]
        return probs

    def drop(self, stream_id: str) -> None:
        self._h.pop(stream_id, None)
        self._ctx.pop(stream_id, None)

    def streams(self) -> int:
        return len(self._h)
