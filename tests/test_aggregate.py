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


def write_fold(sweep, num, overrides, records, labels, probs):
    job = sweep / f"{num}_job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    np.savez(job / "val_predictions.npz", probs=np.asarray(probs, np.float32), labels=np.asarray(labels),
             record=np.asarray(records), classes=np.asarray(["N", "S", "V"]), threshold=0.5)  # fmt: skip


def test_pooled_cross_validation_scores_the_joined_validation_beats(tmp_path):
    """Every fold's validation beats joined and scored once (S Se over all S beats, not a mean of fold ratios)."""
    from ecg_lightning.aggregate import pooled, pooled_markdown

    one_hot = np.eye(3)
    # fold 0: 1 S beat, found; fold 1: 3 S beats, 1 found (fold means: 0.667; pooled: 2 of 4 = 0.5)
    write_fold(tmp_path, 0, ["m=a", "data.fold=0"], ["r1"] * 3, [0, 1, 2], one_hot[[0, 1, 2]])
    write_fold(tmp_path, 1, ["m=a", "data.fold=1"], ["r2"] * 5, [0, 1, 1, 1, 2], one_hot[[0, 1, 0, 0, 2]])
    row = pooled([tmp_path])["m=a"]
    assert row["jobs"] == 2 and row["beats"] == 8 and row["records"] == ["r1", "r2"]
    assert row["se_S"] == pytest.approx(0.5) and row["folds"]["se_S"][0] == pytest.approx((1 + 1 / 3) / 2)
    assert row["confusion_matrix"] == [[2, 0, 0], [2, 2, 0], [0, 0, 2]]
    assert "| m=a | 2 | " in pooled_markdown({"m=a": row})
    write_fold(tmp_path, 2, ["m=a", "data.fold=2"], ["r2"], [0], one_hot[[0]])  # r2 validated twice: not folds
    with pytest.raises(SystemExit, match="r2"):
        pooled([tmp_path])


def test_an_ensemble_of_settings_averages_their_pooled_probabilities(tmp_path):
    """Two settings cross-validated on the same folds: their probabilities averaged beat by beat, then scored."""
    from ecg_lightning.aggregate import pooled

    # setting a calls the S beat N (0.6 vs 0.4), setting b calls it S (0.1 vs 0.9): the average (0.35 / 0.65) is S
    a = [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]]
    b = [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.4, 0.6]]  # and its V beat 0.6 V: the average keeps it V
    write_fold(tmp_path / "a", 0, ["m=a", "data.fold=0"], ["r1"] * 3, [0, 1, 2], a)
    write_fold(tmp_path / "b", 0, ["m=b", "data.fold=0"], ["r1"] * 3, [0, 1, 2], b)
    alone = pooled([tmp_path / "a", tmp_path / "b"])
    assert alone["m=a"]["se_S"] == 0 and alone["m=b"]["se_S"] == 1
    ((name, row),) = pooled([tmp_path / "a", tmp_path / "b"], ensemble=True).items()
    assert "(m=a)" in name and "(m=b)" in name
    assert row["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    write_fold(tmp_path / "c", 0, ["m=c", "data.fold=0"], ["r2"] * 3, [0, 1, 2], b)  # other records: refused
    with pytest.raises(SystemExit, match="same folds"):
        pooled([tmp_path / "a", tmp_path / "c"], ensemble=True)


def test_an_evaluate_sweep_over_checkpoints_is_one_setting(tmp_path):
    """``evaluate -m ckpt_path=a,b side=test``: each job's report has its metrics at the top level; the checkpoints
    are the repeats."""
    for num, (ckpt, acc) in enumerate((("s0.ckpt", 0.9), ("s1.ckpt", 0.8))):
        job = tmp_path / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"ckpt_path={ckpt}", "side=test"]))
        (job / "metrics.json").write_text(json.dumps({"checkpoint": ckpt, "side": "test", "accuracy": acc}))
    (row,) = summarize(tmp_path, "test").values()
    assert row["jobs"] == 2 and row["accuracy"] == pytest.approx([0.85, np.std([0.9, 0.8], ddof=1)])


