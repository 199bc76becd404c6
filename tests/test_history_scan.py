"""`compliance-bot scan`: Telegram Desktop exports and JSONL into the bot's database, bad input named and skipped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import CliApp, cli
from tests.conftest import MODERATOR_CHAT_ID, TEST_TOKEN, interruptible
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "telegram_export_channel.json"
SAMPLE_CHAT = -1001777000111


def env_for(tmp_path, model=None, **extra) -> dict:
    return {
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "MODEL_PATH": str(model or tmp_path / "model.joblib"),
        "TELEGRAM_BOT_TOKEN": None,
        "MODERATOR_CHAT_ID": None,
        "TELEGRAM_API_URL": None,
    } | extra


@pytest.fixture
def fake_model():
    """A CliApp for one invocation, with the keyword classifier instead of the trained model."""
    return lambda: CliApp(classifier=FakeClassifier())


def rows(tmp_path, sql, *params):
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        return conn.execute(sql, params).fetchall()


def message(mid, text, **extra):
    return {
        "id": mid,
        "type": "message",
        "date": "2024-05-01T10:00:00",
        "date_unixtime": str(1714557600 + mid),
        "text": text,
    } | extra


def test_the_sample_export_scans_on_a_fresh_machine(tmp_path, model_path):
    result = CliRunner().invoke(cli, ["scan", str(SAMPLE)], env=env_for(tmp_path, model_path))
    assert result.exit_code == 0, result.output
    header, _, line = result.output.splitlines()[:3]
    assert line.split()[:7] == ["telegram_export_channel.json", "32", "30", "30", "0", "2", "0"]
    assert "Top chats by flags:" in result.output and "Most confident flags:" in result.output
    assert rows(tmp_path, "SELECT id, type, title FROM chats") == [(SAMPLE_CHAT, "channel", "Crypto Morning Brief")]
    labels = dict(rows(tmp_path, "SELECT message_id, label FROM posts"))
    assert len(labels) == 30
    assert labels[16] == "trading_service"  # Bybit sign-up link with a referral code
    assert labels[7] == "trading_service"  # 长期收U … OTC desk
    assert labels[4] == "benign" and labels[6] == "benign"  # news about exchanges being blocked, an SEC suit
    flags = rows(tmp_path, "SELECT COUNT(*) FROM flags")[0][0]
    assert 8 <= flags <= 16 and f"Flags: {flags}" in result.output
    # The URL behind a text link is part of what was scanned and stored.
    [(text,)] = rows(tmp_path, "SELECT text FROM posts WHERE message_id = 16")
    assert text.endswith("\nhttps://www.bybit.com/invite?ref=CMB2024")
    # History does not alert one by one: no alert is marked for immediate sending.
    assert rows(tmp_path, "SELECT COUNT(*) FROM alerts WHERE notify = 1") == [(0,)]


async def test_a_post_seen_live_and_in_an_export_is_one_row(bot_factory, tmp_path, fake_model):
    harness = await bot_factory()
    chat = {"id": SAMPLE_CHAT, "type": "channel", "title": "Crypto Morning Brief", "username": "cryptomorningbrief"}
    live_text = "Open a Bybit account with our link and get a $30,000 bonus pack 💰 Register — referral code CMB2024"
    entity = {
        "type": "text_link",
        "offset": live_text.index("Register") + 1,
        "length": 8,
        "url": "https://www.bybit.com/invite?ref=CMB2024",
    }
    await harness.send(U.channel_post(16, live_text, chat=chat, entities=[entity]))
    result = CliRunner().invoke(cli, obj=fake_model(), args=["scan", str(SAMPLE)], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2].split()[:5] == ["telegram_export_channel.json", "32", "30", "29", "1"]
    assert rows(tmp_path, "SELECT versions FROM posts WHERE message_id = 16") == [(1,)]
    # The export knows no username; the one seen live is kept, so links stay public links.
    assert rows(tmp_path, "SELECT username FROM chats") == [("cryptomorningbrief",)]


def test_an_account_export_with_odd_messages_is_read_and_every_problem_named(tmp_path, fake_model):
    export = {
        "about": "…",
        "chats": {
            "about": "…",
            "list": [
                {
                    "name": "Gems",
                    "type": "private_supergroup",
                    "id": 1500000001,
                    "messages": [
                        message(
                            1,
                            [
                                "Join the ",
                                {"type": "bold", "text": "presale"},
                                " now at ",
                                {"type": "text_link", "text": "this site", "href": "https://gem-sale.example"},
                            ],
                        ),
                        message(2, "VIP signals every day", forwarded_from="Pump Kings"),
                        {"type": "message", "text": "no id here"},
                        message(4, ["ok", 42]),
                        "not a message",
                        message(6, {"text": "a dict"}),
                        {"id": 7, "type": "service", "action": "pin_message", "text": ""},
                        message(8, "", photo="photos/1.jpg"),
                    ],
                },
                {
                    "name": "Old group",
                    "type": "private_group",
                    "id": 4000001,
                    "messages": [message(1, "airdrop claim today")],
                },
                {"name": "Alice", "type": "personal_chat", "id": 77, "messages": [message(1, "hi, lunch?")]},
                {"name": "Strange", "type": "hologram", "id": 5, "messages": [message(1, "presale")]},
            ],
        },
        "left_chats": {
            "about": "…",
            "list": [
                {
                    "name": "Left channel",
                    "type": "public_channel",
                    "id": 1600000002,
                    "messages": [message(3, "referral code X1")],
                },
            ],
        },
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    result = CliRunner().invoke(cli, obj=fake_model(), args=["scan", str(path)], env=env_for(tmp_path))
    assert result.exit_code == 1
    out = result.output
    assert "chat 'Gems' (id 1500000001) message #3: no numeric \"id\" (None); skipped" in out
    assert 'message id 4: a part of "text" is a int, expected a string or an entity object; skipped' in out
    assert "message #5: a string, not a message object; skipped" in out
    assert 'message id 6: "text" is a dict, expected a string or a list; skipped' in out
    assert "chat 'Strange' (id 5): unknown chat type 'hologram'" in out
    stored = rows(tmp_path, "SELECT chat_id, message_id, label FROM posts ORDER BY chat_id, message_id")
    assert stored == [
        (-1001600000002, 3, "trading_service"),
        (-1001500000001, 1, "ico"),
        (-1001500000001, 2, "trading_service"),
        (-4000001, 1, "ico"),
        (77, 1, "benign"),
    ]
    [(text,)] = rows(tmp_path, "SELECT text FROM posts WHERE message_id = 1 AND chat_id = -1001500000001")
    assert text == "Join the presale now at this site\nhttps://gem-sale.example"
    [(text,)] = rows(tmp_path, "SELECT text FROM posts WHERE message_id = 2")
    assert text == "VIP signals every day\nPump Kings"
    assert "6 problems: see the messages above" in out  # five named, and the message of the unknown chat


def test_truncated_and_non_json_files_keep_what_was_read_and_the_next_file_is_scanned(tmp_path, fake_model):
    truncated = tmp_path / "truncated.json"
    data = SAMPLE.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    not_json = tmp_path / "notes.json"
    not_json.write_text("these are my notes, not JSON\n")
    not_export = tmp_path / "other.json"
    not_export.write_text('{"hello": [1, 2, 3]}')
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        '{"text": "Presale live", "chat_id": -1009, "message_id": 1, "chat_title": "X", "date": 1700000000}\n'
        '{"text": "broken\n'
        '{"text": "no ids"}\n'
        "[1, 2]\n"
        '{"text": "just chat", "chat_id": -1009, "message_id": 2, "date": "2024-01-02T03:04:05"}\n',
        encoding="utf-8",
    )
    missing = tmp_path / "missing.json"
    result = CliRunner().invoke(
        cli,
        obj=fake_model(),
        args=["scan", str(truncated), str(not_json), str(not_export), str(missing), str(posts)],
        env=env_for(tmp_path),
    )
    assert result.exit_code == 1
    out = result.output
    assert "truncated.json: the JSON stops being valid after" in out and "the file is truncated or damaged" in out
    assert f"{not_json}: not a JSON file (lexical error" in out
    assert f"{not_export}: not a Telegram Desktop export" in out
    assert f"{missing}: cannot open (No such file or directory)" in out
    assert f"{posts}:2: not valid JSON" in out
    assert f'{posts}:3: missing "chat_id" (an integer)' in out
    assert f"{posts}:4: expected a JSON object, got list" in out
    read_before_the_cut = rows(tmp_path, "SELECT COUNT(*) FROM posts WHERE chat_id = ?", SAMPLE_CHAT)[0][0]
    assert 10 <= read_before_the_cut < 30  # everything before the damage is stored
    assert rows(tmp_path, "SELECT message_id, date FROM posts WHERE chat_id = -1009 ORDER BY message_id") == [
        (1, 1700000000.0),
        (2, 1704164645.0),
    ]


def test_alert_sends_one_digest_of_the_scan(tmp_path, fake_model):
    from tests.fakes.bot_api import FakeBotApiServer

    server = FakeBotApiServer().start()
    try:
        env = env_for(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TEST_TOKEN,
            TELEGRAM_API_URL=server.base_url,
            MODERATOR_CHAT_ID=str(MODERATOR_CHAT_ID),
        )
        result = CliRunner().invoke(cli, obj=fake_model(), args=["scan", "--alert", str(SAMPLE)], env=env)
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert "Digest of" in result.output and "sent to the moderators" in result.output
    [digest] = [c for c in server.api.calls_to("sendMessage") if c.params["chat_id"] == MODERATOR_CHAT_ID]
    text = digest.params["text"]
    assert "Scan digest" in text and "Crypto Morning Brief" in text and "Top flagged posts" in text
    assert rows(tmp_path, "SELECT kind, status FROM outbox") == [("digest", "sent")]


def test_alert_without_a_token_is_refused_before_scanning(tmp_path, fake_model):
    result = CliRunner().invoke(cli, obj=fake_model(), args=["scan", "--alert", str(SAMPLE)], env=env_for(tmp_path))
    assert result.exit_code == 1 and "--alert: TELEGRAM_BOT_TOKEN is not set" in result.output
    assert not (tmp_path / "bot.db").exists()


@pytest.mark.parametrize("command", ["scan", "export", "stats"])
def test_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output and len(result.output.splitlines()) > 5


# -- classifying in worker processes (--workers) ----------------------------------------------------------

# Columns that hold the time of the run, which differs between two scans of the same files.
RUN_TIMES = {"scanned_at", "seen_at", "created_at", "updated_at", "first_seen"}


def database_contents(db: Path) -> dict:
    """Every row of every table of the bot's, without the times of the run."""
    with sqlite3.connect(db) as conn:
        tables = [
            t
            for (t,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE '\\_%' ESCAPE '\\' AND name != 'meta'"
            )
        ]
        contents = {}
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY rowid")
            keep = [i for i, c in enumerate(cursor.description) if c[0] not in RUN_TIMES]
            contents[table] = [tuple(row[i] for i in keep) for row in cursor]
    return contents


