"""Picking up a retrained model while the bot runs.

``compliance-bot train`` and ``model rollback`` replace the model file and then its manifest, each
atomically. A repeating job compares the pair's modification times and sizes with what it saw last; on a
change it loads the new model in a thread (checking its sha256 against the manifest) and swaps it into
the services. Scans already running finish with the old model and the next ones use the new one, so no
update is dropped. A model that fails to load is logged once, and the running model stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

from classifier import manifest_path

log = logging.getLogger(__name__)


class ModelWatcher:
    def __init__(self, model_path: Path, load: Callable):
        self.model_path = Path(model_path)
        self.load = load
        self.seen = self.signature()
        self.failed = None

    def signature(self):
        try:
            parts = [self.model_path.stat(), manifest_path(self.model_path).stat()]
        except OSError:
            return None
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in parts)

    def _manifest_version(self) -> str | None:
        try:
            return json.loads(manifest_path(self.model_path).read_text(encoding="utf-8")).get("model_version")
        except (OSError, ValueError):
            return None

    async def check(self, svc) -> bool:
        """Swap in the model file if it changed since the last look; True when it did."""
        signature = self.signature()
        if signature is None or signature == self.seen or signature == self.failed:
            return False
        if self._manifest_version() == getattr(svc.classifier, "version", None):
            self.seen = signature  # touched, or already loaded by /reload
            return False
        try:
            new = await asyncio.to_thread(self.load)
        except Exception as exc:  # ModelLoadError, a half-written pair: keep the running model
            if self.signature() == signature:
                self.failed = signature
                log.error(
                    "the model file changed but cannot be loaded; still using %s: %s", svc.classifier.version, exc
                )
            return False
        old = svc.classifier.version
        svc.classifier = new
        self.seen, self.failed = signature, None
        log.info("model file changed: now using %s (was %s)", new.version, old)
        return True
