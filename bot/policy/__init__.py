"""Turn-taking policies: the interface, the VAD baseline, and (models helper) the duplex model."""
from .base import (
                   CHUNK_RATE,
                   CHUNK_SAMPLES,
                   CHUNK_SECONDS,
                   Decision,
                   ModelOutput,
                   Observation,
                   PolicySettings,
                   TurnPolicy,
)
from .baseline import VadTimeoutPolicy

__all__ = ["CHUNK_RATE", "CHUNK_SAMPLES", "CHUNK_SECONDS", "Decision", "ModelOutput", "Observation",
           "PolicySettings", "TurnPolicy", "VadTimeoutPolicy"]