def clean_exit(result, code: int) -> None:
    """The exit code, and no exception behind it (CliRunner keeps a traceback out of the output)."""
    assert result.exit_code == code, result.output
    assert not isinstance(result.exception, Exception), repr(result.exception)
    assert "Traceback" not in result.output


def edits_jsonl(path: Path) -> Path:
    """Posts of one chat, then edits and repeats of them a few batches later: the order they are stored in
    decides their versions."""
    lines = [
        {"text": f"Market update number {n}: volumes are thin", "chat_id": -1009, "message_id": n} for n in range(1, 16)
    ]
    lines += [
        {"text": "Presale stage 2 is live, buy NOVA now before the price goes up", "chat_id": -1009, "message_id": 3},
        {"text": "Market update number 5: volumes are thin", "chat_id": -1009, "message_id": 5},  # the same text
        {"text": "VIP signals: join our pump group, referral code X1", "chat_id": -1009, "message_id": 8},
    ]
    lines += [{"text": f"Filler post {n}", "chat_id": -1009, "message_id": n} for n in range(100, 112)]
    lines += [
        {"text": "Back to normal: the presale was cancelled", "chat_id": -1009, "message_id": 3},
        {"text": "Presale stage 3 is live, buy NOVA now", "chat_id": -1009, "message_id": 3},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_two_workers_store_exactly_what_one_worker_stores(tmp_path, model_path, monkeypatch):
    monkeypatch.setattr("bot.history_scan.BATCH", 7)  # many batches in flight, edits of a post in different batches
    posts = edits_jsonl(tmp_path / "edits.jsonl")
    outputs = {}
    for workers in (1, 2):
        env = env_for(tmp_path, model_path, DATABASE_PATH=str(tmp_path / f"w{workers}.db"))
        result = CliRunner().invoke(cli, ["scan", "--workers", str(workers), str(SAMPLE), str(posts)], env=env)
        clean_exit(result, 0)
        outputs[workers] = result.output
    assert outputs[2] == outputs[1]
    one, two = database_contents(tmp_path / "w1.db"), database_contents(tmp_path / "w2.db")
    assert two == one
    # What was compared has new versions, a duplicate and flags, not only new posts.
    db = tmp_path / "w1.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT versions FROM posts WHERE chat_id = -1009 AND message_id = 3").fetchone() == (4,)
        assert conn.execute("SELECT COUNT(*) FROM flags WHERE chat_id = -1009").fetchone()[0] >= 2
    assert outputs[1].splitlines()[3].split()[:5] == ["edits.jsonl", "32", "32", "31", "1"]


