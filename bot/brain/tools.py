"""Tools a language model may call: declared in the agent YAML, run with timeouts and retries.

    tool_hosts: [api.example.com, 127.0.0.1]   # the only hosts a webhook may call (default: none)
    tools:
      - name: order_status                      # [A-Za-z0-9_-], at most 64 characters
        description: Look up the delivery status of an order.
        parameters:                             # a JSON schema object, sent to the model as is
          type: object
          properties: {order_id: {type: string}}
          required: [order_id]
        kind: webhook                           # POSTs the arguments as JSON, the reply body is the result
        url: https://api.example.com/orders/status
        method: POST                            # or GET (arguments as query parameters)
        timeout: 3                              # seconds per attempt (default 5)
        retries: 1                              # extra attempts on a connection error, 5xx or 429 (default 1)
        headers: {X-Api-Key: secret}
        safe_on_partial: true                   # may run before the end of turn is decided (default false)
        confirm: false                          # true: the caller must say yes first (default false)
        filler: "Let me check that."            # said when the tool takes longer than filler_after seconds
        filler_after: 0.6
      - name: cancel_order
        description: Cancel the caller's order.
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        kind: python
        entry: mypackage.orders:cancel          # called with the arguments as keyword arguments;
        confirm: true                           # a sync function runs in a thread, off the event loop

The allow-list is checked at load, and redirects are not followed, so a webhook reaches only
the hosts the operator listed: nothing a caller says can widen it. A tool never raises into the
call: a failure comes back as a result that says it failed, for the model to explain. Why retry
only connection errors, 5xx and 429: those say the request was not served and a second try can
help; a timeout may mean the action was done and is slow to answer, so it is not repeated.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import aiohttp

from ..config import ConfigError
from ..services.responder import read_agent_file
from .safety import Confirmation

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KEYS = frozenset({"name", "description", "parameters", "kind", "url", "method", "timeout", "retries", "headers",
                   "entry", "safe_on_partial", "confirm", "filler", "filler_after"})
_WEBHOOK_ONLY = frozenset({"url", "method", "retries", "headers"})


@dataclass(frozen=True)
class Webhook:
    url: str
    method: str = "POST"
    retries: int = 1
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold a key: kept out of logs


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any] = field(hash=False)  # JSON schema object
    webhook: Webhook | None = None  # kind webhook
    entry: str = ""  # kind python: "module:function"
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    timeout: float = 5.0  # seconds per attempt
    safe_on_partial: bool = False
    confirm: bool = False
    filler: str = "Let me check that."
    filler_after: float = 0.6

    @property
    def kind(self) -> str:
        return "webhook" if self.webhook is not None else "python"

    def openai(self) -> dict[str, Any]:
        """The tool as an OpenAI `tools` entry."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": json.loads(json.dumps(self.parameters))}}


