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
    outbox: Outbox = field(init=False)
    # Scanned posts whose write failed (a locked or read-only database): kept and retried, not dropped.
    unsaved: deque = field(default_factory=lambda: deque(maxlen=10_000))
    _secret: bytes | None = field(default=None, init=False)
    # Posts being classified and stored together.
    scans: ScanBatcher = field(default_factory=ScanBatcher, init=False)
    # Reads the text of the pictures of posts (OCR); None when OCR_ENABLED is off.
    images: ImageReader | None = None

    def __post_init__(self):
        self.outbox = Outbox(self.storage, self.moderator_chat_id, self.alerts_per_minute)

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
