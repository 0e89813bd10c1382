"""Settings built once: `Settings.from_env` parses every component's variables into frozen
dataclasses, and a bad value fails start-up with a ConfigError naming the variable."""
import dataclasses

import pytest

from bot.config import ConfigError, env_choice, env_flag, env_number
from bot.settings import Settings


def test_env_number_reads_casts_and_bounds():
    env = {"N": "5", "F": " 0.25 ", "EMPTY": ""}
    assert env_number(env, "N", 1, int) == 5
    assert env_number(env, "F", 1.0, float, 0, 1) == 0.25
    assert env_number(env, "EMPTY", 7, int) == 7 and env_number(env, "UNSET", 2.5, float) == 2.5
    with pytest.raises(ConfigError, match=r"N='5' is out of range: expected an integer between 6 and 9"):
        env_number(env, "N", 1, int, 6, 9)
    with pytest.raises(ConfigError, match="at least 10"):
        env_number(env, "N", 1, int, 10)
    with pytest.raises(ConfigError, match=r"^BAD='lots': expected an integer of calls$"):
        env_number({"BAD": "lots"}, "BAD", 0, int, unit="calls")
    with pytest.raises(ConfigError, match="expected an integer"):
        env_number({"BAD": "1.5"}, "BAD", 0, int)  # an int variable takes no fractions
    with pytest.raises(ConfigError, match="expected a number"):
        env_number({"BAD": "nan"}, "BAD", 0.0, float)
    assert isinstance(ConfigError("x"), ValueError)


def test_flags_and_choices_name_the_variable():
    assert env_flag({"X": "on"}, "X", False) and not env_flag({"X": "0"}, "X", True) and env_flag({}, "X", True)
    with pytest.raises(ConfigError, match="X='maybe': use 1 or 0"):
        env_flag({"X": "maybe"}, "X", False)
    assert env_choice({}, "C", "a", ("a", "b")) == "a"
    with pytest.raises(ConfigError, match="C='z': choose a or b"):
        env_choice({"C": "z"}, "C", "a", ("a", "b"))


@pytest.mark.parametrize("env, word", [
    ({"DUPLEXBOT_PORT": "http"}, "DUPLEXBOT_PORT"),
    ({"DUPLEXBOT_EOT_SILENCE": "9"}, "DUPLEXBOT_EOT_SILENCE"),
    ({"DUPLEXBOT_PUBLIC_URL": "bot.example.com"}, "DUPLEXBOT_PUBLIC_URL"),
    ({"DUPLEXBOT_ONNX_DEVICE": "tpu"}, "DUPLEXBOT_ONNX_DEVICE"),
    ({"TWILIO_MAX_STREAMS": "many"}, "TWILIO_MAX_STREAMS"),
    ({"TWILIO_API_BASE": "api.twilio.com"}, "TWILIO_API_BASE"),
    ({"DUPLEXBOT_SIP_RTP_PORTS": "5-1"}, "DUPLEXBOT_SIP_RTP_PORTS"),
    ({"DUPLEXBOT_SIP_KEEPALIVE": "often"}, "DUPLEXBOT_SIP_KEEPALIVE"),
    ({"DUPLEXBOT_SIP_REGISTRAR": "trunk.example:x"}, "DUPLEXBOT_SIP_REGISTRAR"),
    ({"DUPLEXBOT_STATE_BUFFER_MAX": "0"}, "DUPLEXBOT_STATE_BUFFER_MAX"),
    ({"DUPLEXBOT_RECORDING": "perhaps"}, "DUPLEXBOT_RECORDING"),
    ({"DUPLEXBOT_SUPERVISOR_LISTEN_BUFFER": "x"}, "DUPLEXBOT_SUPERVISOR_LISTEN_BUFFER"),
    ({"DUPLEXBOT_SUPERVISOR_TOKENS": "acme:abc"}, "DUPLEXBOT_SUPERVISOR_TOKENS"),
    ({"DUPLEXBOT_WEBRTC_CONNECT_TIMEOUT": "soon"}, "DUPLEXBOT_WEBRTC_CONNECT_TIMEOUT"),
    ({"DUPLEXBOT_WEBRTC_ICE_SERVERS": "http://stun.example"}, "DUPLEXBOT_WEBRTC_ICE_SERVERS"),
    ({"DUPLEXBOT_END_OF_TURN": "slow"}, "DUPLEXBOT_END_OF_TURN"),
])
def test_a_bad_variable_fails_start_up_naming_it(env, word):
    with pytest.raises(ConfigError, match=word):
        Settings.from_env(env)