def test_a_damaged_export_with_workers_keeps_what_was_read_and_scans_the_next_file(tmp_path, fake_model, monkeypatch):
    monkeypatch.setattr("bot.history_scan.BATCH", 4)
    truncated = tmp_path / "truncated.json"
    data = SAMPLE.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    posts = edits_jsonl(tmp_path / "edits.jsonl")
    stored = {}
    for workers in (1, 2):
        env = env_for(tmp_path, DATABASE_PATH=str(tmp_path / f"w{workers}.db"))
        result = CliRunner().invoke(
            cli, obj=fake_model(), args=["scan", "--workers", str(workers), str(truncated), str(posts)], env=env
        )
        clean_exit(result, 1)
        assert "truncated.json: the JSON stops being valid after" in result.output
        stored[workers] = database_contents(tmp_path / f"w{workers}.db")
    assert stored[2] == stored[1]
    from_export = [row for row in stored[2]["posts"] if row[0] == SAMPLE_CHAT]
    assert 10 <= len(from_export) < 30  # everything read before the damage, in whole and partial batches
    assert len([row for row in stored[2]["posts"] if row[0] == -1009]) == 27  # and the next file


class DyingClassifier(FakeClassifier):
    """Kills the process it runs in at the post that says so: a worker dying as if from the OOM killer."""

    def predict_many(self, texts):
        if any("DIE" in t for t in texts):
            import os

            os._exit(9)
        return super().predict_many(texts)


