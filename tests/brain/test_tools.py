"""Tools declared in the agent YAML: what a bad declaration says, and the runner's timeouts,
retries, result cap and failures (a webhook on 127.0.0.1, Python entry points)."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from bot.brain import RunnerSettings, ToolRunner, ToolSet, load_tools, parse_tools
from bot.brain.safety import Confirmation
from bot.services.responder import DEFAULT_AGENT, ConfigError

from .conftest import Hooks

SEEN: list[str] = []


def lookup(order_id: str) -> dict[str, Any]:
    """A sync Python tool: must run off the event loop's thread."""
    SEEN.append(threading.current_thread().name)
    return {"order": order_id, "status": "shipped"}


async def refund(order_id: str, amount: float = 0.0) -> str:
    await asyncio.sleep(0)
    return f"refunded {amount:g} on {order_id}"


def sleepy(secs: float) -> str:
    time.sleep(secs)
    return "woke"


def broken(**kwargs: Any) -> str:
    raise RuntimeError("database down")


def hook(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "Look up an order.", "kind": "webhook", "url": url,
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}, **extra}


def tools(*decls: dict[str, Any], hosts: tuple[str, ...] = ("127.0.0.1",)) -> ToolSet:
    return parse_tools({"tool_hosts": list(hosts), "tools": list(decls)}, "agent.yaml")


def test_declarations_parse_with_defaults_and_the_openai_form():
    ts = tools(hook("order_status", "http://127.0.0.1:9/status", safe_on_partial=True),
               {"name": "lookup", "description": "Find it.", "kind": "python", "entry": f"{__name__}:lookup",
                "confirm": True, "filler": "One moment.", "filler_after": 1})
    a, b = ts.tools
    assert (a.kind, a.safe_on_partial, a.confirm, a.filler, a.filler_after, a.timeout) == \
        ("webhook", True, False, "Let me check that.", 0.6, 5.0)
    assert a.webhook is not None and (a.webhook.method, a.webhook.retries) == ("POST", 1)
    assert (b.kind, b.confirm, b.filler, b.function) == ("python", True, "One moment.", lookup)
    assert ts.openai()[0] == {"type": "function", "function": {
        "name": "order_status", "description": "Look up an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}
    assert not parse_tools({}, "x") and not load_tools(DEFAULT_AGENT)  # the shipped agent declares none


@pytest.mark.parametrize("data, match", [
    ({"tools": [hook("t", "https://api.example.com/x")]}, r"tools\[0\] \(t\)\.url: host 'api.example.com' is not "
                                                          r"in tool_hosts \(listed: none\)"),
    ({"tool_hosts": ["api.example.com"], "tools": [hook("t", "http://127.0.0.1/x")]}, "not in tool_hosts"),
    ({"tool_hosts": ["127.0.0.1"], "tools": [hook("t", "http://127.0.0.1.evil.com/x")]}, "not in tool_hosts"),
    ({"tool_hosts": ["127.0.0.1"], "tools": [hook("t", "ftp://127.0.0.1/x")]}, r"url must be an http"),
    ({"tool_hosts": "127.0.0.1"}, "'tool_hosts' must be a list"),
    ({"tools": {"name": "t"}}, "'tools' must be a list"),
    ({"tools": ["t"]}, r"tools\[0\] must be a mapping"),
    ({"tools": [{"name": "bad name", "description": "d", "kind": "python"}]}, r"tools\[0\]\.name must be"),
    ({"tools": [{"name": "t", "kind": "python", "entry": "os:getcwd"}]}, r"\(t\)\.description"),
    ({"tools": [{"name": "t", "description": "d", "kind": "shell"}]}, r"\(t\)\.kind must be webhook or python"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "nope_module:f"}]}, "cannot import"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os:no_such"}]}, "no function"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os"}]}, "'module:function'"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os:getcwd", "url": "x"}]},
     "only apply to kind webhook"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os:getcwd", "confrim": True}]},
     r"unknown key\(s\) confrim"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os:getcwd", "parameters": []}]},
     "parameters must be a JSON schema object"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os:getcwd", "confirm": "yes"}]},
     r"confirm must be true or false"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os:getcwd", "timeout": 0}]},
     "timeout must be more than 0"),
    ({"tool_hosts": ["127.0.0.1"], "tools": [hook("t", "http://127.0.0.1/x", retries=9)]}, "retries"),
    ({"tool_hosts": ["127.0.0.1"], "tools": [hook("t", "http://127.0.0.1/x", method="DELETE")]}, "method"),
    ({"tools": [{"name": "t", "description": "d", "kind": "python", "entry": "os:getcwd"}] * 2}, "declared twice"),
])
def test_bad_declarations_name_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        parse_tools(data, "agent.yaml")


