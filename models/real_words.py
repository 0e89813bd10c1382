"""Real recorded words for the training calls: Google Speech Commands v0.02 test files (CC BY 4.0).

The duplex model's first training data had only synthetic callers, and on real voices its
interrupt head fires for 0-10 % of real "stop"s (docs/real-speech.md). These clips put real
people's voices, microphones and rooms into the calls that `models.data` generates:

- "stop" opens an interruption over the bot;
- "yes" and "right" are backchannels over the bot;
- any other word ("no", "left", "go", and the dataset's other words) is a whole one-word answer.

Split by speaker (the hash before `_nohash_`), the same rule everywhere: `speaker_split`. The
real-speech evaluation set (`duplexbot bench real-data`) takes its Speech Commands speakers from
the "test" split only, so no voice it plays was trained on.

The clips are read from a folder laid out as the dataset is (`WORD/SPEAKER_nohash_N.wav`, 16 kHz
mono). No audio is committed: `extract` copies them out of a git mirror of a repository that
vendors the test set (see models/README.md).
"""
from __future__ import annotations

import re
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import read_wav, resample

RATE = 16000
INTERRUPTIONS = ("stop",)
BACKCHANNELS = ("yes", "right")
# in the vendored test set: the ten keywords, and "_unknown_" (other words, named by the folder)
ANSWERS = ("no", "left", "up", "down", "on", "off", "go", "_unknown_")
SC_PREFIX = "MLTK_keyworkSpotting/dataset"  # where thegtagamer/PICO-tinyML-benchmark keeps the files
_NAME = re.compile(r"(?:^|/)([a-z_]+)/([0-9a-f]{8})_nohash_(\d+)\.wav$")
MIN_SNR_DB = 25.0  # loudest 10 ms over the quietest: noisier clips are left out
LICENCE = ("Google Speech Commands v0.02 test files (Warden 2018), CC BY 4.0, "
           "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz")


def speaker_split(speaker: str) -> str:
    """"train" (70 %), "dev" (10 %) or "test" (20 %) for a Speech Commands speaker hash."""
    h = zlib.crc32(("speech-commands:" + speaker).encode()) % 10
    return "test" if h < 2 else "dev" if h == 2 else "train"


@dataclass
class RealWords:
    """Trimmed, level-free clips of one split by role: `clips[role]` is a list of float32 arrays."""
    clips: dict[str, list[np.ndarray]] = field(default_factory=dict)
    speakers: set[str] = field(default_factory=set)

    def pick(self, role: str, rng: np.random.Generator) -> np.ndarray | None:
        got = self.clips.get(role) or []
        return got[int(rng.integers(len(got)))] if got else None

    def __bool__(self) -> bool:
        return any(self.clips.values())


def _frames_db(x: np.ndarray, hop: int = 160) -> np.ndarray:
    n = x.size // hop
    e = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    return 20 * np.log10(e)


def clean_clip(x: np.ndarray, rel_db: float = -35.0) -> np.ndarray | None:
    """The word without the clip's silence and noise either side, or None for a noisy or empty clip."""
    if x.size < RATE // 10:
        return None
    db = _frames_db(x)
    if db.max() - np.percentile(db, 10) < MIN_SNR_DB:
        return None
    on = np.flatnonzero(db > db.max() + rel_db)
    y = x[on[0] * 160:(on[-1] + 1) * 160].astype(np.float32)
    return y if y.size >= int(0.15 * RATE) else None


def load(root: Path, split: str, limit_per_word: int = 400) -> RealWords:
    """The clips of speakers in `split` under `root` (missing folder: none)."""
    out = RealWords()
    if not root.is_dir():
        return out
    roles = {w: "interrupt" for w in INTERRUPTIONS} | {w: "backchannel" for w in BACKCHANNELS} | \
        {w: "answer" for w in ANSWERS}
    for word, role in roles.items():
        n = 0
        for path in sorted((root / word).glob("*.wav")):
            m = _NAME.search(path.as_posix())
            if not m or speaker_split(m.group(2)) != split:
                continue
            x, sr = read_wav(path)
            y = clean_clip(resample(x[0], sr, RATE) if sr != RATE else x[0])
            if y is None:
                continue
            out.clips.setdefault(role, []).append(y)
            out.speakers.add(m.group(2))
            n += 1
            if n >= limit_per_word:
                break
    return out


def extract(git_dir: Path, dest: Path) -> Path:
    """Copy the vendored test set out of a bare git mirror into `dest` (once); returns the folder
    laid out as WORD/SPEAKER_nohash_N.wav."""
    root = dest / SC_PREFIX
    if root.is_dir():
        return root
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "HEAD", SC_PREFIX],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return root


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m models.real_words GIT_DIR DEST  (prints the folder for --real-words)")
    print(extract(Path(sys.argv[1]), Path(sys.argv[2])))