def numbered_posts(path: Path, count: int, special: dict | None = None) -> Path:
    special = special or {}
    path.write_text(
        "".join(
            json.dumps({"text": special.get(n, f"post {n} presale"), "chat_id": -1009, "message_id": n}) + "\n"
            for n in range(1, count + 1)
        ),
        encoding="utf-8",
    )
    return path


def test_a_worker_that_dies_stops_the_scan_with_a_message_and_keeps_what_was_stored(tmp_path, monkeypatch):
    import multiprocessing

    monkeypatch.setattr("bot.history_scan.BATCH", 5)
    posts = numbered_posts(tmp_path / "posts.jsonl", 60, {33: "DIE here"})
    result = CliRunner().invoke(
        cli,
        obj=CliApp(classifier=DyingClassifier()),
        args=["scan", "--workers", "2", str(posts)],
        env=env_for(tmp_path),
    )
    clean_exit(result, 1)
    assert "a classification worker stopped unexpectedly" in result.output and "run the scan again" in result.output
    stored = [n for (n,) in rows(tmp_path, "SELECT message_id FROM posts ORDER BY message_id")]
    # Whole batches, all of them before the one that killed its worker.
    assert stored == list(range(1, len(stored) + 1)) and len(stored) <= 30 and len(stored) % 5 == 0
    assert multiprocessing.active_children() == []  # the pool is gone, the other worker too


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_keeps_the_stored_batches_and_says_so(tmp_path, fake_model, monkeypatch, workers):
    import multiprocessing

    from bot.storage import Storage

    monkeypatch.setattr("bot.history_scan.BATCH", 5)
    real = Storage.record_scans
    calls = []

    def record_scans(self, scans, **kwargs):
        def third_batch_interrupted():
            for post, verdict in scans:
                calls.append(post.message_id)
                if len(calls) == 13:  # Ctrl-C while the third batch is being stored
                    raise KeyboardInterrupt
                yield post, verdict

        return real(self, third_batch_interrupted(), **kwargs)

    monkeypatch.setattr(Storage, "record_scans", record_scans)
    posts = numbered_posts(tmp_path / "posts.jsonl", 40)
    result = CliRunner().invoke(
        cli, obj=fake_model(), args=["scan", "--workers", str(workers), str(posts)], env=env_for(tmp_path)
    )
    clean_exit(result, 130)
    assert "interrupted: the batches stored before are kept" in result.output
    # Two whole batches; the third was being stored and is rolled back whole.
    assert rows(tmp_path, "SELECT COUNT(*) FROM posts") == [(10,)]
    assert multiprocessing.active_children() == []
    # The report counts what is in the database, not the rolled-back batch.
    flags = rows(tmp_path, "SELECT COUNT(*) FROM flags")[0][0]
    assert f"\nFlags: {flags} " in result.output or f"\nFlags: {flags}\n" in result.output
    assert [line.split()[3] for line in result.output.splitlines() if line.startswith("posts.jsonl")] == ["10"]


