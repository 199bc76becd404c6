"""Which listed platforms a post names or links, and whether a link is a look-alike or mirror of one.

Pure matching: the list comes in as data (:class:`classifier.platforms.Platform`), :class:`Watchlist`
compiles it once into hash maps, and :meth:`Watchlist.match` returns explainable results
(:class:`PlatformMatch`: the rule, the platform, what the post holds and what it matched). The cost of a
post grows with the post, not with the list: every rule is a dictionary or set lookup per host, per
token, or per position with a candidate first character.

The rules, per host name in the post (scheme, path and ``www.`` aside):

- ``domain``: the host is a listed domain or a subdomain of one (a link to the platform itself);
- ``look-alike``: decoded from punycode and folded (accents dropped, Cyrillic and Greek homoglyphs to
  Latin), the host is a listed domain; or a label, or a hyphen-separated part of one, reads as a listed
  name with digits for letters and the usual swaps (``b1nance``, ``0kx``: 0/o, 1/l/i, 3/e, 4/a, 5/s, 7/t,
  8/b, rn/m, vv/w), or is one edit (a letter changed, added or dropped) from a listed name of
  5 letters or more;
- ``mirror``: the listed name stands inside another domain as a label or a hyphen-separated part of one
  (``binance-cn-mirror.example``, ``okx-app-dl.example``), or, for names of 7 letters or more, inside a
  label (``mybinancebonus.example``).

And in the text (normalized: spaced-out letters joined, case folded): ``name``, a listed name or alias as
whole words (``B i n a n c e``, ``gate.io``), or for Chinese anywhere (``币安``, ``火币``).

A ``domain`` or ``name`` match is a mention (news names exchanges all the time); a ``look-alike`` or
``mirror`` is a link built to pass for the platform, which :func:`classifier.model` flags as
``trading_service``. The names matched in hosts are the listed domains' first labels (``binance`` of
binance.com) and the names and aliases that are one word of 3 letters or more; a domain label under 5 letters
counts only when it is also the name or an alias, so that ``gate`` of gate.io does not make every
``golden-gate.example`` a mirror of Gate.io. A name never matches inside a longer word of the text or a host
label unless it has 7 letters or more: ``gate`` in ``delegate.example`` is no match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import tldextract

from classifier.normalize import MAX_CHARS, latin_lookalikes, normalize, strip_invisible
from classifier.platforms import Platform, default_platforms

DOMAIN, NAME, LOOKALIKE, MIRROR = "domain", "name", "look-alike", "mirror"
FLAGGING_RULES = frozenset({LOOKALIKE, MIRROR})
MIN_NAME = 3  # shorter names ("xt") are matched only in the text and as listed domains
MIN_FUZZY = 5  # one edit away, for names of at least this many letters
MAX_HOST, MAX_LABEL = 253, 63  # the DNS's limits on a host name and on one label
HOST_CACHE = 10_000  # host names whose matches are kept
MIN_INSIDE = 7  # a name inside a longer host label, for names of at least this many letters
# Top-level names reserved for documentation and tests (RFC 2606, 6761): not in the public suffix list, but
# lists and examples use them.
RESERVED_SUFFIXES = frozenset({"example", "test", "invalid", "localhost", "local", "onion"})

# The bundled public-suffix snapshot, never fetched: no network at run time.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
# A host name; its last label starts with a letter (no "3.5").
_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)+")
_DOT_LETTER = re.compile(r"\.[^\W\d_]")
_TOP_LABEL = re.compile(r"\.[^\W\d_][\w-]*$")
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
# Digits and letters that pass for one another in a host name, all sent to one letter.
_SKELETON = str.maketrans("01i34578|", "olleastbl")


@dataclass(frozen=True)
class PlatformMatch:
    """One listed platform found in a post: by which rule, what the post holds (``found``: a host name or
    the text matched) and which listed domain or name it matched (``listed``)."""

    platform: str
    rule: str
    found: str
    listed: str

    @property
    def flags(self) -> bool:
        """A look-alike or mirror link: promotion of the platform whatever the words say."""
        return self.rule in FLAGGING_RULES

    def __str__(self) -> str:
        if self.rule == DOMAIN:
            return f"link to {self.platform}: {self.found}"
        if self.rule == NAME:
            return f"names {self.platform}: {self.found}"
        return f"{self.rule} of {self.listed}: {self.found}"

    def to_dict(self) -> dict:
        return {"platform": self.platform, "rule": self.rule, "found": self.found, "listed": self.listed}


def skeleton(label: str) -> str:
    """A host label with look-alike digits and letters sent to one letter (``b1nance`` → ``blnance``)."""
    return label.translate(_SKELETON).replace("rn", "m").replace("vv", "w")


def fold_host(host: str) -> str:
    """A host as it reads to the eye: punycode decoded, accents dropped, Cyrillic and Greek homoglyphs as
    Latin letters, lower case."""
    if host.isascii() and "xn--" not in host:
        return host.casefold()
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass
        labels.append(label)
    text = unicodedata.normalize("NFKD", ".".join(labels))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return latin_lookalikes(text).casefold()


@lru_cache(maxsize=4096)
def _split_host(host: str) -> tuple[str, tuple[str, ...]] | None:
    """The registrable domain of a host and its labels left of the public suffix; None when the host has no
    known suffix (``e.g``, ``file.txt`` with an unknown one) and so is no domain."""
    parts = _EXTRACT(host)
    if parts.suffix:
        return f"{parts.domain}.{parts.suffix}", tuple(x for x in (*parts.subdomain.split("."), parts.domain) if x)
    labels = host.split(".")
    if labels[-1] in RESERVED_SUFFIXES and len(labels) >= 2:
        return ".".join(labels[-2:]), tuple(labels[:-1])
    return None


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by exactly one letter changed, added or dropped (Levenshtein distance 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Watchlist:
    """A list of platforms compiled for matching. Build it once per list (it is immutable and may be shared
    between threads and pickled to worker processes)."""

    def __init__(self, platforms: Iterable[Platform]):
        self.platforms = tuple(platforms)
        self._domains: dict[str, str] = {}  # listed domain → platform
        self._names: dict[str, list[tuple[str, str, str]]] = {}  # skeleton → (platform, name, listed)
        self._near: dict[str, set[str]] = {}  # a skeleton with one letter dropped → skeletons of names
        self._inside: dict[int, set[str]] = {}  # length → skeletons of names matched inside a label
        self._single: dict[str, list[tuple[str, str]]] = {}  # one-word alias → (platform, alias)
        self._runs: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}  # first word → (words, platform, alias)
        # The first two characters of a Chinese alias → its length → alias → (platform, alias).
        self._cjk: dict[str, dict[int, dict[str, tuple[str, str]]]] = {}
        for platform in self.platforms:
            self._add(platform)
        # Tuples, not lists or sets, once built: the cyclic garbage collector stops tracking a tuple of
        # strings, and walking tens of thousands of containers at each collection made matching slower.
        self._names = {k: tuple(v) for k, v in self._names.items()}
        self._near = {k: tuple(v) for k, v in self._near.items()}
        self._single = {k: tuple(v) for k, v in self._single.items()}
        self._runs = {k: tuple(v) for k, v in self._runs.items()}
        self._first_words = frozenset(self._single) | frozenset(self._runs)
        self._host_cache: dict[str, tuple[PlatformMatch, ...]] = {}  # hosts come back: links are reposted
        firsts = sorted({pair[0] for pair in self._cjk})
        self._cjk_first = re.compile("[" + "".join(map(re.escape, firsts)) + "]") if firsts else None

    def _add(self, platform: Platform) -> None:
        name = platform.name
        for domain in platform.domains:
            self._domains.setdefault(domain, name)
            self._domains.setdefault(fold_host(domain), name)
        aliases = [name, *platform.aliases]
        spoken = {normalize(a) for a in aliases}
        # A name read in hosts → the listed domain a look-alike of it imitates: its own domain when the name
        # is a domain's label (htx → htx.com), else the platform's first domain.
        host_names: dict[str, str] = {}
        for domain in platform.domains:
            split = _split_host(fold_host(domain))
            label = split[1][-1] if split and split[1] else ""
            if label.isascii() and label.replace("-", "").isalnum() and (len(label) >= MIN_FUZZY or label in spoken):
                host_names.setdefault(label, domain)
        for alias in sorted(spoken):
            if alias.isascii() and alias.isalnum():
                host_names.setdefault(alias, platform.domains[0] if platform.domains else name)
        for label, listed in host_names.items():
            if len(label) < MIN_NAME:
                continue
            key = skeleton(label)
            self._names.setdefault(key, []).append((name, label, listed))
            if len(key) >= MIN_FUZZY:
                for near in _deletions(key) | {key}:
                    self._near.setdefault(near, set()).add(key)
            if len(key) >= MIN_INSIDE:
                self._inside.setdefault(len(key), set()).add(key)
        for alias in spoken:
            if not alias:
                continue
            if _CJK.match(alias):
                if len(alias) >= 2:  # one Han character alone is part of too many words
                    self._cjk.setdefault(alias[:2], {}).setdefault(len(alias), {})[alias] = (name, alias)
            else:
                words = tuple(_WORD.findall(alias))
                if len(words) == 1 and words[0] == alias:
                    self._single.setdefault(alias, []).append((name, alias))
                elif words:
                    self._runs.setdefault(words[0], []).append((words, name, alias))

    # -- matching ------------------------------------------------------------------------------
    def match(self, text: str, normalized: str | None = None) -> tuple[PlatformMatch, ...]:
        """The listed platforms in a post: links first (look-alikes and mirrors before plain links), then
        names in the text; one match per platform, rule and found string. ``normalized`` is
        :func:`classifier.normalize.normalize` of the text, when already computed."""
        if not self.platforms:
            return ()
        text = text[:MAX_CHARS]
        found: dict[tuple[str, str, str], PlatformMatch] = {}
        if "." in text or "．" in text:
            for host in _hosts(text):
                for m in self._host_matches(host):
                    found.setdefault((m.platform, m.rule, m.found), m)
        for m in self._match_names(normalize(text) if normalized is None else normalized):
            found.setdefault((m.platform, m.rule, m.found), m)
        return tuple(sorted(found.values(), key=lambda m: (not m.flags, m.rule == NAME)))

    def _host_matches(self, host: str) -> tuple[PlatformMatch, ...]:
        matches = self._host_cache.get(host)
        if matches is None:
            if len(self._host_cache) >= HOST_CACHE:
                self._host_cache.clear()
            matches = self._host_cache[host] = tuple(self._match_host(host))
        return matches

    def __getstate__(self):
        return self.__dict__ | {"_host_cache": {}}

    def _listed(self, host: str) -> str | None:
        """The listed domain that is the host or one of its parents."""
        labels = host.split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            if candidate in self._domains:
                return candidate
        return None

    def _match_host(self, host: str) -> list[PlatformMatch]:
        if len(host) > MAX_HOST:  # no such host name exists; a long run of dots and letters is not one
            return []
        listed = self._listed(host)
        if listed is not None:
            return [PlatformMatch(self._domains[listed], DOMAIN, host, listed)]
        folded = fold_host(host)
        if folded != host and (listed := self._listed(folded)) is not None:
            return [PlatformMatch(self._domains[listed], LOOKALIKE, host, listed)]
        split = _split_host(folded)
        if split is None:
            return []
        matches = []
        for label in split[1]:
            parts = label.split("-")
            for part in dict.fromkeys([label.replace("-", ""), *parts] if len(parts) > 1 else parts):
                if part.isascii() and MIN_NAME <= len(part) <= MAX_LABEL:
                    matches += self._match_label(part, host)
        # One match per platform and host; a look-alike says more than a mirror ("b1nance-vip" is both).
        best: dict[str, PlatformMatch] = {}
        for m in matches:
            if m.platform not in best or (best[m.platform].rule == MIRROR and m.rule == LOOKALIKE):
                best[m.platform] = m
        return list(best.values())

    def _match_label(self, part: str, host: str) -> list[PlatformMatch]:
        key = skeleton(part)
        exact = self._names.get(key)
        if exact:
            return [PlatformMatch(p, MIRROR if part == name else LOOKALIKE, host, listed) for p, name, listed in exact]
        if len(key) >= MIN_FUZZY - 1:
            near = {key} | _deletions(key)
            candidates = {c for n in near for c in self._near.get(n, ())}
            hits = [c for c in candidates if len(c) >= MIN_FUZZY and _one_edit(key, c)]
            if hits:
                return [
                    PlatformMatch(p, LOOKALIKE, host, listed) for c in sorted(hits) for p, _, listed in self._names[c]
                ]
        matches = []
        for length, names in self._inside.items():
            for i in range(len(key) - length + 1):
                window = key[i : i + length]
                if window in names:
                    matches += [
                        PlatformMatch(p, MIRROR if name in part else LOOKALIKE, host, listed)
                        for p, name, listed in self._names[window]
                    ]
        return matches

    def _match_names(self, normalized: str) -> list[PlatformMatch]:
        hits: dict[tuple[str, str], None] = {}  # (platform, alias), in order, each once
        if self._first_words:
            words = _WORD.findall(normalized)
            for word in self._first_words.intersection(words):  # walks the post's words, not the list
                hits.update(dict.fromkeys(self._single.get(word, ())))
                hits.update(
                    dict.fromkeys((p, alias) for run, p, alias in self._runs.get(word, ()) if _contains_run(words, run))
                )
        if self._cjk_first is not None:
            for m in self._cjk_first.finditer(normalized):
                start = m.start()
                by_length = self._cjk.get(normalized[start : start + 2])
                if by_length is None:  # most candidate positions stop here, at one lookup
                    continue
                for length, aliases in by_length.items():
                    hit = aliases.get(normalized[start : start + length])
                    if hit is not None:
                        hits[hit] = None
        return [PlatformMatch(platform, NAME, alias, alias) for platform, alias in hits]


def _hosts(text: str) -> list[str]:
    """The host names in a text, lower case, without ``www.``. Only a text with other than ASCII pays for
    NFKC (full-width dots and letters) and for dropping invisible characters, and only one with a dot
    before a letter for the host pattern."""
    if not text.isascii():
        text = strip_invisible(unicodedata.normalize("NFKC", text))
    if not _DOT_LETTER.search(text):
        return []
    # The pattern on the pieces with a dot only: run over the whole text it would try every position.
    hosts = [h.strip("-").casefold().removeprefix("www.") for p in text.split() if "." in p for h in _HOST.findall(p)]
    return list(dict.fromkeys(h for h in hosts if _TOP_LABEL.search(h)))


def _contains_run(words: list[str], run: tuple[str, ...]) -> bool:
    n = len(run)
    return any(tuple(words[i : i + n]) == run for i, w in enumerate(words) if w == run[0])


_default: Watchlist | None = None


def default_watchlist() -> Watchlist:
    """The bundled list, compiled on first use."""
    global _default
    if _default is None:
        _default = Watchlist(default_platforms())
    return _default
