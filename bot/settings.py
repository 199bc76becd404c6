"""The one settings object, read from the environment and ``.env`` once at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")
# Telegram lets a bot send 20 messages a minute to one group: the most alerts a minute, and the default.
TELEGRAM_GROUP_MESSAGES_PER_MINUTE = 20
# The longest period `compliance-bot stats` and /stats report: ten years. Unbounded, 1e6 days (a period starting
# in the year -711), 1e308 or inf started the period before any date can show: a traceback.
MAX_STATS_DAYS = 3650


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    moderator_chat_id: int | None = None
    moderator_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    database_path: Path = DEFAULT_DATA_DIR / "compliance.db"
    model_path: Path = DEFAULT_DATA_DIR / "model.joblib"
    training_data_dir: Path | None = None
    alert_threshold: float = Field(0.8, ge=0.0, le=1.0)
    # A float so that tests (and impatient operators) can ask for a digest every few seconds.
    digest_interval_minutes: float = Field(60, gt=0)
    # Alerts beyond this many a minute are batched into shared messages.
    alerts_per_minute: int = Field(TELEGRAM_GROUP_MESSAGES_PER_MINUTE, ge=1, le=TELEGRAM_GROUP_MESSAGES_PER_MINUTE)
    outbox_interval_seconds: float = Field(2.0, gt=0)
    store_benign_text: bool = False
    # How often the running bot looks whether MODEL_PATH was replaced (by train or rollback); 0: never.
    model_check_seconds: float = Field(5.0, ge=0)
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(8443, ge=1, le=65535)
    # Required with --webhook: Telegram sends it in a header with every update, so others cannot post fake ones.
    webhook_secret: SecretStr | None = None
    # The web preview source (bot/watched_channels.py): public channels read at TELEGRAM_WEB_URL/s/NAME.
    # The base of every page fetched, so that tests and mirrors can stand in for t.me.
    telegram_web_url: str = "https://t.me"
    # How often the running bot reads every watched channel (with up to 10% jitter either way).
    watch_interval_seconds: float = Field(300.0, gt=0)
    # At most one request to t.me every this many seconds, one at a time.
    watch_min_delay_seconds: float = Field(2.0, ge=0)
    # Acting on a flag (issue 15): seconds the bot trusts what getChatMember said of its rights in a chat.
    bot_rights_cache_seconds: float = Field(60.0, ge=0)

    # Reading the text inside images (bot/image_text.py). Images over OCR_MAX_PIXELS are downscaled first (Telegram's
    # largest photos are 2560×2560; 1280×1280 holds a screenshot's text legibly); each image is given up after
    # OCR_TIMEOUT_SECONDS; OCR_CONCURRENCY images are read at once, one core each.
    ocr_enabled: bool = True
    ocr_max_pixels: int = Field(2_000_000, ge=10_000, le=100_000_000)
    ocr_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    ocr_concurrency: int = Field(1, ge=1, le=64)

    @field_validator("moderator_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value):
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be comma-separated numeric Telegram user ids") from None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value):
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters: letters, digits, _ and -")
        return value

    @field_validator("telegram_web_url")
    @classmethod
    def _check_web_url(cls, value):
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://t.me")
        return value.rstrip("/")

    @property
    def telegram_file_url(self) -> str:
        """Where files fetched with getFile are downloaded: the Bot API URL's .../bot made .../file/bot."""
        base = self.telegram_api_url.rstrip("/")
        return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file/bot"

    def require_token(self) -> str:
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and set it in the environment or .env"
            )
        return self.telegram_bot_token.get_secret_value()


def load_settings(**overrides) -> Settings:
    """Read the settings, turning a validation error into one line that names the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from None
