"""Closing the loop: moderators' reviews → `compliance-bot train --db` → a model the running bot picks up."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.alerts import decode_callback
from bot.cli import cli
from bot.post import Post
from bot.retrain import reviewed_posts
from bot.storage import Storage
from classifier import list_versions, load_model
from classifier.train import train_and_save
from tests.conftest import MODERATOR_CHAT_ID
from tests.fakes import updates as U
from tests.fakes.classifier import FakeClassifier

MODS = {"id": MODERATOR_CHAT_ID, "type": "supergroup", "title": "Mods"}
# Scam warnings that quote the promotion they warn about: a model trained on little data takes them for
# token-sale promotion; the moderators know better (warnings are benign in LABELS.md).
FALSE_POSITIVES = [
    "Whitelist spots for the $ORBIT IDO are open, scammers claim; the real team says join nothing, orbit.example is fake",
    "The $LUMA presale is live on a copycat site; do not buy at luma-sale.example before the official listing, the team warns",
]
CONFIRMED = "Presale of $MOON ends Friday, 1 BNB = 50,000 MOON, buy at moon-sale.example before the listing!"


TEMPLATES = {
    "ico": [
        "{coin} presale is live, buy now at {site} before the listing",
        "Claim your free {coin} airdrop, connect your wallet at {site} today",
        "Whitelist spots for the {coin} IDO are open, join at {site}",
        "{coin} 私募最后一轮，白名单名额有限，官网 {site}",
    ],
    "trading_service": [
        "Join our VIP signals channel {handle} for daily calls on {exchange}",
        "Sign up at {exchange} with referral code {code} for 20% fee rebates",
        "长期收U，汇率置顶，联系 {handle}",
        "Copy my trades on {exchange} and earn $500 a day, message {handle}",
    ],
    "benign": [
        "{exchange} reported higher trading volume this quarter, analysts said",
        "Regulators fined {exchange} over compliance failures, {coin} fell 3%",
        "{coin} price slipped 5% today as markets cooled",
        "今日 {coin} 小幅回调，注意风险",
    ],
}


@pytest.fixture(scope="module")
def fixed_corpus(tmp_path_factory):
    """A corpus made from templates with a fixed seed: the loop test does not move when training_data/ grows."""
    import random

    rng = random.Random(4)
    words = {
        "coin": ["$NOVA", "$ZETA", "$ORBIT", "$PANDA", "$KOI", "$LUMA"],
        "site": ["nova.example", "zeta.example", "orbit.example"],
        "handle": ["@vip_calls", "@otc_desk", "@lisa_trades"],
        "exchange": ["Binance", "OKX", "Bybit", "KuCoin"],
        "code": ["X88", "CMB24", "Q7Q"],
    }
    path = tmp_path_factory.mktemp("fixed") / "fixed.jsonl"
    seen = set()
    with open(path, "w", encoding="utf-8") as handle:
        for label, templates in TEMPLATES.items():
            while sum(1 for t in seen if t[1] == label) < 40:
                text = (
                    rng.choice(templates).format(**{k: rng.choice(v) for k, v in words.items()})
                    + f" #{rng.randint(1, 999)}"
                )
                if (text, label) not in seen:
                    seen.add((text, label))
                    handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path


def env_for(tmp_path, **extra) -> dict:
    return {
        "DATABASE_PATH": str(tmp_path / "bot.db"),
        "MODEL_PATH": str(tmp_path / "model.joblib"),
        "TRAINING_DATA_DIR": None,
        "TELEGRAM_BOT_TOKEN": None,
        "MODERATOR_CHAT_ID": None,
    } | extra


async def press_all(harness, choose) -> None:
    """Ask for /pending and press, under each listed alert, the button `choose(text)` names."""
    await harness.send(U.command("/pending", MODS))
    secret = harness.services.secret
    listings = [
        m for (chat, _), m in sorted(harness.api.messages.items()) if chat == MODERATOR_CHAT_ID and "reply_markup" in m
    ]
    for message in listings:
        for button in message["reply_markup"]["inline_keyboard"][0]:
            alert_id, action = decode_callback(secret, button["callback_data"])
            text = harness.storage.alert_flags(alert_id)[0]["text"]
            if action == choose(text):
                await harness.send(U.callback(button["callback_data"], U.MODERATOR, message, query_id=f"q{alert_id}"))


async def test_reviews_pressed_in_the_bot_change_what_the_retrained_model_says(bot_factory, fixed_corpus, tmp_path):
    model_path = tmp_path / "model.joblib"
    train_and_save(model_path, data=[fixed_corpus], log=lambda m: None)
    before = load_model(model_path)
    assert all(before.predict(t).label == "ico" for t in FALSE_POSITIVES + [CONFIRMED]), "precondition: all flagged"

    harness = await bot_factory(classifier=before)
    for n, text in enumerate(FALSE_POSITIVES + [CONFIRMED], 1):
        await harness.send(U.channel_post(n, text))
    await press_all(harness, lambda text: "c" if text == CONFIRMED else "f")
    assert sorted(f["status"] for f in harness.storage.all_flags()) == ["confirmed", "false_positive", "false_positive"]

    # --force: on this 120-post corpus the held-out split has about 25 posts, where one post moves macro-F1
    # by 0.04, so the gate's verdict says little here (the gate has its own tests).
    result = CliRunner().invoke(cli, ["train", "--data", str(fixed_corpus), "--force"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Quality gate (same held-out split of" in result.output
    assert "3 reviewed posts from" in result.output
    assert "Reviews used: 3 texts (0 disagreed with the corpus" in result.output
    assert "Installed model" in result.output and "3 reviews used" in result.output

    after = load_model(model_path)
    assert after.version != before.version
    assert [after.predict(t).label for t in FALSE_POSITIVES] == ["benign", "benign"]
    assert after.predict(CONFIRMED).label == "ico"
    assert after.manifest["reviews"] == {"used": 3, "conflicts": 0}

    # The running bot swaps in the new model by itself, and the next post is scanned with it.
    assert await harness.services.model_watcher.check(harness.services) is True
    assert harness.services.classifier.version == after.version
    await harness.send(U.channel_post(10, FALSE_POSITIVES[0]))
    post = harness.storage.post(U.CHANNEL["id"], 10)
    assert (post["label"], post["model_version"]) == ("benign", after.version)
    assert harness.storage.flag(1)["status"] == "false_positive"  # nothing stored before was touched


def test_reviewed_posts_latest_review_wins_and_unusable_reviews_are_named(tmp_path):
    clock = [1000.0]
    storage = Storage.open(tmp_path / "bot.db", clock=lambda: clock[0])
    fake = FakeClassifier()
    for n, text in enumerate(["Presale live", "VIP signals daily", "airdrop claim", "Presale live"], 1):
        chat = -1001 if n < 4 else -1002  # the same text in a second chat: one alert, one review
        storage.record_scan(Post(chat, n, text), fake.predict(text), threshold=0.8, store_benign_text=False)
    alerts = {f["text"]: f["alert_id"] for f in storage.all_flags()}
    storage.record_review(alerts["Presale live"], "false_positive", None, 111, "Mia")
    clock[0] += 1
    storage.record_review(alerts["Presale live"], "relabel", "trading_service", 112, "Ola")  # later: wins
    storage.record_review(alerts["VIP signals daily"], "confirm", None, 111, "Mia")
    storage.record_review(alerts["airdrop claim"], "confirm", None, 111, "Mia")
    # An edit reopens a flag: its review was of the old text and no longer counts.
    storage.record_scan(
        Post(-1001, 3, "airdrop claim, edited"),
        fake.predict("airdrop claim, edited"),
        threshold=0.8,
        store_benign_text=False,
    )
    posts, problems = reviewed_posts(storage)
    assert {p.text: p.label for p in posts} == {
        "Presale live": "trading_service",
        "VIP signals daily": "trading_service",
    }
    assert problems == []
    storage.db.execute("UPDATE posts SET text = NULL WHERE message_id = 2")
    storage.db.conn.commit()
    posts, problems = reviewed_posts(storage)
    assert [p.text for p in posts] == ["Presale live"]
    assert problems == ["review 5 of flag 2 (chat -1001 message 2): the post's text is not stored; skipped"]


def test_train_refuses_a_missing_database_given_with_db(tmp_path, small_corpus):
    result = CliRunner().invoke(
        cli, ["train", "--data", str(small_corpus), "--db", str(tmp_path / "nope.db")], env=env_for(tmp_path)
    )
    assert result.exit_code == 1
    assert f"no database at {tmp_path / 'nope.db'}" in result.output
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "model.joblib").exists()


def test_train_reports_a_gate_refusal_and_unknown_labels_in_extra(tmp_path, small_corpus, noisy_extra):
    runner = CliRunner()
    assert runner.invoke(cli, ["train", "--data", str(small_corpus)], env=env_for(tmp_path)).exit_code == 0
    noisy = tmp_path / "noisy.jsonl"
    lines = noisy_extra.read_text(encoding="utf-8").splitlines() + ['{"text": "join my pump", "label": "scam"}']
    noisy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["train", "--data", str(small_corpus), "--extra", str(noisy)], env=env_for(tmp_path))
    assert result.exit_code == 1
    assert (
        f"noisy.jsonl:{len(lines)}: \"label\" must be one of ico, trading_service, benign, got 'scam'" in result.output
    )
    assert "Error: not installed: macro-F1 would drop" in result.output and "--force" in result.output
    assert len(list_versions(tmp_path / "model.joblib")) == 1


def test_model_list_and_rollback(tmp_path, small_corpus):
    runner = CliRunner()
    env = env_for(tmp_path)
    empty = runner.invoke(cli, ["model", "list"], env=env)
    assert empty.exit_code == 0 and "No kept model versions" in empty.output
    for _ in range(2):
        assert runner.invoke(cli, ["train", "--data", str(small_corpus), "--no-reviews"], env=env).exit_code == 0
    first, second = [v["model_version"] for v in list_versions(tmp_path / "model.joblib")]
    listing = runner.invoke(cli, ["model", "list"], env=env).output
    assert f"  {first}" in listing and f"* {second}" in listing and "held-out" in listing

    rolled = runner.invoke(cli, ["model", "rollback"], env=env)
    assert rolled.exit_code == 0 and f"Installed model {first} (was {second})" in rolled.output
    assert load_model(tmp_path / "model.joblib").version == first
    again = runner.invoke(cli, ["model", "rollback"], env=env)
    assert again.exit_code == 1 and "oldest kept version" in again.output
    forward = runner.invoke(cli, ["model", "rollback", second], env=env)
    assert forward.exit_code == 0 and load_model(tmp_path / "model.joblib").version == second
    unknown = runner.invoke(cli, ["model", "rollback", "v-nope"], env=env)
    assert unknown.exit_code == 1 and "no kept model version 'v-nope'" in unknown.output


@pytest.mark.parametrize("command", [["train"], ["model"], ["model", "list"], ["model", "rollback"]])
def test_help(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output and len(result.output.splitlines()) > 4
