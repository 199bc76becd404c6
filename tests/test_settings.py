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


@pytest.mark.parametrize(
    "name, value",
    [
        ("ALERT_THRESHOLD", "high"),
        ("DIGEST_INTERVAL_MINUTES", "0"),
        ("MODERATOR_USER_IDS", "1,bob"),
        ("ALERTS_PER_MINUTE", "50"),
    ],
)
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


def webhook_env(monkeypatch, tmp_path, model_path, **env):
    monkeypatch.chdir(tmp_path)
    values = {
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_API_URL": "http://127.0.0.1:9/bot",
        "WEBHOOK_URL": "https://bot.example/hook",
        "MODERATOR_CHAT_ID": "-100123",
        "MODERATOR_USER_IDS": "111",
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "MODEL_PATH": str(model_path),
    } | env
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    "secret, message",
    [
        (None, "WEBHOOK_SECRET is not set: required with --webhook"),
        ("has spaces", "WEBHOOK_SECRET: Value error, must be 1-256 characters"),
    ],
)
def test_webhook_mode_requires_a_well_formed_secret(monkeypatch, tmp_path, model_path, secret, message):
    webhook_env(monkeypatch, tmp_path, model_path, WEBHOOK_SECRET=secret)
    result = CliRunner().invoke(cli, ["run", "--webhook"])
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"Error: configuration error: {message}")
    assert len(result.output.strip().splitlines()) == 1


def test_webhook_secret_is_given_to_telegram(monkeypatch, tmp_path, model_path):
    from telegram.ext import Application

    import bot.app

    webhook_env(monkeypatch, tmp_path, model_path, WEBHOOK_SECRET="s3cret_-Token")
    seen = {}
    monkeypatch.setattr(bot.app, "configure_logging", lambda token: None)
    monkeypatch.setattr(
        Application,
        "run_webhook",
        lambda self, **kwargs: seen.update(kwargs) or self.bot_data["services"].storage.close(),
    )
    bot.app.run_bot(load_settings(), webhook=True)
    assert seen["secret_token"] == "s3cret_-Token" and seen["webhook_url"] == "https://bot.example/hook"


@pytest.mark.parametrize("missing", ["MODERATOR_CHAT_ID", "MODERATOR_USER_IDS"])
def test_run_requires_the_moderators_other_commands_do_not(monkeypatch, tmp_path, model_path, missing):
    webhook_env(monkeypatch, tmp_path, model_path, **{missing: None})
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"Error: configuration error: {missing} is not set: required for run")
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["check", "Presale of $MOON, buy now"])
    assert result.exit_code == 0 and "ico" in result.output


@pytest.mark.parametrize(
    "name, value",
    [("OCR_ENABLED", "perhaps"), ("OCR_MAX_PIXELS", "100"), ("OCR_TIMEOUT_SECONDS", "0"), ("OCR_CONCURRENCY", "0")],
)
def test_malformed_ocr_settings_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}:"):
        load_settings(_env_file=None)


def test_ocr_settings_and_the_file_url_getfile_downloads_from(monkeypatch):
    monkeypatch.setenv("OCR_ENABLED", "false")
    monkeypatch.setenv("OCR_CONCURRENCY", "2")
    settings = load_settings(_env_file=None)
    assert (settings.ocr_enabled, settings.ocr_concurrency, settings.ocr_max_pixels) == (False, 2, 2_000_000)
    assert settings.telegram_file_url == "https://api.telegram.org/file/bot"
    local = load_settings(_env_file=None, telegram_api_url="http://127.0.0.1:8081/bot/")
    assert local.telegram_file_url == "http://127.0.0.1:8081/file/bot"
