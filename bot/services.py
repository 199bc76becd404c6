"""What the handlers share, built once in :func:`bot.app.build_application` and kept in ``bot_data``.

Handlers read their configuration from here, never from the environment, so tests can hand them a
fake classifier and an in-memory database.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot.alert_actions import AlertActions, RightsCache
from bot.image_text import ImageReader
from bot.outbox import Outbox
from bot.post import Post
from bot.scan_batcher import ScanBatcher
from bot.settings import TELEGRAM_GROUP_MESSAGES_PER_MINUTE
from bot.storage import Storage


class Classifier(Protocol):
    version: str
    manifest: dict

    def predict(self, text: str) -> Any: ...


@dataclass
class Services:
    storage: Storage
    classifier: Classifier
    moderator_chat_id: int | None
    moderator_ids: frozenset[int]
    alert_threshold: float = 0.8
    store_benign_text: bool = False
    # Loads the model again for /reload; built in bot.app so handlers never see paths or the environment.
    loader: Callable[[], Classifier] | None = None
    alerts_per_minute: int = TELEGRAM_GROUP_MESSAGES_PER_MINUTE
    # Swaps in a model file that changed on disk (bot.model_watch); None where there is no file to watch.
    model_watcher: Any = None
    # The listed platforms (bot.watchlist): the stored list compiled for the classifier, and the table's
    # signature when it was read, so that an import is seen without a restart.
    watchlist: Any = None
    watchlist_signature: tuple | None = None
    # The web preview source: the one polite fetcher of t.me pages, shared by the polling job and /watch
    # (bot/watched_channels.py); None where nothing reads the web preview.
    web_fetcher: Any = None
    outbox: Outbox = field(init=False)
    # Scanned posts whose write failed (a locked or read-only database): kept and retried, not dropped.
    unsaved: deque = field(default_factory=lambda: deque(maxlen=10_000))
    _secret: bytes | None = field(default=None, init=False)
    # Posts being classified and stored together.
    scans: ScanBatcher = field(default_factory=ScanBatcher, init=False)
    # Acting on a flag (issue 15): how long the bot's rights in a chat are trusted, and the alerts' action buttons.
    rights_cache_seconds: float = 60.0
    actions: AlertActions = field(init=False)
    # Reads the text of the pictures of posts (OCR); None when OCR_ENABLED is off.
    images: ImageReader | None = None

    def __post_init__(self):
        self.outbox = Outbox(self.storage, self.moderator_chat_id, self.alerts_per_minute)
        self.actions = AlertActions(self.storage, RightsCache(self.rights_cache_seconds), lambda: self.secret)
        self.outbox.extras = self.actions

    @classmethod
    def from_settings(cls, settings, storage: Storage, classifier: Classifier, **kwargs) -> Services:
        """The services the settings describe: one mapping of settings to services for the bot and the CLI."""
        return cls(
            storage=storage,
            classifier=classifier,
            moderator_chat_id=settings.moderator_chat_id,
            moderator_ids=settings.moderator_user_ids,
            alert_threshold=settings.alert_threshold,
            store_benign_text=settings.store_benign_text,
            alerts_per_minute=settings.alerts_per_minute,
            rights_cache_seconds=settings.bot_rights_cache_seconds,
            **kwargs,
        )

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = self.storage.secret()
        return self._secret

    def is_moderator(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.moderator_ids

    def store_scan(self, post: Post, verdict):
        return self.storage.record_scan(
            post, verdict, threshold=self.alert_threshold, store_benign_text=self.store_benign_text
        )


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """What every handler and job receives (PTB's ``ContextTypes``): the bot's services, typed."""

    @property
    def services(self) -> Services:
        return self.bot_data["services"]


# Given to ApplicationBuilder.context_types, so that handlers are called with a BotContext.
CONTEXT_TYPES = ContextTypes(context=BotContext)
