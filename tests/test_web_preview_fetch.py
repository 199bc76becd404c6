"""The polite fetcher against the fake t.me over HTTP: spacing, one request at a time, back-off, time-outs."""

import asyncio

import pytest

from bot.web_preview_fetch import FetchError, PoliteFetcher, RateLimited, retry_after_seconds


def fetcher(web_preview, **kwargs) -> PoliteFetcher:
    return PoliteFetcher(web_preview.base_url, **({"min_delay": 0.0, "backoff": 0.05} | kwargs))


async def test_requests_to_a_host_go_one_at_a_time_and_spaced(web_preview):
    web_preview.latency = 0.05
    for name in ("alpha", "bravo", "charlie"):
        web_preview.channel(name).post(1, "hello")
    async with fetcher(web_preview, min_delay=0.3).session() as f:
        answers = await asyncio.gather(*(f.get(f"s/{name}") for name in ("alpha", "bravo", "charlie")))
    assert [a.status for a in answers] == [200, 200, 200]
    assert web_preview.max_in_flight == 1
    starts = [r.at for r in web_preview.requests]
    assert all(b - a >= 0.29 for a, b in zip(starts, starts[1:])), starts


async def test_429_is_retried_after_retry_after(web_preview):
    web_preview.channel("gems").post(1, "hello")
    web_preview.fail("gems", 429, retry_after=1)
    async with fetcher(web_preview).session() as f:
        answer = await f.get("s/gems")
    assert answer.status == 200 and "hello" in answer.text
    first, second = web_preview.requests_for("gems")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # Retry-After: 1 was honoured


async def test_5xx_backs_off_exponentially_then_gives_up(web_preview):
    web_preview.channel("gems").post(1, "hello")
    web_preview.fail("gems", 503, times=3)
    async with fetcher(web_preview, attempts=3, backoff=0.1).session() as f:
        with pytest.raises(FetchError, match="HTTP 503 after 3 attempts"):
            await f.get("s/gems")
        gaps = [b.at - a.at for a, b in zip(web_preview.requests, web_preview.requests[1:])]
        assert gaps[0] >= 0.09 and gaps[1] >= 0.19  # 0.1 s, then twice that
        assert (await f.get("s/gems")).status == 200  # the server recovered: so does the fetcher


async def test_a_wait_longer_than_max_wait_fails_at_once_and_holds_the_host(web_preview):
    web_preview.channel("gems").post(1, "hello")
    web_preview.fail("gems", 429, retry_after=3600)
    async with fetcher(web_preview, max_wait=5).session() as f:
        with pytest.raises(RateLimited):
            await f.get("s/gems")
        with pytest.raises(RateLimited, match="asked to wait"):
            await f.get("s/other")
    assert len(web_preview.requests) == 1  # the host was not asked again


async def test_a_time_out_is_retried(web_preview):
    web_preview.channel("gems").post(1, "hello")
    web_preview.stall("gems", 1.0)
    async with fetcher(web_preview, timeout=0.3).session() as f:
        answer = await f.get("s/gems")
    assert answer.status == 200 and len(web_preview.requests_for("gems")) == 2


async def test_redirects_are_returned_not_followed(web_preview):
    web_preview.channel("closedclub", "Closed Club", kind="private")
    async with fetcher(web_preview).session() as f:
        answer = await f.get("s/closedclub")
    assert answer.status == 302 and answer.location == "/closedclub"


def test_retry_after_values():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait


async def test_get_outside_a_session_is_refused(web_preview):
    with pytest.raises(RuntimeError, match="session"):
        await fetcher(web_preview).get("s/gems")
