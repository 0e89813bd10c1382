"""Bad dataset files give clear errors."""
import json

import numpy as np
import pytest

from bot.eval.dataset import load_dataset, load_sample
from models.audio import write_wav


def _wav(path, channels=2, seconds=1.0):
    write_wav(path, np.zeros((channels, int(16000 * seconds)), np.float32), 16000)


def test_missing_json(tmp_path):
    _wav(tmp_path / "a.wav")
    with pytest.raises(ValueError, match="no labels file a.json"):
        load_dataset(tmp_path)


def test_mono_wav(tmp_path):
    _wav(tmp_path / "a.wav", channels=1)
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(ValueError, match="needs 2 channels"):
        load_sample(tmp_path / "a.wav")


@pytest.mark.parametrize("labels, message", [
    ({"eot": [-0.5]}, "negative"),
    ({"hold": [[0.5, 0.2]]}, "ends"),
    ({"hold": [[0.1, -1]]}, "negative"),
    ({"interruption": ["x"]}, "number of seconds"),
    ({"eot": [9.0]}, "past the end"),
    ({"backchannel": 3}, "must be a list"),
    ([1, 2], "JSON object"),
])
def test_bad_labels(tmp_path, labels, message):
    _wav(tmp_path / "a.wav")
    (tmp_path / "a.json").write_text(json.dumps(labels))
    with pytest.raises(ValueError, match=message):
        load_sample(tmp_path / "a.wav")


def test_not_json_not_wav_empty_and_orphans(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "a.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_sample(tmp_path / "a.wav")
    (tmp_path / "b.wav").write_bytes(b"RIFFjunk")
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        load_sample(tmp_path / "b.wav")
    with pytest.raises(ValueError, match="no .wav samples"):
        load_dataset(_empty(tmp_path))
    with pytest.raises(ValueError, match="not a directory"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(ValueError, match="labels without audio: c.json"):
        load_dataset(tmp_path)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_a_phone_set_loads_as_calls_with_a_silent_bot(tmp_path):
    from bot.eval.dataset import PHONE_TAIL
    (tmp_path / "wav").mkdir()
    write_wav(tmp_path / "wav" / "a.wav", np.full((1, 8000), 0.1, np.float32), 8000)
    (tmp_path / "manifest.json").write_text(json.dumps({"samples": [
        {"id": "a", "wav": "wav/a.wav", "kind": "pause", "end": 0.9, "holds": [[0.3, 0.6]]}]}))
    [s] = load_dataset(tmp_path)
    assert s.name == "a" and s.labels.eot == (0.9,) and s.labels.hold == ((0.3, 0.6),)
    assert s.audio.shape == (2, 16000 + int(PHONE_TAIL * 16000)) and not s.audio[1].any()
    (tmp_path / "manifest.json").write_text(json.dumps({"samples": [{"id": "b"}]}))
    with pytest.raises(ValueError, match="wav"):
        load_dataset(tmp_path)
