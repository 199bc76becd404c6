"""A polite HTTP client for the web preview: one request at a time per host, spaced, backing off on refusal.

Telegram serves t.me pages to browsers, not to robots; a reader that asks too fast is answered 429. So
every request to a host waits for the one before it (one ``asyncio.Lock`` per host) and starts at least
``min_delay`` seconds after it. A 429 or a 5xx is retried after ``Retry-After`` when the server names a
wait, otherwise after an exponentially growing one (``backoff``, twice as long each time); a time-out or a
dropped connection is retried the same way. The wait also holds every other request to that host: a
refusal is about the host, not the page. A wait longer than ``max_wait`` is not sat through: the request
fails at once with :class:`RateLimited`, and so does every request to the host until the wait is over.

Redirects are not followed: t.me sends a channel without a public post list to its profile page, and the
caller needs to see that (:attr:`Fetched.location`).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

USER_AGENT = "compliance-bot (Telegram compliance scanner; web preview reader)"


class FetchError(Exception):
    """A page could not be fetched, retries included; the message says why in one line."""


class RateLimited(FetchError):
    """The host asked us to wait longer than we wait within one round."""


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    text: str
    location: str | None = None  # where a redirect points


@dataclass
class _Host:
    lock: asyncio.Lock
    next_at: float = 0.0  # monotonic time before which no request may start


class PoliteFetcher:
    """GETs pages under ``base_url`` politely. Shared by everything that reads the web preview in one process,
    so the spacing holds across a polling round and a moderator's /watch alike. Use inside
    ``async with fetcher.session():`` (the HTTP client lives while someone uses it)."""

    def __init__(
        self,
        base_url: str,
        min_delay: float = 2.0,
        *,
        timeout: float = 20.0,
        attempts: int = 4,
        backoff: float = 2.0,
        max_wait: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock=time.monotonic,
        sleep=asyncio.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.min_delay, self.timeout, self.attempts = min_delay, timeout, attempts
        self.backoff, self.max_wait = backoff, max_wait
        self.transport, self.clock, self.sleep = transport, clock, sleep
        self.requests = 0  # requests sent, retries included
        self._hosts: dict[str, _Host] = {}
        self._client: httpx.AsyncClient | None = None
        self._users = 0
        # Made once: building it (loading the CA bundle) costs 0.1 s, most of what opening a client costs.
        self._ssl = httpx.create_ssl_context()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[PoliteFetcher]:
        if self._users == 0:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                verify=self._ssl,
                follow_redirects=False,
                transport=self.transport,
                headers={"User-Agent": USER_AGENT, "Accept-Language": "en"},
            )
        self._users += 1
        try:
            yield self
        finally:
            self._users -= 1
            if self._users == 0 and self._client is not None:
                client, self._client = self._client, None
                await client.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def get(self, path: str, params: dict | None = None) -> Fetched:
        """The page at ``path`` under the base URL: any answer but 429, 5xx and time-outs, which are retried."""
        if self._client is None:
            raise RuntimeError("PoliteFetcher.get outside `async with fetcher.session()`")
        url = self.url(path)
        host = self._hosts.setdefault(urlsplit(url).netloc, _Host(asyncio.Lock()))
        async with host.lock:
            for attempt in range(self.attempts):
                wait = host.next_at - self.clock()
                if wait > self.max_wait:
                    raise RateLimited(f"{urlsplit(url).netloc} asked to wait {wait:.0f} s more")
                if wait > 0:
                    await self.sleep(wait)
                host.next_at = self.clock() + self.min_delay
                self.requests += 1
                try:
                    response = await self._client.get(url, params=params)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    problem, retry_after = f"{type(exc).__name__}", None
                else:
                    if response.status_code != 429 and response.status_code < 500:
                        return Fetched(
                            str(response.url), response.status_code, response.text, response.headers.get("location")
                        )
                    problem = f"HTTP {response.status_code}"
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
                delay = retry_after if retry_after is not None else self.backoff * 2**attempt
                host.next_at = max(host.next_at, self.clock() + delay)
                log.info("%s: %s; retrying in %.1f s", url, problem, delay)
            raise FetchError(f"{problem} after {self.attempts} attempts")


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) in seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
