"""WebRTC transport (aiortc): a browser peer on one side of the audio port.

Signalling is one HTTP round trip (`bot/routes/webrtc.py`): the browser's offer in, our answer out,
with every ICE candidate already in the answer (aiortc gathers completely inside
`setLocalDescription`). By default only host candidates are gathered: aiortc's built-in default is
a public Google STUN server, which we never use unless configured (`WebRTCSettings.ice_servers`).

Media:
- caller audio: the remote track's frames (Opus 48 kHz stereo or PCMU 8 kHz mono, decoded by
  aiortc) are down-mixed to mono int16 and queued for `receive()` in the engine's `InboundMailbox`
  (bounded; oldest audio dropped and counted when the engine falls behind, key presses never);
- bot audio: `BotTrack` is the outgoing track; aiortc's sender pulls it, and it pulls the engine's
  `BotAudioSource` one 20 ms frame at a time at the negotiated codec's rate, paced on the event
  loop clock by a `sip.pacer.Pacer` (its one lateness rule). What we read is what leaves, so
  nothing is buffered here and `clear()` has nothing to drop.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Mapping

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.mediastreams import MediaStreamError

from sip.dtmf import DIGITS as DTMF_DIGITS
from sip.pacer import Pacer

from ..audio.frame import AudioFrame
from ..config import ConfigError, env_number
from ..engine.mailbox import DEFAULT_CAPACITY, InboundMailbox
from ..engine.port import BotAudioSource, CallInfo, Dtmf, Hangup, InboundItem

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.02
SUPPORTED_CODECS = ("opus", "PCMU")


@dataclass(frozen=True)
class WebRTCSettings:
    """ice_servers: URLs ("stun:host:port", "turn:host:port?transport=udp"); empty = host candidates
    only. turn_username/turn_credential apply to every turn: URL. codecs: preference order, a
    subset of SUPPORTED_CODECS. tenant: the tenant a browser call belongs to when the page names
    none ("" : see `choose_tenant`). tenants: tenants a page may name besides those with supervisor
    tokens. connect_timeout: a peer that has not connected this long after the answer is closed.
    inbound_queue: caller items the engine's inbound mailbox holds before the oldest audio is dropped."""

    ice_servers: tuple[str, ...] = ()
    turn_username: str = ""
    turn_credential: str = ""
    codecs: tuple[str, ...] = SUPPORTED_CODECS
    tenant: str = ""
    tenants: tuple[str, ...] = ()
    connect_timeout: float = 15.0
    max_peers: int = 100
    inbound_queue: int = DEFAULT_CAPACITY

    def __post_init__(self) -> None:
        for url in self.ice_servers:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"ICE server URL {url!r} must start with stun:, stuns:, turn: or turns:")
        bad = [c for c in self.codecs if c not in SUPPORTED_CODECS]
        if bad or not self.codecs:
            raise ValueError(f"codecs must be a non-empty subset of {SUPPORTED_CODECS}, got {self.codecs}")
        if self.connect_timeout <= 0 or self.max_peers < 1 or self.inbound_queue < 1:
            raise ValueError("connect_timeout, max_peers and inbound_queue must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "WebRTCSettings":
        """DUPLEXBOT_WEBRTC_ICE_SERVERS (comma-separated URLs), DUPLEXBOT_WEBRTC_TURN_USERNAME,
        DUPLEXBOT_WEBRTC_TURN_CREDENTIAL, DUPLEXBOT_WEBRTC_CODECS ("opus,PCMU"),
        DUPLEXBOT_WEBRTC_TENANT, DUPLEXBOT_WEBRTC_TENANTS (comma-separated), DUPLEXBOT_WEBRTC_CONNECT_TIMEOUT."""
        kw: dict = {}

        def split(v: str) -> tuple[str, ...]:
            return tuple(s.strip() for s in v.split(",") if s.strip())

        if "DUPLEXBOT_WEBRTC_ICE_SERVERS" in env:
            kw["ice_servers"] = split(env["DUPLEXBOT_WEBRTC_ICE_SERVERS"])
        if "DUPLEXBOT_WEBRTC_TURN_USERNAME" in env:
            kw["turn_username"] = env["DUPLEXBOT_WEBRTC_TURN_USERNAME"]
        if "DUPLEXBOT_WEBRTC_TURN_CREDENTIAL" in env:
            kw["turn_credential"] = env["DUPLEXBOT_WEBRTC_TURN_CREDENTIAL"]
        if "DUPLEXBOT_WEBRTC_CODECS" in env:
            kw["codecs"] = split(env["DUPLEXBOT_WEBRTC_CODECS"])
        if "DUPLEXBOT_WEBRTC_TENANT" in env:
            kw["tenant"] = env["DUPLEXBOT_WEBRTC_TENANT"].strip()
        if "DUPLEXBOT_WEBRTC_TENANTS" in env:
            kw["tenants"] = split(env["DUPLEXBOT_WEBRTC_TENANTS"])
        kw["connect_timeout"] = env_number(env, "DUPLEXBOT_WEBRTC_CONNECT_TIMEOUT", cls.connect_timeout, float,
                                           0.1, 3600, "seconds")
        try:
            return cls(**kw)
        except ValueError as e:  # a bad ICE server URL or codec
            var = "DUPLEXBOT_WEBRTC_ICE_SERVERS" if "ICE" in str(e) else "DUPLEXBOT_WEBRTC_CODECS"
            raise ConfigError(f"{var}: {e}") from None

    def known_tenants(self, configured: Iterable[str] = ()) -> tuple[str, ...]:
        """The tenants a browser call may belong to: `configured` (those with supervisor tokens),
        `tenants` and `tenant`, in that order without repeats; ("default",) when there are none."""
        out: list[str] = []
        for t in (*configured, *self.tenants, self.tenant):
            if t and t not in out:
                out.append(t)
        return tuple(out) or ("default",)

    def choose_tenant(self, requested: str, configured: Iterable[str] = ()) -> str:
        """The tenant of a browser call whose page asked for `requested` ("" : none). A named tenant
        must be known; none named: `tenant` if set, else the only known tenant. ValueError (the
        caller's fault, the message says what to do) otherwise."""
        known = self.known_tenants(configured)
        requested = requested.strip()
        if requested:
            if requested not in known:
                raise ValueError(f"unknown tenant {requested!r}; this bot serves {', '.join(known)}")
            return requested
        if self.tenant:
            return self.tenant
        if len(known) == 1:
            return known[0]
        raise ValueError(f"choose a tenant ({', '.join(known)}): add ?tenant=NAME to the call page's address")

    def rtc_configuration(self) -> RTCConfiguration:
        servers = []
        for url in self.ice_servers:
            if url.startswith("turn"):
                servers.append(RTCIceServer(url, username=self.turn_username or None,
                                            credential=self.turn_credential or None))
            else:
                servers.append(RTCIceServer(url))
        # An explicit empty list: aiortc would otherwise fall back to a public STUN server.
        return RTCConfiguration(iceServers=servers)

    def browser_ice_servers(self) -> list[dict]:
        """The same servers in the browser's RTCConfiguration form."""
        out: list[dict] = []
        for url in self.ice_servers:
            entry: dict = {"urls": url}
            if url.startswith("turn") and self.turn_username:
                entry.update(username=self.turn_username, credential=self.turn_credential)
            out.append(entry)
        return out


def new_peer_connection(settings: WebRTCSettings) -> RTCPeerConnection:
    return RTCPeerConnection(settings.rtc_configuration())


def prefer_codecs(transceiver: RTCRtpTransceiver, names: tuple[str, ...]) -> None:
    """Restrict and order the audio codecs a transceiver negotiates (mime subtype names)."""
    caps = RTCRtpSender.getCapabilities("audio").codecs
    order = {n.lower(): i for i, n in enumerate(names)}
    chosen = [c for c in caps if c.mimeType.split("/", 1)[1].lower() in order]
    chosen.sort(key=lambda c: order[c.mimeType.split("/", 1)[1].lower()])
    if chosen:
        transceiver.setCodecPreferences(chosen)


def offer_problem(sdp: str) -> str | None:
    """Why an SDP offer cannot be answered with audio (None: it can). Said in the peer's terms,
    never as an internal error."""
    from aiortc.sdp import SessionDescription

    try:
        desc = SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError, TypeError):
        return "the offer is not valid SDP"
    audio = [m for m in desc.media if m.kind == "audio"]
    if not audio:
        return "the offer has no audio m-line"
    if not any(c.mimeType.split("/", 1)[1].lower() in ("opus", "pcmu") for m in audio for c in m.rtp.codecs):
        return "the offer's audio offers neither Opus nor PCMU"
    return None


