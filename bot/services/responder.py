"""Responders: what the bot says. A streaming interface so speech can start on the first words.

- `ScriptedAgent`: the offline default, defined in a YAML file (greeting, FAQ entries, fallbacks,
  hand-off), shipped in `bot/agent/default.yaml`.
- `OpenAIChatResponder`: any OpenAI-compatible streaming chat endpoint (vLLM, llama.cpp server,
  Ollama, OpenAI) given a base URL, model and key.
Supervisor whispers arrive as `instructions` and are never shown to the caller as text; the
scripted agent, having no reasoning, speaks a whispered instruction as its next answer.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Protocol

import yaml

DEFAULT_AGENT = Path(__file__).resolve().parent.parent / "agent" / "default.yaml"


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message says which and why."""


@dataclass(frozen=True)
class Turn:
    speaker: str  # "caller" | "bot"
    text: str


@dataclass(frozen=True)
class ResponderAction:
    name: str  # "transfer" | "hangup"
    target: str = ""


@dataclass(frozen=True)
class ResponseChunk:
    text: str = ""
    action: ResponderAction | None = None


class Responder(Protocol):
    def greeting(self) -> str: ...

    def resume_prefix(self) -> str: ...

    def respond(self, history: list[Turn], instructions: list[str]) -> AsyncIterator[ResponseChunk]: ...

    def on_dtmf(self, digits: str) -> list[ResponseChunk]: ...

    def on_secure_input(self, digits: int) -> list[ResponseChunk]: ...


@dataclass(frozen=True)
class FaqEntry:
    id: str
    keywords: frozenset[str]
    answer: str
    action: str = ""  # "" | "secure_input" | "transfer" | "hangup"


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
    notice_text: str = ""  # said before the greeting (e.g. recording consent); tenants may let it play over the caller
    secure_done_say: str = "Thank you, I've got your details."

    def prompts(self) -> list[str]:
        """Every fixed line the agent can say (for synthesising ahead of time)."""
        lines = [self.notice_text, self.greeting, *(e.answer for e in self.faq), *self.fallbacks, self.handoff_say, self.goodbye_say,
                 self.secure_done_say]
        return [x for x in lines if x]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_AGENT) -> "AgentScript":
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except OSError as e:
            raise ConfigError(f"agent file {p}: cannot read ({e.strerror})") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"agent file {p}: not valid YAML ({e})") from None
        return cls.from_dict(data, str(p))

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
            faq.append(FaqEntry(str(e.get("id", i)), words(e.get("keywords"), f"faq[{i}].keywords"),
                                text("answer", e), action))
        fallbacks = data.get("fallbacks") or []
        if not fallbacks or not all(isinstance(f, str) and f.strip() for f in fallbacks):
            raise ConfigError(f"{where}: 'fallbacks' must be a non-empty list of strings")
        handoff = data.get("handoff") or {}
        goodbye = data.get("goodbye") or {}
        if not isinstance(handoff, dict) or not isinstance(goodbye, dict):
            raise ConfigError(f"{where}: 'handoff' and 'goodbye' must be mappings")
        return cls(name=text("name"), greeting=text("greeting"), faq=tuple(faq),
                   fallbacks=tuple(f.strip() for f in fallbacks),
                   handoff_keywords=words(handoff.get("keywords"), "handoff.keywords"),
                   handoff_say=str(handoff.get("say", "")), handoff_target=str(handoff.get("target", "")),
                   handoff_dtmf=str(handoff.get("dtmf", "")),
                   goodbye_keywords=words(goodbye.get("keywords"), "goodbye.keywords"),
                   goodbye_say=str(goodbye.get("say", "")),
                   resume=str(data.get("resume_prefix", "As I was saying,")),
                   notice_text=str(data.get("notice", "") or "").strip(),
                   secure_done_say=str(data.get("secure_input_done", "Thank you, I've got your details.")))


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


