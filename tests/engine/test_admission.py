"""The admission controller (bot/engine/admission.py) with a fake clock: the cap, reservations,
the loop-lag rule, the derived default and the settings from the environment."""
import asyncio

import numpy as np
import pytest

from bot.config import ConfigError
from bot.engine.admission import (
    CALLS_PER_2_CORES,
    LOOP_CEILING,
    AdmissionController,
    AdmissionSettings,
    default_max_calls,
)
from bot.engine.looplag import LoopLagMonitor
from bot.settings import Settings


def test_cap_across_transports_and_release():
    c = AdmissionController(AdmissionSettings(max_calls=2, retry_after=7))
    assert c.admit("a", "sip", 0.0).admitted and c.admit("b", "twilio", 0.0).admitted
    d = c.admit("c", "webrtc", 0.0)
    assert (d.admitted, d.reason, d.retry_after) == (False, "capacity", 7)
    assert c.admit("a", "sip", 0.1).admitted        # the same call again: it holds its slot already
    c.release("a", "sip")
    assert c.admit("c", "webrtc", 0.2).admitted and c.live(0.2) == 2
    assert c.admitted == {"sip": 1, "twilio": 1, "webrtc": 1} and c.refused == {("webrtc", "capacity"): 1}
    c.release("nope", "sip")                       # unknown calls are ignored
    assert c.live(0.3) == 2


def test_a_reservation_lapses_unless_taken_up():
    c = AdmissionController(AdmissionSettings(max_calls=1))
    assert c.admit("CA1", "twilio", 10.0, hold=30).admitted
    assert not c.admit("CA2", "twilio", 20.0, hold=30).admitted
    assert c.holds("CA1", "twilio", 39.9) and not c.holds("CA1", "twilio", 40.0)
    assert c.admit("CA2", "twilio", 40.0, hold=30).admitted       # CA1's stream never came
    assert c.admit("CA2", "twilio", 41.0).admitted                # the stream takes the reservation up
    assert c.holds("CA2", "twilio", 1000.0)                       # ... and holds it until released
    assert c.admit("CA2", "twilio", 1001.0, hold=5).admitted and c.holds("CA2", "twilio", 2000.0)


def test_loop_lag_refuses_below_the_cap_and_recovers():
    s = AdmissionSettings(max_calls=100, lag_bound=0.150, lag_window=5.0, lag_quantile=0.9, lag_min_samples=5)
    c = AdmissionController(s)
    assert c.lag_quantile(0.0) is None and c.admit("x0", "sip", 0.0).admitted   # no samples: no rule
    t = 0.0
    for i in range(50):                       # 5 s of a healthy loop, one late tick
        t += 0.1
        c.record_lag(0.5 if i == 10 else 0.002, t)
    assert c.lag_quantile(t) == pytest.approx(0.002) and c.admit("x1", "sip", t).admitted
    for i in range(10):                       # 1 s of 200 ms stalls: 10 of the last 50 samples
        t += 0.3
        c.record_lag(0.2, t)
    d = c.admit("x2", "sip", t)
    assert (d.admitted, d.reason) == (False, "loop_lag") and c.refused[("sip", "loop_lag")] == 1
    assert c.admit("x1", "sip", t).admitted   # a call that holds a slot is never refused
    for i in range(60):                       # the stall is over: after a window of good samples
        t += 0.1
        c.record_lag(0.001, t)
    assert not c.lagging(t) and c.admit("x2", "sip", t).admitted
    assert c.last_lag() == pytest.approx(0.001)


def test_an_engine_behind_real_time_refuses_new_calls_until_it_caught_up():
    c = AdmissionController(AdmissionSettings(max_calls=100, backlog_bound=0.5, backlog_window=1.0,
                                              backlog_min_samples=5))
    t = 0.0
    for _ in range(12):
        t += 0.1
        c.record_backlog(2.0, t)
    assert c.admit("a", "twilio", t).admitted  # nobody to protect: an idle process takes the call
    for k in range(12):  # a spike in an engine that keeps up: one call 0.8 s behind, once
        t += 0.1
        c.record_backlog(0.8 if k == 6 else 0.1, t)
    assert c.backlog(t) == pytest.approx(0.1) and c.admit("b", "twilio", t).admitted
    backlog = 0.5
    for _ in range(12):  # falling behind a little more every tick: sustained over the window
        t += 0.1
        backlog += 0.05
        c.record_backlog(backlog, t)
    d = c.admit("c", "twilio", t)
    assert (d.admitted, d.reason) == (False, "engine_lag") and c.refused[("twilio", "engine_lag")] == 1
    assert 0.5 < c.backlog(t) < backlog  # the least of the last second
    assert c.admit("b", "twilio", t).admitted  # a call that holds a slot is never refused
    t += 0.1
    c.record_backlog(0.0, t)  # caught up: one good sample ends "sustained"
    assert not c.behind(t) and c.admit("c", "twilio", t).admitted
    with pytest.raises(ValueError):
        AdmissionSettings(backlog_bound=0)


