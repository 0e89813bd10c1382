"""Real peer, the other way round: the bot places a call to sipp (UAC INVITE) and registers with a
sipp registrar that checks the digest answer."""
import asyncio
from pathlib import Path

import pytest

from sip.registration import RegistrationSettings

from .conftest import need
from .test_sipp import free_udp_port

pytestmark = [pytest.mark.peer, need("sipp")]
SCEN = Path(__file__).parent / "scenarios"


async def start_sipp(args: list[str], tmp: Path, port: int):
    return await asyncio.create_subprocess_exec(
        "sipp", *args, "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(free_udp_port()), "-m", "1",
        "-nostdin", "-timeout", "20s", "-timeout_error", cwd=tmp, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)


async def finish(proc) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(errors="replace")[-2000:]


async def test_outbound_call_to_sipp_uas(sip_server, tmp_path):
    srv = await sip_server()
    port = free_udp_port()
    proc = await start_sipp(["-sn", "uas"], tmp_path, port)
    try:
        call = await srv.call(f"sip:sipp@127.0.0.1:{port}", ("127.0.0.1", port), timeout=10)
        assert call.session is not None and call.session.media.codec in ("PCMU", "PCMA")
        assert call.caller.startswith("sip:duplexbot@") and call.callee == f"sip:sipp@127.0.0.1:{port}"
        await asyncio.sleep(0.2)      # a short conversation: RTP flows at the media clock's pace
        call.hangup()
    finally:
        rc, out = await finish(proc)
    assert rc == 0, out
    assert call.end_reason == "local"


async def test_register_with_digest_against_sipp(sip_server, tmp_path):
    srv = await sip_server()
    port = free_udp_port()
    proc = await start_sipp(["-sf", str(SCEN / "registrar.xml")], tmp_path, port)
    aor = "sip:bot@duplexbot.test"
    try:
        srv.register(RegistrationSettings(f"sip:127.0.0.1:{port}", aor, "bot", "s3cret", 120), ("127.0.0.1", port))
        for _ in range(200):
            if aor in srv.registrations:
                break
            await asyncio.sleep(0.05)
    finally:
        rc, out = await finish(proc)
    assert rc == 0, out
    assert srv.registrations.get(aor) is True, srv.ua.stats
    assert srv.ua.client.registrations[aor].expires == 120
