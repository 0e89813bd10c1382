"""Does the voice go on? A linear probe on Whisper's encoder at the end of a caller's phrase.

The words cannot tell "Do you live by yourself?" (the end of a question) from "Do you live by
yourself ... or with your family?" (a pause inside one): both read as complete. The voice can: a
phrase that goes on has no final lengthening and no final fall or rise. The duplex model learned
such cues from our synthetic voices only and on voices it never heard gives p(hold) ~0 in these
pauses. Whisper's encoder was trained on 680k hours of real speech and its output frames carry the
prosody of the last words; the engine already computes them for the speculative transcript at
every pause, so the probe costs one dot product.

Features: the encoder frames (20 ms each) of the last `BLOCKS` x 0.2 s of the audio handed to ASR
(the phrase up to the pause plus the engine's post-roll), mean-pooled per block. The probe is a
logistic regression trained by `python -m bot.eval.prosody_train` on voices and sentences held
apart from the phone benchmark's (see that module); its weights ship as `models/prosody.npz`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16000
ENC_HOP = 320  # audio samples per Whisper encoder frame (20 ms)
BLOCKS = 4
BLOCK_FRAMES = 10  # 0.2 s


def pause_features(enc: np.ndarray, audio_samples: int) -> np.ndarray:
    """Mean-pooled encoder frames of the last BLOCKS x 0.2 s of the audio ([T, D] -> [BLOCKS * D]).
    Blocks before the audio's start (a very short phrase) repeat the first frame."""
    enc = np.asarray(enc, np.float32)
    end = min(enc.shape[0], max(1, int(round(audio_samples / ENC_HOP))))
    idx = np.arange(end - BLOCKS * BLOCK_FRAMES, end).clip(0, end - 1)
    return enc[idx].reshape(BLOCKS, BLOCK_FRAMES, -1).mean(axis=1).reshape(-1)


def bundled_probe_path() -> Path:
    import models
    return Path(models.__file__).with_name("prosody.npz")


@dataclass(frozen=True)
class ProsodyProbe:
    """p(the caller goes on) = sigmoid(w . (x - mean) / std + b)."""
    w: np.ndarray
    b: float
    mean: np.ndarray
    std: np.ndarray
    meta: dict

    @classmethod
    def load(cls, path: str | Path) -> "ProsodyProbe":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"])) if "meta" in z else {}
            probe = cls(z["w"].astype(np.float32), float(z["b"]), z["mean"].astype(np.float32),
                        z["std"].astype(np.float32), meta)
        if not (probe.w.shape == probe.mean.shape == probe.std.shape):
            raise ValueError(f"{path}: probe weights and normalisation differ in shape")
        return probe

    def save(self, path: str | Path) -> None:
        np.savez(path, w=self.w, b=np.float32(self.b), mean=self.mean, std=self.std,
                 meta=np.array(json.dumps(self.meta)))

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(np.asarray(feats, np.float32)) - self.mean) / self.std
        return 1.0 / (1.0 + np.exp(-(x @ self.w + self.b)))


def load_probe(path: str) -> ProsodyProbe | None:
    """The probe at `path` ("" = the shipped one, "none" = off); None if off or not shipped."""
    if path == "none":
        return None
    p = Path(path) if path else bundled_probe_path()
    return ProsodyProbe.load(p) if p.exists() else None
