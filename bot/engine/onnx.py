"""ONNX Runtime sessions: CUDA when onnxruntime-gpu finds a GPU, CPU otherwise.

onnxruntime falls back to CPU silently when CUDA cannot load, so the providers a session really got
are read back with `get_providers()` and logged."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger(__name__)


def wheel_file(package: str, relative: str, install_hint: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package (whose
    import may pull in dependencies we deliberately did not install, such as torch)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed ({install_hint})")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise RuntimeError(f"{package} has no {relative} at {path}")
    return path


def gpu_present() -> bool:
    """A CUDA device node exists. onnxruntime-gpu lists CUDAExecutionProvider as available even on
    machines without a GPU (it only fails when the session is built), so look for the device."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")


def preferred_providers(device: str = "auto") -> list[str]:
    """device: "auto" (CUDA when a GPU and the CUDA provider are there), "cuda" or "cpu"."""
    import onnxruntime as ort

    if device == "cpu" or (device == "auto" and not gpu_present()):
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or ["CPUExecutionProvider"]


def make_session(path: str | Path, threads: int = 1, providers: list[str] | None = None,
                 device: str = "auto") -> InferenceSession:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    wanted = providers or preferred_providers(device)
    try:
        sess = ort.InferenceSession(str(path), so, providers=wanted)
    except Exception as e:  # a CUDA provider that cannot initialise: retry on CPU, loudly
        if wanted == ["CPUExecutionProvider"]:
            raise
        log.warning("ONNX session for %s failed with %s (%s); using CPU", Path(path).name, wanted, e)
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    log.info("ONNX %s runs on %s", Path(path).name, sess.get_providers())
    return sess
