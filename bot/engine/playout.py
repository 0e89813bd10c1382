"""The bot's outgoing audio: a queue the transport pulls from at its own real-time pace.

Knows, to the sample, what left (or, with playback reports, what the caller heard), so an
interrupted turn can be cut at the last word actually played. `clear()` drops everything queued in
one synchronous call: the next `read()` is silence.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..audio.fifo import SampleFifo
from ..audio.frame import AudioFrame, float_to_pcm16
from ..audio.history import AudioHistory
from ..audio.resample import Resampler

REF_RATE = 16000
REF_SLACK = REF_RATE // 10  # the reference may fall this far behind the caller's clock before it is re-aligned
REF_SECONDS = 3.0  # the reference kept: an engine this far behind real time still reads what the caller heard
# a sentence's leading output quieter than this (10 ms windows, at the output rate) is dead air on
# the line: the TTS trims its silence at 24 kHz, but an opening /s/ or /f/ ("Sorry", "Sure") lives
# above 4 kHz, and band-limited for an 8 kHz call it is 100 ms at -60..-55 dBFS before the vowel
ONSET_DBFS = -50.0
ONSET_KEEP = 0.005  # seconds kept before the first window over ONSET_DBFS


@dataclass
class _Segment:
    turn: int
    text: str
    raw: np.ndarray  # float32 audio as synthesised
    rate: int
    pcm: np.ndarray | None = None  # int16 at the output rate, made when the rate is known
    word_ends: list[tuple[str, int]] = field(default_factory=list)  # (word, end offset in pcm samples)
    start: int = -1  # absolute output position of the first sample, once read
    offset: int = 0  # samples already read

    def ready(self, out_rate: int) -> np.ndarray:
        if self.pcm is None:
            pcm = float_to_pcm16(self.raw)
            pcm = Resampler(self.rate, out_rate).process(pcm) if self.rate != out_rate else pcm
            self.pcm = pcm[audible_onset(pcm, out_rate):]
            self.word_ends = word_timings(self.text, len(self.pcm))
        return self.pcm

    @property
    def remaining(self) -> bool:
        return self.pcm is None or self.offset < len(self.pcm)


@dataclass(frozen=True)
class Truncation:
    turn: int
    heard: str
    unheard: str
    position: int  # samples of this turn's audio that were heard


def audible_onset(pcm: np.ndarray, rate: int, dbfs: float = ONSET_DBFS, keep: float = ONSET_KEEP) -> int:
    """Where a sentence becomes audible at this rate: `keep` s before its first 10 ms window at or
    above `dbfs` (0 when it is loud from the start; the whole length when it never is)."""
    win = max(1, rate // 100)
    n = len(pcm) // win
    if n == 0:
        return 0
    frames = pcm[:n * win].astype(np.float64).reshape(n, win)
    loud = np.nonzero(np.sqrt(np.mean(frames * frames, axis=1)) >= 32768.0 * 10 ** (dbfs / 20))[0]
    if loud.size == 0:
        return len(pcm)
    return max(0, int(loud[0]) * win - int(keep * rate))


def word_timings(text: str, samples: int) -> list[tuple[str, int]]:
    """Spread a sentence's duration over its words by spoken length (letters and digits). An
    estimate within a word or so; the sample position of the cut itself is exact."""
    words = text.split()
    if not words:
        return []
    weights = np.array([max(1, len(re.sub(r"[^A-Za-z0-9]", "", w))) + 1 for w in words], np.float64)
    lead = int(samples * 0.04)  # TTS leading silence
    ends = lead + np.cumsum(weights) / weights.sum() * (samples - 2 * lead)
    return [(w, int(e)) for w, e in zip(words, ends)]


@dataclass
class _Turn:
    turn: int
    segments: list[_Segment] = field(default_factory=list)
    open: bool = True
    started: bool = False


class Playout:
    def __init__(self, out_rate: int | None = None, on_first_audio: Callable[[int, int], None] | None = None,
                 on_turn_done: Callable[[int], None] | None = None, clock: Callable[[], int] | None = None):
        """`clock`: the caller side's 16 kHz sample count. With it, the reference is kept on the
        caller's time line (the bot audio going out while the caller's sample N arrives is the
        reference for sample N), whatever the transport's start offset, read-ahead or stalls."""
        self.out_rate = out_rate
        self._clock = clock
        self._queue: deque[_Segment] = deque()
        self._turns: dict[int, _Turn] = {}
        self._current: int | None = None
        self.position = 0  # samples handed to the transport
        self.played = -1  # samples confirmed played downstream (-1: transport does not report)
        self._on_first_audio = on_first_audio or (lambda turn, pos: None)
        self._on_turn_done = on_turn_done or (lambda turn: None)
        self._ref_resampler: Resampler | None = None
        self._ref = AudioHistory(REF_SECONDS, REF_RATE)  # by absolute 16 kHz sample
        self._rebase_bursts = False  # see bursts_play_at_once
        self._ref_audible = False  # the last frame read was bot sound
        self._ref_sound_end = 0  # reference index after the last bot sound
        self._takeover: SampleFifo | None = None
        self._takeover_resampler: Resampler | None = None

    # -- the engine side -------------------------------------------------------------------
    def open_turn(self, turn: int) -> None:
        self._turns[turn] = _Turn(turn)
        self._current = turn

    def enqueue(self, turn: int, text: str, audio: np.ndarray, rate: int) -> None:
        t = self._turns.get(turn)
        if t is None or not t.open:
            return  # the turn was cut while this sentence was being synthesised
        seg = _Segment(turn, text, np.asarray(audio, np.float32), rate)
        if self.out_rate:
            seg.ready(self.out_rate)
        t.segments.append(seg)
        self._queue.append(seg)

    def close_turn(self, turn: int) -> None:
        t = self._turns.get(turn)
        if t is not None:
            t.open = False
            self._maybe_done(t)

    def is_speaking(self) -> bool:
        if self._takeover is not None:
            return False
        return bool(self._queue) or any(t.open for t in self._turns.values())

    def has_audio(self) -> bool:
        return bool(self._queue)

    def clear(self) -> list[Truncation]:
        """Drop all queued bot audio now; returns what was heard of each cut turn."""
        cut: list[Truncation] = []
        heard_pos = self.played if self.played >= 0 else self.position
        for t in list(self._turns.values()):
            if not t.open and not any(s.remaining for s in t.segments):
                continue
            heard: list[str] = []
            unheard: list[str] = []
            n = 0
            for s in t.segments:
                if s.start < 0 or s.pcm is None:
                    unheard.append(s.text)
                    continue
                played = max(0, min(len(s.pcm), heard_pos - s.start))
                n += played
                for w, end in s.word_ends:
                    (heard if end <= played else unheard).append(w)
            cut.append(Truncation(t.turn, " ".join(heard), " ".join(unheard), n))
            t.open = False
        self._queue.clear()
        self._turns.clear()
        self._current = None
        return cut

    # -- supervisor take-over --------------------------------------------------------------
    def start_takeover(self) -> None:
        self._takeover = SampleFifo(self.out_rate // 2 if self.out_rate else 8000)  # keep at most 0.5 s
        self._takeover_resampler = None

    def push_takeover(self, frame: AudioFrame) -> None:
        if self._takeover is None or not self.out_rate:
            return
        if self._takeover_resampler is None or self._takeover_resampler.src_rate != frame.sample_rate:
            self._takeover_resampler = Resampler(frame.sample_rate, self.out_rate)
        self._takeover.push(self._takeover_resampler.process(frame.pcm))

    def stop_takeover(self) -> None:
        self._takeover = None

    # -- the transport side (BotAudioSource) -----------------------------------------------
    def read(self, samples: int, sample_rate: int) -> AudioFrame:
        if self.out_rate is None:
            self.out_rate = sample_rate
        if sample_rate != self.out_rate:
            raise ValueError(f"playout runs at {self.out_rate} Hz, transport asked for {sample_rate} Hz")
        out = np.zeros(samples, np.int16)
        filled = 0
        if self._takeover is not None:
            out, _ = self._takeover.pull(samples)
        else:
            while filled < samples and self._queue:
                seg = self._queue[0]
                pcm = seg.ready(self.out_rate)
                if seg.start < 0:
                    seg.start = self.position + filled
                    t = self._turns.get(seg.turn)
                    if t is not None and not t.started:
                        t.started = True
                        self._on_first_audio(seg.turn, seg.start)
                n = min(samples - filled, len(pcm) - seg.offset)
                out[filled:filled + n] = pcm[seg.offset:seg.offset + n]
                seg.offset += n
                filled += n
                if seg.offset >= len(pcm):
                    self._queue.popleft()
                    t = self._turns.get(seg.turn)
                    if t is not None:
                        self._maybe_done(t)
        frame = AudioFrame(out, sample_rate, self.position / sample_rate)
        self.position += samples
        self._keep_reference(out, sample_rate)
        return frame

    def bursts_play_at_once(self) -> None:
        self._rebase_bursts = True

    def confirm_played(self, samples_played: int) -> None:
        self.played = max(self.played, min(samples_played, self.position))

    def _maybe_done(self, t: _Turn) -> None:
        if not t.open and not any(s.remaining for s in t.segments):
            self._turns.pop(t.turn, None)
            self._on_turn_done(t.turn)

    # -- what the caller heard, at 16 kHz, for the duplex model and supervisor taps ---------
    def _keep_reference(self, pcm: np.ndarray, rate: int) -> None:
        if self._ref_resampler is None:
            self._ref_resampler = Resampler(rate, REF_RATE)
        ref = self._ref_resampler.process(pcm)
        audible = bool(pcm.any())
        if self._clock is not None:
            now = self._clock()
            if now - self._ref.samples > REF_SLACK:  # nothing was read meanwhile (start-up, a stall)
                self._ref.skip(now - self._ref.samples)  # silence then
            elif self._rebase_bursts and audible and not self._ref_audible:
                # a burst on an idle peer plays at once (or right after the sound still queued there):
                # the silence read ahead of it was never heard. Without this the reference ran 70-180 ms
                # behind what a Twilio caller heard, more after every burst.
                self._ref.rewind(max(now, self._ref_sound_end))
        self._ref_audible = audible
        self._ref.push(ref)
        if audible:
            self._ref_sound_end = self._ref.samples

    def reference(self, start: int, n: int) -> np.ndarray:
        """Bot audio at 16 kHz for absolute samples [start, start+n) (zeros where unknown)."""
        return self._ref.read(start, n)
