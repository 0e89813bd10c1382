"""Streaming rational resampling with a windowed-sinc anti-aliasing filter and constant delay.

`Resampler(src, dst)` converts a stream chunk by chunk: feed any number of samples, get every
output sample whose input window is complete. Polyphase form: the filter is designed once at the
upsampled rate (src * L) and split into L phases of `taps` coefficients each, so the work per output
sample is `taps` multiply-adds whatever the ratio. The group delay is constant:
`delay_seconds` (half the filter, about 1 ms at 16 kHz with the default 32 taps).
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from .frame import SUPPORTED_RATES


@lru_cache(maxsize=32)
def _design(up: int, down: int, taps: int, rolloff: float, beta: float) -> np.ndarray:
    """Polyphase filter bank [up, taps] for upsample-by-`up`, filter, downsample-by-`down`."""
    n = taps * up
    cutoff = rolloff * 0.5 / max(up, down)  # cycles per upsampled sample
    # centre the filter on a multiple of `down` so the delay is a whole number of output samples
    k = (n - 1) // (2 * down)
    core = 2 * k * down + 1
    m = np.arange(core) - k * down
    h = np.zeros(n)
    h[:core] = 2 * cutoff * np.sinc(2 * cutoff * m) * np.kaiser(core, beta)
    h *= up / h.sum()  # unity DC gain after zero-stuffing
    # phase p, tap k multiplies x[i - k] where i = floor(t / up): coefficient h[p + k * up]
    return np.ascontiguousarray(h.reshape(taps, up).T.astype(np.float64))


class Resampler:
    def __init__(self, src_rate: int, dst_rate: int, taps: int = 32, rolloff: float = 0.92, beta: float = 8.6):
        for r in (src_rate, dst_rate):
            if r not in SUPPORTED_RATES:
                raise ValueError(f"unsupported sample rate {r} Hz (supported: {SUPPORTED_RATES})")
        ratio = Fraction(dst_rate, src_rate)
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self.up, self.down = ratio.numerator, ratio.denominator
        self.passthrough = self.up == self.down == 1
        # when decimating, the filter must be longer in input samples for the same transition width
        self.taps = taps * max(1, -(-self.down // self.up))
        self._bank = None if self.passthrough else _design(self.up, self.down, self.taps, rolloff, beta)
        # each phase's taps reversed, so a window's sum is np.correlate (np.convolve reverses and
        # copies the kernel on every call: half the cost of a 20 ms phone frame)
        self._rev = None if self._bank is None else np.ascontiguousarray(self._bank[:, ::-1])
        self._hist = np.zeros(self.taps, np.float64)  # the last `taps` input samples
        self._consumed = 0  # absolute input samples received
        self._produced = 0  # absolute output samples produced
        self._hist_live = False  # the history holds a non-zero sample (else silence maps to zeros)

    @property
    def delay_seconds(self) -> float:
        return self.delay_samples / self.dst_rate

    @property
    def delay_samples(self) -> int:
        """Group delay in whole output samples."""
        return 0 if self.passthrough else (self.taps * self.up - 1) // (2 * self.down)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed samples (int16 or float); returns output of the same dtype family (int16 in -> int16 out)."""
        is_int = x.dtype == np.int16
        bank = self._bank
        if bank is None:  # passthrough
            return x.copy()
        if not self._hist_live and not x.any():
            return self._silence(len(x), is_int)  # silence in, silence out (a bot that is quiet)
        xf = x.astype(np.float64)
        ext = np.concatenate([self._hist, xf])
        ext_start = self._consumed - self.taps  # absolute index of ext[0]
        total = self._consumed + len(xf)
        n_end = self._outputs_for(total)
        if n_end <= self._produced:
            y = np.zeros(0)
        elif self.up == 1 or self.down == 1:
            y = self._integer_ratio(ext, ext_start, self._produced, n_end)
        else:
            n = np.arange(self._produced, n_end, dtype=np.int64)
            pos = n * self.down
            rel = pos // self.up - ext_start  # index in ext of each output's newest input sample
            phase = pos % self.up
            if self.up <= 8:
                # few phases: one C-speed convolution per phase, then pick the outputs that use it
                rev = self._rev
                assert rev is not None
                y = np.empty(n.size)
                for p in range(self.up):
                    sel = phase == p
                    if sel.any():
                        conv = np.correlate(ext, rev[p], mode="valid")
                        y[sel] = conv[rel[sel] - (self.taps - 1)]
            else:  # many phases (22.05 kHz): gather the windows
                idx = rel[:, None] - np.arange(self.taps)[None, :]
                y = np.einsum("nk,nk->n", ext[idx], bank[phase])
        self._produced = max(self._produced, int(n_end))
        self._consumed = total
        self._hist = ext[-self.taps:]
        self._hist_live = bool(self._hist.any())
        if is_int:
            return np.clip(np.rint(y), -32768, 32767).astype(np.int16)
        return y.astype(np.float32)

    def _integer_ratio(self, ext: np.ndarray, ext_start: int, first: int, end: int) -> np.ndarray:
        """Outputs `first`..`end`-1 when one rate divides the other (8 <-> 16 kHz, 8 <-> 24 kHz, every
        phone call's frames), with a few C-speed calls instead of per-sample index arithmetic: the same
        sums as the general path. `conv[k]` is the window whose newest input is ext[k + taps - 1]."""
        rev, taps = self._rev, self.taps
        assert rev is not None
        if self.up == 1:  # decimate: output n's newest input is n * down
            conv = np.correlate(ext, rev[0], mode="valid")
            lo = first * self.down - ext_start - (taps - 1)
            return conv[lo: lo + (end - first - 1) * self.down + 1: self.down]
        # interpolate: output n = i * up + p uses phase p over the window ending at input i
        rows = np.empty((len(ext) - taps + 1, self.up))
        for p in range(self.up):
            rows[:, p] = np.correlate(ext, rev[p], mode="valid")
        base = (ext_start + taps - 1) * self.up
        return rows.reshape(-1)[first - base: end - base]

    def _outputs_for(self, total: int) -> int:
        """Output samples whose input window is complete once `total` input samples have arrived:
        output n needs input index floor(n * down / up) <= total - 1."""
        return ((total - 1) * self.up) // self.down + 1 if total > 0 else 0

    def _silence(self, count: int, is_int: bool) -> np.ndarray:
        """The output for `count` zero input samples after an all-zero history: zeros, as many as
        the filter would have produced."""
        total = self._consumed + count
        n_end = self._outputs_for(total)
        n = max(0, n_end - self._produced)
        if n:
            self._produced = n_end
        self._consumed = total
        return np.zeros(n, np.int16 if is_int else np.float32)


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """One-shot resampling of a whole signal, delay-compensated (output aligned with input)."""
    if src_rate == dst_rate:
        return x.copy()
    r = Resampler(src_rate, dst_rate)
    pad = int(np.ceil(r.delay_seconds * src_rate)) + r.taps
    padded = np.concatenate([x, np.zeros(pad, x.dtype)])
    y = r.process(padded)
    skip = r.delay_samples
    want = int(round(len(x) * dst_rate / src_rate))
    return y[skip:skip + want]
