import numpy as np

from bot.engine.playout import Playout, word_timings


def tone(seconds, rate=24000):
    return (0.3 * np.sin(np.arange(int(seconds * rate)) * 0.05)).astype(np.float32)


def test_pull_at_transport_rate_then_clear_records_heard_words():
    started, done = [], []
    p = Playout(None, lambda turn, pos: started.append((turn, pos)), done.append)
    p.open_turn(1)
    p.enqueue(1, "one two three four", tone(1.0), 24000)
    p.enqueue(1, "five six", tone(0.5), 24000)
    p.close_turn(1)
    assert p.is_speaking()
    frames = [p.read(160, 8000) for _ in range(25)]  # 0.5 s at 8 kHz
    assert started == [(1, 0)] and all(np.abs(f.pcm).max() > 0 for f in frames)
    cuts = p.clear()
    assert len(cuts) == 1
    heard, unheard = cuts[0].heard.split(), cuts[0].unheard.split()
    assert heard + unheard == "one two three four five six".split()
    assert 1 <= len(heard) <= 3  # half of the first sentence was played
    assert not p.is_speaking() and np.abs(p.read(160, 8000).pcm).max() == 0  # silence right after
    assert done == []  # a cut turn is not "done"


def test_confirmed_playback_decides_what_was_heard():
    p = Playout(None)
    p.open_turn(1)
    p.enqueue(1, "alpha beta gamma delta", tone(1.0), 24000)
    for _ in range(40):
        p.read(160, 8000)  # 0.8 s handed to a transport that buffers downstream
    p.confirm_played(800)  # but only 0.1 s was played
    assert p.clear()[0].heard == ""


def test_turn_done_callback_and_reference_audio():
    done = []
    p = Playout(None, on_turn_done=done.append)
    p.open_turn(3)
    p.enqueue(3, "hi", tone(0.1), 24000)
    p.close_turn(3)
    for _ in range(10):
        p.read(320, 16000)
    assert done == [3] and not p.is_speaking()
    ref = p.reference(0, 1600)
    assert np.abs(ref).max() > 0 and np.abs(p.reference(3000, 100)).max() == 0


def test_word_timings_are_monotonic_and_inside_the_audio():
    w = word_timings("Hello, thanks for calling.", 24000)
    ends = [e for _, e in w]
    assert [x for x, _ in w] == ["Hello,", "thanks", "for", "calling."]
    assert ends == sorted(ends) and 0 < ends[0] and ends[-1] <= 24000


def test_sample_fifo_pulls_exact_sizes_and_drops_oldest_when_full():
    from bot.audio.fifo import SampleFifo

    f = SampleFifo(max_samples=10)
    f.push(np.arange(1, 7, dtype=np.int16))
    f.push(np.arange(7, 13, dtype=np.int16))  # 12 held > 10: the first chunk goes
    assert f.dropped == 6 and f.held == 6
    out, n = f.pull(4)
    assert n == 4 and out.tolist() == [7, 8, 9, 10]
    out, n = f.pull(4)
    assert n == 2 and out.tolist() == [11, 12, 0, 0] and f.held == 0


def test_reference_follows_the_callers_clock_not_the_transports_reads():
    """A transport that starts reading 0.4 s into the call, then stalls 0.5 s: the bot audio is
    found at the caller's sample index of the moment it went out, silence where nothing did."""
    clock = {"n": 6400}
    p = Playout(None, clock=lambda: clock["n"])
    p.open_turn(1)
    p.enqueue(1, "hi", tone(1.0), 16000)
    for _ in range(5):  # 0.1 s read at caller time 0.4 s
        p.read(320, 16000)
        clock["n"] += 320
    assert np.abs(p.reference(6400, 1600)).min() >= 0 and np.abs(p.reference(6400, 1600)).max() > 0
    assert np.abs(p.reference(0, 6400)).max() == 0  # before the first read: nothing went out
    clock["n"] += 8000  # the transport stalls for 0.5 s
    p.read(320, 16000)
    assert np.abs(p.reference(8000, 8000)).max() == 0
    assert np.abs(p.reference(16000, 320)).max() > 0


def _twilio_like_reads(p: Playout, clock: dict, seconds: float) -> None:
    """Twilio's pacer, 100 ms ahead: 5 frames at once when it (re)starts (the stream's start, a
    burst on an idle peer), then one frame per 20 ms of the caller's clock."""
    for _ in range(4):
        p.read(320, 16000)
    for _ in range(int(seconds / 0.02)):
        p.read(320, 16000)
        clock["n"] += 320


def test_a_burst_on_an_idle_twilio_peer_is_referenced_at_the_callers_present():
    """Twilio plays a burst the moment it arrives; the silence read ahead of it was never sent. The
    second burst starts at caller sample N: its reference starts at N, not a lead (or more) later."""
    for rebase in (True, False):
        clock = {"n": 0}
        p = Playout(None, clock=lambda: clock["n"])
        if rebase:
            p.bursts_play_at_once()
        _twilio_like_reads(p, clock, 0.4)  # the stream starts idle
        for turn in (1, 2):
            p.open_turn(turn)
            p.enqueue(turn, "hi", tone(0.2), 16000)
            p.close_turn(turn)
            start = clock["n"]
            _twilio_like_reads(p, clock, 0.6)
        ref = np.abs(p.reference(start - 3200, 9600).astype(np.int32))
        first = int(np.argmax(ref > 0)) - 3200
        if rebase:
            assert abs(first) <= 64, first
        else:
            assert first >= 1600, first  # the old drift: 160 ms here, 70-180 ms measured over Twilio


def test_an_opening_the_line_cannot_carry_is_not_played_ahead_of_the_sentence():
    """A sentence opening on 100 ms of hiss above 4 kHz (an /s/) then a voiced sound: an 8 kHz call
    starts at the voice (band-limited, the hiss is dead air), a 16 kHz one keeps the hiss."""
    rate = 24000
    t = np.arange(int(0.1 * rate)) / rate
    hiss = (0.05 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)  # -29 dBFS at 24 kHz, none below 4 kHz
    audio = np.concatenate([hiss, tone(0.5)])
    for out_rate, kept in ((8000, False), (16000, True)):
        p = Playout(out_rate)
        p.open_turn(1)
        p.enqueue(1, "sorry", audio, rate)
        frame = out_rate // 50
        first = p.read(frame, out_rate).pcm.astype(np.float64)
        level = 20 * np.log10(np.sqrt(np.mean(first ** 2)) / 32768 + 1e-12)
        assert (level < -20) == kept, (out_rate, level)  # the hiss (low level here), or the tone at once
        reads = 1
        while p.has_audio() and reads < 100:
            p.read(frame, out_rate)
            reads += 1
        trimmed = len(audio) / rate - reads / 50  # seconds left out (the last read is part silence)
        assert (abs(trimmed) <= 0.03) if kept else (0.06 <= trimmed <= 0.11), (out_rate, trimmed)
