import json

import pytest
from click.testing import CliRunner

from bot.cli import cli
from classifier import fitting


@pytest.fixture
def run(model_path, monkeypatch, tmp_path):
    """Invoke `compliance-bot` with MODEL_PATH set to the session's trained model, from an empty folder."""
    monkeypatch.setenv("MODEL_PATH", str(model_path))
    monkeypatch.chdir(tmp_path)

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def all_commands(group=cli, prefix=()):
    """Every command and subcommand of the CLI, as its words after `compliance-bot`."""
    import click

    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


def test_the_cli_has_the_commands_this_test_walks():
    walked = {" ".join(words) for words in all_commands()}
    assert {
        "run",
        "check",
        "classify",
        "scan",
        "train",
        "export",
        "stats",
        "model",
        "model list",
        "model rollback",
    } <= walked


@pytest.mark.parametrize("words", list(all_commands()), ids=" ".join)
def test_every_command_has_help_and_a_row_in_the_readme(words):
    from pathlib import Path

    result = CliRunner().invoke(cli, [*words, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3
    command = cli
    for word in words:
        command = command.commands[word]
    assert command.help and command.help.strip(), f"{' '.join(words)} has no help text"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `compliance-bot ")]
    assert any(f"`compliance-bot {' '.join(words)}" in line for line in table), (
        f"compliance-bot {' '.join(words)} is not in the README's command table"
    )


def test_check_prints_label_probabilities_and_reasons(run):
    result = run("check", "Binance blocked? Use our mirror binance-cn.example, code 88X for 20% off fees")
    assert result.exit_code == 0
    assert result.output.startswith("trading_service (")
    assert "Reasons:" in result.output and "binance" in result.output


def test_check_refuses_empty_text(run):
    result = run("check", "  ")
    assert result.exit_code == 2
    assert "TEXT is empty" in result.output


def test_classify_jsonl_keeps_fields_and_adds_verdicts(run):
    lines = [
        {"id": 1, "text": "Presale of $MOON ends Friday, 1 BNB = 50,000 MOON, buy at moon-sale.example", "chat": "a"},
        {"id": 2, "text": "The SEC sued the organisers of a 2017 ICO"},
    ]
    result = run("classify", "-", input="".join(json.dumps(x) + "\n" for x in lines))
    assert result.exit_code == 0
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["id"], o["label"]) for o in out] == [(1, "ico"), (2, "benign")]
    assert out[0]["chat"] == "a"
    assert set(out[0]["scores"]) == {"ico", "trading_service", "benign"}
    assert out[0]["reasons"] and isinstance(out[0]["reasons"][0], str)


def test_classify_plain_lines(run, tmp_path):
    source = tmp_path / "posts.txt"
    source.write_text("长期收U，汇率置顶，见U打款\n\nsee you at lunch\n", encoding="utf-8")
    result = run("classify", str(source), "--reasons", "0")
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["label"] for o in out] == ["trading_service", "benign"]
    assert out[1]["reasons"] == []


def test_classify_reports_bad_lines_by_number_and_keeps_going(run):
    source = '{"text": "ok post"}\n{broken\n{"text": ""}\n["a list"]\n{"text": "bad \\ud800 surrogate"}\n{"text": "🚀🚀🚀"}\n'
    result = run("classify", "-", input=source)
    assert result.exit_code == 1
    assert "line 2: not valid JSON" in result.stderr
    assert 'line 3: "text" is empty' in result.stderr
    assert "line 4: expected a JSON object, got list" in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 3 and out[1]["text"] == "bad \ufffd surrogate"
    assert "3 posts classified, 0 flagged, 3 skipped" in result.stderr


def test_classify_handles_a_100_kb_post(run):
    result = run("classify", "-", input=json.dumps({"text": "presale " * 13_000}) + "\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["label"] in {"ico", "trading_service", "benign"}


def test_a_tampered_model_is_a_clear_error(tmp_path, monkeypatch, model_path):
    import shutil

    from classifier import manifest_path

    bad = tmp_path / "bad.joblib"
    shutil.copy(model_path, bad)
    shutil.copy(manifest_path(model_path), manifest_path(bad))
    bad.write_bytes(bad.read_bytes()[:-10])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", "hello", "--model", str(bad)])
    assert result.exit_code == 1
    assert "does not match its manifest" in result.output
    assert "Traceback" not in result.output


def test_malformed_setting_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALERT_THRESHOLD", "high")
    result = CliRunner().invoke(cli, ["check", "hello"])
    assert result.exit_code == 1
    assert "configuration error: ALERT_THRESHOLD" in result.output


def test_train_command_with_extra_file_and_gate(run, tmp_path):
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"text": "x", "label": "nonsense"}\n', encoding="utf-8")
    model = tmp_path / "new.joblib"
    result = run("train", "--extra", str(extra), "--model", str(model))
    assert result.exit_code == 1  # a line was skipped…
    assert 'extra.jsonl:1: "label" must be one of' in result.output
    assert model.exists()  # …but the model was still trained and saved