def test_the_end_of_turn_mode_is_the_default_policy_s_latency_versus_accuracy():
    from bot.policy.fusion import care
    balanced, accurate = Settings.from_env({}).policy, Settings.from_env({"DUPLEXBOT_END_OF_TURN": "accurate"}).policy
    assert (balanced.eot_threshold, balanced.max_end_of_turn_silence) == (0.5, 0.75)
    assert (accurate.eot_threshold, accurate.max_end_of_turn_silence) == (0.65, 2.0)
    assert care(balanced.max_end_of_turn_silence) == 1.0 < care(accurate.max_end_of_turn_silence)
    fast = Settings.from_env({"DUPLEXBOT_END_OF_TURN": "fast"}).policy
    assert care(fast.max_end_of_turn_silence) < 1.0


def test_every_component_is_parsed_once_into_frozen_settings():
    s = Settings.from_env({"DUPLEXBOT_PUBLIC_URL": "https://bot.example.com/", "TWILIO_AUTH_TOKEN": "t",
                           "DUPLEXBOT_SIP": "1", "DUPLEXBOT_SIP_PORT": "5070", "DUPLEXBOT_SIP_ADVERTISE": "10.0.0.2",
                           "DUPLEXBOT_SIP_CALL_TOKEN": " tok ", "REDIS_URL": "redis://r:1/0",
                           "DUPLEXBOT_WORKER_ID": "w7", "DUPLEXBOT_ONNX_DEVICE": "cpu",
                           "DUPLEXBOT_SUPERVISOR_TAKEOVER_NOTICE": " One moment. ", "DUPLEXBOT_DATA_DIR": "/d"})
    assert not hasattr(s, "env")  # no raw environment is carried below the root
    assert s.public_base_url == s.twilio.public_base_url == "https://bot.example.com"
    assert s.twilio.auth_token == "t" and s.twilio.voice_url == "https://bot.example.com/twilio/voice"
    assert s.sip.enabled and s.sip.server.port == 5070 and s.sip.call_token == "tok"
    assert s.state.redis_url == "redis://r:1/0" and s.onnx_device == "cpu"
    assert s.supervisor.takeover_notice == "One moment."
    for part in (s, s.twilio, s.sip, s.state, s.supervisor, s.webrtc, s.admission):
        with pytest.raises(dataclasses.FrozenInstanceError):
            part.__setattr__("x", 1)
    # the store gets this bot's worker id and its data dir, one per HTTP port
    store = s.store_settings()
    assert store.worker_id == "w7" and store.embedded_dir == "/d/port-8080" and store.embedded_persist
    other = dataclasses.replace(s, http=dataclasses.replace(s.http, port=9000)).store_settings()
    assert other.embedded_dir == "/d/port-9000"
    # DUPLEXBOT_VALKEY_DIR names the embedded server's own dir and wins
    own = Settings.from_env({"DUPLEXBOT_VALKEY_DIR": "/v", "DUPLEXBOT_DATA_DIR": "/d"}).store_settings()
    assert own.embedded_dir == "/v" and own.embedded_persist


def test_for_tests_points_twilio_at_the_test_server():
    s = Settings.for_tests()
    assert s.public_base_url == s.twilio.public_base_url == f"http://127.0.0.1:{s.http.port}"
    assert s.data_dir is None and s.store_settings().embedded_dir == s.state.embedded_dir  # a temp dir
