"""`compliance-bot bulk-scan` on a Dask cluster: the flags `scan` finds, written once each as Parquet, however
workers fail; bad inputs named in the summary; `--into-db` idempotent; a real `dask scheduler` and `dask worker`."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from click.testing import CliRunner

from bot.cli import cli
from tests.conftest import interruptible

ROOT = Path(__file__).resolve().parent.parent
COMPLIANCE_BOT = [sys.executable, "-c", "from bot.cli import cli; cli()"]  # the console script, from this tree
SAMPLE = ROOT / "examples" / "telegram_export_channel.json"
TEXTS = [
    "Presale stage {n} is live! 1 BNB = 42,000 NOVA, buy now before the price goes up",
    "Bitcoin holds above 64k as Asian markets open #{n}",
    "VIP signals: last week +{n}% join before we close the doors",
    "长期收U，汇率置顶，见U打款，支持支付宝 {n}",
    "The SEC sued the organisers of a 2017 ICO, filing number {n}",
    "Sign up on Bybit with referral code CMB{n} and get a bonus",
]


def env_for(tmp_path, model_path, **extra) -> dict:
    return {
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "MODEL_PATH": str(model_path),
        "TELEGRAM_BOT_TOKEN": None,
        "MODERATOR_CHAT_ID": None,
    } | extra


def posts_jsonl(path: Path, chat_id: int, count: int, start: int = 1) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        for n in range(start, start + count):
            line = {"text": TEXTS[n % len(TEXTS)].format(n=n), "chat_id": chat_id, "message_id": n, "date": 1.7e9 + n}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


def flags_of(dataset: Path) -> list[tuple]:
    rows = ds.dataset(dataset, format="parquet").to_table().to_pylist()
    return sorted((r["chat"], r["message_id"], r["label"], round(r["score"], 6)) for r in rows)


def bulk(args, tmp_path, model_path, **env):
    return CliRunner().invoke(cli, ["bulk-scan", *map(str, args)], env=env_for(tmp_path, model_path, **env))


def clean_exit(result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


def test_the_flags_are_those_scan_stores(tmp_path, model_path, dask_cluster):
    inputs = [SAMPLE, posts_jsonl(tmp_path / "a.jsonl", -1001000000001, 300)]
    scanned = CliRunner().invoke(cli, ["scan", *map(str, inputs)], env=env_for(tmp_path, model_path))
    clean_exit(scanned, 0)
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        expected = sorted(
            (str(c), m, label, round(score, 6))
            for c, m, label, score in conn.execute("SELECT chat_id, message_id, label, score FROM flags")
        )
    result = bulk(
        [*inputs, "--out", tmp_path / "out", "--scheduler", dask_cluster.scheduler_address], tmp_path, model_path
    )
    clean_exit(result, 0)
    assert len(expected) > 100
    assert flags_of(tmp_path / "out" / "flags") == expected
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["posts"] == 330 and summary["flags"] == len(expected)
    assert summary["flags_per_label"] == {
        label: sum(1 for f in expected if f[2] == label)
        for label in ("ico", "trading_service")
        if any(f[2] == label for f in expected)
    }
    assert summary["flags_per_chat"]["-1001000000001"] == sum(1 for f in expected if f[0] == "-1001000000001")
    assert summary["skipped_inputs"] == [] and summary["partitions"] == 2
    assert summary["model_version"] and set(summary["workers"]) <= set(dask_cluster.scheduler_info["workers"])
    row = ds.dataset(tmp_path / "out" / "flags").to_table().to_pylist()[0]
    assert row["reasons"] and row["model_version"] == summary["model_version"] and row["text"]
    assert set(row["scores"]) == {"ico", "trading_service", "benign"}
    assert f"{len(expected)} flags" in result.output


def test_a_killed_worker_s_partitions_are_computed_again_and_written_once(tmp_path, model_path, dask_cluster):
    from distributed import Client

    from tests.fakes import dying_worker

    inputs = [posts_jsonl(tmp_path / f"p{i}.jsonl", -1001000000000 - i, 120, start=1) for i in range(1, 7)]
    clean_exit(
        bulk(
            [*inputs, "--out", tmp_path / "calm", "--scheduler", dask_cluster.scheduler_address], tmp_path, model_path
        ),
        0,
    )
    marker = tmp_path / "a worker died"
    with Client(dask_cluster.scheduler_address) as client:
        client.run(dying_worker.install, str(marker))
        try:
            result = bulk(
                [*inputs, "--out", tmp_path / "out", "--scheduler", dask_cluster.scheduler_address],
                tmp_path,
                model_path,
            )
        finally:
            client.run(dying_worker.uninstall)
            client.wait_for_workers(2, timeout=60)
    clean_exit(result, 0)
    assert marker.exists(), "no worker was killed"
    written = Path(marker.read_text())
    assert written.exists()  # the part file the dead worker had put in place is there, replaced or not
    parts = sorted(p.name for p in (tmp_path / "out" / "flags").iterdir())
    assert len(parts) == 6 and all(p.startswith("part-") and p.endswith(".parquet") for p in parts)
    flags = flags_of(tmp_path / "out" / "flags")
    assert len({(chat, message) for chat, message, *_ in flags}) == len(flags)  # no flag written twice
    assert flags == flags_of(tmp_path / "calm" / "flags")
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["posts"] == 720


def test_unreadable_inputs_are_skipped_and_named_in_the_summary(tmp_path, model_path, dask_cluster):
    good = posts_jsonl(tmp_path / "good.jsonl", -1001000000005, 60)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not a Parquet file")
    (tmp_path / "notjson.json").write_text("hello, not JSON", encoding="utf-8")
    truncated = tmp_path / "truncated.json"
    truncated.write_text(SAMPLE.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    with open(good, "a", encoding="utf-8") as out:
        out.write('{"text": "no ids here"}\n')
    result = bulk(
        [good, tmp_path / "broken.parquet", tmp_path / "notjson.json", truncated, tmp_path / "missing*.jsonl"]
        + ["--out", tmp_path / "out", "--scheduler", dask_cluster.scheduler_address],
        tmp_path,
        model_path,
    )
    clean_exit(result, 1)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    skipped = {Path(s["input"]).name: s["reason"] for s in summary["skipped_inputs"]}
    assert set(skipped) == {"broken.parquet", "notjson.json", "truncated.json", "missing*.jsonl"}
    assert "not a readable Parquet file" in skipped["broken.parquet"]
    assert "not a JSON file" in skipped["notjson.json"]
    assert "truncated or damaged" in skipped["truncated.json"]
    assert skipped["missing*.jsonl"] == "no file matches this pattern"
    assert summary["skipped_lines"] == 1 and 'missing "chat_id"' in summary["problems"][0]
    # What could be read was scanned: the good file whole, the truncated export up to the damage.
    chats = {chat for chat, *_ in flags_of(tmp_path / "out" / "flags")}
    assert "-1001000000005" in chats and str(-1001777000111) in chats
    assert "skipped" in result.output and "broken.parquet" in result.output


def test_into_db_twice_stores_each_flag_once(tmp_path, model_path, dask_cluster):
    inputs = [SAMPLE, posts_jsonl(tmp_path / "a.jsonl", -1001000000002, 90)]
    args = [*inputs, "--out", tmp_path / "out", "--scheduler", dask_cluster.scheduler_address, "--into-db"]
    first = bulk(args, tmp_path, model_path)
    clean_exit(first, 0)
    flags = len(flags_of(tmp_path / "out" / "flags"))
    assert f"{flags} flags stored, 0 already there" in first.output
    second = bulk(args, tmp_path, model_path)
    clean_exit(second, 0)
    assert f"0 flags stored, {flags} already there" in second.output
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == flags
        assert conn.execute("SELECT COUNT(*) FROM post_versions").fetchone()[0] == flags
        assert conn.execute("SELECT COUNT(*) FROM alerts WHERE notify = 1").fetchone()[0] == 0  # for review, not alerts
        assert conn.execute("SELECT COUNT(*) FROM flags WHERE status = 'pending'").fetchone()[0] == flags


def test_all_writes_every_verdict_and_parquet_and_channel_names_are_read(tmp_path, model_path, dask_cluster):
    import pyarrow as pa

    rows = [
        {"channel": "somechan", "id": n, "text": TEXTS[n % len(TEXTS)].format(n=n), "date": 1.7e9 + n}
        for n in range(1, 41)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "chan.parquet", row_group_size=10)
    result = bulk(
        [tmp_path / "chan.parquet", "--out", tmp_path / "out", "--all", "--scheduler", dask_cluster.scheduler_address],
        tmp_path,
        model_path,
    )
    clean_exit(result, 0)
    table = ds.dataset(tmp_path / "out" / "verdicts").to_table().to_pylist()
    assert sorted(r["message_id"] for r in table) == list(range(1, 41))
    assert {r["chat"] for r in table} == {"somechan"} and {r["chat_id"] for r in table} == {None}
    assert {r["label"] for r in table} >= {"benign", "ico"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["flags"] == sum(r["label"] != "benign" for r in table) and summary["dataset"] == "verdicts"
    # Every sixth text names Bybit: the listed platform is in its row and counted in the summary.
    naming = [r for r in table if "Bybit" in r["text"]]
    assert naming and all(r["watchlist"] == ["Bybit"] for r in naming)
    assert all(r["watchlist"] == [] for r in table if "Bybit" not in r["text"])
    assert summary["posts_per_listed_platform"] == {"Bybit": len(naming)}


def test_bad_options_get_one_clear_line(tmp_path, model_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.pdf").write_text("x")
    posts = posts_jsonl(tmp_path / "a.jsonl", -1001000000003, 3)
    for args, message in [
        ([posts, "--out", tmp_path / "file"], "is a file"),
        ([posts, "--out", tmp_path / "busy"], "holds other files (thesis.pdf)"),
        ([posts, "--out", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers sizes"),
        (
            [posts, "--out", tmp_path / "o", "--scheduler", f"tcp://127.0.0.1:{free_port()}"],
            "cannot reach the Dask scheduler",
        ),
    ]:
        result = bulk(args, tmp_path, model_path)
        clean_exit(result, 2 if "--workers" in map(str, args) else 1)
        assert message in result.output and "Traceback" not in result.output
    assert (tmp_path / "busy" / "thesis.pdf").exists()


def test_help():
    result = CliRunner().invoke(cli, ["bulk-scan", "--help"])
    assert result.exit_code == 0
    for word in ("--out", "--scheduler", "--workers", "--all", "--into-db", "summary.json", "Parquet"):
        assert word in result.output


# -- real processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(tmp_path, model_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "MODERATOR_CHAT_ID")}
    return env | {"PYTHONPATH": str(ROOT), "DATABASE_PATH": str(tmp_path / "bot.db"), "MODEL_PATH": str(model_path)}


def test_a_local_cluster_of_two_processes_by_default(tmp_path, model_path):
    inputs = [SAMPLE, posts_jsonl(tmp_path / "a.jsonl", -1001000000004, 50)]
    done = subprocess.run(
        [*COMPLIANCE_BOT, "bulk-scan", *map(str, inputs), "--out", str(tmp_path / "out"), "--workers", "2"],
        env=process_env(tmp_path, model_path),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["workers"]) >= 1 and summary["posts"] == 80
    assert "Scanning 2 partitions" in done.stderr and "Traceback" not in done.stderr
    assert re.search(r"Dask dashboard: http://[\d.]+:\d+/status", done.stderr), done.stderr


def test_the_local_cluster_s_dashboard_is_linked_and_served():
    """The link the terminal shows answers over HTTP."""
    from bot.bulk_scan import dashboard_link, dask_client

    with dask_client(None, 1) as client:
        link = dashboard_link(client)
        assert link and link.startswith("http://") and link.endswith("/status")
        page = httpx.get(link, timeout=30, follow_redirects=True)
        assert page.status_code == 200 and "bokeh" in page.text.lower()


def test_end_to_end_with_dask_scheduler_and_workers_started_as_processes(tmp_path, model_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = process_env(tmp_path, model_path)
    dask = str(Path(sys.executable).with_name("dask"))
    logs = tmp_path / "logs"
    logs.mkdir()
    started = []

    def start(name, args):
        log = open(logs / f"{name}.log", "w")
        started.append(subprocess.Popen([dask, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=logs))

    try:
        # Dashboard on a free port: 8787, the default, may be another cluster's on a shared machine.
        start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"])
        for i in range(2):
            start(
                f"worker{i}",
                ["worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            )
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="2s") as client:
                    client.wait_for_workers(2, timeout=60)
                    workers = set(client.scheduler_info()["workers"])
                    break
            except OSError:
                assert time.monotonic() < deadline, (logs / "scheduler.log").read_text()
                time.sleep(0.5)
        inputs = [
            SAMPLE,
            posts_jsonl(tmp_path / "a.jsonl", -1001000000006, 200),
            posts_jsonl(tmp_path / "b.jsonl", -1001000000007, 200),
        ]
        done = subprocess.run(
            [*COMPLIANCE_BOT, "bulk-scan", *map(str, inputs), "--out", "out", "--scheduler", address, "--into-db"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        link = re.search(r"Dask dashboard: (http://\S+/status)", done.stderr)
        assert link and httpx.get(link[1], timeout=30).status_code == 200, done.stderr  # the scheduler serves it
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert summary["posts"] == 430 and summary["partitions"] == 3
        assert set(summary["workers"]) <= workers
        flags = flags_of(tmp_path / "out" / "flags")
        assert len(flags) == summary["flags"] > 100
        with sqlite3.connect(tmp_path / "bot.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == len(flags)
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_ctrl_c_stops_the_scan_and_its_cluster_in_one_line(tmp_path, model_path):
    import signal

    import psutil

    inputs = [posts_jsonl(tmp_path / f"p{i}.jsonl", -1001000000010 - i, 20_000) for i in range(4)]
    process = subprocess.Popen(
        [*COMPLIANCE_BOT, "bulk-scan", *map(str, inputs), "--out", "out", "--workers", "1"],
        env=process_env(tmp_path, model_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=interruptible,
    )
    try:
        seen = ""
        while "Scanning 4 partitions" not in seen:  # the cluster is up and the tasks are submitted
            character = process.stderr.read(1)
            assert character, seen
            seen += character
        workers = psutil.Process(process.pid).children(recursive=True)
        assert workers  # the local cluster's nanny and worker processes
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted: the part files written so far are in out" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()
    psutil.wait_procs(workers, timeout=30)
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
