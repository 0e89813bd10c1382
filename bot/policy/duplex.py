"""The duplex policy: turns the duplex model's per-chunk heads into decisions.

- end_of_turn: the caller has had the floor (speech while the bot was silent, or an interruption)
  and p(eot) >= `eot_threshold` (lowered by the model's `eot_decay` as silence grows, unless
  p(hold) >= 0.5) while the bot is silent. Once per caller turn. Fallback: after
  `max_end_of_turn_silence` of caller silence, or `max_hold_silence` while p(hold) >= 0.5.
- hold: once per pause inside a caller turn, when p(hold) >= 0.5 (informational).
- interrupt: p(interrupt) >= `interrupt_threshold` while the bot speaks (never with
  `allow_overlap`); with `backchannel_mode="interrupt"` backchannels stop the bot too. Once per
  overlap; re-armed when the bot stops or the heads have been low for `REARM` seconds.
- backchannel: p(backchannel) >= 0.5 over bot speech that is not an interruption.
- backchannel_opportunity: p(bc_opportunity) >= 0.5 inside a caller pause, once per pause.
- speech_start / speech_end: from Silero VAD (obs.vad) with the settings' hysteresis.

Build the ModelOutput from a row of `models.runtime.DuplexModel.run(...)` with `model_output(row)`;
`DuplexPolicy(*tuned(settings))` applies the thresholds and confirm counts tuned for the shipped
model (models/manifest.json "recommended").
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .base import CHUNK_SECONDS, Decision, DecisionKind, ModelOutput, Observation, PolicySettings
from .completeness import WordEvidence
from .fusion import FusionSettings, Patience, care, patience
from .words import has_stop_word, takes_floor

REARM = 0.3  # seconds of low interrupt/backchannel probability before another overlap decision
# seconds between transcriptions of caller speech over the bot (words mode): Whisper hears a
# "wait" only from about 0.23 s of it, and one transcription of a short overlap takes 40-70 ms on
# two cores, so checking every two chunks brings the words within ~0.1 s of being said; the
# engine skips a periodic check while the call's previous one is still running (Decision.recheck)
RECHECK = 0.064
# a transcript of caller speech over the bot still counts this long after that speech ended: a
# real "stop" is often over before its words come back from ASR (docs/real-speech.md)
LATE_WORDS = 1.0
HOLD_THRESHOLD = 0.5
BACKCHANNEL_THRESHOLD = 0.5
BOT_LEVEL_DECAY = 0.8  # per chunk: the bot's level falls ~0.15 s after it goes quiet (an echo's tail)
BC_OPPORTUNITY_THRESHOLD = 0.5


@dataclass(frozen=True)
class DuplexTuning:
    """Model-specific knobs shipped in models/manifest.json ("recommended"): how many consecutive
    chunks a head must stay above its threshold before the policy acts (1 = at once)."""
    eot_confirm: int = 1
    interrupt_confirm: int = 1
    # the p(eot) threshold falls by this much as the caller's silence grows to max_end_of_turn_silence
    # (only while the model does not read the pause as a hold): a likely end the model is not quite
    # sure of is taken after a short wait instead of the full fallback
    eot_decay: float = 0.0

    @classmethod
    def from_manifest(cls, recommended: dict) -> "DuplexTuning":
        return cls(int(recommended.get("eot_confirm", 1)), int(recommended.get("interrupt_confirm", 1)),
                   float(recommended.get("eot_decay", 0.0)))


def tuned(settings: PolicySettings = PolicySettings(),
          model_path: str | Path | None = None) -> tuple[PolicySettings, DuplexTuning]:
    """`settings` with the eot/interrupt thresholds tuned for the shipped model (models/manifest.json),
    and the model's confirm counts: `DuplexPolicy(*tuned(settings))`."""
    from models.runtime import recommended
    rec = recommended(model_path)
    s = replace(settings, eot_threshold=float(rec.get("eot_threshold", settings.eot_threshold)),
                interrupt_threshold=float(rec.get("interrupt_threshold", settings.interrupt_threshold)))
    return s, DuplexTuning.from_manifest(rec)


def model_output(row: Sequence[float]) -> ModelOutput:
    """A row of the duplex model's output (heads eot, hold, interrupt, backchannel, bc_opportunity,
    speech) as the policy's ModelOutput."""
    if len(row) < 5:
        raise ValueError(f"duplex model row needs at least 5 heads, got {len(row)}")
    return ModelOutput(eot=float(row[0]), hold=float(row[1]), interrupt=float(row[2]),
                       backchannel=float(row[3]), bc_opportunity=float(row[4]))


