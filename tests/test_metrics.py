"""Metrics against scikit-learn and hand-worked cases."""

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    precision_score,
    recall_score,
)

from ecg_lightning.classifier import balanced_weights
from ecg_lightning.metrics import beat_metrics, j_kappa_index, metric_names

CLASSES = ["N", "S", "V", "F", "Q"]


def test_multiclass_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    probs = rng.dirichlet(np.ones(5), 300)
    probs[np.arange(300), y] += rng.uniform(0, 1.5, 300)  # better than chance
    probs /= probs.sum(1, keepdims=True)
    out = {k: float(v) for k, v in beat_metrics(CLASSES)(torch.from_numpy(probs).float(), torch.from_numpy(y)).items()}
    pred = probs.argmax(1)
    se = recall_score(y, pred, average=None)
    ppv = precision_score(y, pred, average=None)
    for k, c in enumerate(CLASSES):
        assert out[f"se_{c}"] == pytest.approx(se[k], abs=1e-6) and out[f"ppv_{c}"] == pytest.approx(ppv[k], abs=1e-6)
    assert out["kappa"] == pytest.approx(cohen_kappa_score(y, pred), abs=1e-5)
    assert out["accuracy"] == pytest.approx((pred == y).mean(), abs=1e-6)
    assert out["balanced_accuracy"] == pytest.approx(se.mean(), abs=1e-6)
    kappa = cohen_kappa_score(y, pred)
    assert out["jk_index"] == pytest.approx(kappa / 2 + (se[1] + ppv[1] + se[2] + ppv[2]) / 8, abs=1e-5)
    assert sorted(out) == sorted(metric_names(CLASSES))


def test_j_kappa_index_by_hand():
    cm = torch.tensor([[8, 1, 0], [0, 1, 0], [1, 0, 3]])  # classes N, S, V; one S beat, found
    j, jk = j_kappa_index(cm, s=1, v=2)
    se_s, ppv_s, se_v, ppv_v = 1 / 1, 1 / 2, 3 / 4, 3 / 3
    assert float(j) == pytest.approx(se_s + ppv_s + se_v + ppv_v)
    y = np.repeat([0, 0, 1, 2, 2], [8, 1, 1, 1, 3])
    pred = np.repeat([0, 1, 1, 0, 2], [8, 1, 1, 1, 3])
    assert confusion_matrix(y, pred).tolist() == cm.tolist()
    assert float(jk) == pytest.approx(cohen_kappa_score(y, pred) / 2 + float(j) / 8, abs=1e-6)
    j1, _ = j_kappa_index(torch.tensor([[0, 0, 0], [0, 1, 0], [0, 0, 0]]), s=1, v=2)  # a single beat
    assert float(j1) == pytest.approx(2.0)


