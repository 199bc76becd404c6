"""The table at the end of compliance-bot scan."""

from collections import Counter

from bot.desktop_export import ReadCounts
from bot.scan_summary import FileSummary, ScanSummary, summary_table


def test_files_totals_top_chats_and_the_most_confident_flags():
    first = FileSummary(
        "/x/a.json",
        ReadCounts(messages=10, posts=8, no_text=1, service=1, skipped=0),
        stored=8,
        flags=Counter({"ico": 2}),
    )
    second = FileSummary(
        "/x/b.jsonl",
        ReadCounts(messages=5, posts=4, skipped=1),
        stored=3,
        duplicates=1,
        flags=Counter({"trading_service": 1}),
        error="b.jsonl: truncated",
    )
    summary = ScanSummary(
        files=[first, second],
        flags_by_chat=Counter({"Gems": 2, "OTC": 1}),
        top=[
            (
                0.97,
                -1,
                1,
                {
                    "label": "ico",
                    "score": 0.97,
                    "chat": "Gems",
                    "link": "https://t.me/gems/4",
                    "text": "Presale  now\nbuy",
                },
            )
        ],
    )
    table = summary_table(summary)
    rows = table.splitlines()
    assert rows[0].split() == [
        "file",
        "messages",
        "posts",
        "new",
        "already",
        "stored",
        "no",
        "text",
        "skipped",
        "ico",
        "trading_service",
    ]
    assert rows[2].split() == ["a.json", "10", "8", "8", "0", "2", "0", "2", "0"]
    assert rows[3].split() == ["b.jsonl", "5", "4", "3", "1", "0", "2", "0", "1"]
    assert rows[4].split() == ["total", "15", "12", "11", "1", "2", "2", "2", "1"]
    assert "Flags: 3 (ico 2, trading_service 1)" in table
    assert "Gems" in table and "https://t.me/gems/4" in table and "Presale now buy" in table
    assert summary.problems == 2  # one skipped line, one file that stopped early
