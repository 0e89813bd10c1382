"""A minimal Chrome DevTools Protocol driver over aiohttp: launches Debian's Chromium headless with
a fake microphone fed from a WAV file, opens pages, evaluates JavaScript, takes screenshots. No
browser download, no extra package. Used by the browser benches and the headless-browser tests."""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import aiohttp

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

Listener = Callable[[dict[str, Any], "str | None"], None]


class CDPError(RuntimeError):
    pass


class Browser:
    def __init__(self, fake_audio: Path | None = None, name: str = "browser") -> None:
        self.fake_audio = fake_audio
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self.udd = tempfile.mkdtemp(prefix=f"duplexbot-{name}-")
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 20.0) -> "Browser":
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                f"--user-data-dir={self.udd}", "--remote-debugging-port=0", "--window-size=1360,1000"]
        if self.fake_audio is not None:
            args.append(f"--use-file-for-fake-audio-capture={self.fake_audio}")
        args.append("about:blank")
        self.proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
        port_file = Path(self.udd) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while True:  # Chromium writes the file once it listens; nothing to wait on but the file
            if port_file.exists():
                lines = port_file.read_text().split("\n")
                if len(lines) >= 2 and lines[1].strip():
                    break
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise CDPError(f"chromium did not start (rc={self.proc.returncode})")
            await asyncio.sleep(0.05)
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}",
                                             max_msg_size=64 << 20, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        self._reader = asyncio.ensure_future(self._read(self.ws))
        return self

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            m = json.loads(msg.data)
            if "id" in m:
                fut = self._pending.pop(m["id"], None)
                if fut is not None and not fut.done():
                    if "error" in m:
                        fut.set_exception(CDPError(str(m["error"])))
                    else:
                        fut.set_result(m.get("result", {}))
            else:
                for cb in self._listeners.get(m.get("method", ""), []):
                    cb(m.get("params", {}), m.get("sessionId"))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CDPError("browser connection closed"))

    def on(self, method: str, cb: Listener) -> None:
        self._listeners.setdefault(method, []).append(cb)

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
                   timeout: float = 30.0) -> dict[str, Any]:
        if self.ws is None:
            raise CDPError("browser not started")
        i = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send_str(json.dumps(msg))
        return await asyncio.wait_for(fut, timeout)

    async def new_page(self, url: str) -> "Page":
        """A page in a browser context of its own (its own storage), loaded from `url`."""
        ctx = (await self.send("Target.createBrowserContext"))["browserContextId"]
        target = (await self.send("Target.createTarget", {"url": "about:blank", "browserContextId": ctx}))["targetId"]
        sid = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, sid, target)
        self.on("Runtime.exceptionThrown", page.on_exception)
        self.on("Runtime.consoleAPICalled", page.on_console)
        await self.send("Runtime.enable", session=sid)
        await self.send("Page.enable", session=sid)
        await page.goto(url)
        return page

    async def close(self) -> None:
        try:
            if self.ws is not None and not self.ws.closed:
                try:
                    await asyncio.wait_for(self.send("Browser.close"), 5)
                except (CDPError, asyncio.TimeoutError, ConnectionError):
                    pass
                await self.ws.close()
            if self._reader is not None:
                self._reader.cancel()
            if self.http is not None:
                await self.http.close()
        finally:
            if self.proc is not None and self.proc.returncode is None:
                try:
                    await asyncio.wait_for(self.proc.wait(), 5)
                except asyncio.TimeoutError:
                    self.proc.kill()
                    await self.proc.wait()
            shutil.rmtree(self.udd, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.b = browser
        self.session = session
        self.target = target
        self.errors: list[str] = []  # uncaught exceptions and console errors
        self.console: list[str] = []

    def on_exception(self, p: dict[str, Any], session: str | None) -> None:
        if session == self.session:
            d = p["exceptionDetails"]
            self.errors.append(d.get("text", "") + " " + str(d.get("exception", {}).get("description", "")))

    def on_console(self, p: dict[str, Any], session: str | None) -> None:
        if session == self.session:
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append(f"{p.get('type')}: {text}")
            if p.get("type") == "error":
                self.errors.append(text)

    async def goto(self, url: str, timeout: float = 15.0) -> None:
        await self.b.send("Page.navigate", {"url": url}, session=self.session)
        await self.wait("document.readyState === 'complete' && location.href !== 'about:blank'", timeout, "page load")

    async def js(self, expression: str, timeout: float = 30.0) -> Any:
        r = await self.b.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                   "returnByValue": True, "userGesture": True},
                              session=self.session, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError(f"{d.get('text')} {d.get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    async def wait(self, expression: str, timeout: float, what: str = "", poll: float = 0.1) -> Any:
        """Evaluate until truthy (the page has no other way to tell us); returns the value, or
        raises TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = await self.js(expression)
            except CDPError:
                v = None
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or expression}")
            await asyncio.sleep(poll)

    async def screenshot(self, path: Path) -> Path:
        r = await self.b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                              session=self.session)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(r["data"]))
        return path
