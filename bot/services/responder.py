"""Responders: what the bot says. A streaming interface so speech can start on the first words.

- `ScriptedAgent`: the offline default, defined in a YAML file (greeting, FAQ entries, fallbacks,
  hand-off), shipped in `bot/agent/default.yaml`.
- `bot.brain.chat.OpenAIChatResponder`: any OpenAI-compatible streaming chat endpoint (vLLM,
  llama.cpp server, Ollama, OpenAI) given a base URL, model and key (`ChatSettings` here).
Supervisor whispers arrive as `instructions` and are never spoken as such. A language model gets
them on the system side of its request, as an instruction. The scripted agent has no reasoning:
`review_whisper` tells the console, before anything reaches the call, whether a whisper steers it
(to one of its FAQ answers, or to a permitted phrase its YAML declares under `whisper_phrases`)
or is refused, and why. A stop request ("wait", "stop", "hold on" alone) gets the agent's short
`stop_requests.say` ("Sure.") or silence, never a fallback; whispers wait for the next real answer.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable, Protocol

import yaml

from ..config import ConfigError
from ..policy.completeness import MAX_EXPECTED_DIGITS

DEFAULT_AGENT = Path(__file__).resolve().parent.parent / "agent" / "default.yaml"


@dataclass(frozen=True)
class Turn:
    speaker: str  # "caller" | "bot"
    text: str


@dataclass(frozen=True)
class ResponderAction:
    name: str  # "transfer" | "hangup" | "secure_input" | "expect_digits" (target: the count)
    target: str = ""


@dataclass(frozen=True)
class ToolNote:
    """A step of a tool call, for the trace (the session turns it into a `ToolStep` event).
    phase: "call" (the model asked), "result" (the tool answered, `ok` False on failure),
    "refused" (not run: unsafe on a partial transcript, not allowed, blocked input), "filler"
    (a slow tool: the bot says something meanwhile)."""
    phase: str
    name: str
    arguments: str = ""  # JSON as the model wrote it
    result: str = ""  # the tool's answer (or the reason it did not run)
    ok: bool = True
    elapsed: float = 0.0  # seconds the tool took


@dataclass(frozen=True)
class ResponseChunk:
    text: str = ""
    action: ResponderAction | None = None
    note: ToolNote | None = None


@dataclass(frozen=True)
class Revision:
    """The caller cut the bot's answer to correct it: what they heard of it, what they did not,
    and what they said. The next answer continues from there instead of starting over."""
    heard: str
    unheard: str
    correction: str


@dataclass
class RespondContext:
    """What a responder knows about the request it answers.

    `committed` is set when the end of turn is decided on this transcript. Until then the request
    is a speculation the session may abandon at any time (the caller went on): a responder may
    stream text, but must not run a tool unless the tool is declared safe on partial transcripts,
    and must not change per-call state (held whispers, counters) before `committed` is set."""
    committed: asyncio.Event = field(default_factory=asyncio.Event)
    revision: Revision | None = None
    _hooks: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @classmethod
    def final(cls, revision: Revision | None = None) -> "RespondContext":
        ctx = cls(revision=revision)
        ctx.commit()
        return ctx

    def commit(self) -> None:
        """The end of turn came on this transcript: the answer is for real (called by the session)."""
        if self.committed.is_set():
            return
        self.committed.set()
        hooks, self._hooks = self._hooks, []
        for fn in hooks:
            fn()

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` when the request is committed (now if it already is; never if it is abandoned):
        the way to change per-call state without holding up the stream."""
        if self.committed.is_set():
            fn()
        else:
            self._hooks.append(fn)

    @property
    def speculative(self) -> bool:
        return not self.committed.is_set()


class Responder(Protocol):
    def greeting(self) -> str: ...

    def notice(self) -> str: ...

    def resume_prefix(self) -> str: ...

    def not_heard(self) -> str:
        """What to say when the caller spoke and the recogniser heard no words ("" = stay silent)."""

    def respond(self, history: list[Turn], instructions: list[str],
                ctx: RespondContext | None = None) -> AsyncIterator[ResponseChunk]: ...

    def on_dtmf(self, digits: str) -> list[ResponseChunk]: ...

    def on_secure_input(self, digits: int) -> list[ResponseChunk]: ...

    def review_whisper(self, text: str) -> "WhisperReview": ...


