"""Turn-taking policies: the interface, the VAD baseline, and (models helper) the duplex model.

What the engine runs, and nothing of the engine: evaluation peers (Pipecat's Smart Turn) live in
bot/eval."""
from .base import (
                   CHUNK_RATE,
                   CHUNK_SAMPLES,
                   CHUNK_SECONDS,
                   Decision,
                   DecisionKind,
                   ModelOutput,
                   Observation,
                   PolicySettings,
                   TurnPolicy,
)
from .baseline import VadTimeoutPolicy

__all__ = ["CHUNK_RATE", "CHUNK_SAMPLES", "CHUNK_SECONDS", "Decision", "DecisionKind", "ModelOutput", "Observation",
           "PolicySettings", "TurnPolicy", "VadTimeoutPolicy"]