def test_the_mailbox_knows_how_much_caller_audio_waits():
    from bot.audio.frame import AudioFrame
    from bot.engine.mailbox import InboundMailbox
    from bot.engine.port import Dtmf

    box = InboundMailbox(capacity=3)
    for k in range(3):
        box.put(AudioFrame(np.zeros(160, np.int16), 8000, k * 0.02))
    box.put(Dtmf("5"))
    assert box.held_seconds == pytest.approx(0.06)
    box.put(AudioFrame(np.zeros(320, np.int16), 16000, 0.06))  # full: the oldest frame goes
    assert box.held_seconds == pytest.approx(0.06)

    async def drain() -> None:
        for _ in range(4):
            await box.get()

    asyncio.run(drain())
    assert box.held_seconds == 0.0


def test_capacity_wins_over_lag_in_the_reason():
    c = AdmissionController(AdmissionSettings(max_calls=2, lag_min_samples=1))
    c.record_lag(1.0, 0.0)
    assert c.admit("a", "sip", 0.0).admitted  # an idle process takes a call whatever its loop did
    assert c.admit("b", "sip", 0.0).reason == "loop_lag"
    c2 = AdmissionController(AdmissionSettings(max_calls=1, lag_min_samples=1))
    c2.admit("a", "sip", 0.0)
    c2.record_lag(1.0, 0.0)
    assert c2.admit("b", "sip", 0.0).reason == "capacity"


def test_default_follows_the_cores():
    assert default_max_calls(2) == CALLS_PER_2_CORES == 40
    assert default_max_calls(1) == 20 and default_max_calls(4) == 80
    assert default_max_calls(64) == LOOP_CEILING
    assert AdmissionSettings().cap == default_max_calls() and AdmissionSettings(max_calls=3).cap == 3
    with pytest.raises(ValueError):
        AdmissionSettings(max_calls=-1)


def test_settings_from_env():
    s = Settings.from_env({"DUPLEXBOT_MAX_CALLS": "5", "DUPLEXBOT_MAX_LOOP_LAG_MS": "300",
                           "DUPLEXBOT_MAX_ENGINE_BACKLOG_MS": "800",
                           "DUPLEXBOT_OVERFLOW_NUMBER": "+15551230000"}).admission
    assert (s.cap, s.lag_bound, s.backlog_bound, s.overflow_number) == (5, 0.3, 0.8, "+15551230000")
    assert Settings.from_env({}).admission.backlog_bound == 0.5
    assert Settings.from_env({"DUPLEXBOT_OVERFLOW_NUMBER": "sip:queue@10.0.0.5"}).admission.overflow_number
    for bad, word in (({"DUPLEXBOT_MAX_CALLS": "0"}, "DUPLEXBOT_MAX_CALLS"),
                      ({"DUPLEXBOT_MAX_CALLS": "lots"}, "DUPLEXBOT_MAX_CALLS"),
                      ({"DUPLEXBOT_MAX_LOOP_LAG_MS": "-5"}, "DUPLEXBOT_MAX_LOOP_LAG_MS"),
                      ({"DUPLEXBOT_MAX_ENGINE_BACKLOG_MS": "soon"}, "DUPLEXBOT_MAX_ENGINE_BACKLOG_MS"),
                      ({"DUPLEXBOT_OVERFLOW_NUMBER": "5551234"}, "DUPLEXBOT_OVERFLOW_NUMBER")):
        with pytest.raises(ConfigError, match=word):
            Settings.from_env(bad)


async def test_lag_monitor_sees_a_blocked_loop():
    import time
    samples = []
    mon = LoopLagMonitor(lambda lag, now: samples.append(lag), interval=0.02)
    mon.start()
    await asyncio.sleep(0.05)
    time.sleep(0.15)                          # a callback that holds the loop
    await asyncio.sleep(0.05)
    await mon.close()
    assert max(samples) >= 0.1 and min(samples) < 0.1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "loop-lag-monitor"]