def read_agent_file(path: str | Path) -> object:
    """An agent file's YAML, read once for everything it declares (the script, its tools, its
    intents); ConfigError when it cannot be read or parsed."""
    p = Path(path)
    try:
        return yaml.safe_load(p.read_text())
    except OSError as e:
        raise ConfigError(f"agent file {p}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"agent file {p}: not valid YAML ({e})") from None


@dataclass(frozen=True)
class FaqEntry:
    id: str
    keywords: frozenset[str]
    answer: str
    action: str = ""  # "" | "secure_input" | "transfer" | "hangup"
    # the answer asks for a number this many digits long ("your 8-digit order number"): the caller's
    # next turn ends once that many are heard (bot/policy/fusion.py), 0 = not a number
    expect_digits: int = 0


def expected_digits(value: object, where: str) -> int:
    """A declared digit count: a whole number from 1 to MAX_EXPECTED_DIGITS (ConfigError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPECTED_DIGITS:
        raise ConfigError(f"{where} must be a whole number of digits from 1 to {MAX_EXPECTED_DIGITS}, got {value!r}")
    return value


@dataclass(frozen=True)
class WhisperPhrase:
    """A line a supervisor may whisper the offline agent into saying (`whisper_phrases` in YAML)."""
    id: str
    keywords: frozenset[str]
    say: str


@dataclass(frozen=True)
class WhisperReview:
    """What a responder will do with a supervisor's whisper, decided before it reaches the call.
    accepted False: refused, nothing is sent; `effect` says why (the console shows it). `say` is
    the offline agent's own line the whisper chose (never the whisper's words)."""
    accepted: bool
    effect: str
    say: str = ""


STOP_FILLERS = frozenset({"please", "sorry", "oh", "um", "uh", "er", "hey", "ok", "okay", "no", "just", "hmm",
                          "a", "it", "there", "sec", "right", "now"})


@dataclass(frozen=True)
class AgentScript:
    name: str
    greeting: str
    faq: tuple[FaqEntry, ...]
    fallbacks: tuple[str, ...]
    handoff_keywords: frozenset[str] = frozenset()
    handoff_say: str = ""
    handoff_target: str = ""
    handoff_dtmf: str = ""
    goodbye_keywords: frozenset[str] = frozenset()
    goodbye_say: str = ""
    resume: str = "As I was saying,"
    not_heard_say: str = "Sorry, I didn't catch that. Could you say it again?"
    notice_text: str = ""  # said before the greeting (e.g. recording consent); tenants may let it play over the caller
    secure_done_say: str = "Thank you, I've got your details."
    whisper_phrases: tuple[WhisperPhrase, ...] = ()
    stop_phrases: frozenset[str] = frozenset()
    stop_say: str = "Sure."  # "" : a stop request gets silence

    def prompts(self) -> list[str]:
        """Every fixed line the agent can say (for synthesising ahead of time)."""
        lines = [self.notice_text, self.greeting, *(e.answer for e in self.faq), *self.fallbacks, self.handoff_say,
                 self.goodbye_say,
                 self.secure_done_say, *(w.say for w in self.whisper_phrases), self.stop_say, self.not_heard_say]
        return [x for x in lines if x]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_AGENT) -> "AgentScript":
        return cls.from_dict(read_agent_file(path), str(path))

    @classmethod
    def from_dict(cls, data: object, where: str = "agent") -> "AgentScript":
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping at the top level")

        def text(key: str, d: dict = data, required: bool = True) -> str:
            v = d.get(key, "")
            if not isinstance(v, str) or (required and not v.strip()):
                raise ConfigError(f"{where}: '{key}' must be a non-empty string")
            return v.strip()

        def words(v: object, key: str) -> frozenset[str]:
            if v is None:
                return frozenset()
            if not isinstance(v, list) or not all(isinstance(w, str) for w in v):
                raise ConfigError(f"{where}: '{key}' must be a list of strings")
            return frozenset(w.lower().strip() for w in v if w.strip())

        faq = []
        for i, e in enumerate(data.get("faq") or []):
            if not isinstance(e, dict):
                raise ConfigError(f"{where}: faq[{i}] must be a mapping with keywords and answer")
            action = str(e.get("action", "") or "")
            if action not in ("", "secure_input", "transfer", "hangup"):
                raise ConfigError(f"{where}: faq[{i}].action must be secure_input, transfer or hangup, got {action!r}")
            n = e.get("expect_digits")
            n = 0 if n is None else expected_digits(n, f"{where}: faq[{i}].expect_digits")
            if n and action:
                raise ConfigError(f"{where}: faq[{i}] has both an action and expect_digits; give it one")
            faq.append(FaqEntry(str(e.get("id", i)), words(e.get("keywords"), f"faq[{i}].keywords"),
                                text("answer", e), action, n))
        fallbacks = data.get("fallbacks") or []
        if not fallbacks or not all(isinstance(f, str) and f.strip() for f in fallbacks):
            raise ConfigError(f"{where}: 'fallbacks' must be a non-empty list of strings")
        handoff = data.get("handoff") or {}
        goodbye = data.get("goodbye") or {}
        stop = data.get("stop_requests") or {}
        if not isinstance(handoff, dict) or not isinstance(goodbye, dict) or not isinstance(stop, dict):
            raise ConfigError(f"{where}: 'handoff', 'goodbye' and 'stop_requests' must be mappings")
        phrases = []
        for i, w in enumerate(data.get("whisper_phrases") or []):
            if not isinstance(w, dict):
                raise ConfigError(f"{where}: whisper_phrases[{i}] must be a mapping with keywords and say")
            kw = words(w.get("keywords"), f"whisper_phrases[{i}].keywords")
            if not kw:
                raise ConfigError(f"{where}: whisper_phrases[{i}].keywords must not be empty")
            phrases.append(WhisperPhrase(str(w.get("id", i)), kw, text("say", w)))
        stop_say = stop.get("say", "Sure.")
        if not isinstance(stop_say, str):
            raise ConfigError(f"{where}: 'stop_requests.say' must be a string (\"\" for silence)")
        return cls(name=text("name"), greeting=text("greeting"), faq=tuple(faq),
                   fallbacks=tuple(f.strip() for f in fallbacks),
                   handoff_keywords=words(handoff.get("keywords"), "handoff.keywords"),
                   handoff_say=str(handoff.get("say", "")), handoff_target=str(handoff.get("target", "")),
                   handoff_dtmf=str(handoff.get("dtmf", "")),
                   goodbye_keywords=words(goodbye.get("keywords"), "goodbye.keywords"),
                   goodbye_say=str(goodbye.get("say", "")),
                   resume=str(data.get("resume_prefix", "As I was saying,")),
                   not_heard_say=str(data.get("not_heard", cls.not_heard_say) or "").strip(),
                   notice_text=str(data.get("notice", "") or "").strip(),
                   secure_done_say=str(data.get("secure_input_done", "Thank you, I've got your details.")),
                   whisper_phrases=tuple(phrases),
                   stop_phrases=words(stop.get("phrases"), "stop_requests.phrases"),
                   stop_say=stop_say.strip())


def _tokens(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9']+", text.lower()):
        out.append(w)
        if len(w) > 3 and w.endswith("s"):
            out.append(w[:-1])
    return out


def _has_phrase(text: str, phrases: frozenset[str]) -> bool:
    toks = set(_tokens(text))
    low = " ".join(_tokens(text))
    return any((p in toks) if " " not in p else (p in low) for p in phrases)


def is_stop_request(text: str, phrases: frozenset[str]) -> bool:
    """Only "wait", "stop", "hold on"... (and fillers such as "please", "sorry"): the caller wants
    the bot to stop talking, not an answer. "Wait, what are your hours?" is a question."""
    low = " " + " ".join(re.findall(r"[a-z0-9']+", text.lower())) + " "
    found = False
    for p in sorted(phrases, key=len, reverse=True):
        key = f" {p} "
        while key in low:
            low = low.replace(key, " ", 1)
            found = True
    return found and all(w in STOP_FILLERS for w in low.split())


# instruction words a supervisor uses that say nothing about the topic ("offer the caller ...")
_WHISPER_FILLER = frozenset({"offer", "tell", "say", "mention", "ask", "give", "let", "know", "remind", "explain",
                             "caller", "customer", "them", "they", "him", "her", "their", "the", "a", "an", "to",
                             "about", "please", "that", "our", "we"})


class ScriptLines:
    """The fixed lines every responder takes from its agent file (`self.script`)."""
    script: AgentScript

    def greeting(self) -> str:
        return self.script.greeting

    def notice(self) -> str:
        return self.script.notice_text

    def resume_prefix(self) -> str:
        return self.script.resume

    def not_heard(self) -> str:
        return self.script.not_heard_say


class ScriptedAgent(ScriptLines):
    """The offline agent. One per call (its fallback rotation and held whispers are per call)."""

    def __init__(self, script: AgentScript):
        self.script = script
        self._fallback = 0
        self._held: list[str] = []  # whispers waiting for a real answer (not a stop request)

    def _faq(self, toks: list[str], entries: tuple[FaqEntry, ...]) -> FaqEntry | None:
        best, score = None, 0
        for e in entries:
            n = sum(1 for t in toks if t in e.keywords)
            if n > score:
                best, score = e, n
        return best

    def _match(self, text: str, advance: bool = True) -> tuple[str, ResponderAction | None, bool]:
        """(reply, action, understood): understood False for a fallback (the rotation moves on
        only if `advance`)."""
        s = self.script
        if s.handoff_keywords and _has_phrase(text, s.handoff_keywords):
            return s.handoff_say, ResponderAction("transfer", s.handoff_target), True
        best = self._faq(_tokens(text), s.faq)
        if best is not None:
            if best.expect_digits:
                return best.answer, ResponderAction("expect_digits", str(best.expect_digits)), True
            return best.answer, (ResponderAction(best.action) if best.action else None), True
        if s.goodbye_keywords and _has_phrase(text, s.goodbye_keywords):
            return s.goodbye_say, ResponderAction("hangup"), True
        reply = s.fallbacks[self._fallback % len(s.fallbacks)]
        if advance:
            self._fallback += 1
        return reply, None, False

    def answer(self, text: str) -> tuple[str, ResponderAction | None]:
        reply, action, _ = self._match(text)
        return reply, action

    def review_whisper(self, text: str) -> WhisperReview:
        """Without a language model a whisper can only choose one of the agent's own lines: a
        permitted phrase (`whisper_phrases`), else an FAQ answer that starts no action. Anything
        else is refused: the agent never reads a whisper aloud."""
        s = self.script
        phrase = next((w for w in s.whisper_phrases if _has_phrase(text, w.keywords)), None)
        if phrase is not None:
            return WhisperReview(True, f"the bot adds its line “{phrase.say}” to its next answer", phrase.say)
        toks = [t for t in _tokens(text) if t not in _WHISPER_FILLER]
        entry = self._faq(toks, tuple(e for e in s.faq if not e.action))
        if entry is not None:
            return WhisperReview(True, f"the bot gives its {entry.id} answer next: “{entry.answer}”", entry.answer)
        topics = ", ".join(e.id for e in s.faq if not e.action)
        lines = ", ".join(w.id.replace("_", " ") for w in s.whisper_phrases)
        return WhisperReview(False, "Not sent: this bot runs the offline agent (no language model), which never "
                                    "reads a whisper aloud, and nothing it may say matches this one. Whisper a "
                                    f"topic ({topics})" + (f" or a permitted phrase ({lines})" if lines else "") + ".")

    async def respond(self, history: list[Turn], instructions: list[str],
                      ctx: RespondContext | None = None) -> AsyncIterator[ResponseChunk]:
        """Safe to run speculatively: held whispers and the fallback rotation change only once
        the request is committed (`ctx.on_commit`), so an abandoned speculation leaves no trace."""
        ctx = ctx or RespondContext.final()
        s = self.script
        last = next((t.text for t in reversed(history) if t.speaker == "caller"), "")
        held = [*self._held, *(i for i in instructions if i.strip())]
        if is_stop_request(last, s.stop_phrases):
            ctx.on_commit(lambda: setattr(self, "_held", held))  # whispers wait for a real answer
            if s.stop_say:
                yield ResponseChunk(s.stop_say)
            return
        reply, action, understood = self._match(last, advance=False)
        steer: list[str] = []
        for w in held:
            r = self.review_whisper(w)
            if r.accepted and r.say not in steer and r.say != reply:
                steer.append(r.say)  # a refused whisper (sent around the console) is dropped, never spoken

        def done() -> None:
            self._held = []
            if not understood:
                self._fallback += 1
        ctx.on_commit(done)
        # the supervisor's line first: heard even if the caller cuts the answer short; alone in
        # place of "Sorry, I didn't get that"
        parts = [*steer, reply] if understood or not steer else steer
        yield ResponseChunk(" ".join(parts))
        if action:
            yield ResponseChunk(action=action)

    def on_secure_input(self, digits: int) -> list[ResponseChunk]:
        """Secure entry finished (`digits` typed; the digits themselves never reach the agent)."""
        return [ResponseChunk(self.script.secure_done_say)]

    def on_dtmf(self, digits: str) -> list[ResponseChunk]:
        s = self.script
        if s.handoff_dtmf and digits.endswith(s.handoff_dtmf):
            return [ResponseChunk(s.handoff_say), ResponseChunk(action=ResponderAction("transfer", s.handoff_target))]
        return []


@dataclass(frozen=True)
class ChatSettings:
    base_url: str = ""  # e.g. http://127.0.0.1:8000/v1 ; empty: use the scripted agent
    model: str = ""
    api_key: str = ""
    temperature: float = 0.3
    max_tokens: int = 200
    timeout: float = 20.0
    system_prompt: str = ("You are a friendly phone agent. Answer in one or two short spoken sentences, "
                          "no lists, no markdown.")


class ResponderError(RuntimeError):
    """A responder could not answer (its endpoint failed); `retryable`: a second try may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ResponderSettings:
    agent_path: str = str(DEFAULT_AGENT)
    chat: ChatSettings = field(default_factory=ChatSettings)
