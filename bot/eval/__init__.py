"""Offline evaluation of turn-taking policies (`duplexbot eval turns`)."""
from .dataset import Labels, Sample, load_dataset, load_sample
from .metrics import Scores, score, summary

__all__ = ["Labels", "Sample", "Scores", "load_dataset", "load_sample", "score", "summary"]
