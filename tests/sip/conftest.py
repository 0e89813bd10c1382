import asyncio
import shutil
from pathlib import Path

import pytest

from sip import CallHangup, ServerSettings, SipServer

REPO = Path(__file__).resolve().parents[2]
TORTURE = REPO.parent / "shared" / "sip-torture"


class Inbox:
    """A test application's end of a call: the call's sink, queued for `receive()` (the bot's
    transport puts the same items into its InboundMailbox)."""

    def __init__(self, call):
        self.items = asyncio.Queue()
        call.set_sink(self.items.put_nowait)

    async def receive(self):
        return await self.items.get()


async def wait_hangup(call):
    inbox = Inbox(call)
    while True:
        item = await inbox.receive()
        if isinstance(item, CallHangup):
            return item


@pytest.fixture
async def sip_server():
    """A SIP server on a free port whose calls just wait for the hang-up."""
    servers = []

    async def start(handler=wait_hangup, **kw):
        srv = await SipServer(ServerSettings(port=0, bind="127.0.0.1", **kw), handler).start()
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        await s.close()
    for s in servers:   # nothing of ours may outlive the server
        assert not s._tasks and not s.calls and (s._ticker is None or s._ticker.done())


def need(binary: str):
    return pytest.mark.skipif(shutil.which(binary) is None, reason=f"{binary} is not installed")


async def in_thread(fn, *a):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *a)
