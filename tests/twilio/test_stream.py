"""The sans-IO media stream: state machine, drops, pacing with a fake clock, marks and clear."""
import json

import numpy as np

from bot.audio import ulaw_encode
from bot.transports.twilio import codec
from bot.transports.twilio.stream import (
    FRAME_SAMPLES,
    CallerAudio,
    DtmfDigit,
    MediaStream,
    PlaybackConfirmed,
    StreamStarted,
    StreamStopped,
)

SID = "MZ" + "1" * 32
CALL = "CA" + "2" * 32
ACC = "AC" + "3" * 32
TONE = (3000 * np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / 8000)).astype(np.int16)
QUIET = np.zeros(FRAME_SAMPLES, np.int16)


def started(**kw) -> MediaStream:
    s = MediaStream(**kw)
    assert s.receive(codec.encode(codec.Connected()), 0.0) == []
    (ev,) = s.receive(codec.encode(codec.Start(1, SID, ACC, CALL, custom_parameters={"token": "t"})), 0.0)
    assert isinstance(ev, StreamStarted) and ev.start.custom_parameters == {"token": "t"}
    return s


def payload(pcm: np.ndarray) -> str:
    """The base64 payload a media frame of `pcm` carries."""
    return json.loads(codec.encode(codec.OutMedia(SID, ulaw_encode(pcm))))["media"]["payload"]


def media(seq: int, payload: bytes = b"\xff" * 160, ts: int = 0) -> str:
    return codec.encode(codec.Media(seq, SID, "inbound", seq - 1, ts, payload))


def test_inbound_flow_and_events():
    s = started()
    (a,) = s.receive(media(2, ts=20), 0.02)
    assert isinstance(a, CallerAudio) and a.pcm.dtype == np.int16 and a.pcm.shape == (160,) and a.timestamp == 0.02
    assert s.receive(codec.encode(codec.Dtmf(3, SID, "5")), 0.03) == [DtmfDigit("5")]
    assert s.receive(codec.encode(codec.Stop(4, SID, ACC, CALL)), 0.04) == [StreamStopped("stop")]
    assert s.receive(media(5), 0.05) == []
    assert s.closed() == []
    assert s.stats.frames_in == 1 and s.stats.dtmf == 1 and s.stats.dropped == {"after_stop": 1}


def test_malformed_and_out_of_place_frames_are_dropped_and_counted():
    s = MediaStream()
    assert s.receive(media(1), 0) == []  # before start
    s = started()
    bad = ["{oops", '{"event":"nope","streamSid":"%s"}' % SID, "x" * 70000,
           json.dumps({"event": "media", "streamSid": SID, "media": {"payload": "!!"}}),
           codec.encode(codec.Media(2, "MZother", "inbound", 1, 0, b"\xff")),
           codec.encode(codec.Media(3, SID, "outbound", 1, 0, b"\xff")),
           codec.encode(codec.Start(9, SID, ACC, CALL))]
    for f in bad:
        assert s.receive(f, 0.1) == []
    assert dict(s.stats.dropped) == {"bad_json": 1, "unknown_event": 1, "oversize": 1, "bad_base64": 1,
                                     "wrong_stream": 1, "outbound_track": 1, "duplicate_start": 1}
    assert s.state == "streaming"
    (a,) = s.receive(media(4), 0.2)  # the stream survives
    assert isinstance(a, CallerAudio)


def test_start_with_another_format_is_refused():
    s = MediaStream()
    start = codec.Start(1, SID, ACC, CALL, media_format=codec.MediaFormat("audio/x-alaw", 8000, 1))
    assert s.receive(codec.encode(start), 0) == [] and s.state == "connecting"
    assert s.stats.dropped == {"bad_format": 1}


def run_pacer(s: MediaStream, until: float, source, step: float = 0.001, t0: float = 0.0):
    """Drive the pacer with a fake clock; returns [(time, frame)] of everything sent."""
    sent, now = [], t0
    while now < until:
        while s.frames_due(now):
            pcm, speaking = source()
            sent += [(now, f) for f in s.frame_read(pcm, speaking, now)]
        now = round(now + step, 6)
    return sent