# A scan whose classifier takes a while per batch, so that Ctrl-C arrives mid-scan.
SLOW_SCAN = """
import time
from tests.fakes.classifier import FakeClassifier

class Slow(FakeClassifier):
    def predict_many(self, texts):
        time.sleep(0.2)
        return super().predict_many(texts)

from bot.cli import CliApp, cli
cli(obj=CliApp(classifier=Slow()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_on_a_real_scan_with_workers_stops_every_process_without_a_traceback(tmp_path, presses):
    """Pressed twice, the second arrives while the workers are being stopped: that must not leave them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    posts = numbered_posts(tmp_path / "posts.jsonl", 40_000)
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "MODERATOR_CHAT_ID")} | {
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "MODEL_PATH": str(tmp_path / "model.joblib"),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    # Its own process group, as a terminal would make it: Ctrl-C reaches the workers too.
    scan = subprocess.Popen(
        [sys.executable, "-c", SLOW_SCAN, "scan", "--workers", "2", str(posts)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=interruptible,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and scan.poll() is None:
            try:  # connecting to a file that is not there yet would create it
                if (tmp_path / "bot.db").exists() and rows(tmp_path, "SELECT COUNT(*) FROM posts")[0][0] > 0:
                    break
            except sqlite3.Error:  # not created yet
                pass
            time.sleep(0.05)
        assert scan.poll() is None, "the scan ended before it could be interrupted"
        os.killpg(scan.pid, signal.SIGINT)
        for _ in range(presses - 1):
            time.sleep(0.1)
            os.killpg(scan.pid, signal.SIGINT)
        out, err = scan.communicate(timeout=30)
    finally:
        if scan.poll() is None:
            os.killpg(scan.pid, signal.SIGKILL)
    assert scan.returncode == 130, err
    assert "interrupted: the batches stored before are kept" in err and "Traceback" not in err
    stored = rows(tmp_path, "SELECT COUNT(*) FROM posts")[0][0]
    assert 0 < stored < 40_000 and stored % 1000 == 0
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker left behind in the group
        os.killpg(scan.pid, 0)


def test_scan_help_mentions_workers():
    result = CliRunner().invoke(cli, ["scan", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output and "usable cores" in result.output


def test_workers_out_of_range_are_refused_clearly(tmp_path, fake_model):
    posts = numbered_posts(tmp_path / "posts.jsonl", 3)
    for bad in ("0", "-1", "1000"):
        result = CliRunner().invoke(
            cli, obj=fake_model(), args=["scan", "--workers", bad, str(posts)], env=env_for(tmp_path)
        )
        assert result.exit_code == 2 and "--workers" in result.output and "Traceback" not in result.output


class SlowClassifier(FakeClassifier):
    def predict_many(self, texts):
        import time

        time.sleep(0.03)
        return super().predict_many(texts)


def test_batches_waiting_for_the_workers_stay_bounded(tmp_path, monkeypatch):
    """However slow the workers, the main process holds at most two batches a worker: memory does not
    grow with the file."""
    import bot.history_scan as offline

    monkeypatch.setattr(offline, "BATCH", 5)
    held = []
    real_put = offline._Pipeline.put

    def put(self, batch, file_summary):
        real_put(self, batch, file_summary)
        held.append(len(self.pending))

    monkeypatch.setattr(offline._Pipeline, "put", put)
    posts = numbered_posts(tmp_path / "posts.jsonl", 150)
    result = CliRunner().invoke(
        cli, obj=CliApp(classifier=SlowClassifier()), args=["scan", "--workers", "2", str(posts)], env=env_for(tmp_path)
    )
    clean_exit(result, 0)
    assert rows(tmp_path, "SELECT COUNT(*) FROM posts") == [(150,)]
    assert max(held) <= offline.IN_FLIGHT_PER_WORKER * 2


def test_when_workers_cannot_be_started_the_scan_classifies_in_its_own_process(tmp_path, fake_model, monkeypatch):
    import multiprocessing

    class NoFork:
        def __init__(self, *args, **kwargs):
            pass

        def submit(self, *args):
            raise OSError(12, "Cannot allocate memory")

        def shutdown(self, **kwargs):
            pass

    monkeypatch.setattr("bot.history_scan.ProcessPoolExecutor", NoFork)
    posts = numbered_posts(tmp_path / "posts.jsonl", 30)
    result = CliRunner().invoke(
        cli, obj=fake_model(), args=["scan", "--workers", "2", str(posts)], env=env_for(tmp_path)
    )
    clean_exit(result, 0)
    assert "could not start 2 worker processes (Cannot allocate memory); classifying in this process" in result.output
    assert rows(tmp_path, "SELECT COUNT(*) FROM posts") == [(30,)]
    assert multiprocessing.active_children() == []


def test_an_edit_that_keeps_its_flag_and_score_is_summarised(tmp_path, fake_model):
    # The edit keeps the flag's id and the fake model's score: the summary once compared two dicts and crashed.
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        '{"text": "presale today", "chat_id": -1009, "message_id": 1}\n'
        '{"text": "presale tomorrow", "chat_id": -1009, "message_id": 1}\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, obj=fake_model(), args=["scan", "--workers", "1", str(posts)], env=env_for(tmp_path)
    )
    clean_exit(result, 0)
    assert "presale tomorrow" in result.output


def test_the_most_confident_flags_show_the_links_the_database_makes(tmp_path, fake_model):
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "\n".join(
            json.dumps(p)
            for p in [
                {"text": "Presale live", "chat_id": -1001500000001, "message_id": 1, "chat_title": "Supergroup"},
                {"text": "VIP signals", "chat_id": -1001600000002, "message_id": 2, "chat_username": "signals"},
                {"text": "airdrop claim", "chat_id": -4000001, "message_id": 3, "chat_title": "Basic group"},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, obj=fake_model(), args=["scan", str(posts)], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    top = result.output[result.output.index("Most confident flags:") :]
    assert "https://t.me/c/1500000001/1" in top and "https://t.me/signals/2" in top
    assert "chat -4000001 message 3" in top  # a basic group's posts have no links