def negotiated_audio_rate(sdp: str) -> int:
    """The clock rate of the first audio codec in an SDP answer (48000 for Opus, 8000 for PCMU)."""
    from aiortc.sdp import SessionDescription

    desc = SessionDescription.parse(sdp)
    for media in desc.media:
        if media.kind == "audio" and media.rtp.codecs:
            return int(media.rtp.codecs[0].clockRate)
    raise ValueError("the SDP has no audio codec")


def av_frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Decoded aiortc frame (s16 packed or planar, any channel count) -> mono int16 samples."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if arr.dtype != np.int16:
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.clip(arr * 32767.0, -32768, 32767)
        arr = arr.astype(np.int16)
    if frame.format.is_planar:
        pcm = arr.reshape(channels, -1)
        return pcm[0].copy() if channels == 1 else pcm.mean(axis=0).astype(np.int16)
    flat = arr.reshape(-1)
    if channels == 1:
        return flat.copy()
    return flat.reshape(-1, channels).mean(axis=1).astype(np.int16)


def mono_to_av_frame(pcm: np.ndarray, rate: int, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, np.int16).reshape(1, -1), format="s16",
                                       layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = Fraction(1, rate)
    return frame


class PacedAudioTrack(MediaStreamTrack):
    """An outgoing audio track that produces one 20 ms frame per `recv()`, paced on the loop clock.
    Subclasses implement `next_samples(samples, rate)`. If the loop stalls past the pacer's
    lateness rule the track resynchronises instead of bursting frames to catch up (the frames'
    timestamps stay contiguous: the browser hears the stall, not a jump)."""

    kind = "audio"

    def __init__(self, rate: int) -> None:
        super().__init__()
        self.rate = rate
        self.samples = int(rate * FRAME_SECONDS)
        self._pacer = Pacer(FRAME_SECONDS)
        self._pts = 0
        self.frames_sent = 0

    def next_samples(self, samples: int, rate: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._pacer.started:
            self._pts += self.samples
            if not self._pacer.due(loop.time()):
                await asyncio.sleep(self._pacer.wait(loop.time()))
            if self.readyState != "live":
                raise MediaStreamError
        else:
            self._pacer.restart(loop.time())
        pcm = self.next_samples(self.samples, self.rate)
        self._pacer.advance()
        self.frames_sent += 1
        return mono_to_av_frame(pcm, self.rate, self._pts)

    @property
    def resyncs(self) -> int:
        """Times the loop stalled past the pacer's lateness rule and the track resynchronised."""
        return self._pacer.resyncs


class BotTrack(PacedAudioTrack):
    """The bot's voice: pulls the engine's BotAudioSource (silence until output starts)."""

    def __init__(self, rate: int = 48000) -> None:
        super().__init__(rate)
        self.source: BotAudioSource | None = None

    def next_samples(self, samples: int, rate: int) -> np.ndarray:
        src = self.source
        if src is None:
            return np.zeros(samples, np.int16)
        frame = src.read(samples, rate)
        pcm = frame.pcm
        if frame.sample_rate != rate or len(pcm) != samples:  # a source that ignored the request
            out = np.zeros(samples, np.int16)
            out[:min(samples, len(pcm))] = pcm[:samples]
            pcm = out
        return pcm


@dataclass
class TransportStats:
    frames_in: int = 0
    dropped_in: int = 0
    bad_frames: int = 0
    dtmf: int = 0


class WebRTCTransport:
    """`Transport` over one aiortc RTCPeerConnection. Create it before `setRemoteDescription` is
    answered (it registers the `track` handler and adds the bot track), then `attach_rate()` once
    the answer is known."""

    reports_playback = False

    def __init__(self, pc: RTCPeerConnection, info: CallInfo, settings: WebRTCSettings) -> None:
        self.pc = pc
        self.info = info
        self.settings = settings
        self.stats = TransportStats()
        self.bot_track = BotTrack(48000)
        self.inbox = InboundMailbox(settings.inbound_queue)
        self._reader: asyncio.Task | None = None
        self._stream_samples = 0
        self._closed = False
        self.on_start_output: Callable[[], None] | None = None
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    # ---- set-up -------------------------------------------------------------------------------
    def add_bot_track(self) -> None:
        """Add the sendrecv audio transceiver carrying the bot track. Call it before
        `setRemoteDescription(offer)`: aiortc picks this transceiver for the offered audio m-line
        and negotiates only our codecs, in our order."""
        tr = self.pc.addTransceiver(self.bot_track, direction="sendrecv")
        prefer_codecs(tr, self.settings.codecs)

    @property
    def output_rate(self) -> int:
        """The rate the bot track reads the engine's audio at (the negotiated codec's clock rate)."""
        return self.bot_track.rate

    def attach_rate(self, answer_sdp: str) -> None:
        rate = negotiated_audio_rate(answer_sdp)
        self.bot_track.rate = rate
        self.bot_track.samples = int(rate * FRAME_SECONDS)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.ensure_future(self._read(track))

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._end(Hangup("remote" if self.pc.connectionState == "closed" else "network"))

    # ---- caller side --------------------------------------------------------------------------
    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):  # an audio track yields audio frames
                    self.stats.bad_frames += 1
                    continue
                try:
                    pcm = av_frame_to_mono(frame)
                    item = AudioFrame(pcm, frame.sample_rate, self._stream_samples / frame.sample_rate)
                except ValueError:
                    self.stats.bad_frames += 1
                    continue
                self._stream_samples += len(pcm)
                self._push(item)
        except MediaStreamError:
            self._end(Hangup("remote"))
        except asyncio.CancelledError:
            pass

    def _push(self, item: InboundItem) -> None:
        if self.inbox.ended:
            return
        if isinstance(item, AudioFrame):
            self.stats.frames_in += 1
        if self.inbox.put(item):
            self.stats.dropped_in += 1

    def push_dtmf(self, digit: str) -> None:
        """A key pressed on the page's keypad (sent over the data channel)."""
        if len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self.stats.dtmf += 1
        self._push(Dtmf(digit.upper(), 100))

    def _end(self, hangup: Hangup) -> None:
        self.inbox.put(hangup)  # the first hang-up is final; later ones are ignored

    async def receive(self) -> InboundItem:
        return await self.inbox.get()

    # ---- bot side -----------------------------------------------------------------------------
    def start_output(self, source: BotAudioSource) -> None:
        self.bot_track.source = source
        if self.on_start_output is not None:
            self.on_start_output()  # the session exists by now: the route subscribes before its first event

    def clear(self) -> None:
        """Nothing is buffered here: BotTrack reads the source one frame at a time as it is sent."""

    async def transfer(self, target: str) -> bool:
        return False

    async def close(self, reason: str) -> None:
        self._end(Hangup(reason))
        if self._closed:
            return
        self._closed = True
        self.bot_track.stop()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        await self.pc.close()

    async def network_stats(self) -> dict[str, float | int | None]:
        """The call's network quality from aiortc's `RTCPeerConnection.getStats()`: the caller's audio
        as we receive it (jitter in seconds, packets received and lost) and ours as the browser's
        RTCP receiver reports describe it (jitter, loss, and the round trip aiortc derives from
        them). None where nothing was measured yet (RTCP comes every few seconds)."""
        out: dict[str, float | int | None] = {"in_jitter": None, "in_packets": None, "in_lost": None,
                                              "out_jitter": None, "out_lost": None, "out_fraction_lost": None,
                                              "rtt": None, "out_packets": None}
        if self._closed:
            return out
        rate = self.bot_track.rate or 48000
        for s in (await self.pc.getStats()).values():
            if s.type == "inbound-rtp":
                out.update(in_jitter=round(s.jitter / rate, 5), in_packets=s.packetsReceived, in_lost=s.packetsLost)
            elif s.type == "remote-inbound-rtp":
                rtt = s.roundTripTime
                out.update(out_jitter=round(s.jitter / rate, 5), out_lost=s.packetsLost,  # RTCP: lost/256
                           out_fraction_lost=round(s.fractionLost / 256, 4),
                           rtt=None if rtt is None else round(rtt, 4))
            elif s.type == "outbound-rtp":
                out["out_packets"] = s.packetsSent
        return out
