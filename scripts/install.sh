#!/usr/bin/env bash
# Installs duplexbot into ./.venv on a fresh Debian machine.
#   scripts/install.sh          runtime only (what `make run` needs)
#   scripts/install.sh test     runtime + test tools + real peers (sipp, baresip, kamailio, chromium)
# Idempotent: a stamp file per mode skips work when pyproject.toml has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-runtime}"
PY="${PYTHON:-python3}"
VENV=.venv
stamp="$VENV/.installed-$mode"

if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt scripts/install.sh ]; then
  exit 0
fi

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if [ "$mode" = test ]; then
  apt_install sip-tester baresip kamailio chromium sox espeak-ng
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip

extras=""
if [ "$mode" = test ]; then extras="[test,train,eval]"; fi
# torch is pinned to 2.13.0 in the `train` extra, which resolves to the local CPU wheel here.
"$PIP" install -q -e ".$extras"
# Wheels whose metadata would drag torch (and its CUDA stack) in: we only need their files.
"$PIP" install -q --no-deps "silero-vad>=5"
if [ "$mode" = test ]; then "$PIP" install -q --no-deps "pipecat-ai>=0.0.90"; fi
# hibari-tts / faster-whisper pull the CPU onnxruntime, which shares the `onnxruntime` import
# package with onnxruntime-gpu and silently overwrites it. Remove it and restore the GPU build.
if "$VENV/bin/python" -m pip show onnxruntime >/dev/null 2>&1; then
  "$PIP" uninstall -y -q onnxruntime
  "$PIP" install -q --force-reinstall --no-deps "onnxruntime-gpu>=1.20"
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md, onnxruntime
names = {d.metadata["Name"].lower() for d in md.distributions()}
assert "onnxruntime-gpu" in names and "onnxruntime" not in names, names & {"onnxruntime", "onnxruntime-gpu"}
print("onnxruntime-gpu", onnxruntime.__version__, "providers:", onnxruntime.get_available_providers())
PY
touch "$stamp"
