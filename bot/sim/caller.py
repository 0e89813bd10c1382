"""Drive one scripted call through the engine, frame by frame, and measure it from the caller's side.

Real time (default): 20 ms caller frames are paced by the clock, the engine runs concurrently, and
latencies include ASR, responder and TTS compute. `fast=True`: after each frame the simulator waits
until the engine has consumed it and finished every task it started, so the same audio gives the
same decisions at any speed (compute time then counts as zero).
"""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..audio.frame import AudioFrame
from ..audio.wav import write_wav
from ..engine import events as ev
from ..engine.port import CallInfo
from ..transports.sim import SimTransport
from .metrics import CallerSegment, compute_metrics
from .script import HangupStep, Pause, Say, Script, ScriptError, SendDtmf, WaitForBotSpeech, WaitForSilence

if TYPE_CHECKING:
    from ..policy.base import PolicySettings
    from ..runtime import Runtime
    from ..settings import Settings

RATE = 16000
FRAME = 320  # 20 ms
VOICED_RMS = 0.004  # bot frame counts as speech above this RMS


@dataclass
class SimulationResult:
    caller: np.ndarray
    bot: np.ndarray
    events: list[ev.Event]
    segments: list[CallerSegment]
    metrics: dict
    call_id: str
    transfers: list[str] = field(default_factory=list)

    def write(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_wav(out / "call.wav", np.stack([self.caller, self.bot]), RATE)
        with open(out / "events.jsonl", "w") as f:
            for e in self.events:
                f.write(json.dumps(e.to_dict()) + "\n")
        (out / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
        return out


class _BotMeter:
    """Tracks the bot's audible speech from the frames the caller receives."""

    def __init__(self) -> None:
        self.voiced_since: float | None = None
        self.silent_since = 0.0
        self.gap = 0.0

    def update(self, frame: np.ndarray, t: float) -> None:
        rms = float(np.sqrt(np.mean((frame.astype(np.float32) / 32768.0) ** 2)))
        if rms > VOICED_RMS:
            if self.voiced_since is None:
                self.voiced_since = t
            self.gap = 0.0
        else:
            self.gap += FRAME / RATE
            if self.voiced_since is not None and self.gap >= 0.35:  # a sentence break is not silence
                self.voiced_since = None
                self.silent_since = t - self.gap + FRAME / RATE

    def speaking_for(self, t: float) -> float:
        return 0.0 if self.voiced_since is None else t - self.voiced_since

    def silent_for(self, t: float) -> float:
        return 0.0 if self.voiced_since is not None else t - self.silent_since


async def simulate(runtime: Runtime, script: Script, fast: bool = False, call_id: str | None = None,
                   max_seconds: float = 600.0, policy_settings: PolicySettings | None = None) -> SimulationResult:
    call_id = call_id or f"sim-{uuid.uuid4().hex[:12]}"
    transport = SimTransport(CallInfo(call_id=call_id, transport="sim", caller="simulator", callee="duplexbot"), RATE)
    session = runtime.calls.start(transport, policy_settings=policy_settings)
    task = session.task
    if task is None:
        raise RuntimeError(f"the call manager did not start call {call_id}")
    caller_out: list[np.ndarray] = []
    bot_out: list[np.ndarray] = []
    segments: list[CallerSegment] = []
    meter = _BotMeter()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    n = 0  # frames sent

    async def tick(frame: np.ndarray) -> None:
        nonlocal n
        t = n * FRAME / RATE
        if t > max_seconds:
            raise ScriptError(f"the call ran past {max_seconds:.0f} s")
        if task.done():
            raise ScriptError("the call ended before the script did")
        transport.push_audio(AudioFrame(frame, RATE, t))
        if fast:
            await transport.wait_idle()
            await session.settle()
        else:
            delay = t0 + (n + 1) * FRAME / RATE - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # real-time pacing of the caller's clock
        bot = transport.read_bot(FRAME).pcm
        caller_out.append(frame)
        bot_out.append(bot)
        n += 1
        meter.update(bot, n * FRAME / RATE)

    silence = np.zeros(FRAME, np.int16)
    steps = list(script.steps)
    if not any(isinstance(s, HangupStep) for s in steps):
        steps += [WaitForSilence(1.0, 20.0), HangupStep()]
    try:
        for step in steps:
            now = n * FRAME / RATE
            if isinstance(step, Say):
                pcm = (np.clip(step.audio, -1, 1) * 32767).astype(np.int16)
                segments.append(CallerSegment.from_audio(step.audio, now, step.kind, step.text,
                                                         bot_speaking=session.playout.is_speaking()))
                pcm = np.concatenate([pcm, np.zeros((-len(pcm)) % FRAME, np.int16)])
                for i in range(0, len(pcm), FRAME):
                    await tick(pcm[i:i + FRAME])
            elif isinstance(step, Pause):
                for _ in range(int(round(step.seconds * RATE / FRAME))):
                    await tick(silence)
            elif isinstance(step, WaitForBotSpeech):
                start = now
                while meter.speaking_for(n * FRAME / RATE) < step.seconds:
                    if n * FRAME / RATE - start > step.timeout:
                        raise ScriptError(f"wait_for_bot_speech: the bot did not speak for {step.seconds} s "
                                          f"within {step.timeout} s")
                    await tick(silence)
            elif isinstance(step, WaitForSilence):
                start = now
                while meter.silent_for(n * FRAME / RATE) < step.seconds or session.playout.is_speaking():
                    if n * FRAME / RATE - start > step.timeout:
                        raise ScriptError(f"wait_for_silence: the bot did not go quiet for {step.seconds} s "
                                          f"within {step.timeout} s")
                    await tick(silence)
            elif isinstance(step, SendDtmf):
                for d in step.digits:
                    transport.push_dtmf(d)
                    await tick(silence)
            elif isinstance(step, HangupStep):
                transport.hangup("caller")
                break
        await asyncio.wait_for(task, 30)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    caller = np.concatenate(caller_out).astype(np.float32) / 32768.0 if caller_out else np.zeros(0, np.float32)
    bot = np.concatenate(bot_out).astype(np.float32) / 32768.0 if bot_out else np.zeros(0, np.float32)
    metrics = compute_metrics(segments, bot, RATE, session.events)
    metrics.update({"call_id": call_id, "script": script.name, "mode": "fast" if fast else "realtime",
                    "policy": session.policy.name, "seconds": round(len(bot) / RATE, 3)})
    return SimulationResult(caller, bot, list(session.events), segments, metrics, call_id, transport.transfers)


async def run_simulation(settings: Settings, script: Script, out_dir: str | Path, fast: bool) -> SimulationResult:
    from ..runtime import Runtime

    runtime = await Runtime.start(settings)
    try:
        result = await simulate(runtime, script, fast=fast)
    finally:
        await runtime.close()
    result.write(out_dir)
    return result
