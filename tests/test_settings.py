"""Bot settings: fractional digest interval, one clear line naming a malformed variable."""

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.settings import ConfigError, load_settings


def test_fractional_digest_interval_and_outbox_settings(monkeypatch):
    monkeypatch.setenv("DIGEST_INTERVAL_MINUTES", "0.05")
    monkeypatch.setenv("OUTBOX_INTERVAL_SECONDS", "0.3")
    settings = load_settings(_env_file=None)
    assert settings.digest_interval_minutes == 0.05 and settings.outbox_interval_seconds == 0.3


@pytest.mark.parametrize("name, value", [("ALERT_THRESHOLD", "high"), ("DIGEST_INTERVAL_MINUTES", "0"),
                                         ("MODERATOR_USER_IDS", "1,bob"), ("ALERTS_PER_MINUTE", "50")])
def test_malformed_values_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}:"):
        load_settings(_env_file=None)


def test_run_without_a_token_stops_with_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: configuration error: TELEGRAM_BOT_TOKEN is not set")


def test_the_env_example_copied_as_is_is_a_valid_configuration(monkeypatch, tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / ".env.example"
    (tmp_path / ".env").write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.moderator_chat_id is None and settings.moderator_user_ids == frozenset()
    assert settings.alert_threshold == 0.8
