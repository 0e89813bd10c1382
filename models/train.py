"""Train the duplex model on the generated calls (CPU, a time budget in minutes).

    python -m models.train [--data models/data] [--out models/runs/duplex] [--minutes 20]

Features are computed once with the network's own in-graph front-end and cached (float16); the
GRU then trains on random 10 s crops with gain augmentation. The best checkpoint on the dev split
is kept as OUT/best.pt with its recipe in OUT/recipe.json.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .audio import read_wav
from .net import CTX, HEADS, DuplexNet, Features

HEAD_WEIGHTS = {"eot": 2.0, "hold": 0.5, "interrupt": 2.0, "backchannel": 1.0, "bc_opportunity": 0.3, "speech": 0.5}
FLOOR = math.log(1e-7)


def load_split(data: Path, split: str, cache: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """-> feats [N, T, 2, 4, M] float16, labels [N, T, 6] float16, names."""
    from tqdm import tqdm
    labels = np.load(data / "labels" / f"{split}.npz")
    names = sorted(labels.files)
    fpath = cache / f"feats_{split}.npy"
    ys = np.stack([labels[n] for n in names])
    if fpath.exists():
        feats = np.load(fpath, mmap_mode="r")
        if feats.shape[0] == len(names):
            return np.asarray(feats), ys, names
    fe = Features().eval()
    out = None
    with torch.no_grad():
        for i, n in enumerate(tqdm(names, desc=f"features {split}")):
            x, sr = read_wav(data / split / f"{n}.wav")
            assert sr == 16000 and x.shape[0] == 2
            t = torch.from_numpy(np.pad(x, ((0, 0), (CTX, 0))))[None]
            f = fe(t)[0].numpy().astype(np.float16)
            if out is None:
                out = np.zeros((len(names),) + f.shape, np.float16)
            out[i, : f.shape[0]] = f[: out.shape[1]]
    if out is None:
        raise ValueError(f"{data / 'labels' / split}.npz lists no calls: generate the data first (models.data)")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(fpath, out)
    return out, ys, names


def spec_mask(x: np.ndarray, rng: np.random.Generator, width: int = 6) -> None:
    """SpecAugment-style: each crop loses one random band of up to `width` mel bands on each channel
    (set to the crop's mean level there), so no single band decides."""
    b, _, c, _, m = x.shape
    for i in range(b):
        for ch in range(c):
            w = int(rng.integers(0, width + 1))
            if w:
                f0 = int(rng.integers(0, m - w))
                x[i, :, ch, :, f0:f0 + w] = x[i, :, ch, :, f0:f0 + w].mean()


def batch(feats: np.ndarray, ys: np.ndarray, rng: np.random.Generator, size: int, length: int,
          augment: bool = True, mask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    n, T = feats.shape[:2]
    idx = rng.integers(0, n, size)
    starts = np.where(rng.random(size) < 0.3, 0, rng.integers(0, max(1, T - length), size))
    x = np.stack([feats[i, s:s + length] for i, s in zip(idx, starts)]).astype(np.float32)
    y = np.stack([ys[i, s:s + length] for i, s in zip(idx, starts)]).astype(np.float32)
    if augment:
        g_caller = rng.uniform(-12, 8, size) / 10 * math.log(10)
        g_bot = rng.uniform(-6, 4, size) / 10 * math.log(10)
        x[:, :, 0] += g_caller[:, None, None, None]
        x[:, :, 1] += g_bot[:, None, None, None]
        np.maximum(x, FLOOR, out=x)
        if mask:
            spec_mask(x, rng)
    return torch.from_numpy(x), torch.from_numpy(y)


EOT, HOLD, INT, BC = (HEADS.index(h) for h in ("eot", "hold", "interrupt", "backchannel"))


def loss_fn(logits: torch.Tensor, y: torch.Tensor, focus: float = 4.0) -> torch.Tensor:
    """Weighted BCE. Frames where the hard choices are made weigh `focus` times more: the eot head
    inside holds and after ends of turn, the interrupt/backchannel heads under caller speech over
    bot speech (backchannel vs interruption)."""
    w = torch.tensor([HEAD_WEIGHTS[h] for h in HEADS])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    fw = torch.ones_like(bce)
    turn = ((y[..., HOLD] > 0) | (y[..., EOT] > 0)).float()
    overlap = ((y[..., INT] > 0) | (y[..., BC] > 0)).float()
    fw[..., EOT] += (focus - 1) * turn
    fw[..., INT] += (focus - 1) * overlap
    fw[..., BC] += (focus - 1) * overlap
    return ((bce * fw).mean(dim=(0, 1)) * w).sum() / w.sum()


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="models/data")
    ap.add_argument("--out", default="models/runs/duplex")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=320)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="start from this checkpoint")
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout after the chunk MLP (training only)")
    ap.add_argument("--specaug", action="store_true", help="mask a random mel band per crop and channel")
    ap.add_argument("--int-delay", type=int, default=0,
                    help="shift the interrupt target this many chunks later (commit later, fewer false stops)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    data, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(a.data) / "cache"
    ftr, ytr, _ = load_split(data, "train", cache)
    fdv, ydv, _ = load_split(data, "dev", cache)
    if a.int_delay > 0:
        for labels in (ytr, ydv):
            labels[:, a.int_delay:, INT] = labels[:, :-a.int_delay, INT].copy()
            labels[:, :a.int_delay, INT] = 0
    net = DuplexNet(a.hidden, a.width, a.dropout)
    if a.init:
        net.load_state_dict(torch.load(a.init)["model"])
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
    budget = a.minutes * 60
    t0 = time.time()
    best = float("inf")
    step = 0
    dev_x = torch.from_numpy(fdv.astype(np.float32))
    dev_y = torch.from_numpy(ydv.astype(np.float32))
    history = []
    bar = tqdm(total=int(budget), desc="train (s)", unit="s")
    while True:
        elapsed = time.time() - t0
        if elapsed > budget:
            break
        frac = elapsed / budget
        for g in opt.param_groups:
            g["lr"] = a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        net.train()
        x, y = batch(ftr, ytr, rng, a.batch, a.length, mask=a.specaug)
        logits, _ = net.forward_feats(x)
        loss = loss_fn(logits, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        bar.n = int(min(budget, time.time() - t0))
        bar.set_postfix(step=step, loss=f"{loss.item():.4f}")
        if step % 100 == 0 or time.time() - t0 > budget:
            net.eval()
            with torch.no_grad():
                dl = float(np.mean([loss_fn(net.forward_feats(dev_x[i:i + 16])[0], dev_y[i:i + 16]).item()
                                    for i in range(0, len(dev_x), 16)]))
            history.append({"step": step, "seconds": round(time.time() - t0), "train": loss.item(), "dev": dl})
            bar.write(f"step {step} train {loss.item():.4f} dev {dl:.4f}")
            if dl < best:
                best = dl
                torch.save({"model": net.state_dict(), "hidden": a.hidden, "width": a.width}, out / "best.pt")
    bar.close()
    recipe = {"data": str(data), "train_conversations": int(len(ftr)), "steps": step, "batch": a.batch,
              "crop_chunks": a.length, "lr": a.lr, "hidden": a.hidden, "width": a.width, "minutes": a.minutes,
              "best_dev_loss": best, "head_weights": HEAD_WEIGHTS, "init": a.init, "int_delay": a.int_delay,
              "dropout": a.dropout, "specaug": a.specaug,
              "history": history, "seed": a.seed}
    (out / "recipe.json").write_text(json.dumps(recipe, indent=1))
    print(f"best dev loss {best:.4f} after {step} steps -> {out / 'best.pt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
