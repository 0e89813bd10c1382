"""The baseline turn-taking policy: Silero VAD + silence timeout, with duration and word rules for
barge-in, the way Pipecat and LiveKit ship it.

- End of turn: the caller has been silent for `end_of_turn_silence` (LiveKit's 0.5 s minimum
  endpointing delay; Pipecat uses 0.8 s).
- Barge-in: caller speech over bot speech is sent to ASR after `interruption_check_after`, then
  every 0.1 s; an interruption word ("wait", "stop", "no", ...) stops the bot at once; speech that
  lasts `min_interruption_speech` (LiveKit's 0.5 s) stops it unless every word is a backchannel.
  Overlap that ends before either is a backchannel: the bot keeps talking.
"""
from __future__ import annotations

from .base import CHUNK_SECONDS, Decision, DecisionKind, Observation, PolicySettings
from .completeness import WordEvidence
from .words import has_interrupt_word, is_backchannel_text, words_of

HANGOVER = 2 * CHUNK_SECONDS  # silence before a speech segment is declared over
RECHECK = 0.1


class VadTimeoutPolicy:
    name = "vad-timeout"
    needs_model = False

    def __init__(self, settings: PolicySettings = PolicySettings()):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self.in_speech = False
        self.run = 0  # consecutive chunks voting for a state change
        self.onset = 0.0
        self.last_end = 0.0
        self.overlap = False  # current speech started while the bot was speaking
        self.decided = False  # interrupt/backchannel already decided for this overlap
        self.turn_pending = False  # caller speech since the last end of turn
        self.next_check = 0.0
        self.transcript = ""

    def update_settings(self, settings: PolicySettings) -> None:
        self.settings = settings

    def step(self, obs: Observation) -> list[Decision]:
        s = self.settings
        out: list[Decision] = []
        voiced = obs.vad >= (s.vad_off_threshold if self.in_speech else s.vad_threshold)
        if not self.in_speech:
            if voiced:
                self.run += 1
                if self.run * CHUNK_SECONDS >= s.min_speech - 1e-9:
                    self._start(obs, out)
            else:
                self.run = 0
                if self.turn_pending and not obs.bot_speaking:
                    silence = obs.t - self.last_end
                    if silence >= s.end_of_turn_silence - 1e-9:
                        self.turn_pending = False
                        out.append(Decision(DecisionKind.END_OF_TURN, obs.t, confidence=1.0 - obs.vad,
                                            reason=f"silence {silence:.2f}s", silence=silence))
            return out
        if voiced:
            self.run = 0
            if self.overlap and not self.decided and not s.allow_overlap and obs.bot_speaking:
                dur = obs.t - self.onset
                if dur >= s.min_interruption_speech and not (self.transcript and is_backchannel_text(self.transcript)):
                    self._interrupt(obs.t, out, f"speech {dur:.2f}s", 0.7)
                elif dur >= self.next_check:
                    self.next_check = dur + RECHECK
                    out.append(Decision(DecisionKind.TRANSCRIBE_OVERLAP, obs.t, onset=self.onset))
        else:
            self.run += 1
            if self.run * CHUNK_SECONDS >= HANGOVER - 1e-9:
                self._end(obs, out)
        return out

    def _start(self, obs: Observation, out: list[Decision]) -> None:
        self.in_speech = True
        self.onset = obs.t - self.run * CHUNK_SECONDS
        self.run = 0
        self.overlap = obs.bot_speaking
        self.decided = False
        self.transcript = ""
        self.next_check = self.settings.interruption_check_after
        if self.turn_pending and not self.overlap:
            out.append(Decision(DecisionKind.HOLD, obs.t, confidence=obs.vad, onset=self.onset,
                                reason=f"pause {self.onset - self.last_end:.2f}s"))
        out.append(Decision(DecisionKind.SPEECH_START, obs.t, confidence=obs.vad, onset=self.onset))

    def _end(self, obs: Observation, out: list[Decision]) -> None:
        self.in_speech = False
        self.last_end = obs.t - self.run * CHUNK_SECONDS
        self.run = 0
        out.append(Decision(DecisionKind.SPEECH_END, obs.t, onset=self.onset))
        if self.overlap and not self.decided:
            self.decided = True
            if obs.bot_speaking or self.last_end - self.onset < self.settings.min_interruption_speech:
                out.append(Decision(DecisionKind.BACKCHANNEL, obs.t, confidence=0.6, onset=self.onset,
                                    reason=self.transcript or "short overlap"))
                return
        self.turn_pending = True

    def _interrupt(self, t: float, out: list[Decision], reason: str, conf: float) -> None:
        self.decided = True
        out.append(Decision(DecisionKind.INTERRUPT, t, confidence=conf, onset=self.onset, reason=reason))

    def on_words(self, words: WordEvidence) -> list[Decision]:
        return []  # this policy ends turns on silence (or its own model) alone

    def expect_digits(self, n: int) -> None:
        pass  # silence alone ends its turns, however many digits were asked for

    def on_transcript(self, text: str, onset: float, t: float) -> list[Decision]:
        if not self.in_speech or abs(onset - self.onset) > 1e-6 or self.decided or self.settings.allow_overlap:
            return []
        self.transcript = text
        out: list[Decision] = []
        if has_interrupt_word(text):
            self._interrupt(t, out, f"words: {text!r}", 0.9)
        elif len(words_of(text)) >= 3 and not is_backchannel_text(text):
            self._interrupt(t, out, f"words: {text!r}", 0.8)
        return out