def test_pacing_keeps_a_small_lead_and_never_dumps_ahead():
    s = started(lead=0.08, mark_every=5)
    sent = run_pacer(s, 2.0, lambda: (TONE, True))
    media_times = [t for t, f in sent if '"event":"media"' in f]
    # 2 s of real time -> 2 s of audio plus the lead, never more
    assert len(media_times) == 4 + 99  # the lead at t=0, then one per 20 ms up to t=1.98
    # at any time, audio sent minus time elapsed stays within the lead
    for i, t in enumerate(media_times):
        assert (i + 1) * 0.02 - t <= 0.08 + 0.02 + 1e-9
    # the first burst is the lead (4 frames), then one frame every 20 ms
    assert media_times[:4] == [0.0] * 4
    gaps = np.diff(media_times[10:])
    assert np.allclose(gaps, 0.02, atol=0.0015)
    marks = [f for _, f in sent if '"event":"mark"' in f]
    assert len(marks) == len(media_times) // 5


def test_next_due_schedules_the_timer():
    s = started(lead=0.06)
    assert s.frames_due(10.0) == 3
    for _ in range(3):
        s.frame_read(TONE, True, 10.0)
    assert s.frames_due(10.0) == 0
    assert abs(s.next_due(10.0) - 10.02) < 1e-3
    assert s.frames_due(10.02) == 1


def test_stall_does_not_burst_and_is_counted():
    s = started(lead=0.08)
    run_pacer(s, 0.5, lambda: (TONE, True))
    # the loop stalls for 300 ms: only the lead goes out on return, no catch-up burst
    assert s.frames_due(0.8) == 4
    sent = run_pacer(s, 0.801, lambda: (TONE, True), t0=0.8)
    assert sum('"media"' in f for _, f in sent) == 4 and s.stats.underruns == 1


def test_a_burst_after_silence_starts_with_the_lead():
    s = started(lead=0.08)
    talk = iter([(QUIET, False)] * 50 + [(TONE, True)] * 1000)
    sent = run_pacer(s, 1.5, lambda: next(talk))
    media_times = [t for t, f in sent if '"media"' in f]
    first = media_times[0]
    # Twilio's buffer is empty when the bot starts: the whole lead goes out at once
    assert media_times[:4] == [first] * 4 and media_times[4] > first
    for i, t in enumerate(media_times):
        assert first + i * 0.02 - t <= 0.08 + 1e-9  # never more than the lead ahead of playback
        assert first + i * 0.02 - t >= 0.08 - 0.02 - 0.0015 or i < 4  # and never less than a frame short
    assert s.stats.underruns == 0


def test_a_turn_waiting_for_its_first_audio_sends_no_silence_ahead_of_it():
    # the bot's turn opens before its speech is synthesised: the source says "speaking" and reads
    # silence; sent, that silence would fill Twilio's buffer (the lead) and the first word would
    # play a lead late (bench phone: 80 ms more on a third of the answers)
    s = started(lead=0.1)
    talk = iter([(QUIET, False)] * 20 + [(QUIET, True)] * 5 + [(TONE, True)] * 1000)
    sent = run_pacer(s, 1.0, lambda: next(talk))
    frames = [(t, json.loads(f)["media"]["payload"]) for t, f in sent if '"media"' in f]
    assert frames and frames[0][1] == payload(TONE)  # the first frame Twilio gets is the sound
    assert [t for t, _ in frames[:5]] == [frames[0][0]] * 5  # and the lead is sound, sent once it is there
    assert s.stats.underruns == 0


def test_silence_inside_a_turn_keeps_its_place():
    # a gap between two sentences of one turn (Twilio still has audio queued) is sent as silence,
    # so the second sentence plays after it, not early
    s = started(lead=0.1)
    talk = iter([(TONE, True)] * 10 + [(QUIET, True)] * 3 + [(TONE, True)] * 1000)
    sent = run_pacer(s, 0.6, lambda: next(talk))
    payloads = [json.loads(f)["media"]["payload"] for _, f in sent if '"media"' in f]
    assert payloads[9:14] == [payload(TONE)] + [payload(QUIET)] * 3 + [payload(TONE)]


