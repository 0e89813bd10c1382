"""Export a trained checkpoint to the shipped streaming ONNX model and verify it.

    python -m models.export [--ckpt models/runs/duplex/best.pt] [--out models/duplex.onnx] [--int8]

Graph: inputs audio [B,2,512], ctx [B,2,384], h [B,H]; outputs probs [B,6], ctx_out, h_out, with a
dynamic batch axis. The ONNX outputs are checked against PyTorch on a fixed input and over a
40-step stream before the manifest (sha256, rates, recipe) is written.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .net import CHUNK, CTX, HEADS, RATE, DuplexNet


class _Step(torch.nn.Module):
    def __init__(self, net: DuplexNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, audio: torch.Tensor, ctx: torch.Tensor, h: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net.step(audio, ctx, h)


def load_checkpoint(path: str | Path) -> DuplexNet:
    ck = torch.load(path, map_location="cpu")
    net = DuplexNet(ck["hidden"], ck["width"])
    net.load_state_dict(ck["model"])
    return net.eval()


def export(net: DuplexNet, out: Path) -> None:
    b = 3
    args = (torch.zeros(b, 2, CHUNK), torch.zeros(b, 2, CTX), torch.zeros(b, net.hidden))
    torch.onnx.export(
        _Step(net), args, str(out), dynamo=False, opset_version=17,
        input_names=["audio", "ctx", "h"], output_names=["probs", "ctx_out", "h_out"],
        dynamic_axes={n: {0: "batch"} for n in ("audio", "ctx", "h", "probs", "ctx_out", "h_out")})


def fixed_input(hidden: int, batch: int = 4, steps: int = 40, seed: int = 7) -> np.ndarray:
    """A deterministic test stream: tones + noise bursts on both channels."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps * CHUNK) / RATE
    audio = np.zeros((batch, 2, steps * CHUNK), np.float32)
    for i in range(batch):
        audio[i, 0] = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)
        audio[i, 1] = 0.1 * rng.standard_normal(t.size) * (t > 0.5)
    return audio


def max_difference(net: DuplexNet, onnx_path: Path, audio: np.ndarray) -> float:
    """Largest |ONNX - PyTorch| over every step of a stream (probabilities and states)."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    b = audio.shape[0]
    ctx_t, h_t = torch.zeros(b, 2, CTX), torch.zeros(b, net.hidden)
    ctx_o, h_o = np.zeros((b, 2, CTX), np.float32), np.zeros((b, net.hidden), np.float32)
    worst = 0.0
    with torch.no_grad():
        for s in range(audio.shape[2] // CHUNK):
            x = audio[:, :, s * CHUNK:(s + 1) * CHUNK]
            p_t, ctx_t, h_t = net.step(torch.from_numpy(x), ctx_t, h_t)
            p_o, ctx_o, h_o = sess.run(None, {"audio": x, "ctx": ctx_o, "h": h_o})
            worst = max(worst, float(np.abs(p_t.numpy() - p_o).max()), float(np.abs(h_t.numpy() - h_o).max()))
    return worst


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.export", description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", default="models/runs/duplex/best.pt")
    ap.add_argument("--out", default="models/duplex.onnx")
    ap.add_argument("--int8", action="store_true", help="also write a dynamic-int8 variant (*.int8.onnx)")
    a = ap.parse_args(argv)
    net = load_checkpoint(a.ckpt)
    out = Path(a.out)
    export(net, out)
    diff = max_difference(net, out, fixed_input(net.hidden))
    print(f"ONNX vs PyTorch max abs difference over 40 steps: {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit(f"export mismatch {diff}")
    torch.save({"model": net.state_dict(), "hidden": net.hidden, "width": net.front[0].out_features},
               out.with_suffix(".pt"))  # the weights the ONNX file was made from (equivalence test)
    manifest_path = out.with_name("manifest.json")
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    recipe_path = Path(a.ckpt).with_name("recipe.json")
    recipe = json.loads(recipe_path.read_text()) if recipe_path.exists() else {}
    recipe.pop("history", None)
    manifest.update({
        "model": out.name, "sha256": sha256(out), "bytes": out.stat().st_size,
        "sample_rate": RATE, "chunk_samples": CHUNK, "context_samples": CTX, "hidden": net.hidden,
        "channels": ["caller", "bot"], "heads": list(HEADS),
        "inputs": {"audio": "[B,2,512] float32", "ctx": "[B,2,384] float32", "h": f"[B,{net.hidden}] float32"},
        "outputs": {"probs": "[B,6] float32", "ctx_out": "[B,2,384]", "h_out": f"[B,{net.hidden}]"},
        "onnx_vs_torch_max_abs_diff": diff,
        "training": {"recipe": recipe, "commands": ["python -m models.data", "python -m models.train",
                                                    "python -m models.export"]},
    })
    if a.int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        q = out.with_suffix(".int8.onnx")
        import onnx
        feature_nodes = [n.name for n in onnx.load(str(out)).graph.node if n.name.startswith("/features/")]
        # the DFT/mel front-end stays float: int8 spectra wreck the log-mel features
        quantize_dynamic(str(out), str(q), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         nodes_to_exclude=feature_nodes)
        manifest["int8"] = {"model": q.name, "sha256": sha256(q), "bytes": q.stat().st_size,
                            "max_abs_diff_vs_torch": max_difference(net, q, fixed_input(net.hidden))}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {manifest_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
