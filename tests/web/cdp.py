"""The headless-Chromium driver the tests share with the browser benches (bot/bench/cdp.py), and
where tests leave their artifacts."""
from __future__ import annotations

import os
from pathlib import Path

from bot.bench.cdp import CHROMIUM, Browser, CDPError, Page

__all__ = ["CHROMIUM", "Browser", "CDPError", "Page", "artifacts_dir"]


def artifacts_dir() -> Path:
    return Path(os.environ.get("DUPLEXBOT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
