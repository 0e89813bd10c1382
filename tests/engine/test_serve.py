"""The README's run command: `duplexbot serve` comes up with embedded defaults and answers /healthz."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_brings_up_healthz_and_metrics(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DUPLEXBOT_PORT=str(port), DUPLEXBOT_HOST="127.0.0.1", DUPLEXBOT_SIP_PORT="0", HOME=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.2)  # polling a starting server: the condition is the answer, not the delay
        assert health is not None, proc.stdout.read() if proc.poll() is not None else "no answer in 90 s"
        assert health["status"] == "ok" and health["state"] == "redis"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "duplexbot_live_calls" in text and 'duplexbot_inference_batches_total{model="vad"}' in text
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode in (0, -15)


def _threads_after(code: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code + "; import os; print(len(os.listdir('/proc/self/task')))"],
                         env=env, capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.split()[-1])


def test_cli_keeps_numpy_to_one_blas_thread():
    # OpenBLAS's spinning workers took a quarter of a core from the engine at 20 calls: the command
    # line starts numpy with one BLAS thread (plain numpy here starts one per core)
    if (os.cpu_count() or 1) < 2:
        pytest.skip("OpenBLAS starts no extra thread on one core")
    assert _threads_after("import numpy") > 1
    assert _threads_after("import bot.cli, numpy") == 1
