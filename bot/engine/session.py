"""One call: reads caller frames and writes bot frames at the same time.

The caller side runs chunk by chunk (32 ms at 16 kHz): batched VAD (and the duplex model) through
the process-wide scheduler, then the turn-taking policy, whose decisions this module carries out.
The bot side is a `Playout` the transport pulls from. Barge-in is handled synchronously inside the
decision handler: the playout is cleared and the transport told before anything else happens, so
the next frame the transport reads is silence.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, ClassVar, Coroutine

import numpy as np

from ..audio.frame import AudioFrame
from ..audio.history import AudioHistory
from ..audio.resample import Resampler
from ..brain.corrections import is_correction
from ..brain.intents import IntentDetector
from ..policy.base import (
    CHUNK_RATE,
    CHUNK_SAMPLES,
    Decision,
    DecisionKind,
    ModelOutput,
    Observation,
    PolicySettings,
    TurnPolicy,
)
from ..policy.completeness import evidence, text_completeness
from ..policy.words import is_backchannel_text
from ..services.asr import SKIPPED as ASR_SKIPPED
from ..services.responder import RespondContext, Responder, ResponderAction, ResponseChunk, Revision, Turn
from . import events as ev
from .bot_turns import BotTurns
from .fanout import EventFanout
from .intent_watch import IntentWatch
from .playout import Truncation
from .port import Dtmf, Hangup, Transport
from .reply import Reply, stream, stream_text
from .secure_input import SecureInput
from .speculation import Draft, Speculations
from .takeover import TakeoverPort

if TYPE_CHECKING:
    from ..runtime import Services

log = logging.getLogger(__name__)

PRE_ROLL = 0.15  # seconds of audio before a detected onset handed to ASR
POST_ROLL = 0.1


@dataclass(frozen=True)
class EngineSettings:
    greet: bool = True
    resume_after_false_barge_in: bool = True
    history_seconds: float = 30.0  # caller audio kept for ASR
    subscriber_queue: int = 512
    # overlap words below this mean log-probability are treated as no words (a murmured
    # "mm-hmm" that tiny.en guesses as "No" must not stop the bot)
    min_overlap_word_score: float = -3.0
    # start the answer on the provisional transcript at each pause, played if the turn ends there
    speculate: bool = True
    # seconds between partial transcripts during long speech, for the intents (each is one more
    # ASR pass, so never while the recogniser has anything queued or running)
    partial_every: float = 1.5
    # a turn this long (s) with no words heard gets the not-heard line ("Sorry, I didn't catch that"), once
    # until words are heard again; 0 = silence. At 0.8 a "Yes." tiny.en missed got dead air (bench phone)
    reprompt_after_speech: float = 0.3


class CallSession:
    def __init__(self, transport: Transport, policy: TurnPolicy, responder: Responder, services: "Services",
                 settings: EngineSettings = EngineSettings(), sinks: list[Callable[[ev.Event], None]] | None = None,
                 calibrate: Callable[[PolicySettings], PolicySettings] | None = None,
                 intents: IntentDetector | None = None):
        self.transport = transport
        self.info = transport.info
        self.call_id = transport.info.call_id
        self.policy = policy
        self.responder = responder
        self.services = services  # .scheduler .asr .tts
        self.settings = settings
        self.fanout = EventFanout(list(sinks or []), settings.subscriber_queue)
        self.events, self.emit = self.fanout.events, self.fanout.emit
        self.subscribe, self.unsubscribe = self.fanout.subscribe, self.fanout.unsubscribe
        self._calibrate = calibrate or (lambda s: s)
        self._overlap_notices = policy.settings.allow_overlap
        if self._overlap_notices:
            policy.update_settings(replace(policy.settings, allow_overlap=False))
        self._after_notice = ""  # what the bot says when its notice has played (the greeting)
        self.history: list[Turn] = []
        self.bot = BotTurns(self.call_id, transport.output_rate, self, self.emit, lambda: self.now,
                            lambda: self.heard.samples)
        self.playout = self.bot.playout
        self._resampler: Resampler | None = None
        self._pending = np.zeros(0, np.int16)
        self.heard = AudioHistory(settings.history_seconds, CHUNK_RATE)  # the caller, as processed
        self._tasks: set[asyncio.Task] = set()
        self._response: asyncio.Task | None = None
        # the turn being answered: its start, the history before it, the answer's task, the bot's last
        # turn then (none opened since: the caller heard nothing of it), the bot turn it cut (if any)
        self._answering: tuple[float, int, asyncio.Task | None, int, Truncation | None] = \
            (0.0, 0, None, 0, None)
        self._utt_start: float | None = None
        self._last_speech_end = 0.0
        self._spec: tuple[float, float, asyncio.Task] | None = None
        self.speculations = Speculations(self.call_id, self.emit, lambda: self.now)
        self.intents = IntentWatch(self.call_id, intents, self, services.asr, self.emit, self._spawn,
                                   settings.partial_every, PRE_ROLL)
        self._cut: Truncation | None = None  # the last interrupted bot turn (for resume)
        self._instructions: list[str] = []
        self._dtmf = ""
        self._unheard = False  # the not-heard line was said, and no words were heard since
        self._taps: list[Callable[[AudioFrame, AudioFrame], None]] = []
        self._takeover_by: str | None = None
        self._secure = SecureInput()
        self.task: asyncio.Task | None = None  # set by CallManager.start
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.stats = {"chunks": 0, "inference_errors": 0, "overlap_checks_skipped": 0, "speculative_asr_cancelled": 0}
        self.asr_hint = ""  # what the recogniser is told to expect (services/asr.py HINTS)
        self._overlap_task: asyncio.Task[None] | None = None  # the latest transcription of an overlap

    # -- time ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.heard.samples / CHUNK_RATE

    # -- events: emit, subscribe and unsubscribe are the call's EventFanout's -------------------
    def add_audio_tap(self, cb: Callable[[AudioFrame, AudioFrame], None]) -> Callable[[], None]:
        self._taps.append(cb)
        return lambda: self._taps.remove(cb) if cb in self._taps else None

    # -- the call -----------------------------------------------------------------------------
    async def run(self) -> None:
        i = self.info
        self.emit(ev.CallStarted(call_id=self.call_id, t=0.0, transport=i.transport, caller=i.caller,
                                 callee=i.callee, tenant=i.tenant))
        self.services.scheduler.register(self.call_id)
        self.transport.start_output(self.playout)
        notice = self.responder.notice()
        greeting = self.responder.greeting() if self.settings.greet else ""
        if notice:  # the greeting follows when the notice has played
            self._after_notice = greeting
            self._speak_text(notice, is_notice=True)
        elif greeting:
            self._speak_text(greeting)
        reason = "remote"
        try:
            while True:
                item = await self.transport.receive()
                if isinstance(item, Hangup):
                    reason = item.reason
                    break
                if isinstance(item, Dtmf):
                    self._on_dtmf(item)
                    continue
                await self._on_audio(item)
        except asyncio.CancelledError:
            reason = self.end_reason or "cancelled"
            raise
        finally:
            await self._finish(reason)

    async def _finish(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.playout.is_speaking():
            self._cut_bot("hangup")
        self.services.scheduler.unregister(self.call_id)
        self.emit(ev.CallEnded(call_id=self.call_id, t=self.now, reason=reason))
        self.ended.set()

    async def hangup(self, reason: str = "local") -> None:
        self.end_reason = reason
        await self.transport.close(reason)

    # -- caller audio -------------------------------------------------------------------------
    async def _on_audio(self, frame: AudioFrame) -> None:
        if self._resampler is None or self._resampler.src_rate != frame.sample_rate:
            self._resampler = Resampler(frame.sample_rate, CHUNK_RATE)
        pcm = self._resampler.process(frame.pcm)
        self._pending = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        while self._pending.size >= CHUNK_SAMPLES:
            chunk, self._pending = self._pending[:CHUNK_SAMPLES], self._pending[CHUNK_SAMPLES:]
            await self._on_chunk(chunk)

    async def _on_chunk(self, chunk: np.ndarray) -> None:
        start = self.heard.push(chunk)
        self.stats["chunks"] += 1
        x = chunk.astype(np.float32) / 32768.0
        bot = self.playout.reference(start, CHUNK_SAMPLES) if (self.policy.needs_model or self._taps) else None
        bot_f = bot.astype(np.float32) / 32768.0 if bot is not None else None
        sched = self.services.scheduler
        try:
            # both models are asked at once: they run side by side, in the same tick
            vad_f = sched.submit("vad", self.call_id, x)
            duplex_f = sched.submit("duplex", self.call_id, np.stack([x, bot_f])) \
                if self.policy.needs_model and bot_f is not None else None
            vad = float(np.asarray(await vad_f).reshape(-1)[0])
            heads = np.asarray(await duplex_f).reshape(-1) if duplex_f is not None else None
            model = ModelOutput(*[float(h) for h in heads[:5]]) if heads is not None else None
        except RuntimeError as e:
            if duplex_f is not None:
                duplex_f.cancel()  # (a failed VAD batch leaves it unread)
            self.stats["inference_errors"] += 1
            self.emit(ev.ErrorEvent(call_id=self.call_id, t=self.now, where="inference", message=str(e),
                                    retryable=True))
            return
        limit = self.policy.settings.max_bot_monologue
        if self.bot.speaking_since is not None and self.now - self.bot.speaking_since > limit:
            self._cut_bot("max_monologue")
        obs = Observation(t=self.now, vad=vad, bot_speaking=self.playout.is_speaking(),
                          rms=float(np.sqrt(np.mean(x * x))), model=model,
                          bot_rms=float(np.sqrt(np.mean(bot_f * bot_f))) if bot_f is not None else 0.0)
        for d in self.policy.step(obs):
            self._on_decision(d)
        self.intents.during_speech(self._utt_start, self._spec is not None and not self._spec[2].done())
        if self._taps and not self.secure_input:
            if bot is None:  # a tap may have been added while this chunk was being inferred
                bot = self.playout.reference(start, CHUNK_SAMPLES)
            cf, bf = AudioFrame(chunk, CHUNK_RATE, start / CHUNK_RATE), AudioFrame(bot, CHUNK_RATE, start / CHUNK_RATE)
            for tap in list(self._taps):
                try:
                    tap(cf, bf)
                except Exception:
                    log.exception("audio tap failed")

    def caller_audio(self, t0: float, t1: float) -> np.ndarray:
        """16 kHz float caller audio between stream times t0 and t1 (clipped to what is kept)."""
        return self.heard.window(t0, t1)

    # -- decisions ----------------------------------------------------------------------------
    def _on_decision(self, d: Decision) -> None:
        self.DECISION_HANDLERS[d.kind](self, d)

    def _speech_start(self, d: Decision) -> None:
        self.emit(ev.CallerSpeechStart(call_id=self.call_id, t=d.t, confidence=d.confidence,
                                       during_bot_speech=self.playout.is_speaking()))
        r = self._response
        start, mark, answering, turn, cut = self._answering
        unopened = answering is r and self.bot.turn == turn and not self.playout.has_audio()  # still in ASR
        if r is not None and not r.done() and (self.bot.opened_unheard() or unopened):
            # the caller went on before the bot said a word: a turn answered resumes, first words kept
            self._cancel_response()
            if not unopened:
                self.bot.forget(self.bot.turn)
                self.playout.clear()
            if answering is r:
                self._utt_start, self._cut = start, self._cut or cut
                self.history[mark:] = [t for t in self.history[mark:] if t.speaker != "caller"]
        self.intents.speech_start(d.t, new_utterance=self._utt_start is None)
        if self._utt_start is None:
            self._utt_start = d.onset
        self.speculations.waste("the caller went on")
        if self._spec is not None and not self._spec[2].done():
            # the words at a pause that is over (most inside a sentence last < 0.1 s): never
            # transcribed if still queued, ASR being the costliest work of a call
            self._spec[2].cancel()
            self._spec = None
            self.stats["speculative_asr_cancelled"] += 1
            ASR_SKIPPED.labels("pause_over").inc()

    def _speech_end(self, d: Decision) -> None:
        self._last_speech_end = d.t
        self.intents.speech_end()
        self.emit(ev.CallerSpeechEnd(call_id=self.call_id, t=d.t, speech_started=d.onset))
        if self._utt_start is not None and not self.playout.is_speaking() and not self.secure_input:
            self._speculate(self._utt_start, d.t)

    def _hold(self, d: Decision) -> None:
        self.emit(ev.Hold(call_id=self.call_id, t=d.t, confidence=d.confidence, policy=self.policy.name))

    def _end_of_turn(self, d: Decision) -> None:
        self.emit(ev.EndOfTurn(call_id=self.call_id, t=d.t, confidence=d.confidence, silence=d.silence,
                               policy=self.policy.name, reason=d.reason))
        if self._utt_start is not None and not self.secure_input:
            start, self._utt_start = self._utt_start, None
            # a model may call the turn before the VAD has closed the segment
            end = self._last_speech_end if self._last_speech_end > start else d.t
            self._start_response(start, end)

    def _interrupt(self, d: Decision) -> None:
        cid, pol = self.call_id, self.policy.name
        if self.bot.notice_turn is not None and self._overlap_notices:
            self.emit(ev.Backchannel(call_id=cid, t=d.t, confidence=d.confidence, policy=pol,
                                     text="notice: the tenant lets the bot finish notices over the caller"))
        elif self.playout.is_speaking() and self._takeover_by is None:
            self.emit(ev.BargeIn(call_id=cid, t=d.t, confidence=d.confidence, reason=d.reason, policy=pol,
                                 onset=d.onset))
            spoke_since = self.bot.speaking_since if self.bot.speaking_since is not None else 0.0
            self._cut_bot("barge_in")
            # the onset a model reports can predate this overlap (VAD not yet triggered)
            self._utt_start = d.onset if d.onset >= spoke_since else max(0.0, d.t - 0.5)

    def _backchannel(self, d: Decision) -> None:
        self.emit(ev.Backchannel(call_id=self.call_id, t=d.t, confidence=d.confidence, text="", reason=d.reason,
                                 policy=self.policy.name))
        if self.playout.is_speaking():
            self._utt_start = None

    def _backchannel_opportunity(self, d: Decision) -> None:
        self.emit(ev.BackchannelOpportunity(call_id=self.call_id, t=d.t, confidence=d.confidence))

    def _transcribe_overlap_asked(self, d: Decision) -> None:
        if d.recheck and self._overlap_task is not None and not self._overlap_task.done():
            self.stats["overlap_checks_skipped"] += 1  # the one in flight answers soon enough
            ASR_SKIPPED.labels("overlap_inflight").inc()
        elif not self.secure_input:
            self._overlap_task = self._spawn(self._transcribe_overlap(d.onset, d.t))

    # one handler per kind, as h11 keeps its transitions in one table (tests check it is complete)
    DECISION_HANDLERS: ClassVar[dict[DecisionKind, Callable[["CallSession", Decision], None]]] = {
        DecisionKind.SPEECH_START: _speech_start, DecisionKind.SPEECH_END: _speech_end, DecisionKind.HOLD: _hold,
        DecisionKind.END_OF_TURN: _end_of_turn, DecisionKind.INTERRUPT: _interrupt,
        DecisionKind.BACKCHANNEL: _backchannel, DecisionKind.BACKCHANNEL_OPPORTUNITY: _backchannel_opportunity,
        DecisionKind.TRANSCRIBE_OVERLAP: _transcribe_overlap_asked,
    }

    async def _transcribe_overlap(self, onset: float, t: float) -> None:
        tr = await self.services.asr.transcribe_detailed(self.caller_audio(onset - PRE_ROLL, t))
        text = tr.text if tr.score >= self.settings.min_overlap_word_score else ""
        if text:
            self.emit(ev.TranscriptPartial(call_id=self.call_id, t=self.now, text=text))
            self.intents.heard(text, partial=True)
        for d in self.policy.on_transcript(text, onset, self.now):
            self._on_decision(d)

    def _speculate(self, start: float, end: float) -> None:
        """Transcribe as soon as the caller pauses: the words tell the policy whether the turn is complete,
        the answer starts on them (a draft, played if the turn ends here), and if it ends here the text is ready."""
        audio = self.caller_audio(start - PRE_ROLL, end + POST_ROLL)

        async def run() -> str:
            tr = await self.services.asr.transcribe_detailed(audio, self.asr_hint)
            if tr.text:
                self.emit(ev.TranscriptPartial(call_id=self.call_id, t=self.now, text=tr.text, p_continue=tr.p_continue,
                                               complete=text_completeness(tr.text, tr.p_final), score=tr.score))
                self.intents.heard(tr.text, partial=True)
            spec = self._spec
            if spec is not None and spec[0] == start and spec[1] == end:
                self._start_draft(start, end, tr.text)
            for d in self.policy.on_words(evidence(tr.text, tr.p_final, end, self.now, tr.p_continue, score=tr.score)):
                self._on_decision(d)
            return tr.text

        self._spec = (start, end, self._spawn(run()))

    # -- speculation: the answer prepared at the pause -----------------------------------------
    def _revision_for(self, text: str) -> Revision | None:
        cut = self._cut
        if cut is not None and cut.heard and is_correction(text):
            return Revision(cut.heard, cut.unheard, text)
        return None

    def _start_draft(self, start: float, end: float, text: str) -> None:
        if not self.settings.speculate or not text.strip() or self.secure_input or self._takeover_by is not None \
                or self._utt_start is None or self.playout.is_speaking() \
                or (self._cut is not None and is_backchannel_text(text)):
            return
        ctx = RespondContext(revision=self._revision_for(text))
        instructions = list(self._instructions)
        chunks = self.responder.respond([*self.history, Turn("caller", text)], instructions, ctx)
        reply = Reply(self.bot, self.services.tts, self.playout.out_rate, chunks, ctx)
        self.speculations.begin(Draft(self.speculations.next_id(), start, end, text, ctx, reply,
                                      self._spawn(reply.run()), self.now, instructions))

    def _commit_draft(self, d: Draft) -> None:
        """The end of turn came on the draft's transcript: it becomes the answer."""
        self.emit(ev.TranscriptFinal(call_id=self.call_id, t=self.now, text=d.text, speaker="caller"))
        self.intents.heard(d.text, partial=False, turn_over=True)
        self._cut = None
        self.history.append(Turn("caller", d.text))
        self._mark_revision(d.ctx.revision)
        for i in d.instructions:
            if i in self._instructions:
                self._instructions.remove(i)
        self._response = d.task
        d.ctx.commit()

    def _mark_revision(self, revision: Revision | None) -> None:
        if revision is not None:
            self.emit(ev.TurnRevised(call_id=self.call_id, t=self.now, turn=self.bot.turn + 1, heard=revision.heard,
                                     correction=revision.correction))

    # -- bot turns ----------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if (e := None if task.cancelled() else task.exception()) is not None:
            log.error("call %s task failed: %r", self.call_id, e)
            self.emit(ev.ErrorEvent(call_id=self.call_id, t=self.now, where="engine", message=repr(e),
                                    retryable=getattr(e, "retryable", False)))

    def _cancel_response(self) -> None:
        """Drop the answer in progress (and any draft: something else takes the turn)."""
        if self._response is not None and not self._response.done():
            self._response.cancel()
        self._response = None
        self.speculations.waste("superseded")

    def _start_response(self, start: float, end: float) -> None:
        mark, turn, cut = len(self.history), self.bot.turn, self._cut
        d = self.speculations.take(start, end)
        if d is not None:
            self._spec = None
            if self._response is not None and not self._response.done():
                self._response.cancel()
            self._commit_draft(d)
        else:
            self._cancel_response()
            spec = self._spec
            if spec and abs(spec[0] - start) < 1e-6 and abs(spec[1] - end) < 1e-6:
                asr = spec[2]
            else:
                asr = self._spawn(self.services.asr.transcribe(self.caller_audio(start - PRE_ROLL, end + POST_ROLL),
                                                               self.asr_hint))
            self._spec = None
            self._response = self._spawn(self._respond(asr, end - start))
        self._answering = (start, mark, self._response, turn, cut)

    async def _respond(self, asr: asyncio.Task, spoken: float) -> None:
        text = await asr
        self.asr_hint = ""  # the turn's words are in: a number asked for was this turn's
        self.emit(ev.TranscriptFinal(call_id=self.call_id, t=self.now, text=text, speaker="caller"))
        if text.strip():
            self.intents.heard(text, partial=False, turn_over=True)
        revision = self._revision_for(text)
        cut, self._cut = self._cut, None
        if not text.strip() or (cut is not None and is_backchannel_text(text)):
            if cut and cut.unheard and self.settings.resume_after_false_barge_in:
                resumed = f"{self.responder.resume_prefix()} {cut.unheard}".strip()
                self.emit(ev.FalseBargeIn(call_id=self.call_id, t=self.now, resumed_text=resumed))
                await self._speak(stream_text(resumed))
            elif cut is None and not text.strip() and self._reprompt(spoken):
                await self._speak(stream_text(self.responder.not_heard()))
            return
        self._unheard = False
        self.history.append(Turn("caller", text))
        if self._takeover_by is not None:
            return  # a supervisor is talking for the bot
        instructions, self._instructions = self._instructions, []
        self._mark_revision(revision)
        ctx = RespondContext.final(revision)
        await self._speak(self.responder.respond(list(self.history), instructions, ctx), ctx)

    def _reprompt(self, spoken: float) -> bool:
        """Whether to say the not-heard line after a turn of `spoken` seconds with no words heard."""
        due = 0 < self.settings.reprompt_after_speech <= spoken and not self._unheard and not self.secure_input \
            and self._takeover_by is None and bool(self.responder.not_heard())
        self._unheard = self._unheard or due
        return due

    def _speak_text(self, text: str, is_notice: bool = False) -> None:
        self._cancel_response()
        if is_notice:
            self.bot.notice_turn = self.bot.turn + 1
        self._response = self._spawn(self._speak(stream_text(text)))

    async def _speak(self, chunks: AsyncIterator[ResponseChunk], ctx: RespondContext | None = None) -> None:
        await Reply(self.bot, self.services.tts, self.playout.out_rate, chunks, ctx or RespondContext.final()).run()

    # -- BotTurnsHost: what the bot's turns tell the call --------------------------------------
    def said(self, text: str) -> None:
        self.history.append(Turn("bot", text))

    def turn_done(self, turn: int, actions: list[ResponderAction]) -> None:
        if turn == self.bot.notice_turn:
            follow, self._after_notice = self._after_notice, ""
            if follow:
                self._speak_text(follow)
        for action in actions:
            self._spawn(self._act(action))

    def _cut_bot(self, reason: str) -> None:
        """Stop bot audio now: clear our queue and the transport's, record what was heard."""
        self.transport.clear()  # control first: the transport drops what it holds
        cuts = self.bot.cut(reason)
        self._cancel_response()
        if cuts:
            self._cut = cuts[-1]

    async def _act(self, action: ResponderAction) -> None:
        ok = True
        if action.name == "transfer":
            ok = await self.transport.transfer(action.target)
        elif action.name == "hangup":
            await self.hangup("bot")
        elif action.name == "secure_input":
            self.set_secure_input(True)
            return
        elif action.name == "expect_digits":  # the bot asked for a number this long
            self.expect_digits(int(action.target) if action.target.isdigit() else 0)
        self.emit(ev.Action(call_id=self.call_id, t=self.now, name=action.name, target=action.target, ok=ok))

    def expect_digits(self, n: int) -> None:
        """The bot asked for an `n`-digit number (0: none): the policy and the recogniser expect digits."""
        self.policy.expect_digits(n)
        self.asr_hint = "digits" if n > 0 else ""

    # -- secure input: card numbers by DTMF ----------------------------------------------------
    @property
    def secure_input(self) -> bool:
        return self._secure.active

    def set_secure_input(self, on: bool) -> None:
        """While on: no caller audio reaches ASR or supervisors, no transcript or digit is recorded,
        and typed digits stay in memory until '#' hands their count (never them) to the responder."""
        if on == self.secure_input:
            return
        (self._secure.start if on else self._secure.stop)()
        self._utt_start = None
        self._spec = None
        self.speculations.waste("secure input")
        try:
            self.services.set_secure(self.call_id, on)
        except Exception:  # noqa: BLE001 - the store being down never blocks the caller
            log.exception("set_secure_input failed")
        self.emit(ev.Action(call_id=self.call_id, t=self.now, name="secure_input", target="on" if on else "off"))

    def _on_secure_digit(self, digit: str) -> None:
        count = self._secure.key(digit)
        if count is None:
            return
        self.set_secure_input(False)
        self._cancel_response()
        self._response = self._spawn(self._speak(stream(self.responder.on_secure_input(count))))

    def _on_dtmf(self, d: Dtmf) -> None:
        secure = self.secure_input
        self.emit(ev.DtmfReceived(call_id=self.call_id, t=self.now, digit="*" if secure else d.digit))
        if secure:
            self._on_secure_digit(d.digit)
            return
        self._dtmf = (self._dtmf + d.digit)[-16:]
        chunks = self.responder.on_dtmf(self._dtmf)
        if chunks:
            self._dtmf = ""
            if self.playout.is_speaking():
                self._cut_bot("dtmf")
            self._cancel_response()
            self._response = self._spawn(self._speak(stream(chunks)))

    def whisper(self, text: str, supervisor: str) -> None:
        self._instructions.append(text.strip())

    def take_over(self, supervisor: str) -> TakeoverPort:
        if self.playout.is_speaking():
            self._cut_bot("takeover")
        self._cancel_response()
        self._takeover_by = supervisor
        self.playout.start_takeover()
        return TakeoverPort(self.playout.push_takeover, self.hand_back)

    def hand_back(self) -> None:
        self._takeover_by = None
        self.playout.stop_takeover()

    @property
    def taken_over_by(self) -> str | None:
        return self._takeover_by

    def say(self, text: str) -> asyncio.Task:
        """Say `text` now, in place of whatever the bot was saying: a supervisor's notice (take-over,
        hold). The task ends when its audio is queued; `bot_speaking` is False once it has played."""
        if self.playout.is_speaking():
            self._cut_bot("supervisor")
        self._cancel_response()
        self._response = self._spawn(self._speak(stream_text(text)))
        return self._response

    @property
    def bot_speaking(self) -> bool:
        return self.playout.is_speaking()

    def update_policy(self, settings: PolicySettings) -> None:
        """A tenant's policy changed (Redis pub/sub): apply it from the next chunk on. Speaking over
        the caller (`allow_overlap`) is the engine's call, and only while a notice plays."""
        self._overlap_notices = settings.allow_overlap
        self.policy.update_settings(self._calibrate(replace(settings, allow_overlap=False)))

    # -- deterministic stepping (simulator --fast, tests) --------------------------------------
    async def settle(self) -> None:
        """Wait until every task this call started (ASR, responder, TTS) has finished."""
        await self.speculations.settle(self._tasks)

