"""ONNX export equals PyTorch: the shipped weights on a fixed input, and a fresh export."""
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.export import export, fixed_input, max_difference  # noqa: E402
from models.net import CHUNK, CTX, DuplexNet  # noqa: E402
from models.runtime import DEFAULT_MODEL  # noqa: E402

WEIGHTS = Path(DEFAULT_MODEL).with_suffix(".pt")


def test_shipped_onnx_equals_pytorch_weights():
    ck = torch.load(WEIGHTS, map_location="cpu")
    net = DuplexNet(ck["hidden"], ck["width"])
    net.load_state_dict(ck["model"])
    assert max_difference(net.eval(), DEFAULT_MODEL, fixed_input(net.hidden, steps=20)) < 1e-4


def test_fresh_export_matches_and_streaming_equals_sequence(tmp_path):
    torch.manual_seed(0)
    net = DuplexNet(hidden=16, width=24).eval()
    export(net, tmp_path / "m.onnx")
    audio = fixed_input(16, batch=2, steps=12)
    assert max_difference(net, tmp_path / "m.onnx", audio) < 1e-4
    with torch.no_grad():  # the training path (whole sequence) equals the streaming step
        x = torch.from_numpy(audio)
        seq = torch.sigmoid(net.forward_feats(net.features(torch.nn.functional.pad(x, (CTX, 0))))[0])
        ctx, h = torch.zeros(2, 2, CTX), torch.zeros(2, 16)
        for t in range(12):
            p, ctx, h = net.step(x[:, :, t * CHUNK:(t + 1) * CHUNK], ctx, h)
            np.testing.assert_allclose(p.numpy(), seq[:, t].numpy(), atol=1e-5)
