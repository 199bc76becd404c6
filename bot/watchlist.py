"""The listed platforms kept in the database (``watchlist`` table): import, list, remove, and the live
bot's copy of the list, compiled for the classifier.

A database starts with the bundled list (migration ``m006_platform_watchlist``). ``compliance-bot watchlist
import`` adds or updates platforms by name; the running bot sees the change at its next model check
(:func:`refresh`), without a restart.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
from typing import IO, NamedTuple

from bot.storage import Storage
from classifier import Platform, Watchlist

log = logging.getLogger(__name__)


class ImportResult(NamedTuple):
    """What an import did: platforms added, changed, and already listed exactly so."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0


def _row(platform: Platform) -> dict:
    return {
        "name": platform.name,
        "domains": json.dumps(list(platform.domains)),
        "aliases": json.dumps(list(platform.aliases), ensure_ascii=False),
        "note": platform.note,
    }


def _platform(row: dict) -> Platform:
    return Platform(row["name"], tuple(json.loads(row["domains"])), tuple(json.loads(row["aliases"])), row["note"])


def stored_platforms(storage: Storage) -> list[Platform]:
    """The listed platforms, by name."""
    return [_platform(row) for row in storage.db.query("SELECT * FROM watchlist ORDER BY name COLLATE NOCASE")]


def load_watchlist(storage: Storage) -> Watchlist:
    """The stored list, compiled for the classifier."""
    return Watchlist(stored_platforms(storage))


def import_platforms(storage: Storage, platforms: list[Platform], source: str) -> ImportResult:
    """Add the platforms, or update those already listed under the same name (any case), in one transaction.
    A platform listed exactly so already is left alone: importing the same file twice changes nothing."""
    added = changed = unchanged = 0
    now = storage.clock()
    with storage.transaction():
        for platform in platforms:
            row = _row(platform)
            old = next(storage.db.query("SELECT * FROM watchlist WHERE name = ?", [platform.name]), None)
            if old is not None and all(old[k] == v for k, v in row.items()):
                unchanged += 1
                continue
            storage.db.execute(
                """INSERT INTO watchlist (name, domains, aliases, note, source, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET name = excluded.name, domains = excluded.domains,
                     aliases = excluded.aliases, note = excluded.note, source = excluded.source,
                     updated_at = excluded.updated_at""",
                [*row.values(), source, now],
            )
            if old is None:
                added += 1
            else:
                changed += 1
    return ImportResult(added, changed, unchanged)


def remove_platform(storage: Storage, name: str) -> str | None:
    """Take a platform off the list (its name in any case); the name as it was listed, or None if it was not."""
    with storage.transaction():
        row = next(storage.db.query("SELECT name FROM watchlist WHERE name = ?", [name.strip()]), None)
        if row is not None:
            storage.db.execute("DELETE FROM watchlist WHERE name = ?", [row["name"]])
    return row["name"] if row else None


def signature(storage: Storage) -> tuple:
    """Changes whenever a platform is added, changed or removed."""
    row = next(storage.db.query("SELECT COUNT(*) AS n, MAX(updated_at) AS at, MAX(rowid) AS last FROM watchlist"))
    return row["n"], row["at"], row["last"]


def refresh(svc) -> bool:
    """Give the services' classifier the stored list: read again when the table changed since the last look,
    and handed to a classifier swapped in since (a retrained model, /reload). True when the list was read.
    For start-up; the running bot uses :func:`refresh_in_thread`."""
    platforms, current = _changed(svc)
    if platforms is not None:
        _use(svc, Watchlist(platforms), current)
    _hand_over(svc)
    return platforms is not None


async def refresh_in_thread(svc) -> bool:
    """:func:`refresh`, compiling a changed list in a worker thread: 2,000 platforms take about a second,
    which the event loop must not wait for. The table is read here, in the loop's thread (the connection
    belongs to it)."""
    platforms, current = _changed(svc)
    if platforms is not None:
        _use(svc, await asyncio.to_thread(Watchlist, platforms), current)
    _hand_over(svc)
    return platforms is not None


def _changed(svc) -> tuple[list[Platform] | None, tuple]:
    current = signature(svc.storage)
    if current == svc.watchlist_signature and svc.watchlist is not None:
        return None, current
    return stored_platforms(svc.storage), current


def _use(svc, watchlist: Watchlist, current: tuple) -> None:
    if svc.watchlist_signature is not None:
        log.info("watchlist changed: %d listed platforms", len(watchlist.platforms))
    svc.watchlist, svc.watchlist_signature = watchlist, current


def _hand_over(svc) -> None:
    if getattr(svc.classifier, "watchlist", None) is not svc.watchlist:
        svc.classifier.watchlist = svc.watchlist


def write_platforms(platforms: list[Platform], out: IO[str], fmt: str) -> None:
    """The platforms as a text table for people, or as CSV or JSONL that ``watchlist import`` reads again."""
    if fmt == "jsonl":
        for p in platforms:
            out.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(["name", "domains", "aliases", "note"])
        writer.writerows([p.name, " ".join(p.domains), " ".join(p.aliases), p.note] for p in platforms)
    else:
        for p in platforms:
            line = f"{p.name}: {' '.join(p.domains) or '-'}" + (
                f" · aliases {' '.join(p.aliases)}" if p.aliases else ""
            )
            out.write(line + (f" · {p.note}" if p.note else "") + "\n")
