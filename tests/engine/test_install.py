"""The installed environment: onnxruntime-gpu (never the CPU build that overwrites it), no torch in
the runtime dependency closure, Silero's ONNX file from its wheel."""
import importlib.metadata as md
import re

from bot.engine.onnx import make_session
from bot.engine.vad import silero_model_path


def _dists() -> set[str]:
    return {d.metadata["Name"].lower() for d in md.distributions()}


def test_onnxruntime_gpu_is_the_only_onnxruntime():
    names = _dists()
    assert "onnxruntime-gpu" in names
    assert "onnxruntime" not in names, "the CPU onnxruntime overwrote onnxruntime-gpu: rerun scripts/install.sh"
    import onnxruntime

    # the GPU build's module knows the CUDA provider even on a machine without a GPU
    assert "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _requirement_closure(root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop().lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for r in reqs:
            if "extra ==" in r:
                continue  # optional extras are not what a runtime install resolves
            todo.append(re.split(r"[ ;<>=!~\[(]", r.strip(), maxsplit=1)[0])
    return seen


def test_runtime_dependencies_never_include_torch():
    closure = _requirement_closure("duplexbot")
    assert "onnxruntime-gpu" in closure
    assert not {"torch", "torchaudio", "torchvision"} & closure, closure


def test_silero_vad_onnx_comes_from_the_wheel():
    path = silero_model_path()
    assert path.name == "silero_vad.onnx" and "site-packages" in str(path)
    sess = make_session(path)
    assert sess.get_providers()[-1] == "CPUExecutionProvider"
