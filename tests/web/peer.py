"""Test helpers: an aiohttp server on 127.0.0.1 for the route modules, and a Python aiortc peer
that plays the browser's part (a scripted microphone, the events data channel, a level meter on
what it hears)."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Callable

import numpy as np
from aiohttp import ClientSession, ClientTimeout, web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from bot.transports.webrtc import PacedAudioTrack, WebRTCSettings, av_frame_to_mono, prefer_codecs


class Changes:
    """Something to wait on: `await wait(cond, timeout)` returns once cond() is true."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def poke(self) -> None:
        self._event.set()

    async def wait(self, cond: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), min(left, 0.25))
            except asyncio.TimeoutError:
                pass


class Server:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner = web.AppRunner(app, shutdown_timeout=2.0)
        self.url = ""

    async def __aenter__(self) -> "Server":
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


def speech_like(seconds: float = 0.8, rate: int = 48000, lead: float = 0.3, tail: float = 2.0) -> np.ndarray:
    """A loud modulated tone burst between silences: enough for an energy VAD."""
    t = np.arange(int(seconds * rate)) / rate
    burst = 0.4 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return np.concatenate([np.zeros(int(lead * rate)), burst, np.zeros(int(tail * rate))]).astype(np.float32)


class ScriptTrack(PacedAudioTrack):
    """A microphone that plays a float array once, then silence."""

    def __init__(self, audio: np.ndarray | None = None, rate: int = 48000) -> None:
        super().__init__(rate)
        self.audio = (np.zeros(0) if audio is None else np.clip(audio, -1, 1) * 32767).astype(np.int16)
        self.pos = 0

    def play(self, audio: np.ndarray) -> None:
        self.audio = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        self.pos = 0

    def next_samples(self, samples: int, rate: int) -> np.ndarray:
        out = np.zeros(samples, np.int16)
        chunk = self.audio[self.pos:self.pos + samples]
        out[:len(chunk)] = chunk
        self.pos += samples
        return out


class ClientPeer:
    def __init__(self, audio: np.ndarray | None = None, codec: str = "opus", send: bool = True,
                 channel: bool = True) -> None:
        self.pc = RTCPeerConnection(WebRTCSettings().rtc_configuration())
        self.changes = Changes()
        self.mic = ScriptTrack(audio) if send else None
        if send:
            tr = self.pc.addTransceiver(self.mic, direction="sendrecv")
        else:
            tr = self.pc.addTransceiver("audio", direction="recvonly")
        prefer_codecs(tr, (codec,))
        self.messages: list[dict] = []
        self.channel = self.pc.createDataChannel("events") if channel else None
        if self.channel is not None:
            self.channel.on("message", self._on_message)
            self.channel.on("open", self.changes.poke)
        self.loud_frames = 0
        self.frames = 0
        self.peak = 0
        self.rx_rate = 0
        self._reader: asyncio.Task | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self.changes.poke)
        self.answer: dict = {}

    def _on_message(self, message) -> None:
        self.messages.append(json.loads(message))
        self.changes.poke()

    def _on_track(self, track) -> None:
        self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                pcm = av_frame_to_mono(frame)
                self.rx_rate = frame.sample_rate
                self.frames += 1
                level = int(np.abs(pcm.astype(np.int32)).max()) if len(pcm) else 0
                self.peak = max(self.peak, level)
                if level > 2000:
                    self.loud_frames += 1
                self.changes.poke()
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def events(self, type_: str | None = None) -> list[dict]:
        out = [m["event"] for m in self.messages if m.get("type") == "event"]
        return [e for e in out if type_ is None or e["type"] == type_]

    async def offer(self, http: ClientSession, url: str, headers: dict | None = None,
                    extra: dict | None = None) -> dict:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"type": "offer", "sdp": self.pc.localDescription.sdp, **(extra or {})}
        async with http.post(url, json=body, headers=headers or {}, timeout=ClientTimeout(total=20)) as r:
            if r.status != 200:
                raise HTTPFailure(r.status, await r.text())
            self.answer = await r.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(self.answer["sdp"], "answer"))
        return self.answer

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass


class HTTPFailure(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