def test_load_tools_reads_the_agent_file(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("name: x\ntool_hosts: [127.0.0.1]\ntools:\n  - name: s\n    description: d\n    kind: webhook\n"
                 "    url: http://127.0.0.1:8/s\n")
    assert load_tools(p).tools[0].name == "s"
    p.write_text("tools: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_tools(p)


async def test_webhook_retries_500_then_succeeds_and_never_retries_a_4xx(hooks: Hooks):
    hooks.fail_first = 2
    ts = tools(hook("flaky", hooks.url + "/flaky", retries=2), hook("bad", hooks.url + "/bad", retries=3))
    runner = ToolRunner(ts, RunnerSettings(backoff=0.01))
    out = await runner.run(ts.tools[0], {"order_id": "A17"})
    assert out.ok and out.attempts == 3 and "out for delivery" in out.result and hooks.count("/flaky") == 3
    out = await runner.run(ts.tools[1], {"order_id": "A17"})
    assert not out.ok and out.attempts == 1 and "404" in out.result and hooks.count("/bad") == 1
    hooks.fail_first = 10
    out = await runner.run(ts.tools[0], {})
    assert not out.ok and out.attempts == 3 and "failed after 3 attempts" in out.result


async def test_webhook_timeout_unreachable_and_long_results_are_outcomes_not_exceptions(hooks: Hooks):
    hooks.delay = 2.0
    ts = tools(hook("slow", hooks.url + "/slow", timeout=0.2, retries=2),
               hook("down", "http://127.0.0.1:9/x", retries=1), hook("long", hooks.url + "/long"),
               hook("get", hooks.url + "/get", method="GET"))
    runner = ToolRunner(ts, RunnerSettings(backoff=0.01, result_cap=100))
    out = await runner.run(ts.tools[0], {})
    assert not out.ok and "no answer within 0.2 s" in out.result and out.attempts == 1  # a timeout is not repeated
    assert out.elapsed < 1.0
    out = await runner.run(ts.tools[1], {})
    assert not out.ok and out.attempts == 2 and "cannot reach" in out.result
    out = await runner.run(ts.tools[2], {})
    assert out.ok and out.result == "x" * 100 + " [truncated]"
    out = await runner.run(ts.tools[3], {"order_id": "B2"})
    assert out.ok and hooks.hits["/get"] == [{"order_id": "B2"}]


async def test_python_tools_sync_off_the_loop_async_and_failing():
    ts = tools(*({"name": n, "description": "d", "kind": "python", "entry": f"{__name__}:{n}"}
                 for n in ("lookup", "refund", "broken")),
               {"name": "sleepy", "description": "d", "kind": "python", "entry": f"{__name__}:sleepy", "timeout": 0.1})
    runner = ToolRunner(ts)
    SEEN.clear()
    out = await runner.run(ts.tools[0], {"order_id": "A17"})
    assert out.ok and out.result == '{"order": "A17", "status": "shipped"}'
    assert SEEN and SEEN[0] != threading.current_thread().name
    assert (await runner.run(ts.tools[1], {"order_id": "A1", "amount": 5})).result == "refunded 5 on A1"
    out = await runner.run(ts.tools[1], {"nope": 1})
    assert not out.ok and "TypeError" in out.result
    out = await runner.run(ts.tools[2], {})
    assert not out.ok and "database down" in out.result
    out = await runner.run(ts.tools[3], {"secs": 0.4})
    assert not out.ok and "no answer within 0.1 s" in out.result


async def test_a_confirm_tool_needs_the_confirmation_of_that_very_call():
    ts = tools({"name": "refund", "description": "Refund order {order_id}.", "kind": "python",
                "entry": f"{__name__}:refund", "confirm": True})
    runner, spec = ToolRunner(ts), ts.tools[0]
    out = await runner.run(spec, {"order_id": "A1", "amount": 5})
    assert out.refused and not out.ok and "confirmation" in out.result
    c = Confirmation.ask("refund", {"order_id": "A1", "amount": 5}, spec.description)
    assert c.question == "Just to confirm: refund order A1?"
    assert (await runner.run(spec, {"order_id": "A1", "amount": 500}, c)).refused  # other arguments
    assert (await runner.run(spec, {"amount": 5, "order_id": "A1"}, c)).ok
    other = tools({"name": "refund", "description": "d", "kind": "python", "entry": f"{__name__}:refund"})
    out = await runner.run(other.tools[0], {"order_id": "A1"})  # not declared where the runner was built
    assert out.refused and "not a declared tool" in out.result