def test_a_vote_keeps_the_networks_classes_but_one(tmp_path):
    """--vote S: the first sweep's probabilities, S averaged with the second's, renormalized."""
    from ecg_lightning.aggregate import pooled

    network = [[0.6, 0.4, 0.0], [0.2, 0.0, 0.8]]
    voter = [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]  # calls everything S; its V (0) must not count
    write_fold(tmp_path / "b_net", 0, ["m=net", "data.fold=0"], ["r1"] * 2, [1, 2], network)
    write_fold(tmp_path / "a_vote", 0, ["m=vote", "data.fold=0"], ["r1"] * 2, [1, 2], voter)
    ((name, row),) = pooled([tmp_path / "b_net", tmp_path / "a_vote"], vote="S").items()
    assert name.startswith("vote on S: (m=net) + (m=vote)")
    # beat 1: S (0.4 + 1) / 2 = 0.7 against N 0.6 -> S; beat 2: S 0.5 against V 0.8 -> V (the voter's V unused)
    assert row["confusion_matrix"] == [[0, 0, 0], [0, 1, 0], [0, 0, 1]]


def write_evaluated(sweep, num, trained_overrides, records, labels, probs, before=None):
    """An ``evaluate side=val`` job of one fold's checkpoint (predictions.npz: "label"; the checkpoint's run
    folder holds the training overrides); ``before``: its probabilities before the whole-record decision."""
    run = sweep.parent / f"{sweep.name}_trained" / str(num)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(trained_overrides))
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"ckpt_path={run}/checkpoints/last.ckpt", "side=val", "data.reference_beats=annotated_S"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"ckpt_path": f"{run}/checkpoints/last.ckpt"}))
    (job / "metrics.json").write_text(json.dumps({"side": "val", "accuracy": 0.5}))
    extra = {} if before is None else {"probs_before_decision": np.asarray(before, np.float32)}
    np.savez(job / "predictions.npz", probs=np.asarray(probs, np.float32), label=np.asarray(labels),
             record=np.asarray(records), classes=np.asarray(["N", "S", "V"]), **extra)  # fmt: skip


