import numpy as np
import pytest

from bot.audio import (
    AudioFileError,
    AudioFrame,
    Resampler,
    alaw_decode,
    alaw_encode,
    read_wav,
    resample,
    ulaw_decode,
    ulaw_encode,
    write_wav,
)


def tone(freq, rate, seconds=1.0, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def test_g711_known_codes_and_roundtrip():
    assert ulaw_encode(np.array([0], np.int16)) == b"\xff"
    assert alaw_encode(np.array([0], np.int16)) == b"\xd5"
    assert ulaw_decode(b"\x00")[0] == -32124 and ulaw_decode(b"\x80")[0] == 32124
    x = (tone(440, 8000) * 32767 * 0.6).astype(np.int16)
    for enc, dec in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        y = dec(enc(x)).astype(np.float64)
        snr = 10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean((y - x) ** 2))
        assert snr > 30, snr
        assert len(enc(x)) == len(x)


@pytest.mark.parametrize("src,dst", [(8000, 16000), (16000, 8000), (24000, 16000), (22050, 16000),
                                     (48000, 8000), (16000, 48000), (24000, 8000)])
def test_resampler_passband_alias_rejection_and_constant_delay(src, dst):
    x = tone(1000, src)
    r = Resampler(src, dst)
    # streaming in odd-sized chunks equals one shot
    chunks = np.concatenate([r.process(x[i:i + 317]) for i in range(0, len(x), 317)])
    assert np.allclose(chunks, Resampler(src, dst).process(x), atol=1e-5)
    ref = 0.5 * np.sin(2 * np.pi * 1000 * (np.arange(len(chunks)) / dst - r.delay_seconds))
    err = chunks[400:-400] - ref[400:-400]
    assert 10 * np.log10(np.mean(ref[400:-400] ** 2) / np.mean(err ** 2)) > 60
    if dst < src:  # a tone 10% above the new Nyquist must vanish (anti-aliasing)
        y = Resampler(src, dst).process(tone(dst / 2 * 1.1, src))
        assert 20 * np.log10(np.std(y[400:]) / 0.3536) < -60


def test_resample_one_shot_is_aligned_and_int16_preserved():
    x = tone(440, 16000)
    y = resample(x, 16000, 8000)
    assert len(y) == 8000
    assert np.abs(y[100:-100] - tone(440, 8000)[100:-100]).max() < 1e-3
    pcm = (x * 32767).astype(np.int16)
    assert Resampler(16000, 8000).process(pcm).dtype == np.int16


def test_audio_frame_validation():
    with pytest.raises(ValueError, match="unsupported sample rate"):
        AudioFrame(np.zeros(10, np.int16), 11025)
    with pytest.raises(ValueError, match="int16"):
        AudioFrame(np.zeros(10, np.float32), 16000)
    with pytest.raises(ValueError, match="odd length"):
        AudioFrame.from_bytes(b"\x00\x01\x02", 8000)
    f = AudioFrame.from_bytes(b"\x01\x00\xff\x7f", 8000, 1.0)
    assert f.pcm.tolist() == [1, 32767] and bytes(f) == b"\x01\x00\xff\x7f" and f.end == pytest.approx(1.00025)


def test_wav_roundtrip_and_errors(tmp_path):
    x = np.stack([tone(300, 16000, 0.5), tone(600, 16000, 0.5)])
    write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and y.shape == x.shape and np.abs(y - x).max() < 1e-3
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioFileError, match="bad.wav"):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(AudioFileError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_streaming_through_silence_matches_one_pass():
    """Chunks of pure silence take a shortcut (zeros out, no filtering): the stream must still be
    sample for sample what one pass over the whole signal gives, at every ratio."""
    rng = np.random.default_rng(3)
    for src, dst in ((8000, 16000), (48000, 16000), (24000, 8000), (16000, 8000), (22050, 16000)):
        chunks = []
        for k in range(40):
            n = int(rng.integers(1, 400))
            loud = (k // 5) % 2 == 1
            chunks.append((rng.standard_normal(n) * 3000).astype(np.int16) if loud else np.zeros(n, np.int16))
        stream = Resampler(src, dst)
        streamed = np.concatenate([stream.process(c) for c in chunks])
        whole = Resampler(src, dst).process(np.concatenate(chunks))
        assert streamed.shape == whole.shape and np.array_equal(streamed, whole), (src, dst)


def test_audio_history_keeps_the_newest_samples_by_stream_position():
    from bot.audio.history import AudioHistory

    h = AudioHistory(1.0, 100)  # 100 samples
    assert h.push(np.arange(60, dtype=np.int16)) == 0
    assert h.push(np.arange(60, 120, dtype=np.int16)) == 60  # wraps around the ring
    assert h.samples == 120
    w = h.window(0.0, 1.2)  # clipped to the kept 100 samples: 20..119
    assert w.shape == (100,) and np.allclose(w * 32768, np.arange(20, 120))
    assert h.window(1.5, 2.0).size == 0
    r = h.read(10, 120)  # too old and not yet pushed read as silence
    assert np.array_equal(r[:10], np.zeros(10)) and np.array_equal(r[10:110], np.arange(20, 120))
    assert np.array_equal(r[110:], np.zeros(10))
    h.skip(30)  # silence heard
    assert h.samples == 150 and not h.read(120, 30).any() and np.array_equal(h.read(118, 2), [118, 119])
    h.push(np.arange(1000, 1250, dtype=np.int16))  # longer than the ring: keeps the newest
    assert h.samples == 400
    assert np.array_equal(h.read(300, 100), np.arange(1150, 1250))
    h.skip(500)  # longer than the ring: all silence
    assert h.samples == 900 and not h.read(800, 100).any()

