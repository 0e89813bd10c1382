"""The duplex turn-taking network (PyTorch; training and export only, never imported at run time).

One step = one 32 ms chunk of both channels (caller, bot) at 16 kHz. Features are computed inside
the network so the ONNX graph takes raw audio:

    [ctx 384 | chunk 512] per channel -> 4 Hann frames (512 samples, hop 128) -> power spectrum
    (0-4 kHz, so 8 kHz telephone audio looks the same) -> 40 mel bands -> log
    -> per-chunk MLP over both channels -> GRU(hidden) -> 6 sigmoid heads

Heads, in order: eot, hold, interrupt, backchannel, bc_opportunity, speech.
Streaming state: the last 384 samples of each channel and the GRU hidden state.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

RATE = 16000
CHUNK = 512
CTX = 384
NFFT = 512
HOP = 128
FRAMES = 4
NBINS = 129  # 0 .. 4000 Hz
NMELS = 40
HEADS = ("eot", "hold", "interrupt", "backchannel", "bc_opportunity", "speech")


def mel_filters(n_mels: int = NMELS, fmin: float = 80.0, fmax: float = 4000.0) -> np.ndarray:
    """HTK-scale triangular filters over the first NBINS FFT bins: [NBINS, n_mels]."""
    def hz2mel(f: float) -> float:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = np.arange(NBINS) * RATE / NFFT
    edges = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    fb = np.zeros((NBINS, n_mels), np.float32)
    for m in range(n_mels):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[:, m] = np.maximum(0.0, np.minimum(up, down))
        if fb[:, m].sum() == 0:
            fb[int(round(c * NFFT / RATE)), m] = 1.0
        fb[:, m] /= fb[:, m].sum()
    return fb


def dft_basis() -> np.ndarray:
    """Windowed real DFT as conv1d weights: [2 * NBINS, 1, NFFT] (cos rows, then sin rows)."""
    n = np.arange(NFFT)
    win = 0.5 - 0.5 * np.cos(2 * math.pi * n / NFFT)
    k = np.arange(NBINS)[:, None]
    ang = 2 * math.pi * k * n[None, :] / NFFT
    w = np.concatenate([np.cos(ang) * win, -np.sin(ang) * win], axis=0)
    return w[:, None, :].astype(np.float32)


class Features(nn.Module):
    """Audio [B, C, S] (S = CTX + k*CHUNK, causal context included) -> log-mel [B, k, C, 4, NMELS]."""
    basis: torch.Tensor   # buffers (registered in __init__)
    mel: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("basis", torch.from_numpy(dft_basis()))
        self.register_buffer("mel", torch.from_numpy(mel_filters()))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        b, c, s = audio.shape
        x = audio.reshape(b * c, 1, s)
        spec = torch.nn.functional.conv1d(x, self.basis, stride=HOP)  # [b*c, 2*NBINS, frames]
        power = spec[:, :NBINS] ** 2 + spec[:, NBINS:] ** 2
        mel = torch.matmul(power.transpose(1, 2), self.mel)  # [b*c, frames, NMELS]
        logmel = torch.log(mel + 1e-7)
        k = logmel.shape[1] // FRAMES
        return logmel.reshape(b, c, k, FRAMES, NMELS).permute(0, 2, 1, 3, 4)


class DuplexNet(nn.Module):
    def __init__(self, hidden: int = 128, width: int = 160, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = hidden
        self.features = Features()
        d_in = 2 * FRAMES * NMELS
        # dropout (training only; no weights, so checkpoints load either way) after the chunk MLP
        self.front = nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                   nn.Dropout(dropout))
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden + width, 96), nn.ReLU(), nn.Linear(96, len(HEADS)))

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [B, T, 2, 4, NMELS] log-mel -> [B, T, width]."""
        x = (feats + 9.0) / 4.0
        return self.front(x.flatten(2))

    def forward_feats(self, feats: torch.Tensor, h0: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: a whole sequence of chunk features -> (logits [B, T, 6], hT)."""
        e = self.embed(feats)
        y, h = self.gru(e, h0)
        return self.head(torch.cat([y, e], dim=-1)), h

    def step(self, audio: torch.Tensor, ctx: torch.Tensor, h: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Streaming path (exported): audio [B,2,512], ctx [B,2,384], h [B,H]
        -> probs [B,6], new ctx, new h. The GRU cell is written out from nn.GRU's weights."""
        full = torch.cat([ctx, audio], dim=2)
        e = self.embed(self.features(full))[:, 0]
        wi, wh, bi, bh = self.gru.all_weights[0]   # weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0
        gi = torch.matmul(e, wi.t()) + bi
        gh = torch.matmul(h, wh.t()) + bh
        H = self.hidden
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h_new = (1 - z) * n + z * h
        probs = torch.sigmoid(self.head(torch.cat([h_new, e], dim=-1)))
        return probs, full[:, :, -CTX:], h_new
