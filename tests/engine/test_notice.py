"""Speaking over the caller is allowed only for notices, and only when the tenant's policy says so."""
from dataclasses import replace

import pytest
import yaml

from bot.engine import events as ev
from bot.policy.base import PolicySettings
from bot.runtime import Runtime
from bot.services.responder import DEFAULT_AGENT, ResponderSettings
from bot.settings import Settings
from bot.sim.caller import simulate
from bot.sim.script import parse_script

NOTICE = "This call may be recorded for quality and training purposes, and you can ask us to stop at any time."


@pytest.fixture
async def runtime(tmp_path):
    agent = yaml.safe_load(DEFAULT_AGENT.read_text())
    agent["notice"] = NOTICE
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(agent))
    s = Settings.for_tests()
    rt = await Runtime.start(replace(s, state_enabled=False, policy_name="baseline",
                                     responder=ResponderSettings(agent_path=str(path))))
    yield rt
    await rt.close()


SCRIPT = {"steps": [{"wait_for_bot_speech": 1.5}, {"say": "Wait, stop.", "kind": "interruption"},
                    {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5}, {"hangup": True}]}


async def test_notice_plays_over_the_caller_when_the_tenant_allows_it(runtime):
    result = await simulate(runtime, parse_script(SCRIPT), fast=True,
                            policy_settings=PolicySettings(allow_overlap=True))
    said = [e.text for e in result.events if isinstance(e, ev.BotSpeechStart)]
    assert said[0] == NOTICE and said[1].startswith("Hello, thanks for calling")
    assert not any(isinstance(e, ev.BargeIn) for e in result.events)
    assert any(isinstance(e, ev.Backchannel) and e.text.startswith("notice") for e in result.events)


async def test_without_permission_the_caller_can_interrupt_the_notice(runtime):
    result = await simulate(runtime, parse_script(SCRIPT), fast=True, policy_settings=PolicySettings())
    cut = next(e for e in result.events if isinstance(e, ev.BotTruncated))
    assert NOTICE.startswith(cut.heard) and cut.unheard
