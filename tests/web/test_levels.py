"""The level meter without sockets: 100 ms windows on the caller's stream time, the bot's level
from what it sent since the previous chunk (whatever the caller/bot clock offset), gaps filled
with silence, a bounded ring and bounded subscriber queues."""
from __future__ import annotations

import numpy as np

from bot.audio import AudioFrame
from bot.supervisor.levels import FLOOR, BotSent, CallLevels, LevelMeter, LevelSample


class FakePlayout:
    """Sent audio at 48 kHz; `reference` holds all of it at 16 kHz by sample index."""

    def __init__(self) -> None:
        self.position = 0
        self.out_rate: int | None = 48000
        self.ref = np.zeros(0, np.int16)

    def send(self, pcm16: np.ndarray) -> None:
        self.ref = np.concatenate([self.ref, pcm16])
        self.position += len(pcm16) * 3

    def reference(self, start: int, n: int) -> np.ndarray:
        return self.ref[start:start + n]


def tone(n: int, amp: float) -> np.ndarray:
    return (np.sin(np.arange(n) / 3) * amp).astype(np.int16)


def test_bot_level_follows_what_was_sent_even_with_clocks_apart():
    out: list[LevelSample] = []
    playout = FakePlayout()
    playout.send(np.zeros(16000 * 3, np.int16))  # the bot's clock 3 s ahead of the caller's
    meter = LevelMeter(out.append, bot_sent=BotSent(playout))
    silent = np.zeros(512, np.int16)
    for i in range(50):  # 1.6 s: the bot talks for the first 0.8 s, the caller for the last 0.8 s
        playout.send(tone(512, 10000) if i < 25 else np.zeros(512, np.int16))
        meter(AudioFrame(silent if i < 25 else tone(512, 10000), 16000, 5.0 + i * 0.032), AudioFrame(silent, 16000))
    assert [round(s.t, 1) for s in out[:3]] == [5.0, 5.1, 5.2] and len(out) == 16
    assert all(s.bot > -20 and s.caller == FLOOR for s in out[1:7])
    assert all(s.caller > -20 and s.bot == FLOOR for s in out[9:15])


def test_gaps_are_filled_and_the_ring_is_bounded():
    out: list[LevelSample] = []
    meter = LevelMeter(out.append)
    loud = AudioFrame(tone(1600, 8000), 16000, 0.0)
    meter(loud, AudioFrame(np.zeros(1600, np.int16), 16000))
    meter(AudioFrame(tone(1600, 8000), 16000, 1.0), AudioFrame(np.zeros(1600, np.int16), 16000))  # secure input gap
    assert [round(s.t, 1) for s in out] == [round(0.1 * i, 1) for i in range(11)]
    assert all(s.caller == FLOOR for s in out[1:10]) and out[10].caller > -20
    levels = CallLevels("c", "acme", keep_samples=100, queue_size=4)
    q = levels.subscribe()
    for i in range(300):
        levels.add(LevelSample(i * 0.1, -30.0, -40.0))
    assert len(levels.caller) <= 110 and q.qsize() == 4 and levels.dropped == 296
    sr = levels.series()
    assert sr["t0"] == round(300 * 0.1 - len(sr["caller"]) * 0.1, 2) and sr["caller"][-1] == -30.0
