from dataclasses import replace

import pytest_asyncio

from bot.runtime import Runtime
from bot.settings import Settings


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def runtime():
    """A real runtime (Silero VAD, Whisper tiny.en, hibari TTS, the default policy), no Redis."""
    rt = await Runtime.start(replace(Settings.for_tests(), state_enabled=False))
    yield rt
    await rt.close()