def test_balanced_weights_by_hand():
    counts = torch.tensor([10, 1, 5])
    np.testing.assert_allclose(balanced_weights(counts, "balanced").numpy(), [1.0, 10.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(balanced_weights(counts, "sqrt_balanced").numpy(), np.sqrt([1.0, 10.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(balanced_weights(torch.tensor([4, 0]), "balanced").numpy(), [1.0, 4.0], rtol=1e-6)


def test_binary_metric_names():
    assert metric_names(["normal", "abnormal"]) == [
        "accuracy",
        "balanced_accuracy",
        "auroc",
        "f1",
        "sensitivity",
        "specificity",
        "ppv",
    ]
    assert "jk_index" not in metric_names(["N", "X", "Y"]) and "se_Y" in metric_names(["N", "X", "Y"])


def test_per_record_and_per_symbol_tables_by_hand():
    from ecg_lightning import report

    record = np.array([0, 0, 0, 2, 2, 2, 2, 3])  # record 1 has no beats; record 3 one beat
    probs = np.array([0.9, 0.2, 0.6, 0.1, 0.8, 0.4, 0.7, 0.9])
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 1])
    rows = report.per_record(record, ("a", "b", "c", "d"), probs, labels, ["normal", "abnormal"])
    assert [r["record"] for r in rows] == ["a", "c", "d"]
    a, c, d = rows
    assert (a["beats"], a["n_abnormal"], a["se_abnormal"], a["se_normal"]) == (3, 1, 1.0, 0.5)
    assert a["accuracy"] == 0.6667 and a["abnormal_fraction"] == 0.3333  # rounded to 4 decimals
    assert (c["se_abnormal"], c["se_normal"], c["accuracy"]) == (pytest.approx(2 / 3, abs=1e-4), 1.0, 0.75)
    assert (d["beats"], d["abnormal_fraction"], d["accuracy"]) == (1, 1.0, 1.0) and np.isnan(d["se_normal"])
    strict = report.per_record(record, ("a", "b", "c", "d"), probs, labels, ["normal", "abnormal"], threshold=0.85)
    assert strict[0]["se_abnormal"] == 1.0 and strict[1]["se_abnormal"] == 0.0
    dbs = ("mitdb", "mitdb", "svdb", "incartdb")  # each record's database, for cross-database tables
    tagged = report.per_record(record, ("a", "b", "c", "d"), probs, labels, ["normal", "abnormal"], 0.5, dbs)
    assert [(r["record"], r["database"]) for r in tagged] == [("a", "mitdb"), ("c", "svdb"), ("d", "incartdb")]
    assert report.per_record_columns(["n", "v"], databases=True)[:3] == ("record", "database", "beats")
    symbols = report.per_symbol(
        np.array(["V", "N", "N", "N", "V", "A", "A", "V"]), probs, labels, ["normal", "abnormal"]
    )
    by = {r["symbol"]: r for r in symbols}
    assert [r["symbol"] for r in symbols] == ["N", "V", "A"]  # most beats first (ties by symbol)
    assert by["N"]["class"] == "normal" and by["N"]["called_abnormal"] == pytest.approx(1 / 3, abs=1e-4)
    assert by["A"]["accuracy"] == 0.5 and by["V"]["accuracy"] == 1.0


def test_j_index_needs_both_s_and_v():
    assert "jk_index" not in metric_names(["N", "S", "X"]) and "jk_index" not in metric_names(["N", "X", "V"])
    out = beat_metrics(["N", "S", "X"])(torch.softmax(torch.randn(10, 3), 1), torch.randint(0, 3, (10,)))
    assert "jk_index" not in out and "se_S" in out


def test_detected_beats_are_matched_and_counted_by_hand():
    from ecg_lightning import report

    ref_sample, ref_class = np.array([100, 400, 700, 1000]), np.array([0, 2, 2, 1])
    found, called = np.array([103, 690, 1012, 1500, 1800]), np.array([0, 2, 0, 2, 0])  # 400 missed; 2 extra
    r, c = report.match_to_reference(ref_sample, ref_class, found, called, window=20)
    assert r.tolist() == [0, 2, 2, 1, -1, -1] and c.tolist() == [0, -1, 2, 0, 2, 0]
    counts = report.class_counts(r, c, 3)
    assert counts.tolist() == [[1, 0, 2], [0, 1, 0], [1, 1, 1]]  # per class TP, FN, FP
    # no beat detected at all: every reference beat missed; no reference beat: every detection extra
    r, c = report.match_to_reference(ref_sample, ref_class, np.array([], int), np.array([], int), window=20)
    assert r.tolist() == [0, 2, 2, 1] and c.tolist() == [-1, -1, -1, -1]
    r, c = report.match_to_reference(np.array([], int), np.array([], int), found[:2], called[:2], window=20)
    assert r.tolist() == [-1, -1] and c.tolist() == [0, 2]


def test_columns_to_csv_matches_the_csv_module():
    import csv
    import io

    from ecg_lightning import report

    columns = {"a": np.array(["1", "22"]), "b": np.array(["x", ""]), "c": np.char.mod("%.2f", [0.5, 1 / 3])}
    text = report.columns_to_csv(columns)
    assert list(csv.reader(io.StringIO(text))) == [["a", "b", "c"], ["1", "x", "0.50"], ["22", "", "0.33"]]


def test_kappa_part_of_jk_on_a_one_beat_matrix():
    cm = torch.tensor([[0, 0, 0], [0, 0, 0], [0, 0, 1]])  # one V beat, found: observed = expected = 1
    j, jk = j_kappa_index(cm, s=1, v=2)
    assert float(j) == pytest.approx(2.0) and float(jk) == pytest.approx(0.25)  # kappa 0 (no agreement beyond chance)


@pytest.mark.parametrize("threshold", [None, 0.35, 0.8])
def test_confusion_figure_shows_the_thresholded_counts_and_the_class_names(threshold):
    """The figure's cell texts are scikit-learn's confusion matrix of P > threshold (0.5 by default; "above",
    as torchmetrics decides: 0.5 itself is normal), row-major (rows: reference), equal to the report's table, and
    its axes are labelled with the class names."""
    from sklearn.metrics import confusion_matrix

    from ecg_lightning import report

    probs = np.array([0.1, 0.4, 0.6, 0.9, 0.3, 0.7, 0.5, 0.85], dtype=np.float32)
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    classes = ["normal", "abnormal"]
    figs = (
        report.figures(probs, labels, classes)
        if threshold is None
        else report.figures(probs, labels, classes, threshold)
    )
    ax = figs["confusion_matrix"].axes[0]
    t = 0.5 if threshold is None else threshold
    expected = confusion_matrix(labels, probs > t, labels=[0, 1])
    assert [int(float(cell.get_text())) for cell in ax.texts] == expected.ravel().tolist()
    assert report.metrics_report(probs, labels, classes, t)["confusion_matrix"] == expected.tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert [t.get_text() for t in ax.get_yticklabels()] == classes


@pytest.mark.parametrize("classes", [["normal", "abnormal"], ["N", "S", "V"]])
def test_roc_figure_titles_its_task_and_gives_each_curves_auc(classes):
    """The ROC figure says what is plotted and, per curve, its AUC (scikit-learn as the oracle), by class name."""
    from sklearn.metrics import roc_auc_score

    from ecg_lightning import report

    rng = np.random.default_rng(0)
    labels = np.arange(60) % len(classes)
    if len(classes) == 2:
        probs = np.clip(labels * 0.5 + rng.uniform(0, 0.6, 60), 0, 1).astype(np.float32)
        aucs = {None: roc_auc_score(labels, probs)}
        title = "ROC: abnormal vs normal beats"
    else:
        logits = np.eye(3)[labels] + rng.normal(0, 0.8, (60, 3))
        probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
        aucs = {c: roc_auc_score(labels == k, probs[:, k]) for k, c in enumerate(classes)}
        title = "ROC: each class vs the rest"
    ax = report.figures(probs, labels, classes)["roc"].axes[0]
    assert ax.get_title() == title
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == len(aucs)
    for text, (name, auc) in zip(legend, aucs.items()):  # e.g. "N AUC=0.822" (3 decimals, float32 scores)
        assert float(text.split("AUC=")[1]) == pytest.approx(auc, abs=1.5e-3) and (name is None or name in text), text
