"""One Twilio media stream as a sans-IO state machine: inbound parsing, outbound pacing, playback marks.

Fed WebSocket text frames and the current time (`now`, monotonic seconds); returns events and the
text frames to send. No asyncio, no sockets: `media.py` is the asyncio edge.

States: `connecting` (before `start`) -> `streaming` -> `stopped`.

Outbound pacing. Twilio plays what it is sent, in order, at real time, and buffers anything sent
early. A `sip.pacer.Pacer` keeps the read clock, the wall time at which the bot audio read so far
would finish playing, and a 20 ms frame is read only while it ends within `now + lead`, so at most
`lead` seconds are ever queued at Twilio (nothing is dumped ahead; a `clear` throws the lead away).
A burst of bot speech starts on an empty Twilio buffer, so its first frame with sound (never the
silence of a turn still waiting for its speech) rebases the clock and the lead is sent at once:
from then on a stall shorter than `lead` is inaudible. After a longer stall the pacer's one
lateness rule applies (no catch-up burst beyond the lead: with the default 100 ms lead, the clock
is pulled up to `now` once Twilio's buffer ran a frame dry) and the underrun is counted.

Playback marks. Every `mark_every` sent frames, and when a burst of bot audio ends, a `mark` named
`dx<n>` is sent; Twilio echoes it once the audio before it has played, and we report the source
position (samples read) it stood for. A `clear` makes Twilio echo every pending mark at once; those
echoes say nothing about playback, so the marks outstanding at `clear` are forgotten first.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from sip.pacer import Pacer

from ...audio import ulaw_decode, ulaw_encode
from . import codec

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_SECONDS = FRAME_SAMPLES / 8000


# ---------------------------------------------------------------- events returned to the edge

@dataclass(frozen=True)
class StreamStarted:
    start: codec.Start


@dataclass(frozen=True)
class CallerAudio:
    pcm: np.ndarray  # int16 at 8 kHz
    timestamp: float  # seconds since stream start (Twilio's media.timestamp)


@dataclass(frozen=True)
class DtmfDigit:
    digit: str


@dataclass(frozen=True)
class PlaybackConfirmed:
    samples: int  # source position (samples read at 8 kHz) that the caller has now heard


@dataclass(frozen=True)
class StreamStopped:
    reason: str  # "stop" (Twilio sent stop) | "closed" (socket went away)


StreamEvent = StreamStarted | CallerAudio | DtmfDigit | PlaybackConfirmed | StreamStopped


@dataclass
class StreamStats:
    """Per-call counters (the Prometheus ones are process-wide)."""
    frames_in: int = 0
    frames_out: int = 0
    idle_frames: int = 0  # frames read while the bot was quiet and not sent
    marks_sent: int = 0
    marks_confirmed: int = 0
    marks_stale: int = 0  # echoes of marks forgotten at a clear
    clears: int = 0
    dtmf: int = 0
    seq_gaps: int = 0
    underruns: int = 0  # times the pacer fell behind real time (Twilio's buffer ran dry mid-speech)
    dropped: Counter = field(default_factory=Counter)  # reason -> count

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "dropped"}
        d["dropped"] = dict(self.dropped)
        return d


class MediaStream:
    def __init__(self, lead: float = 0.1, mark_every: int = 5):
        self.lead = lead
        self.mark_every = mark_every
        self.state = "connecting"
        self.start: codec.Start | None = None
        self.stats = StreamStats()
        self._last_seq = 0
        # outbound
        # the read clock: when the audio read so far has played; a frame is read `lead` before it plays
        # (the pacer counts a frame due when it starts, we when it ends: hence lead - one frame)
        self._pacer = Pacer(FRAME_SECONDS, ahead=lead - FRAME_SECONDS)
        self._play_end = 0.0  # wall time at which what Twilio has queued finishes playing (our estimate)
        self._read_pos = 0  # samples read from the bot source
        self._sent_since_mark = 0
        self._last_sent_pos = 0
        self._mark_n = 0
        self._marks: OrderedDict[str, int] = OrderedDict()  # outstanding mark name -> source position
        self._confirmed = 0
        self._speaking_prev = False

    @property
    def stream_sid(self) -> str:
        return self.start.stream_sid if self.start else ""

    # ------------------------------------------------------------ inbound

    def drop(self, reason: str) -> None:
        self.stats.dropped[reason] += 1

    def receive(self, frame: str | bytes, now: float) -> list[StreamEvent]:
        """One text frame from Twilio. Bad frames are dropped and counted (never raised)."""
        try:
            msg = codec.parse_inbound(frame)
        except codec.CodecError as e:
            self.drop(e.reason)
            return []
        return self.handle(msg, now)

    def handle(self, msg: codec.InboundMessage, now: float) -> list[StreamEvent]:
        if self.state == "stopped":
            self.drop("after_stop")
            return []
        if isinstance(msg, codec.Connected):
            if self.state != "connecting":
                self.drop("late_connected")
            return []
        if isinstance(msg, codec.Start):
            if self.state != "connecting":
                self.drop("duplicate_start")
                return []
            fmt = msg.media_format
            if (fmt.encoding, fmt.sample_rate, fmt.channels) != (codec.MULAW_ENCODING, 8000, 1):
                self.drop("bad_format")
                return []
            self.start, self.state = msg, "streaming"
            self._last_seq = msg.sequence_number
            return [StreamStarted(msg)]
        if self.state != "streaming":
            self.drop("before_start")
            return []
        if msg.stream_sid != self.stream_sid and not isinstance(msg, codec.Stop):
            self.drop("wrong_stream")
            return []
        self._track_seq(msg.sequence_number)
        if isinstance(msg, codec.Media):
            if msg.track not in ("inbound", "inbound_track"):
                self.drop("outbound_track")
                return []
            if not msg.payload:
                self.drop("empty_media")
                return []
            self.stats.frames_in += 1
            return [CallerAudio(ulaw_decode(msg.payload).copy(), msg.timestamp_ms / 1000.0)]
        if isinstance(msg, codec.Dtmf):
            self.stats.dtmf += 1
            return [DtmfDigit(msg.digit)]
        if isinstance(msg, codec.Mark):
            return self._mark_echo(msg.name)
        if isinstance(msg, codec.Stop):
            self.state = "stopped"
            return [StreamStopped("stop")]
        return []

    def closed(self) -> list[StreamEvent]:
        """The socket went away."""
        if self.state == "stopped":
            return []
        self.state = "stopped"
        return [StreamStopped("closed")]

    def _track_seq(self, seq: int) -> None:
        if seq and self._last_seq and seq != self._last_seq + 1:
            self.stats.seq_gaps += 1
        if seq:
            self._last_seq = seq

    def _mark_echo(self, name: str) -> list[StreamEvent]:
        pos = self._marks.get(name)
        if pos is None:
            self.stats.marks_stale += 1
            return []
        # marks come back in order; anything before this one has played too
        while self._marks:
            n, p = self._marks.popitem(last=False)
            if n == name:
                break
        self.stats.marks_confirmed += 1
        return [*self._confirm(pos)]

    def _confirm(self, pos: int) -> list[PlaybackConfirmed]:
        if pos <= self._confirmed:
            return []
        self._confirmed = pos
        return [PlaybackConfirmed(pos)]

    # ------------------------------------------------------------ outbound pacing

    def frames_due(self, now: float) -> int:
        """How many 20 ms frames to read from the bot source now."""
        if self.state != "streaming":
            return 0
        return self._pacer.due(now)  # the first read starts the clock; fallen behind: no catch-up burst

    def next_due(self, now: float) -> float:
        """When the next frame becomes due (for the edge's timer)."""
        if not self._pacer.started:
            return now
        return max(now, self._pacer.deadline() - FRAME_SECONDS * 0.001)

    def frame_read(self, pcm: np.ndarray, speaking: bool, now: float) -> list[str]:
        """The edge read `pcm` (160 samples at 8 kHz) from the source at `now`. Returns text frames to send."""
        if pcm.shape[0] != FRAME_SAMPLES:
            raise ValueError(f"bot frame must be {FRAME_SAMPLES} samples, got {pcm.shape[0]}")
        if not self._pacer.started:
            self._pacer.restart(now)
        sound = bool(np.any(pcm))
        # silence of a speaking turn is sent (it keeps a gap between sentences in place), except
        # at the start of a burst: a turn opened before its speech is synthesised reads silence
        # first, and sent to an idle Twilio it would fill the lead and make the first word play a
        # lead late
        audible = sound or (speaking and self._speaking_prev)
        if audible and self._play_end < now:
            # Twilio has nothing queued (a new burst, or we were late mid-burst): rebase the read
            # clock so the next reads fill `lead` at once instead of trickling one frame per 20 ms
            if self._speaking_prev:
                self.stats.underruns += 1
            self._play_end = now
            self._pacer.restart(now)  # this frame plays now
        self._pacer.advance()
        self._read_pos += FRAME_SAMPLES
        out: list[str] = []
        if audible:
            self._play_end += FRAME_SECONDS
            self._speaking_prev = True
            out.append(codec.encode(codec.OutMedia(self.stream_sid, ulaw_encode(pcm))))
            self.stats.frames_out += 1
            self._last_sent_pos = self._read_pos
            self._sent_since_mark += 1
            if self._sent_since_mark >= self.mark_every:
                out.append(self._mark())
            return out
        # the bot is quiet: nothing to send
        self._speaking_prev = False
        self.stats.idle_frames += 1
        if self._sent_since_mark:
            out.append(self._mark())  # the end of a burst: learn when its tail has played
        return out

    def idle_confirmation(self) -> list[PlaybackConfirmed]:
        """With nothing queued at Twilio, the read position is the playback position."""
        if self._marks or self._sent_since_mark:
            return []
        return self._confirm(self._read_pos)

    def _mark(self) -> str:
        self._mark_n += 1
        name = f"dx{self._mark_n}"
        self._marks[name] = self._last_sent_pos
        self._sent_since_mark = 0
        self.stats.marks_sent += 1
        return codec.encode(codec.OutMark(self.stream_sid, name))

    def clear(self, now: float) -> str | None:
        """Barge-in: the `clear` frame to send at once; Twilio's buffer is empty afterwards."""
        if self.state != "streaming":
            return None
        self.stats.clears += 1
        self._marks.clear()  # their echoes, which the clear triggers, prove nothing
        self._sent_since_mark = 0
        self._speaking_prev = False
        self._pacer.restart(now)
        self._play_end = now
        return codec.encode(codec.Clear(self.stream_sid))

    @property
    def read_position(self) -> int:
        return self._read_pos

    @property
    def confirmed_position(self) -> int:
        return self._confirmed

    @property
    def outstanding_marks(self) -> int:
        return len(self._marks)

    @property
    def playing(self) -> bool:
        """Audio sent that Twilio has not yet confirmed playing (or that awaits its mark)."""
        return bool(self._marks) or self._sent_since_mark > 0