@dataclass(frozen=True)
class ToolSet:
    tools: tuple[ToolSpec, ...] = ()
    hosts: frozenset[str] = frozenset()  # `tool_hosts`

    def __bool__(self) -> bool:
        return bool(self.tools)

    def get(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def openai(self) -> list[dict[str, Any]]:
        return [t.openai() for t in self.tools]


def load_tools(agent_path: str | Path) -> ToolSet:
    """The tools of an agent file (`tools:` and `tool_hosts:`); none when it declares none."""
    return parse_tools(read_agent_file(agent_path), str(agent_path))


def parse_tools(data: object, where: str) -> ToolSet:
    """`tools` and `tool_hosts` of an agent's top-level mapping; ConfigError naming the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    raw_hosts = data.get("tool_hosts") or []
    if not isinstance(raw_hosts, list) or not all(isinstance(h, str) and h.strip() for h in raw_hosts):
        raise ConfigError(f"{where}: 'tool_hosts' must be a list of host names")
    hosts = frozenset(h.strip().lower() for h in raw_hosts)
    raw_tools = data.get("tools") or []
    if not isinstance(raw_tools, list):
        raise ConfigError(f"{where}: 'tools' must be a list of tool declarations")
    tools: list[ToolSpec] = []
    for i, t in enumerate(raw_tools):
        spec = _parse_tool(t, f"{where}: tools[{i}]", hosts)
        if any(s.name == spec.name for s in tools):
            raise ConfigError(f"{where}: tools[{i}].name {spec.name!r} is declared twice")
        tools.append(spec)
    return ToolSet(tuple(tools), hosts)


def _parse_tool(t: object, at: str, hosts: frozenset[str]) -> ToolSpec:
    if not isinstance(t, dict):
        raise ConfigError(f"{at} must be a mapping with name, description, parameters and kind")
    unknown = sorted(str(k) for k in t if k not in _KEYS)
    if unknown:
        raise ConfigError(f"{at}: unknown key(s) {', '.join(unknown)}")
    name = t.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{at}.name must be 1-64 letters, digits, '_' or '-', got {name!r}")
    at = f"{at} ({name})"
    description = t.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ConfigError(f"{at}.description must be a non-empty string")
    params = t.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(params, dict) or params.get("type") != "object":
        raise ConfigError(f"{at}.parameters must be a JSON schema object (a mapping with type: object)")

    def flag(key: str) -> bool:
        v = t.get(key, False)
        if not isinstance(v, bool):
            raise ConfigError(f"{at}.{key} must be true or false")
        return v

    def seconds(key: str, default: float, hi: float) -> float:
        v = t.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= hi:
            raise ConfigError(f"{at}.{key} must be a number of seconds between 0 and {hi:g}")
        return float(v)

    timeout = seconds("timeout", 5.0, 120.0)
    if timeout <= 0:
        raise ConfigError(f"{at}.timeout must be more than 0 seconds")
    filler = t.get("filler", "Let me check that.")
    if not isinstance(filler, str):
        raise ConfigError(f"{at}.filler must be a string (\"\" for none)")
    kind = t.get("kind")
    webhook: Webhook | None = None
    entry, function = "", None
    if kind == "webhook":
        webhook = _parse_webhook(t, at, hosts)
    elif kind == "python":
        extra = sorted(k for k in _WEBHOOK_ONLY if k in t)
        if extra:
            raise ConfigError(f"{at}: {', '.join(extra)} only apply to kind webhook")
        entry = t.get("entry", "")
        if not isinstance(entry, str):
            entry = ""
        function = _resolve(entry, at)
    else:
        raise ConfigError(f"{at}.kind must be webhook or python, got {kind!r}")
    return ToolSpec(name=name, description=description.strip(), parameters=params, webhook=webhook, entry=entry,
                    function=function, timeout=timeout, safe_on_partial=flag("safe_on_partial"),
                    confirm=flag("confirm"), filler=filler.strip(), filler_after=seconds("filler_after", 0.6, 30.0))


def _parse_webhook(t: dict[str, Any], at: str, hosts: frozenset[str]) -> Webhook:
    url = t.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{at}.url must be an http:// or https:// URL, got {url!r}")
    host = parts.hostname.lower()
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{at}.url has a bad port: {url!r}") from None
    if host not in hosts and f"{host}:{port}" not in hosts:
        listed = ", ".join(sorted(hosts)) or "none"
        raise ConfigError(f"{at}.url: host {host!r} is not in tool_hosts (listed: {listed}); add it to "
                          "tool_hosts to let this tool call it")
    method = str(t.get("method", "POST")).upper()
    if method not in ("POST", "GET"):
        raise ConfigError(f"{at}.method must be POST or GET, got {method!r}")
    retries = t.get("retries", 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        raise ConfigError(f"{at}.retries must be a whole number from 0 to 5")
    headers = t.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in headers.items()):
        raise ConfigError(f"{at}.headers must be a mapping of header names to strings")
    return Webhook(url=str(url), method=method, retries=retries, headers=tuple(headers.items()))


def _resolve(entry: str, at: str) -> Callable[..., Any]:
    module_name, _, attr = entry.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{at}.entry must be 'module:function', got {entry!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"{at}.entry: cannot import {module_name!r} ({e})") from None
    fn = module.__dict__.get(attr)
    if not callable(fn):
        raise ConfigError(f"{at}.entry: {module_name!r} has no function {attr!r}")
    return fn


# ---------------------------------------------------------------------------- running

@dataclass(frozen=True)
class RunnerSettings:
    result_cap: int = 2000  # characters of a result the model gets (a long page is cut, not sent whole)
    backoff: float = 0.2  # seconds before the first retry, doubled each time
    max_retry_after: float = 2.0  # a 429's Retry-After is honoured up to this


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    result: str  # what the model gets: the tool's answer, or why it failed or did not run
    elapsed: float = 0.0
    attempts: int = 0
    refused: bool = False  # not run at all (needs the caller's confirmation)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ToolRunner:
    """Runs declared tools. `run` never raises (except cancellation): failures are outcomes."""

    def __init__(self, tools: ToolSet, settings: RunnerSettings = RunnerSettings()) -> None:
        self.tools = tools
        self.settings = settings

    async def run(self, spec: ToolSpec, arguments: Mapping[str, Any],
                  confirmation: Confirmation | None = None) -> ToolOutcome:
        """Only a tool declared at load runs; a `confirm: true` one only with the caller's
        confirmation of this very call."""
        if self.tools.get(spec.name) is not spec:
            return ToolOutcome(False, f"{spec.name} was not run: it is not a declared tool", refused=True)
        if spec.confirm and not (confirmation is not None and confirmation.covers(spec.name, arguments)):
            return ToolOutcome(False, f"{spec.name} was not run: it needs the caller's confirmation first",
                               refused=True)
        t0 = time.monotonic()
        if spec.webhook is not None:
            ok, result, attempts = await self._webhook(spec, spec.webhook, arguments)
        else:
            ok, result, attempts = await self._python(spec, arguments)
        return ToolOutcome(ok, self._cap(result), time.monotonic() - t0, attempts)

    def _cap(self, text: str) -> str:
        cap = self.settings.result_cap
        return text if len(text) <= cap else text[:cap] + " [truncated]"

    async def _webhook(self, spec: ToolSpec, hook: Webhook, arguments: Mapping[str, Any]) -> tuple[bool, str, int]:
        attempts = 0
        delay = self.settings.backoff
        timeout = aiohttp.ClientTimeout(total=spec.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                attempts += 1
                try:
                    return True, await self._once(http, hook, arguments), attempts
                except _Retryable as e:
                    if attempts > hook.retries:
                        return False, f"{spec.name} failed after {attempts} attempts: {e}", attempts
                    await asyncio.sleep(max(delay, min(e.retry_after, self.settings.max_retry_after)))
                    delay *= 2
                except asyncio.TimeoutError:
                    return False, f"{spec.name} failed: no answer within {spec.timeout:g} s", attempts
                except _Failed as e:
                    return False, f"{spec.name} failed: {e}", attempts

    async def _once(self, http: aiohttp.ClientSession, hook: Webhook, arguments: Mapping[str, Any]) -> str:
        headers = dict(hook.headers)
        try:
            if hook.method == "GET":
                query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()}
                req = http.get(hook.url, params=query, headers=headers, allow_redirects=False)
            else:
                req = http.post(hook.url, json=dict(arguments), headers=headers, allow_redirects=False)
            async with req as resp:
                body = await resp.text(errors="replace")
                if resp.status == 429 or resp.status >= 500:
                    retry_after = _seconds(resp.headers.get("Retry-After", ""))
                    raise _Retryable(f"the service answered {resp.status}", retry_after)
                if not 200 <= resp.status < 300:
                    raise _Failed(f"the service answered {resp.status}: {body[:200]}")
                return body.strip() or "done"
        except (_Retryable, _Failed, asyncio.TimeoutError):
            raise
        except aiohttp.ClientConnectionError as e:
            raise _Retryable(f"cannot reach the service ({e.__class__.__name__})") from None
        except aiohttp.ClientError as e:
            raise _Failed(str(e) or e.__class__.__name__) from None

    async def _python(self, spec: ToolSpec, arguments: Mapping[str, Any]) -> tuple[bool, str, int]:
        fn = spec.function
        if fn is None:
            return False, f"{spec.name} failed: no function", 0
        try:
            if inspect.iscoroutinefunction(fn):
                value = await asyncio.wait_for(fn(**arguments), spec.timeout)
            else:
                value = await asyncio.wait_for(asyncio.to_thread(fn, **arguments), spec.timeout)
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, spec.timeout)
        except asyncio.TimeoutError:
            return False, f"{spec.name} failed: no answer within {spec.timeout:g} s", 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a tool's own bug or bad arguments must not end the call
            return False, f"{spec.name} failed: {e.__class__.__name__}: {e}", 1
        return True, _text(value), 1


class _Failed(Exception):
    """A failure a retry would not help (4xx, a bad response)."""


def _seconds(value: str) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


def _text(value: object) -> str:
    if value is None:
        return "done"
    if isinstance(value, str):
        return value.strip() or "done"
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
