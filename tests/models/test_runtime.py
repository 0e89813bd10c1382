"""The shipped duplex model loads offline, checks its sha256, and keeps per-stream state."""
import json
import shutil
import socket

import numpy as np
import pytest

from models.runtime import DEFAULT_MODEL, HEADS, DuplexModel, ModelIntegrityError


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the duplex runtime tried to open a socket")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_shipped_model_loads_without_network(no_network):
    m = DuplexModel(device="cpu")
    assert m.manifest.sha256 and m.manifest.heads == HEADS
    assert m.providers[-1] == "CPUExecutionProvider"
    assert DEFAULT_MODEL.stat().st_size < 5_000_000
    x = (np.random.default_rng(0).standard_normal((3, 2, 512)) * 0.1).astype(np.float32)
    y = m.run(["a", "b", "c"], x)
    assert y.shape == (3, len(HEADS)) and np.all((y >= 0) & (y <= 1))


def test_state_is_per_stream_and_batch_independent():
    rng = np.random.default_rng(1)
    xs = (rng.standard_normal((6, 2, 2, 512)) * 0.1).astype(np.float32)
    alone, together = DuplexModel(device="cpu"), DuplexModel(device="cpu")
    for t in range(6):
        ya = alone.run(["a"], xs[t, :1])
        yab = together.run(["b", "a"], xs[t, ::-1])
        np.testing.assert_allclose(ya[0], yab[1], atol=1e-5)
    assert together.streams() == 2
    together.drop("a")
    together.drop("missing")  # dropping an unknown stream is harmless
    assert together.streams() == 1
    fresh = DuplexModel(device="cpu")
    np.testing.assert_allclose(together.run(["a"], xs[0, :1]), fresh.run(["a"], xs[0, :1]), atol=1e-6)


def test_bad_shapes_and_duplicate_streams():
    m = DuplexModel(device="cpu")
    with pytest.raises(ValueError, match=r"\[1, 2, 512\]"):
        m.run(["a"], np.zeros((1, 512), np.float32))
    with pytest.raises(ValueError, match="once per batch"):
        m.run(["a", "a"], np.zeros((2, 2, 512), np.float32))


def test_sha_mismatch_is_refused(tmp_path):
    shutil.copy(DEFAULT_MODEL, tmp_path / DEFAULT_MODEL.name)
    manifest = json.loads(DEFAULT_MODEL.with_name("manifest.json").read_text())
    manifest["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="does not match"):
        DuplexModel(tmp_path / DEFAULT_MODEL.name)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ModelIntegrityError, match="unreadable"):
        DuplexModel(tmp_path / DEFAULT_MODEL.name)