class DuplexPolicy:
    name = "duplex"
    needs_model = True

    def __init__(self, settings: PolicySettings = PolicySettings(), tuning: DuplexTuning = DuplexTuning(),
                 fusion: FusionSettings | None = None):
        self.settings = settings
        self.tuning = tuning
        self.fusion = fusion  # None: the model's heads and its silence fallback only (no words)
        # caller speech over the bot at or above this share of the bot's level is the caller's own
        self._echo_ratio = 10 ** (-fusion.echo_margin_db / 20) if fusion is not None else 0.0
        self.missing_model = 0  # observations that arrived without model heads (counted, skipped)
        self.reset()

    def reset(self) -> None:
        self.in_speech = False
        self.run = 0
        self.onset = 0.0
        self.last_end = 0.0
        self.floor = False  # the caller holds the floor: an end of turn is expected
        self.paused_decided = False  # hold / bc opportunity already said for this pause
        self.bc_opp_decided = False
        self.overlap_decided = False  # interrupt already decided for this overlap
        self.bc_decided = False
        self.low_run = 0.0
        self.eot_run = 0  # consecutive chunks with p(eot) over threshold
        self.ended_onset = -1.0  # onset of the speech segment the last end of turn closed
        self.ended_at = -1e9  # when the last end of turn was decided
        self.int_run = 0
        self.pause_t = -1.0  # when the current pause was declared (its speech_end decision)
        self.words: WordEvidence | None = None  # what the words say about the current pause
        self.digits_expected = 0  # digits the bot asked for (expect_digits), until the turn ends
        self.turn_speech = 0.0  # seconds of caller speech in the turn so far (how many digits it can hold)
        self.words_pending = False  # the current pause is being transcribed
        self.last_model: ModelOutput | None = None
        self.overlap_text = ""  # words heard so far in the caller's speech over the bot
        self.overlap_check = 0.0  # overlap duration at which to transcribe it next
        self.bot_speaking = False
        self.bot_level = 0.0  # the bot's recent level (RMS, decaying peak): what an echo would follow
        # start of the caller's own speech in this segment: the first chunk no more than
        # `echo_margin_db` below the bot's level (-1: none yet; before it, it is the bot's echo)
        self.heard_from = -1.0
        self.heard_chunks = 0  # chunks of this segment loud enough to be the caller, not an echo

    def update_settings(self, settings: PolicySettings) -> None:
        self.settings = settings

    def on_transcript(self, text: str, onset: float, t: float) -> list[Decision]:
        """Words of the caller's speech over the bot (words mode): "wait", "stop", "hold on", "sorry"
        stop the bot even when the model, unsure of an unfamiliar voice, does not, and so do any
        words that are not a backchannel (`FusionSettings.words_take_floor`): the model's interrupt
        head fires for 0-10 % of real "stop"s, and tiny.en hears a real "stop" as "step", "stone" or
        "off" as often as "stop" (docs/real-speech.md). "Yeah", "mm-hmm", "you", "no" never do."""
        if self.fusion is None or abs(onset - self.heard_from) > 1e-6:
            return []
        if not self.in_speech and t - self.last_end > LATE_WORDS:
            return []  # stale: that speech ended a while ago
        self.overlap_text = text
        out: list[Decision] = []
        if not self.bot_speaking or self.overlap_decided or self.settings.allow_overlap:
            return out
        if has_stop_word(text):
            self._stop(t, 0.9, f"words \u201c{text}\u201d", out)
        elif self.fusion.words_take_floor and takes_floor(text) and self._heard_for(self.fusion.floor_speech):
            self._stop(t, 0.8, f"words \u201c{text}\u201d: not a backchannel", out)
        return out

    def expect_digits(self, n: int) -> None:
        self.digits_expected = max(0, int(n))

    def on_words(self, words: WordEvidence) -> list[Decision]:
        """The transcript of the caller's turn up to a pause: kept if that pause is still going on,
        and the turn ends at once if the silence already exceeds the fused patience."""
        if self.fusion is None or self.in_speech or abs(words.end - self.pause_t) > 1e-6:
            return []  # stale: the caller spoke again since
        if self.digits_expected and not words.digits_expected:
            said = int(self.turn_speech / self.fusion.min_digit_seconds + 1e-9)  # what the caller had time for
            words = replace(words, digits_expected=self.digits_expected, digit_count=min(words.digit_count, said),
                            digits_capped=words.digit_count > said)
        self.words, self.words_pending = words, False
        out: list[Decision] = []
        if self.floor and self.last_model is not None:
            self._maybe_end(max(words.t, self.pause_t), self.last_model, out)
        return out

    def step(self, obs: Observation) -> list[Decision]:
        out: list[Decision] = []
        self.bot_speaking = obs.bot_speaking
        self.bot_level = max(obs.bot_rms, self.bot_level * BOT_LEVEL_DECAY)
        self._vad(obs, out)
        loud = self.fusion is not None and obs.rms >= max(self.bot_level, 1e-4) * self._echo_ratio
        if self.in_speech and loud:
            self.heard_chunks += 1
        if self.in_speech and self.heard_from < 0 and loud:
            # loud from the start of the segment, or from this chunk on (an echo, then the caller)
            fresh = obs.t - self.onset <= self.settings.min_speech + 2 * CHUNK_SECONDS
            self.heard_from = self.onset if fresh else obs.t - CHUNK_SECONDS
            self.overlap_check = self.settings.interruption_check_after
        m = obs.model
        if m is None:
            self.missing_model += 1
            return out
        if self.in_speech and not obs.bot_speaking and self.onset != self.ended_onset:
            self.floor = True  # caller speech that outlasts the bot's audio is a turn
        if obs.bot_speaking:
            self._overlap(obs, m, out)
        else:
            self.overlap_decided = self.bc_decided = False
            self.low_run = 0.0
            self.int_run = 0
            self.last_model = m
            threshold = self._threshold(obs.t, m)
            self.eot_run = self.eot_run + 1 if m.eot >= threshold else 0
            if self.floor and not self._maybe_end(obs.t, m, out):
                if not self.in_speech:
                    if not self.paused_decided and m.hold >= HOLD_THRESHOLD:
                        self.paused_decided = True
                        out.append(Decision(DecisionKind.HOLD, obs.t, confidence=m.hold,
                                            reason=f"p(hold)={m.hold:.2f}"))
                    if not self.bc_opp_decided and m.bc_opportunity >= BC_OPPORTUNITY_THRESHOLD:
                        self.bc_opp_decided = True
                        out.append(Decision(DecisionKind.BACKCHANNEL_OPPORTUNITY, obs.t, confidence=m.bc_opportunity))
        return out

    def _threshold(self, t: float, m: ModelOutput) -> float:
        s = self.settings
        silence = t - self.last_end if not self.in_speech else 0.0
        threshold = s.eot_threshold
        if self.tuning.eot_decay > 0 and silence > 0 and m.hold < HOLD_THRESHOLD:
            threshold -= self.tuning.eot_decay * min(1.0, silence / max(s.max_end_of_turn_silence, 1e-3))
        return threshold

    def _maybe_end(self, t: float, m: ModelOutput, out: list[Decision]) -> bool:
        """End the caller's turn if this pause has lasted its patience (or the model is sure while
        the caller still speaks). Returns whether it did."""
        s = self.settings
        model_end = self.eot_run >= self.tuning.eot_confirm
        if self.in_speech:  # a model may call the turn before the VAD has closed the segment
            if not model_end or (self.fusion is not None and m.eot < self.fusion.sure_eot):
                return False  # with words to come at the pause, only a sure model goes first
            p = Patience(0.0, f"p(eot)={m.eot:.2f}", "model")
        else:
            held = m.hold >= HOLD_THRESHOLD  # the model reads this pause as the caller going on
            # the model's own fallback: a caller silent this long has finished anyway (a little
            # longer while the model is sure this is only a pause)
            fallback = max(s.max_hold_silence, s.max_end_of_turn_silence) if held else s.max_end_of_turn_silence
            if self.fusion is None:
                p = Patience(0.0 if model_end else fallback,
                             f"p(eot)={m.eot:.2f}" if model_end else f"silence fallback (p(eot)={m.eot:.2f})",
                             "model" if model_end else "fallback")
            else:
                p = patience(self.words, self.words_pending, m.eot, m.hold, model_end, fallback, self.fusion,
                             care(s.max_end_of_turn_silence))
            silence = t - self.last_end
            if silence < p.silence - 1e-9:
                return False
        self.floor = False
        self.eot_run = 0
        self.digits_expected, self.turn_speech = 0, 0.0  # asked for this turn only
        self.ended_onset = self.onset  # only a new speech segment re-opens the turn
        self.ended_at = t
        conf = m.eot if p.source != "words" or self.words is None else max(m.eot, self.words.complete)
        out.append(Decision(DecisionKind.END_OF_TURN, t, confidence=conf, reason=p.reason, onset=self.onset,
                            silence=max(0.0, t - self.last_end) if not self.in_speech else 0.0))
        return True

    def _overlap(self, obs: Observation, m: ModelOutput, out: list[Decision]) -> None:
        s = self.settings
        if self.overlap_decided or self.bc_decided:  # re-arm after the heads have been low a while
            quiet = m.interrupt < s.interrupt_threshold * 0.5 and m.backchannel < BACKCHANNEL_THRESHOLD * 0.5
            self.low_run = self.low_run + CHUNK_SECONDS if quiet else 0.0
            if self.low_run >= REARM - 1e-9:
                self.overlap_decided = self.bc_decided = False
        self.eot_run = 0
        self.int_run = self.int_run + 1 if m.interrupt >= s.interrupt_threshold else 0
        if self.overlap_decided:
            return
        stop = self.int_run >= self.tuning.interrupt_confirm
        if not stop and s.backchannel_mode == "interrupt" and m.backchannel >= BACKCHANNEL_THRESHOLD:
            stop = True
        if stop and not s.allow_overlap:
            if not self.in_speech:
                # the model hears the caller over the bot where the VAD hears no one (a reader
                # Silero scores 0.2-0.6 in some chunk phases): the words of the last pause are not
                # what was just said, and the pause starts now. Kept, they ended the turn again
                # the moment the bot fell silent, and the bot spoke and was stopped every 0.1-0.2 s
                self.last_end, self.words, self.words_pending = obs.t, None, False
            self._stop(obs.t, max(m.interrupt, m.backchannel), f"p(interrupt)={m.interrupt:.2f}", out)
        elif not self.bc_decided and m.backchannel >= BACKCHANNEL_THRESHOLD:
            self.bc_decided = True  # a backchannel so far; it may still turn into an interruption
            out.append(Decision(DecisionKind.BACKCHANNEL, obs.t, confidence=m.backchannel, onset=self.onset,
                                reason=f"p(backchannel)={m.backchannel:.2f}"))
        fs = self.fusion
        if not self.overlap_decided and fs is not None and self.in_speech and not s.allow_overlap:
            went_on = self.onset - self.ended_at
            # the onset is dated back to the segment's first voiced chunk: speech the VAD had not yet
            # confirmed when the turn was taken starts up to its confirmation time before the end
            early = s.min_speech + CHUNK_SECONDS
            if -early - 1e-9 <= went_on <= fs.resume_window and self._heard_for(fs.resume_speech) \
                    and m.backchannel < BACKCHANNEL_THRESHOLD:
                # the caller speaks on into the bot's first words: the turn was taken in a pause
                when = f"{went_on:.2f} s after" if went_on >= 0 else f"{-went_on:.2f} s before"
                self._stop(obs.t, 0.9, f"the caller went on {when} the end of turn", out)
                return
            self._words_backstop(obs, out)

    def _heard_for(self, seconds: float) -> bool:
        """Whether the caller's own speech (not the bot's echo) in this segment has lasted `seconds`."""
        return self.heard_chunks * CHUNK_SECONDS >= seconds - 1e-9

    def _stop(self, t: float, confidence: float, reason: str, out: list[Decision]) -> None:
        self.overlap_decided = True
        self.floor = True  # the caller takes the floor
        out.append(Decision(DecisionKind.INTERRUPT, t, confidence=confidence, reason=reason, onset=self.onset))

    def _words_backstop(self, obs: Observation, out: list[Decision]) -> None:
        """Caller speech over the bot that the model lets pass is transcribed every RECHECK from
        `interruption_check_after` on; `on_transcript` stops the bot on an interruption word."""
        if self.heard_from < 0:
            return  # only the bot's echo so far: nothing of the caller's to transcribe
        dur = obs.t - self.heard_from
        if dur >= self.overlap_check - 1e-9:
            self.overlap_check = dur + RECHECK
            out.append(Decision(DecisionKind.TRANSCRIBE_OVERLAP, obs.t, onset=self.heard_from, recheck=True))

    def _vad(self, obs: Observation, out: list[Decision]) -> None:
        s = self.settings
        voiced = obs.vad >= (s.vad_off_threshold if self.in_speech else s.vad_threshold)
        if voiced != self.in_speech:
            self.run += 1
            need = s.min_speech if voiced else 2 * CHUNK_SECONDS
            if self.run * CHUNK_SECONDS >= need - 1e-9:
                t0 = obs.t - self.run * CHUNK_SECONDS
                self.run = 0
                self.in_speech = voiced
                self.words, self.words_pending = None, False
                self.overlap_text, self.overlap_check = "", s.interruption_check_after
                if voiced:
                    self.heard_from, self.heard_chunks = -1.0, 0
                    self.onset = t0
                    if not obs.bot_speaking:
                        self.floor = True
                    self.paused_decided = False
                    self.bc_opp_decided = False
                    out.append(Decision(DecisionKind.SPEECH_START, obs.t, confidence=obs.vad, onset=t0))
                else:
                    if self.floor:
                        self.turn_speech += t0 - self.onset
                    self.last_end = t0
                    self.pause_t = obs.t
                    self.words_pending = self.fusion is not None and not obs.bot_speaking
                    out.append(Decision(DecisionKind.SPEECH_END, obs.t, onset=self.onset))
                    if self.fusion is not None and obs.bot_speaking and not self.overlap_decided \
                            and not s.allow_overlap and self.heard_from >= 0:
                        # the whole of a short overlap the model let pass, once: a word like
                        # "stop" may be over before any periodic check heard all of it
                        out.append(Decision(DecisionKind.TRANSCRIBE_OVERLAP, obs.t, onset=self.heard_from))
        else:
            self.run = 0