def test_marks_confirm_playback_in_order():
    s = started(lead=0.1, mark_every=5)
    sent = run_pacer(s, 0.3, lambda: (TONE, True))
    names = [json.loads(f)["mark"]["name"] for _, f in sent if '"mark"' in f]
    assert names[:3] == ["dx1", "dx2", "dx3"]
    assert s.receive(codec.encode(codec.Mark(10, SID, "dx1")), 0.2) == [PlaybackConfirmed(5 * 160)]
    # dx3 implies dx2
    assert s.receive(codec.encode(codec.Mark(11, SID, "dx3")), 0.3) == [PlaybackConfirmed(15 * 160)]
    assert s.receive(codec.encode(codec.Mark(12, SID, "dx2")), 0.3) == []  # already implied
    assert s.stats.marks_confirmed == 2 and s.stats.marks_stale == 1


def test_quiet_bot_sends_nothing_and_reads_count_as_played():
    s = started(lead=0.06)
    sent = run_pacer(s, 1.0, lambda: (QUIET, False))
    assert sent == []
    assert s.stats.idle_frames == s.read_position // 160 > 0
    assert s.idle_confirmation() == [PlaybackConfirmed(s.read_position)]


def test_end_of_burst_gets_a_mark_and_idle_waits_for_it():
    s = started(lead=0.06, mark_every=50)
    seq = iter([(TONE, True)] * 3 + [(QUIET, False)] * 100)
    sent = run_pacer(s, 0.5, lambda: next(seq))
    assert [json.loads(f)["event"] for _, f in sent] == ["media"] * 3 + ["mark"]
    assert s.idle_confirmation() == []  # the tail is still playing at Twilio
    assert s.receive(codec.encode(codec.Mark(2, SID, "dx1")), 0.1) == [PlaybackConfirmed(480)]
    (c,) = s.idle_confirmation()
    assert c.samples == s.read_position


def test_clear_forgets_pending_marks():
    s = started(lead=0.1, mark_every=2)
    run_pacer(s, 0.1, lambda: (TONE, True))
    assert s.outstanding_marks > 0
    clear = s.clear(0.1)
    assert json.loads(clear) == {"event": "clear", "streamSid": SID}
    # Twilio echoes the cleared marks: they prove nothing
    assert s.receive(codec.encode(codec.Mark(5, SID, "dx1")), 0.11) == []
    assert s.confirmed_position == 0 and s.stats.clears == 1
    # after a clear the pacer starts a fresh lead at once
    assert s.frames_due(0.1) == 5


def test_decimator_keeps_the_band_and_removes_aliases():
    from bot.transports.twilio.decimate import Decimator

    for rate in (16000, 24000, 48000, 22050):
        n = rate // 50
        for f, keep in ((1000, True), (3000, True), (5500, False)):
            x = (10000 * np.sin(2 * np.pi * f * np.arange(rate) / rate)).astype(np.int16)
            d = Decimator(rate)
            y = np.concatenate([d.process(x[i:i + n]) for i in range(0, rate, n)])
            assert y.shape == (8000,)
            rms = float(np.sqrt(np.mean(y[200:].astype(np.float64) ** 2)))
            if keep:
                assert 0.9 * 7071 < rms < 1.05 * 7071, (rate, f, rms)
            else:
                assert rms < 0.05 * 7071, (rate, f, rms)


def test_decimator_through_silence_matches_one_pass():
    """Quiet frames skip the filter; the stream is still what one pass over all of it gives."""
    from bot.transports.twilio.decimate import Decimator

    rng = np.random.default_rng(5)
    for rate in (16000, 24000, 48000):
        n = rate // 50
        frames = [(rng.standard_normal(n) * 4000).astype(np.int16) if (k // 3) % 2 else np.zeros(n, np.int16)
                  for k in range(30)]
        d = Decimator(rate)
        streamed = np.concatenate([d.process(f) for f in frames])
        assert np.array_equal(streamed, Decimator(rate).process(np.concatenate(frames))), rate
