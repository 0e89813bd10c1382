"""duplexbot models package: the duplex turn-taking model.

Run time needs only `models.runtime` (numpy + onnxruntime); `models.data`, `models.train`,
`models.export` and `models.net` are the training pipeline (torch, espeak-ng, hibari-tts)."""
from .runtime import HEADS, DuplexModel, ModelIntegrityError, recommended

__all__ = ["HEADS", "DuplexModel", "ModelIntegrityError", "recommended"]
