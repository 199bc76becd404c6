import json

from classifier.evaluate import main


def test_evaluate_prints_per_label_language_and_hard_false_positives(model_path, tmp_path, capsys):
    data = tmp_path / "labelled.jsonl"
    rows = [
        {"text": "长期收U，汇率置顶，见U打款", "label": "trading_service", "lang": "zh"},
        {"text": "央行：继续打击虚拟货币交易炒作", "label": "benign", "lang": "zh", "hard": True},
        {"text": "Presale of $MOON ends Friday, 1 BNB = 50,000 MOON, buy at moon-sale.example", "label": "ico"},
        {"text": "The SEC sued the organisers of a 2017 ICO", "label": "benign", "hard": True},
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "not json\n", encoding="utf-8")
    code = main([str(data), "--model", str(model_path), "--report-dir", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1  # the bad line was skipped
    assert "labelled.jsonl:5: not valid JSON" in captured.err
    assert "4 posts" in captured.out and "| zh | 2 |" in captured.out
    assert "False positives on crypto-related benign posts (`hard`)" in captured.out
    assert (tmp_path / "out" / "evaluation.json").exists()


def test_missing_file_and_missing_model_are_clear(model_path, tmp_path, capsys):
    assert main([str(tmp_path / "nope.jsonl"), "--model", str(model_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    data = tmp_path / "x.jsonl"
    data.write_text('{"text": "a", "label": "benign"}\n')
    assert main([str(data), "--model", str(tmp_path / "none.joblib")]) == 2
    assert "compliance-bot train" in capsys.readouterr().err