class ScriptedAgent:
    def __init__(self, script: AgentScript):
        self.script = script
        self._fallback = 0

    def greeting(self) -> str:
        return self.script.greeting

    def notice(self) -> str:
        return self.script.notice_text

    def resume_prefix(self) -> str:
        return self.script.resume

    def answer(self, text: str) -> tuple[str, ResponderAction | None]:
        s = self.script
        if s.handoff_keywords and _has_phrase(text, s.handoff_keywords):
            return s.handoff_say, ResponderAction("transfer", s.handoff_target)
        toks = _tokens(text)
        best, score = None, 0
        for e in s.faq:
            n = sum(1 for t in toks if t in e.keywords)
            if n > score:
                best, score = e, n
        if best is not None:
            return best.answer, (ResponderAction(best.action) if best.action else None)
        if s.goodbye_keywords and _has_phrase(text, s.goodbye_keywords):
            return s.goodbye_say, ResponderAction("hangup")
        reply = s.fallbacks[self._fallback % len(s.fallbacks)]
        self._fallback += 1
        return reply, None

    async def respond(self, history: list[Turn], instructions: list[str]) -> AsyncIterator[ResponseChunk]:
        last = next((t.text for t in reversed(history) if t.speaker == "caller"), "")
        if instructions:
            yield ResponseChunk(" ".join(i.strip() for i in instructions))
            return
        reply, action = self.answer(last)
        yield ResponseChunk(reply)
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
    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class OpenAIChatResponder:
    """Streams from `POST {base_url}/chat/completions` with `stream: true` (server-sent events)."""

    def __init__(self, settings: ChatSettings, script: AgentScript):
        if not settings.base_url or not settings.model:
            raise ConfigError("the chat responder needs a base URL and a model name")
        self.settings = settings
        self.script = script
        knowledge = "\n".join(f"- {e.answer}" for e in script.faq)
        self._system = f"{settings.system_prompt}\nYou work for {script.name}. Facts you may use:\n{knowledge}"
        self._session = None

    def greeting(self) -> str:
        return self.script.greeting

    def notice(self) -> str:
        return self.script.notice_text

    def resume_prefix(self) -> str:
        return self.script.resume

    def on_dtmf(self, digits: str) -> list[ResponseChunk]:
        return ScriptedAgent(self.script).on_dtmf(digits)

    def on_secure_input(self, digits: int) -> list[ResponseChunk]:
        return ScriptedAgent(self.script).on_secure_input(digits)

    def _messages(self, history: list[Turn], instructions: list[str]) -> list[dict]:
        msgs = [{"role": "system", "content": self._system}]
        for t in history[-20:]:
            msgs.append({"role": "user" if t.speaker == "caller" else "assistant", "content": t.text})
        for i in instructions:
            msgs.append({"role": "system", "content": f"Supervisor instruction for your next answer: {i}"})
        return msgs

    async def respond(self, history: list[Turn], instructions: list[str]) -> AsyncIterator[ResponseChunk]:
        import aiohttp

        s = self.settings
        url = s.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if s.api_key:
            headers["Authorization"] = f"Bearer {s.api_key}"
        body = {"model": s.model, "stream": True, "temperature": s.temperature, "max_tokens": s.max_tokens,
                "messages": self._messages(history, instructions)}
        timeout = aiohttp.ClientTimeout(total=s.timeout, sock_connect=min(5.0, s.timeout))
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.post(url, json=body, headers=headers) as resp:
                    if resp.status != 200:
                        detail = (await resp.text())[:200]
                        raise ResponderError(f"chat endpoint {url} answered {resp.status}: {detail}",
                                             retryable=resp.status >= 500 or resp.status == 429)
                    async for raw in resp.content:
                        line = raw.decode("utf-8", "replace").strip()
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        try:
                            delta = json.loads(data)["choices"][0].get("delta", {}).get("content") or ""
                        except (ValueError, KeyError, IndexError, TypeError):
                            continue  # a malformed event is skipped, the stream goes on
                        if delta:
                            yield ResponseChunk(delta)
        except aiohttp.ClientError as e:
            raise ResponderError(f"chat endpoint {url} unreachable: {e}", retryable=True) from None


@dataclass(frozen=True)
class ResponderSettings:
    agent_path: str = str(DEFAULT_AGENT)
    chat: ChatSettings = field(default_factory=ChatSettings)


def make_responder(settings: ResponderSettings) -> Responder:
    script = AgentScript.load(settings.agent_path)
    if settings.chat.base_url:
        return OpenAIChatResponder(settings.chat, script)
    return ScriptedAgent(script)
