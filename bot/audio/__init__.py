"""Audio core: PCM16 frames, G.711, streaming resampling, WAV files."""
from sip.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

from .frame import SUPPORTED_RATES, AudioFrame, float_to_pcm16, pcm16_to_float
from .resample import Resampler, resample
from .wav import AudioFileError, read_wav, write_wav

__all__ = ["SUPPORTED_RATES", "AudioFrame", "float_to_pcm16", "pcm16_to_float", "alaw_decode", "alaw_encode",
           "ulaw_decode", "ulaw_encode", "Resampler", "resample", "AudioFileError", "read_wav", "write_wav"]
