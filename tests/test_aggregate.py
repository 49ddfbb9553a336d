import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ecg_lightning.aggregate import markdown, summarize


def write_job(sweep, num, overrides, accuracy, epoch_s=10.0):
    job = sweep / f"{num}_job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    final = {"val/accuracy": accuracy, "val/auroc": accuracy / 2, "time/epoch_s": epoch_s}
    (job / "metrics.json").write_text(json.dumps({"final": final, "best": {"val/accuracy": 1.0}}))


def test_jobs_are_pooled_over_seeds_and_folds(tmp_path):
    write_job(tmp_path, 0, ["model=cnn", "seed=0", "data.catalog.mitdb.root=/x"], 0.80)
    write_job(tmp_path, 1, ["model=cnn", "seed=1", "data.catalog.mitdb.root=/y"], 0.84)
    write_job(tmp_path, 2, ["model=cnn", "seed=2"], 0.90)
    write_job(tmp_path, 3, ["model=resnet", "data.fold=0"], 0.95)
    write_job(tmp_path, 4, ["model=resnet", "data.fold=1"], 0.97)
    summary = summarize(tmp_path)
    assert set(summary) == {"model=cnn", "model=resnet"}
    assert summary["model=cnn"]["jobs"] == 3
    assert summary["model=cnn"]["accuracy"] == pytest.approx([0.84666667, np.std([0.8, 0.84, 0.9], ddof=1)])
    assert summary["model=resnet"]["auroc"][0] == pytest.approx(0.48)
    assert summarize(tmp_path, "best")["model=cnn"]["accuracy"] == [1.0, 0.0]
    assert "| model=cnn | 3 | 0.847 ± 0.050 |" in markdown(summary)


def test_jobs_of_several_sweeps_are_pooled(tmp_path):
    write_job(tmp_path / "a", 0, ["model=cnn", "data.fold=0"], 0.80)
    write_job(tmp_path / "b", 0, ["model=cnn", "data.fold=1"], 0.90)
    summary = summarize([tmp_path / "a", tmp_path / "b"])
    assert summary["model=cnn"]["jobs"] == 2 and summary["model=cnn"]["accuracy"][0] == pytest.approx(0.85)


def test_cli_writes_json_and_rejects_empty_dirs(tmp_path):
    write_job(tmp_path, 0, ["model=cnn", "seed=0"], 0.8)
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "ecg_lightning.aggregate", str(tmp_path), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "model=cnn" in done.stdout
    assert json.loads(out.read_text())["summary"]["model=cnn"]["accuracy"][0] == 0.8
    empty = subprocess.run(
        [sys.executable, "-m", "ecg_lightning.aggregate", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert empty.returncode != 0 and "No <job>/metrics.json" in empty.stderr


def test_test_set_metrics_are_summarized(tmp_path):
    for num, (seed, acc, se_s) in enumerate([(0, 0.90, 0.5), (1, 0.94, 0.7)]):
        job = tmp_path / f"{num}_job"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=aami_ds1ds2", f"seed={seed}"]))
        report = {"final": {"val/accuracy": 0.5}, "best": {}, "test": {"test/accuracy": acc, "test/se_S": se_s}}
        (job / "metrics.json").write_text(json.dumps(report))
    summary = summarize(tmp_path, "test")["experiment=aami_ds1ds2"]
    assert summary["jobs"] == 2 and summary["accuracy"] == pytest.approx([0.92, np.std([0.9, 0.94], ddof=1)])
    assert summary["se_S"][0] == pytest.approx(0.6)
    assert "| experiment=aami_ds1ds2 | 2 | 0.920 ± 0.028 | 0.600 ± 0.141 |" in markdown(summarize(tmp_path, "test"))