def test_train_command_measures_left_out_registers(run, tagged_corpus, tmp_path):
    model = tmp_path / "loo.joblib"
    result = run(
        "train", "--data", str(tagged_corpus), "--no-reviews", "--leave-out", "register", "--model", str(model)
    )
    assert result.exit_code == 0, result.output
    assert "Leave-one-register-out" in result.output and "Leave-one-genre-out" not in result.output
    assert "### Leave-one-register-out (svm)" in (tmp_path / "reports" / "training.md").read_text(encoding="utf-8")


def test_train_command_says_when_no_source_can_be_left_out(run, tagged_corpus, tmp_path):
    # One corpus file holds every label, so there is no file to leave out: said, and training goes on.
    model = tmp_path / "lso.joblib"
    result = run("train", "--data", str(tagged_corpus), "--no-reviews", "--leave-out", "source", "--model", str(model))
    assert result.exit_code == 0, result.output
    assert "nothing measured: no source could be left out" in result.output
    assert "Leave-one-source-out" not in (tmp_path / "reports" / "training.md").read_text(encoding="utf-8")
    assert model.exists()


def test_train_command_fits_in_this_process_with_one_job(run, tagged_corpus, tmp_path, monkeypatch):
    fitted_here = []
    real = fitting.fit_and_predict
    monkeypatch.setattr(fitting, "fit_and_predict", lambda *a: fitted_here.append(1) or real(*a))
    model = tmp_path / "one.joblib"
    result = run("train", "--data", str(tagged_corpus), "--no-reviews", "--jobs", "1", "--model", str(model))
    assert result.exit_code == 0, result.output
    assert len(fitted_here) >= 5 + 2  # five folds and at least two left-out registers, none in a worker
    assert model.exists()


def test_train_command_refuses_zero_jobs(run, tagged_corpus, tmp_path):
    result = run("train", "--data", str(tagged_corpus), "--jobs", "0", "--model", str(tmp_path / "m.joblib"))
    assert result.exit_code == 2
    assert "Invalid value for '--jobs'" in result.output
    assert not (tmp_path / "m.joblib").exists()


@pytest.fixture
def check_image(model_path, monkeypatch, tmp_path):
    """Invoke `compliance-bot check` with an OCR engine of the test's choosing, from an empty folder."""
    from bot.cli import CliApp
    from bot.image_text import ImageReader

    monkeypatch.setenv("MODEL_PATH", str(model_path))
    monkeypatch.chdir(tmp_path)

    def invoke(engine, *args):
        app = CliApp(image_reader=ImageReader(engine))
        return CliRunner().invoke(cli, ["check", *args], obj=app, catch_exceptions=False)

    return invoke


def test_check_image_reads_the_picture_and_weighs_its_text(check_image, ocr_engine, picture_posts, tmp_path):
    from tests.fakes.images import render

    (tmp_path / "card.png").write_bytes(render(picture_posts["trading_service_zh"]))
    result = check_image(ocr_engine, "--image", "card.png")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("trading_service (")
    assert "\nRead from the image: " in result.output and "Weighed from the image: " in result.output
    with_text = check_image(ocr_engine, "--image", "card.png", "see the picture")
    assert with_text.exit_code == 0 and with_text.output.startswith("trading_service (")


def test_check_image_that_cannot_be_read_checks_the_text_alone_or_fails_in_one_line(check_image, tmp_path):
    from tests.fakes.images import ScriptedOcr, render

    (tmp_path / "broken.jpg").write_bytes(render("presale", fmt="JPEG")[:200])
    (tmp_path / "blank.png").write_bytes(render(" "))
    engine = ScriptedOcr(["never"])
    result = check_image(engine, "--image", "broken.jpg", "Presale of $MOON ends Friday, buy at moon-sale.example")
    assert result.exit_code == 0 and result.stdout.startswith("ico (")
    assert result.stderr.startswith("broken.jpg: not read: a corrupt or truncated image")
    assert "checking TEXT alone" in result.stderr and "Read from the image" not in result.stdout
    for name, reason in (("broken.jpg", "a corrupt or truncated image"), ("missing.png", "cannot open it")):
        alone = check_image(engine, "--image", name)
        assert alone.exit_code == 1 and alone.output.startswith(f"Error: {name}: not read: {reason}")
        assert len(alone.output.splitlines()) == 1 and "Traceback" not in alone.output
    assert engine.sizes == []
    blank = check_image(ScriptedOcr([]), "--image", "blank.png")
    assert blank.exit_code == 1 and "nothing to check: no text was read from blank.png" in blank.output
