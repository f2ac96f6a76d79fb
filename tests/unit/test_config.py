"""Settings: the shipped file, environment overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import PACKAGED_CONFIG_PATH, ConfigError, load_settings
from tests.conftest import REPO


def test_packaged_defaults_are_the_shipped_config_file() -> None:
    assert PACKAGED_CONFIG_PATH.read_bytes() == (REPO / "config" / "agent.toml").read_bytes()


def test_shipped_config_loads_and_watches_nothing() -> None:
    settings = load_settings(REPO / "config" / "agent.toml", environ={})
    assert settings.limits.max_block_bytes == 2 * 1024 * 1024
    assert settings.gateways.urls, "scans need default gateways"
    import tomllib

    assert "targets" not in tomllib.loads((REPO / "config" / "agent.toml").read_text())


def test_environment_overrides_the_file_and_splits_lists(tmp_path: Path) -> None:
    env = {
        "DWEB_AGENT_GATEWAYS_URLS": "http://127.0.0.1:1, http://127.0.0.1:2",
        "DWEB_AGENT_LIMITS_MAX_ITEM_BYTES": "1000",
        "DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path),
    }
    settings = load_settings(REPO / "config" / "agent.toml", environ=env)
    assert settings.gateways.urls == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert settings.limits.max_item_bytes == 1000 and settings.agent.data_dir == tmp_path


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[limits]\nmax_items = 7\n")
    assert load_settings(environ={"DWEB_AGENT_CONFIG": str(path)}).limits.max_items == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DWEB_AGENT_LIMITS_NOPE": "1"}, "has no key 'nope'"),
        ({"DWEB_AGENT_WHATEVER_X": "1"}, "no configuration section"),
        ({"DWEB_AGENT_LIMITS_MAX_ITEMS": "-5"}, "greater than 0"),
    ],
)
def test_bad_overrides_are_errors_not_silent_defaults(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(REPO / "config" / "agent.toml", environ=env)


def test_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[limits\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(broken, environ={})


def test_loaded_settings_cannot_be_changed_in_place() -> None:
    """A command or request that wants other values derives a copy; the loaded settings,
    shared by every call of a long-lived process, stay as loaded."""
    from pydantic import ValidationError

    settings = load_settings(REPO / "config" / "agent.toml", environ={})
    with pytest.raises(ValidationError, match="frozen"):
        settings.media.video_fps_sample = 0
    with pytest.raises(ValidationError, match="frozen"):
        settings.media = settings.media.model_copy(update={"video_fps_sample": 0.0})
    every_frame = settings.model_copy(update={"media": settings.media.model_copy(update={"video_fps_sample": 0.0})})
    assert every_frame.media.video_fps_sample == 0.0 and settings.media.video_fps_sample == 1.0
