"""Listed platforms: the exchanges and trading platforms a watchlist names, and the files they come in.

A compliance team receives such lists (a regulator's warning list, a platform's own blocklist) as CSV with
a header or as JSONL, one platform a row: ``name`` (required), ``domains`` and ``aliases`` (space-separated,
or JSON lists in JSONL) and ``note``. The list bundled with the package, ``data/platforms.csv``, is the
default: the exchanges the evidence step names and the list a new database starts with.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from urllib.parse import urlsplit

FIELDS = ("name", "domains", "aliases", "note")
MAX_NAME = 100
MAX_ITEMS = 200  # domains or aliases of one platform: a list is for people, and each one costs memory
MAX_NOTE = 1000
_SPLIT = re.compile(r"[\s,]+")
# A host name as people write it in a list: letters (any script, for IDN), digits and hyphens, dot-separated,
# at least two labels. Scheme, "www." and a path are taken off first.
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_][\w-]{0,62}")


@dataclass(frozen=True)
class Platform:
    """One listed platform: its name, the domains it runs on, other names and spellings, and a note."""

    name: str
    domains: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "domains": list(self.domains), "aliases": list(self.aliases), "note": self.note}


class PlatformError(ValueError):
    """A row that cannot be a platform; the message says why."""


def clean_domain(value: str) -> str:
    """A listed domain as matching reads it: lower case, no scheme, ``www.``, port, path or final dot."""
    text = unicodedata.normalize("NFKC", value.strip()).casefold()
    try:
        host = (urlsplit(text if "://" in text else "//" + text).hostname or "") if text else ""
    except ValueError:  # "[", an unclosed IPv6 bracket
        host = ""
    host = host.rstrip(".").removeprefix("www.")
    if not _DOMAIN.fullmatch(host):
        raise PlatformError(f"{value!r} is not a domain (expected something like example.com)")
    return host


def _items(value, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in _SPLIT.split(value) if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise PlatformError(f"{field} must be text (space-separated) or a list of texts, not {type(value).__name__}")


def platform_from(fields: dict) -> Platform:
    """A platform from one row's fields; raises PlatformError naming what is wrong."""
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PlatformError("name is missing or empty")
    name = " ".join(unicodedata.normalize("NFKC", name).split())
    if len(name) > MAX_NAME:
        raise PlatformError(f"name is longer than {MAX_NAME} characters")
    domains = list(dict.fromkeys(clean_domain(d) for d in _items(fields.get("domains"), "domains")))
    aliases = list(dict.fromkeys(unicodedata.normalize("NFKC", a) for a in _items(fields.get("aliases"), "aliases")))
    if len(domains) > MAX_ITEMS or len(aliases) > MAX_ITEMS:
        raise PlatformError(f"more than {MAX_ITEMS} domains or aliases")
    note = fields.get("note") or ""
    if not isinstance(note, str):
        raise PlatformError("note must be text")
    if len(note) > MAX_NOTE:
        raise PlatformError(f"note is longer than {MAX_NOTE} characters")
    return Platform(name, tuple(domains), tuple(aliases), note.strip())


@dataclass(frozen=True)
class RowProblem:
    """A row of a list file that was not read: its line number and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def read_platforms(text: str) -> tuple[list[tuple[int, Platform]], list[RowProblem]]:
    """The platforms of a list file's text (JSONL when its first character is ``{``, else CSV with a
    header), each with its line number, and the rows that could not be read. A name given twice is a
    problem on its second line; the first stands."""
    text = text.removeprefix("\ufeff")
    rows = _jsonl_rows(text) if text.lstrip().startswith("{") else _csv_rows(text)
    found: list[tuple[int, Platform]] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for line, fields in rows:
        try:
            if isinstance(fields, PlatformError):
                raise fields
            platform = platform_from(fields)
        except PlatformError as exc:
            problems.append(RowProblem(line, str(exc)))
            continue
        key = platform.name.casefold()
        if key in first_line:
            problems.append(RowProblem(line, f"{platform.name!r} is already given on line {first_line[key]}"))
            continue
        first_line[key] = line
        found.append((line, platform))
    return found, problems


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict | PlatformError]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield number, PlatformError(f"not JSON ({exc})")
            continue
        yield number, fields if isinstance(fields, dict) else PlatformError("not a JSON object")


def _csv_rows(text: str) -> Iterator[tuple[int, dict | PlatformError]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for row in _rows(reader):
        if isinstance(row, PlatformError):
            yield reader.line_num, row
            if header is None:
                return
        elif not any(cell.strip() for cell in row):
            continue
        elif header is None:
            header = [cell.strip().casefold() for cell in row]
            if "name" not in header:
                yield reader.line_num, PlatformError(f"the header has no 'name' column (columns: {', '.join(FIELDS)})")
                return
        elif len(row) > len(header):
            yield reader.line_num, PlatformError(f"{len(row)} cells for {len(header)} columns")
        else:
            yield reader.line_num, {k: v for k, v in zip(header, row) if k in FIELDS}


def _rows(reader) -> Iterator[list[str] | PlatformError]:
    """The rows of a CSV reader; a row it cannot read (a NUL, an unclosed quote) as a PlatformError."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield PlatformError(f"not CSV ({exc})")


@cache
def default_platforms() -> tuple[Platform, ...]:
    """The bundled list (``classifier/data/platforms.csv``)."""
    text = files("classifier").joinpath("data/platforms.csv").read_text(encoding="utf-8")
    found, problems = read_platforms(text)
    if problems:  # a broken bundled file is a packaging error, not a user's
        raise RuntimeError(f"classifier/data/platforms.csv: {problems[0]}")
    return tuple(p for _, p in found)
