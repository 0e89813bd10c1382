"""What Whisper tiny.en adds to a clip cut at a pause is dropped; what a caller said is kept."""
import pytest

from bot.services.asr import clean_transcript


@pytest.mark.parametrize("raw, clean", [
    ("No, this is running on ECS, not Kubernetes. No,", "No, this is running on ECS, not Kubernetes."),
    ("No, this is running on ECS. No, this running", "No, this is running on ECS."),
    ("Wait, stop. Wait, stop.", "Wait, stop."),
    ("Hello? Hello?", "Hello?"),
    ("Yes. Yes, please.", "Yes. Yes, please."),
    ("No. I want to cancel.", "No. I want to cancel."),
    ("(coughing) Where is the store?", "Where is the store?"),
])
def test_clean_transcript(raw, clean):
    assert clean_transcript(raw) == clean