def test_evaluated_pools_read_the_probabilities_before_the_decision_and_older_files_are_named(tmp_path, caplog):
    """A pool averages networks before a whole-record decision, as training's pools and the averaged model do: an
    evaluate job's ``probs_before_decision`` is what it pools; a file written before them pools its decided
    probabilities, and the sweep is named in a warning."""
    from ecg_lightning.aggregate import joined_predictions

    decided, before = [[0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], [[0.7, 0.2, 0.1], [0.3, 0.1, 0.6]]
    write_evaluated(tmp_path / "new", 0, ["m=net", "data.fold=0"], ["r1"] * 2, [1, 2], decided, before)
    write_evaluated(tmp_path / "old", 0, ["m=old", "data.fold=0"], ["r1"] * 2, [1, 2], decided)
    with caplog.at_level("WARNING"):
        ((probs, *_),) = joined_predictions([tmp_path / "new"]).values()
    np.testing.assert_allclose(probs, before)
    assert "decided" not in caplog.text
    with caplog.at_level("WARNING"):
        ((probs, *_),) = joined_predictions([tmp_path / "old"]).values()
    np.testing.assert_allclose(probs, decided)
    assert f"{tmp_path / 'old'}: 1 evaluate jobs wrote only decided probabilities" in caplog.text


def test_evaluate_sweeps_of_fold_checkpoints_are_pooled_per_trained_setting_and_vote(tmp_path):
    """The stress test's sweeps (``evaluate -m ckpt_path=<fold checkpoints> side=val``): each sweep is pooled as
    the setting its checkpoints were trained with, so two models' sweeps stay apart and can vote."""
    from ecg_lightning.aggregate import pooled

    network = [[0.6, 0.4, 0.0], [0.2, 0.0, 0.8]]
    voter = [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    for num, record in enumerate(("r1", "r2")):
        write_evaluated(tmp_path / "net", num, ["m=net", f"data.fold={num}"], [record] * 2, [1, 2], network)
        write_evaluated(tmp_path / "vote", num, ["m=vote", f"data.fold={num}"], [record] * 2, [1, 2], voter)
    alone = pooled([tmp_path / "net", tmp_path / "vote"])
    names = sorted(alone)
    assert names[0].startswith("m=net | evaluate") and "data.reference_beats=annotated_S" in names[0]
    assert names[1].startswith("m=vote | evaluate")
    assert alone[names[0]]["beats"] == 4 and alone[names[0]]["se_S"] == 0 and alone[names[1]]["se_S"] == 1
    ((name, row),) = pooled([tmp_path / "net", tmp_path / "vote"], vote="S").items()
    assert name.startswith("vote on S: (m=net | evaluate")
    # an evaluate job of an ensemble (ckpt_path=[a,b]) is named by its first member's training setting
    from ecg_lightning.aggregate import evaluated_setting

    job = tmp_path / "net" / "0"
    first = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["ckpt_path"]
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"ckpt_path": [first, "/elsewhere/x.ckpt"]}))
    assert evaluated_setting(job).startswith("m=net | evaluate")
    assert row["confusion_matrix"] == [[0, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_pooled_beats_are_scored_with_the_decision_offsets_given(tmp_path):
    """--class-bias: log-prior offsets added before the argmax (as model.class_bias does)."""
    from ecg_lightning.aggregate import pooled

    probs = [[0.6, 0.4, 0.0], [0.5, 0.0, 0.5], [0.9, 0.1, 0.0]]
    write_fold(tmp_path, 0, ["m=a", "data.fold=0"], ["r1"] * 3, [1, 2, 0], probs)
    assert pooled([tmp_path])["m=a"]["confusion_matrix"] == [[1, 0, 0], [1, 0, 0], [1, 0, 0]]
    row = pooled([tmp_path], class_bias=[0.0, 0.5, 0.1])["m=a"]  # S: 0.4 e^0.5 > 0.6; V 0.5 e^0.1 > 0.5
    assert row["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    with pytest.raises(SystemExit, match="2 offsets for 3 classes"):
        pooled([tmp_path], class_bias=[0.0, 1.0])


def test_pooled_beats_per_record_say_which_patients_a_pooled_figure_is_made_of(tmp_path):
    """--per-record: a k-fold's pooled S Se of 0.75 is r1's 3 of 3 and r2's 0 of 1 — one record's S beats carry it;
    with offsets the rows follow them; two settings without an ensemble are refused."""
    import csv
    import io

    from ecg_lightning.aggregate import pooled_per_record

    one_hot = np.eye(3)
    write_fold(tmp_path, 0, ["m=a", "data.fold=0"], ["r1"] * 4, [1, 1, 1, 0], one_hot[[1, 1, 1, 0]])
    write_fold(tmp_path, 1, ["m=a", "data.fold=1"], ["r2"] * 3, [1, 0, 2], [[0.6, 0.4, 0], [1, 0, 0], [0, 0, 1]])
    rows = {r["record"]: r for r in csv.DictReader(io.StringIO(pooled_per_record([tmp_path])))}
    assert sorted(rows) == ["r1", "r2"]
    assert (rows["r1"]["n_S"], float(rows["r1"]["se_S"])) == ("3", 1.0)
    assert (rows["r2"]["n_S"], float(rows["r2"]["se_S"]), rows["r2"]["n_V"]) == ("1", 0.0, "1")
    biased = {r["record"]: r for r in csv.DictReader(io.StringIO(pooled_per_record([tmp_path], class_bias=[0, 1, 0])))}
    assert float(biased["r2"]["se_S"]) == 1.0 and float(biased["r2"]["accuracy"]) == 1.0  # 0.4 e > 0.6
    write_fold(tmp_path, 2, ["m=b", "data.fold=0"], ["r1"] * 4, [1, 1, 1, 0], one_hot[[0, 0, 0, 0]])
    with pytest.raises(SystemExit, match="one setting"):
        pooled_per_record([tmp_path])


def test_a_job_that_has_not_finished_is_left_out_and_named(tmp_path, caplog):
    """metrics.json is rewritten after every epoch: a sweep summarized while a job still runs (or after it stopped)
    must not count its last validation as the final epoch."""
    write_job(tmp_path, 0, ["model=cnn", "seed=0"], 0.80)
    write_job(tmp_path, 1, ["model=cnn", "seed=1"], 0.70)
    report = tmp_path / "1_job" / "metrics.json"
    report.write_text(json.dumps({**json.loads(report.read_text()), "finished": False}))
    write_fold(tmp_path / "cv", 0, ["m=a", "data.fold=0"], ["r1"], [0], [[1.0, 0.0, 0.0]])
    write_fold(tmp_path / "cv", 1, ["m=a", "data.fold=1"], ["r2"], [0], [[1.0, 0.0, 0.0]])
    (tmp_path / "cv" / "1_job" / "metrics.json").write_text(json.dumps({"finished": False}))
    with caplog.at_level("WARNING"):
        row = summarize(tmp_path)["model=cnn"]
        from ecg_lightning.aggregate import pooled

        assert pooled([tmp_path / "cv"])["m=a"]["records"] == ["r1"]
    assert row["jobs"] == 1 and row["accuracy"][0] == pytest.approx(0.80)
    assert "1_job has not finished" in caplog.text


def test_the_same_folds_trained_with_several_seeds_are_pooled_per_seed_and_over_seeds(tmp_path):
    """Two seeds of one 2-fold cross-validation: every beat counted once per seed in the pool (what calibrate then
    chooses offsets on), each seed's pool beside it, and their mean ± sd; a record twice in one seed is refused."""
    from ecg_lightning.aggregate import pooled

    one_hot = np.eye(3)
    calls = {"0": [1, 1], "1": [0, 1]}  # the S beat of r1: found by seed 0, missed by seed 1
    num = 0
    for seed, (r1_call, r2_call) in calls.items():
        for fold, (record, call) in enumerate((("r1", r1_call), ("r2", r2_call))):
            write_fold(tmp_path, num, ["m=a", f"data.fold={fold}", f"seed={seed}"], [record] * 2, [0, 1],
                       one_hot[[0, call]])  # fmt: skip
            (tmp_path / f"{num}_job" / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": int(seed)}))
            num += 1
    row = pooled([tmp_path])["m=a"]
    assert row["beats"] == 8 and row["jobs"] == 4 and row["records"] == ["r1", "r2"]
    assert row["se_S"] == pytest.approx(3 / 4)
    assert row["seeds"]["0"]["se_S"] == pytest.approx(1.0) and row["seeds"]["1"]["se_S"] == pytest.approx(0.5)
    assert row["over_seeds"]["se_S"] == pytest.approx([0.75, np.std([1.0, 0.5], ddof=1)])
    write_fold(tmp_path, num, ["m=a", "data.fold=2", "seed=1"], ["r1"], [0], one_hot[[0]])
    (tmp_path / f"{num}_job" / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 1}))
    with pytest.raises(SystemExit, match="validated by several jobs of one seed"):
        pooled([tmp_path])


def test_a_settings_seeds_are_averaged_beat_by_beat_as_one_ensemble(tmp_path):
    """--seed-ensemble: three seeds of one 2-fold cross-validation, their jobs numbered so that each seed's folds
    sort in a different order (as Hydra's job numbers do), averaged beat by beat — the S beat of r1 is found by two
    of three seeds, so by the ensemble; a setting with one seed is refused."""
    from ecg_lightning.aggregate import pooled

    s_of = {"0": 0.9, "1": 0.2, "2": 0.7}  # P(S) of r1's S beat per seed; N gets the rest
    num_of = {("0", 0): 0, ("0", 1): 12, ("1", 0): 10, ("1", 1): 1, ("2", 0): 2, ("2", 1): 3}
    for (seed, fold), num in num_of.items():
        record = ["r1", "r2"][fold]
        probs = [[1 - s_of[seed], s_of[seed], 0.0], [1.0, 0.0, 0.0]] if fold == 0 else [[0.0, 0.0, 1.0]] * 2
        labels = [1, 0] if fold == 0 else [2, 2]
        write_fold(tmp_path, num, ["m=a", f"data.fold={fold}", f"seed={seed}"], [record] * 2, labels, probs)
        (tmp_path / f"{num}_job" / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": int(seed)}))
    ((name, row),) = pooled([tmp_path], seeds=True).items()
    assert name == "ensemble of seeds 0, 1, 2: m=a"
    assert row["beats"] == 4 and row["se_S"] == pytest.approx(1.0)  # mean P(S) 0.6 > 0.4
    assert row["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    assert pooled([tmp_path], seeds=True, class_bias=[0.0, -1.0, 0.0])[name]["se_S"] == 0  # 0.6/e < 0.4
    for num in (10, 1, 2, 3):
        for path in (tmp_path / f"{num}_job").rglob("*"):
            path.unlink() if path.is_file() else None
    with pytest.raises(SystemExit, match="several training seeds"):
        pooled([tmp_path], seeds=True)


def test_an_evaluate_job_takes_its_checkpoints_training_seed(tmp_path):
    """The stress test's evaluate sweeps over several seeds' fold checkpoints: each job is the seed its checkpoint
    was trained with, so two seeds of one fold are not mistaken for one record validated twice."""
    from ecg_lightning.aggregate import job_seed, pooled

    for num, (record, seed) in enumerate((("r1", 0), ("r1", 1))):
        write_evaluated(tmp_path / "net", num, ["m=net", "data.fold=0"], [record] * 2, [1, 2],
                        [[0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])  # fmt: skip
        run = tmp_path / "net_trained" / str(num)
        (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
    assert [job_seed(tmp_path / "net" / str(n)) for n in (0, 1)] == ["0", "1"]
    ((_, row),) = pooled([tmp_path / "net"]).items()
    assert sorted(row["seeds"]) == ["0", "1"] and row["beats"] == 4
