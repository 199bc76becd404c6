from classifier.report import compute_metrics, to_markdown, write_reports


def test_macro_f1_per_language_counts_only_labels_present():
    y_true = ["ico", "benign", "trading_service", "benign", "trading_service"]
    y_pred = ["ico", "benign", "trading_service", "trading_service", "trading_service"]
    langs = ["en", "en", "zh", "zh", "zh"]
    hard = [False, True, False, True, False]
    metrics = compute_metrics(y_true, y_pred, langs, hard)
    assert metrics["per_language"]["zh"]["labels"] == ["trading_service", "benign"]
    assert metrics["per_language"]["en"]["macro_f1"] == 1.0
    assert metrics["hard_benign"] == {"posts": 2, "false_positives": 1, "false_positive_rate": 0.5}
    assert metrics["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 2, 0], [0, 1, 1]]


def test_reports_are_written_in_three_formats(tmp_path):
    metrics = compute_metrics(["ico", "benign"], ["ico", "ico"], ["en", "en"], [False, True])
    paths = write_reports(metrics, tmp_path, "evaluation", "Test")
    assert [p.name for p in paths] == ["evaluation.json", "evaluation.md", "evaluation.png"]
    markdown = to_markdown(metrics, "Test")
    assert "| `ico` |" in markdown and "False positives on crypto-related benign posts" in markdown
    assert "1 of 1 = **100.0%**" in markdown
