"""Posts that arrive together are classified in one call, off the event loop, and stored in one transaction."""

from __future__ import annotations

import asyncio
import logging
from contextlib import contextmanager

from bot.post import Post
from bot.scan_store import ScanContext, save_many

log = logging.getLogger(__name__)


# Posts handled together (a getUpdates batch holds up to 100) are classified in one call and stored in one
# transaction: a call of the model costs ~8 ms whatever the batch size up to a few hundred posts, and a
# commit one fsync, so one post at a time caps the bot at ~100 posts/s.
MAX_SCAN_BATCH = 256


class ScanBatcher:
    """Collects the posts whose handlers are waiting, classifies them in a worker thread in one call, and
    stores them in arrival order in one transaction. `in_flight` counts posts handed in and not yet stored
    (or queued in memory), so that polling can wait for them before confirming updates to Telegram."""

    def __init__(self):
        self.pending: list[tuple] = []
        self.in_flight = 0
        self._runner: asyncio.Task | None = None

    async def scan(self, svc: ScanContext, post: Post) -> None:
        done = asyncio.get_running_loop().create_future()
        self.pending.append((post, done))
        self.in_flight += 1
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(svc))
        await done

    @contextmanager
    def preparing(self):
        """Count a post whose text is still being made (its image read, seconds) as in flight, so that polling
        does not confirm its update to Telegram before the post is stored."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def _run(self, svc: ScanContext) -> None:
        while self.pending:
            await asyncio.sleep(0)  # let the other posts of the same getUpdates batch join this one
            batch, self.pending = self.pending[:MAX_SCAN_BATCH], self.pending[MAX_SCAN_BATCH:]
            try:
                await self._scan_batch(svc, [post for post, _ in batch])
            finally:
                self.in_flight -= len(batch)
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    @staticmethod
    async def _scan_batch(svc: ScanContext, posts: list[Post]) -> None:
        texts = [post.text for post in posts]
        classifier = svc.classifier
        try:
            # CPU-bound; in a thread it cannot stall polling or the outbox during a burst.
            if len(texts) > 1 and hasattr(classifier, "predict_many"):
                verdicts = await asyncio.to_thread(classifier.predict_many, texts)
            else:
                verdicts = [await asyncio.to_thread(classifier.predict, text) for text in texts]
        except Exception:
            log.exception("classifying %d posts failed; scanning them one by one", len(posts))
            verdicts = []
            for post in posts:
                try:
                    verdicts.append(await asyncio.to_thread(classifier.predict, post.text))
                except Exception:
                    log.exception("classifying chat %d message %d failed", post.chat_id, post.message_id)
                    verdicts.append(None)
        save_many(svc, [(p, v) for p, v in zip(posts, verdicts) if v is not None])
