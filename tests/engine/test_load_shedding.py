"""Work a call no longer needs is not done: a queued transcription that was cancelled never runs,
and optional partial transcripts are skipped while the recogniser has anything queued or running."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY

from bot.audio.history import AudioHistory
from bot.brain.intents import IntentDetector, IntentSpec
from bot.engine.intent_watch import IntentWatch
from bot.services.asr import AsrSettings, WhisperAsr

RATE = 16000


@pytest.fixture(scope="module")
def asr():
    a = WhisperAsr(AsrSettings(workers=1))
    yield a
    a.close()


def _audio(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.05).astype(np.float32)


def test_a_cancelled_queued_utterance_is_never_transcribed(asr):
    asr.submit(_audio(1.0, 0)).result(timeout=30)  # after the recogniser's own warm-up
    before = asr.calls
    busy = asr.submit(_audio(3.0, 1))  # the one worker takes this
    # a different padded length: never batched with the first one
    queued = asr.submit(_audio(6.5, 2))
    waiting = asr.backlog()
    assert waiting >= 1
    assert queued.cancel(), "the second utterance was queued, so it can be cancelled"
    assert asr.backlog() <= waiting - 1  # a cancelled request is not waiting for anything
    busy.result(timeout=30)
    asr.submit(_audio(3.0, 3)).result(timeout=30)
    assert asr.calls - before == 2  # the cancelled one was skipped
    assert asr.backlog() == 0 and asr.in_flight() == 0


def test_in_flight_counts_queued_and_running_utterances(asr):
    asr.submit(_audio(1.0, 0)).result(timeout=30)
    assert asr.in_flight() == 0
    running = asr.submit(_audio(3.0, 8))
    queued = asr.submit(_audio(6.5, 9))
    assert asr.in_flight() == 2  # whether the worker took the first yet or not
    running.result(timeout=30)
    queued.result(timeout=30)
    assert asr.in_flight() == 0


class _Host:
    def __init__(self) -> None:
        self.heard = AudioHistory(10.0, RATE)
        self.heard.push((_audio(4.0, 4) * 32767).astype(np.int16))

    @property
    def now(self) -> float:
        return self.heard.samples / RATE

    @property
    def secure_input(self) -> bool:
        return False

    def caller_audio(self, t0: float, t1: float) -> np.ndarray:
        return self.heard.window(t0, t1)


async def test_a_partial_transcript_waits_for_an_idle_recogniser(asr):
    spawned: list[asyncio.Task] = []

    def spawn(coro) -> asyncio.Task:
        spawned.append(asyncio.ensure_future(coro))
        return spawned[-1]

    detector = IntentDetector((IntentSpec("handoff", phrases=("speak to a person",)),))
    host = _Host()
    watch = IntentWatch("c1", detector, host, asr, lambda e: None, spawn, every=1.5, pre_roll=0.15)
    watch.speech_start(0.0, new_utterance=True)
    busy = asr.submit(_audio(3.0, 5))
    queued = asr.submit(_audio(6.5, 6))
    assert asr.backlog() >= 1
    before = REGISTRY.get_sample_value("duplexbot_asr_skipped_total", {"reason": "partial_busy"})
    watch.during_speech(0.0, asr_busy=False)
    assert watch.shed == 1 and not spawned  # skipped: the queue is the words of other calls' pauses
    assert REGISTRY.get_sample_value("duplexbot_asr_skipped_total", {"reason": "partial_busy"}) == before + 1
    await asyncio.wrap_future(busy)
    await asyncio.wrap_future(queued)
    host.heard.push((_audio(1.6, 7) * 32767).astype(np.int16))  # 1.6 s more speech: due again
    running = asr.submit(_audio(3.0, 10))
    watch.during_speech(0.0, asr_busy=False)
    assert watch.shed == 2 and not spawned  # no queue, but a batch runs: it would take the other core
    await asyncio.wrap_future(running)
    assert asr.in_flight() == 0
    watch.during_speech(0.0, asr_busy=False)
    assert watch.shed == 2
    assert not spawned  # due again only `every` seconds after the skipped one
    host.heard.push((_audio(1.6, 11) * 32767).astype(np.int16))
    watch.during_speech(0.0, asr_busy=False)
    assert len(spawned) == 1
    await asyncio.wait_for(spawned[0], 30)
