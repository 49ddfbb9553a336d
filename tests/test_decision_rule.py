"""The multi-class decision rule (model.class_bias) and its choice on cross-validated predictions (calibrate)."""

import json
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

from ecg_lightning.calibrate import GRID, choose_bias, scores
from ecg_lightning.classifier import BeatClassifier, beats_of_runs
from ecg_lightning.errors import ConfigError

CLASSES = ["N", "S", "V", "F", "Q"]


def classifier(**kwargs) -> BeatClassifier:
    return BeatClassifier(nn.Identity(), torch.optim.Adam, classes=CLASSES, monitor="val/jk_index", **kwargs)


def test_class_bias_is_a_log_prior_added_before_the_softmax():
    logits = torch.randn(6, 5)
    bias = [0.0, 1.5, -0.5, 0.0, 0.0]
    torch.testing.assert_close(classifier(class_bias=bias).probabilities(logits),
                               torch.softmax(logits + torch.tensor(bias), -1))  # fmt: skip
    torch.testing.assert_close(classifier().probabilities(logits), torch.softmax(logits, -1))
    with pytest.raises(ConfigError, match="one per class"):
        classifier(class_bias=[0.0, 1.0])
    assert "class_bias" not in classifier(class_bias=bias).state_dict()  # earlier checkpoints load as they are


def test_the_record_relative_decision_is_the_s_offset_on_each_records_own_scale_and_needs_n_and_s():
    probs = torch.softmax(torch.randn(30, 5, generator=torch.Generator().manual_seed(0)), -1).numpy()
    records = np.array(["a"] * 10 + ["b"] * 20)
    assert classifier(class_bias=[0, 1.5, 0, 0, 0]).decide_per_record(probs, records) is probs  # off: untouched
    decided = classifier(class_bias=[0, 1.5, 0, 0, 0], relative_s=True).decide_per_record(probs, records)
    odds = np.log(decided[:, 1]) - np.log(decided[:, 0])
    for record in "ab":  # every record's median beat at the S offset's odds, the order of its beats unchanged
        mine = records == record
        assert np.median(odds[mine]) == pytest.approx(1.5, abs=1e-5)
        raw = np.log(probs[mine, 1]) - np.log(probs[mine, 0])
        assert (np.argsort(odds[mine]) == np.argsort(raw)).all()
    np.testing.assert_allclose(decided[:, 2:] / decided[:, [0]], probs[:, 2:] / probs[:, [0]], rtol=1e-5)
    low = classifier(class_bias=[0, 1.5, 0, 0, 0], relative_s=True, relative_s_quantile=0.1)
    odds = np.log(low.decide_per_record(probs, records)[:, 1] / low.decide_per_record(probs, records)[:, 0])
    for record in "ab":  # measured from the record's 10th percentile in place of its median
        assert np.quantile(odds[records == record], 0.1) == pytest.approx(1.5, abs=1e-5)
    with pytest.raises(ConfigError, match="relative_s_quantile=1.5"):
        classifier(relative_s=True, relative_s_quantile=1.5)
    with pytest.raises(ConfigError, match="needs the classes N and S"):
        BeatClassifier(nn.Identity(), torch.optim.Adam, classes=["normal", "abnormal"], relative_s=True)


def test_the_run_relative_loss_measures_s_from_each_runs_median_and_ignores_padding():
    """Training for the record-relative decision: each run's S scores from its own median beat (padding left out),
    so a constant added to one run's S logits leaves the loss as it was (the plain loss changes), and the loss is
    the plain cross-entropy of the shifted logits, added to the plain loss with its weight."""
    from ecg_lightning.classifier import RUN_RELATIVE_S_OFFSET, run_relative_s_logits

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 5, generator=gen, requires_grad=True)
    target = torch.randint(0, 5, (3, 6), generator=gen)
    target[2, 3:] = -1  # the record's last run, padded
    relative = run_relative_s_logits(logits, target, 1, 0)
    odds = relative[..., 1] - relative[..., 0]
    for run, keep in ((0, 6), (1, 6), (2, 3)):
        assert odds[run, :keep].median().item() == pytest.approx(RUN_RELATIVE_S_OFFSET, abs=1e-5)
    torch.testing.assert_close(relative[..., [0, 2, 3, 4]], logits[..., [0, 2, 3, 4]])
    model = classifier(relative_s_loss=0.5)
    shifted = logits.detach().clone()
    shifted[1, :, 1] += 3.0  # one run's S scores all higher: the relative loss is blind to it, the plain one is not
    assert model.run_relative_loss(shifted, target).item() == pytest.approx(
        model.run_relative_loss(logits, target).item()
    )
    plain = model.loss(*beats_of_runs(logits, target))
    assert model.loss(*beats_of_runs(shifted, target)).item() != pytest.approx(plain.item())
    wanted = plain + 0.5 * model.loss(*beats_of_runs(relative, target))
    loss, _, y = model._step((logits, target), train=True)
    assert loss.item() == pytest.approx(wanted.item()) and len(y) == 15
    assert model._step((logits, target))[0].item() == pytest.approx(plain.item())  # validation: the plain loss
    loss.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[2, 3:] == 0).all()  # padding gets no gradient
    farther = classifier(relative_s_loss=0.5, relative_s_offset=-2.0)  # the margin is a setting, used by the loss
    wanted = farther.loss(*beats_of_runs(run_relative_s_logits(logits, target, 1, 0, offset=-2.0), target))
    assert farther.run_relative_loss(logits, target).item() == pytest.approx(wanted.item())
    assert wanted.item() != pytest.approx(model.run_relative_loss(logits, target).item())
    with pytest.raises(ConfigError, match="runs of beats"):
        model.run_relative_loss(logits[:, 0], target[:, 0])
    with pytest.raises(ConfigError, match="needs the classes N and S"):
        BeatClassifier(nn.Identity(), torch.optim.Adam, classes=["normal", "abnormal"], relative_s_loss=1.0)
    with pytest.raises(ConfigError, match=">= 0"):
        classifier(relative_s_loss=-1.0)


def test_the_run_relative_loss_can_measure_s_from_a_low_quantile_of_each_run():
    """The loss's reference is a quantile of each run's S-vs-N log-odds (padding left out), the counterpart of the
    decision's ``relative_s_quantile``: the 0.1 quantile is a lower beat of the run than its median, the 0.5 quantile
    is the median exactly, and the classifier passes its setting through (a bad one is refused)."""
    from ecg_lightning.classifier import RUN_RELATIVE_S_OFFSET, run_relative_s_logits

    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 11, 5, generator=gen)
    target = torch.randint(0, 5, (2, 11), generator=gen)
    target[1, 6:] = -1
    odds = logits[..., 1] - logits[..., 0]
    low = run_relative_s_logits(logits, target, 1, 0, quantile=0.1)
    for run, keep in ((0, 11), (1, 6)):
        run_odds = odds[run, :keep]
        lowest_tenth = run_odds.sort().values[int(0.1 * (keep - 1))]  # the lower of two beats, as the median's
        shifted = low[run, :keep, 1] - low[run, :keep, 0]
        torch.testing.assert_close(shifted, run_odds - lowest_tenth + RUN_RELATIVE_S_OFFSET)
        assert lowest_tenth < run_odds.median()
    torch.testing.assert_close(
        run_relative_s_logits(logits, target, 1, 0, quantile=0.5), run_relative_s_logits(logits, target, 1, 0)
    )
    model = classifier(relative_s_loss=1.0, relative_s_loss_quantile=0.1)
    wanted = model.loss(*beats_of_runs(low, target))
    assert model.run_relative_loss(logits, target).item() == pytest.approx(wanted.item())
    assert wanted.item() != pytest.approx(classifier(relative_s_loss=1.0).run_relative_loss(logits, target).item())
    with pytest.raises(ConfigError, match="relative_s_loss_quantile"):
        classifier(relative_s_loss=1.0, relative_s_loss_quantile=1.5)


def test_calibration_finds_the_offset_that_recovers_underpredicted_s_beats():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(900, int), np.ones(60, int), np.full(40, 2)]
    logits = rng.normal(0, 0.3, (1000, 5))
    logits[np.arange(1000), labels] += 1.0
    logits[labels == 1, 0] += 1.6  # S beats look a little more normal than S: most called N without an offset
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    bias, before, after = choose_bias(probs, labels, CLASSES, ["S", "V"])
    assert (
        before["se_S"] < 0.3 and after["se_S"] > before["se_S"] + 0.2 and after["f1_S_plus_V"] > before["f1_S_plus_V"]
    )
    assert bias[1] > 0 and bias[1] in GRID and bias[0] == bias[3] == bias[4] == 0
    # the chosen offsets are the best of the grid for that metric
    for s_offset in GRID:
        trial = bias.copy()
        trial[1] = s_offset
        k = 5
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (labels, (np.log(probs) + trial).argmax(1)), 1)
        assert scores(confusion, CLASSES)["f1_S_plus_V"] <= after["f1_S_plus_V"] + 1e-9
    # the j-index can be gamed: calling almost nothing S gives S +P near 1 (why the rule maximizes F1)
    gamed = choose_bias(probs, labels, CLASSES, ["S", "V"], "j_index")[2]
    assert gamed["se_S"] < 0.1


def selection_script(name: str = "selection_over_seeds"):
    """A script of benchmarks/ (not a module of the package), by name."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def candidate_row(jk: tuple[float, float], se_s_sd: float, retention: float = 1.0, seeds: int = 3) -> dict:
    return {"over_seeds": {"jk_index": list(jk), "se_S": [0.4, se_s_sd]}, "retention": retention,
            "seeds": {str(s): {} for s in range(seeds)}}  # fmt: skip


def test_selection_rule_weighs_s_stability_only_when_asked_and_within_the_jk_margin():
    choose = selection_script().choose
    # the eleventh round's figures: a jκ tie, R0 steady on S and L6 not
    tie = {"L6": candidate_row((0.584, 0.042), 0.117), "R0": candidate_row((0.584, 0.035), 0.029)}
    assert choose(tie)[0] == "L6"  # jκ alone: no margin, the current model stays
    assert choose(tie, stability=0.05)[0] == "R0"
    # steady but clearly worse on jκ (by more than the standard error of the difference): L6 stays
    worse = {**tie, "R0": candidate_row((0.45, 0.035), 0.029)}
    assert choose(worse, stability=0.05)[0] == "L6"
    # steady but its S calls collapse under the dominant-S stress test: L6 stays
    fragile = {**tie, "R0": candidate_row((0.584, 0.035), 0.029, retention=0.3)}
    assert choose(fragile, stability=0.05)[0] == "L6"
    # the current model steady too: jκ alone decides, and a clear jκ lead wins
    both = {"L6": candidate_row((0.584, 0.01), 0.03), "R0": candidate_row((0.584, 0.01), 0.02)}
    assert choose(both, stability=0.05)[0] == "L6"
    ahead = {**both, "R0": candidate_row((0.65, 0.01), 0.02)}
    assert choose(ahead, stability=0.05)[0] == "R0"


def test_selection_script_names_a_candidate_given_without_its_folder(monkeypatch):
    monkeypatch.setattr("sys.argv", ["selection_over_seeds.py", "--candidates", "L6", "R0=r0"])
    with pytest.raises(SystemExit, match="--candidates L6: give NAME=FOLDER"):
        selection_script().main()


def test_selection_script_reads_a_recorded_candidate_and_names_a_missing_one(tmp_path):
    script = selection_script()
    results = tmp_path / "selection.json"
    row = candidate_row((0.613, 0.031), 0.097)
    results.write_text(__import__("json").dumps({"candidates": {"L6": row}}))
    assert script.recorded(f"L6={results}") == ("L6", row)
    with pytest.raises(SystemExit, match=r"holds \['L6'\], not R0"):
        script.recorded(f"R0={results}")
    with pytest.raises(SystemExit, match="give NAME=RESULTS_JSON"):
        script.recorded("L6")


def test_an_ensemble_candidate_takes_its_instances_in_the_place_of_seeds():
    script = selection_script()
    metrics = {k: 0.5 for k in script.KEPT}
    plain = {"a": {**metrics, "se_S": 0.4, "jk_index": 0.60}, "b": {**metrics, "se_S": 0.6, "jk_index": 0.64}}
    row = script.over_instances(plain, {"a": 0.2, "b": 0.3})
    assert row["over_seeds"]["se_S"] == [0.5, round(0.2 / 2**0.5, 4)]
    assert row["over_seeds"]["jk_index"][0] == 0.62
    assert row["retention"] == 0.5  # the instances' pooled S Se under the stress (0.25) over without it (0.5)
    assert set(row["seeds"]) == {"a", "b"}
    # the rule reads it as it reads seeds: steady instances with the current model's jκ are chosen
    rows = {"L6": candidate_row((0.613, 0.031), 0.097), "E3": {**row, "retention": 0.6}}
    rows["E3"]["over_seeds"] = {"jk_index": [0.62, 0.01], "se_S": [0.5, 0.03]}
    assert script.choose(rows, stability=0.05)[0] == "E3"
    with pytest.raises(SystemExit, match="several instances"):
        script.over_instances({"a": plain["a"]}, {"a": 0.2})


def test_binary_seed_ensemble_names_a_folder_without_finished_jobs(tmp_path):
    script = selection_script("binary_seed_ensemble")
    with pytest.raises(SystemExit, match="no training jobs there"):
        script.jobs_by_fold(tmp_path)
    job = tmp_path / "0_data.fold-0__seed-0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- data.fold=0\n- seed=0\n")
    with pytest.raises(SystemExit, match="0_data.fold-0__seed-0: the training has not finished"):
        script.jobs_by_fold(tmp_path)


def test_selection_rule_weighs_a_retention_gain_only_when_asked_and_within_both_jk_tolerances():
    choose = selection_script().choose

    def row(jk, retention, ensemble_jk):
        return {**candidate_row(jk, 0.1, retention), "seed_ensemble": {"jk_index": ensemble_jk}}

    current = row((0.613, 0.031), 0.57, 0.635)
    robust = {"L6": current, "LT": row((0.60, 0.03), 0.80, 0.62)}
    assert choose(robust)[0] == "L6"  # jκ alone: LT is not ahead
    assert choose(robust, retention_gain=0.1)[0] == "LT"
    small_gain = {**robust, "LT": row((0.60, 0.03), 0.65, 0.62)}
    assert choose(small_gain, retention_gain=0.1)[0] == "L6"
    worse = {**robust, "LT": row((0.52, 0.03), 0.80, 0.62)}  # below by more than the standard error (0.025)
    assert choose(worse, retention_gain=0.1)[0] == "L6"
    weak_ensemble = {**robust, "LT": row((0.60, 0.03), 0.80, 0.61)}  # 0.025 below the current ensemble
    assert choose(weak_ensemble, retention_gain=0.1)[0] == "L6"


def test_parsimony_rule_drops_an_input_only_when_both_jk_tolerances_and_the_retention_floor_hold():
    choose = selection_script().choose

    def row(jk, retention, ensemble_jk):
        return {**candidate_row(jk, 0.1, retention), "seed_ensemble": {"jk_index": ensemble_jk}}

    rows = {"L6": row((0.613, 0.031), 0.57, 0.635), "L6I": row((0.60, 0.03), 0.55, 0.62)}
    assert choose(rows)[0] == "L6"  # jκ alone: L6I is not ahead
    chosen, why = choose(rows, parsimony=True)
    assert chosen == "L6I" and "within the standard error" in why and "seed ensemble" in why
    assert choose({**rows, "L6I": row((0.52, 0.03), 0.55, 0.62)}, parsimony=True)[0] == "L6"  # below the margin
    assert choose({**rows, "L6I": row((0.60, 0.03), 0.55, 0.61)}, parsimony=True)[0] == "L6"  # weak ensemble
    assert choose({**rows, "L6I": row((0.60, 0.03), 0.45, 0.62)}, parsimony=True)[0] == "L6"  # fragile under stress


def test_ensemble_gain_rule_weighs_the_seeds_averaged_against_a_named_current_model():
    choose = selection_script().choose

    def row(jk, retention, ensemble_jk):
        return {**candidate_row(jk, 0.1, retention), "seed_ensemble": {"jk_index": ensemble_jk}}

    rows = {"L6I": row((0.597, 0.053), 0.56, 0.639), "SL6I": row((0.59, 0.08), 0.55, 0.652)}
    assert choose(rows, current="L6I")[0] == "L6I"  # jκ over single seeds alone: SL6I is not ahead
    chosen, why = choose(rows, ensemble_gain=0.01, current="L6I")
    assert chosen == "SL6I" and "seed ensemble (0.652)" in why and "L6I's (0.639)" in why
    small_gain = {**rows, "SL6I": row((0.59, 0.08), 0.55, 0.645)}  # 0.006 above
    assert choose(small_gain, ensemble_gain=0.01, current="L6I")[0] == "L6I"
    weak_seeds = {**rows, "SL6I": row((0.45, 0.08), 0.55, 0.66)}  # single seeds far below the margin
    assert choose(weak_seeds, ensemble_gain=0.01, current="L6I")[0] == "L6I"
    fragile = {**rows, "SL6I": row((0.59, 0.08), 0.45, 0.66)}  # retention under the stress below 0.5
    assert choose(fragile, ensemble_gain=0.01, current="L6I")[0] == "L6I"


def test_stressed_floor_rule_weighs_the_s_beats_found_under_the_stress_not_their_ratio():
    choose = selection_script().choose

    def row(jk, retention, ensemble_jk, stressed):
        return {
            **candidate_row(jk, 0.1, retention),
            "seed_ensemble": {"jk_index": ensemble_jk},
            "stressed_se_S": stressed,
        }

    current = row((0.597, 0.053), 0.56, 0.639, 0.161)
    more_s = row((0.645, 0.032), 0.41, 0.694, 0.176)  # finds more S beats with and without the stress: a lower ratio
    rows = {"L6I": current, "SL6I": more_s}
    assert choose(rows, ensemble_gain=0.01, current="L6I")[0] == "L6I"  # retention < 0.5: not eligible
    assert choose(rows, ensemble_gain=0.01, current="L6I", stressed_floor=True)[0] == "SL6I"
    fewer_under_stress = {"L6I": current, "SL6I": row((0.645, 0.032), 0.41, 0.694, 0.15)}
    assert choose(fewer_under_stress, ensemble_gain=0.01, current="L6I", stressed_floor=True)[0] == "L6I"


def test_selection_script_names_a_current_model_that_is_not_given(monkeypatch):
    monkeypatch.setattr("sys.argv", ["selection_over_seeds.py", "--candidates", "SL6I=sl6i", "--current", "L6I"])
    with pytest.raises(SystemExit, match="must include the current model, L6I"):
        selection_script().main()


def test_the_selection_scripts_help_prints_every_rule_it_can_weigh(monkeypatch, capsys):
    """--help renders each flag's text (a percent sign in one once stopped it with a TypeError)."""
    monkeypatch.setattr("sys.argv", ["selection_over_seeds.py", "--help"])
    with pytest.raises(SystemExit) as stop:
        selection_script().main()
    assert stop.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "78% of each S patient's S and N beats" in shown and "--either-gain" in shown


def test_the_either_rule_without_the_composition_gain_is_refused_before_any_sweep_is_read(monkeypatch, tmp_path):
    argv = ["selection_over_seeds.py", "--cv", str(tmp_path / "none"), "--relative", "CB=cb:q10", "--current", "CB",
            "--patient-gain", "0.1", "--either-gain"]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(
        SystemExit, match="--either-gain weighs the composition rule's measures: give --composition-gain"
    ):
        selection_script().main()


def test_a_mean_named_ahead_without_the_either_rule_is_refused_before_any_sweep_is_read(monkeypatch, tmp_path):
    argv = ["selection_over_seeds.py", "--cv", str(tmp_path / "none"), "--relative", "CB=cb:q10", "--current", "CB",
            "--patient-gain", "0.1", "--composition-gain", "0.1", "--ahead-on", "patient"]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match="--ahead-on patient names the mean the --either-gain rule weighs"):
        selection_script().main()


@pytest.mark.parametrize(
    "gains, message",
    [(["--patient-mean-gain", "0.09"], "--patient-mean-gain: one gained measure at a time, beside --fewer-false-s"),
     (["--fewer-false-s", "203", "--patient-mean-gain", "0.09", "--composed-gain", "0.09"],
      "--patient-mean-gain and --composed-gain: one gained measure at a time")],
)  # fmt: skip
def test_a_gained_measure_without_its_record_or_beside_another_is_refused_before_any_sweep_is_read(
    monkeypatch, tmp_path, gains, message
):
    argv = ["selection_over_seeds.py", "--cv", str(tmp_path / "none"), "--relative", "CB=cb:q10", "--current", "CB",
            *gains]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match=message):
        selection_script().main()


def test_the_sequence_template_swap_experiment_holds_what_its_selection_chose(tmp_path):
    """experiment=aami_sequence_template_swap says it is the twenty-second round's DS1 choice: its inputs and a
    single network's offsets are the candidate's as the selection recorded them, and the offsets its comment gives
    for three networks averaged are the seed ensemble's."""
    import json
    from pathlib import Path

    from conftest import compose_config

    root = Path(__file__).resolve().parents[1]
    chosen = json.loads((root / "results" / "aami_ds1_cv5_sequence_template_swap_selection.json").read_text())
    assert chosen["chosen"] == "SL6IT"
    row = chosen["candidates"]["SL6IT"]
    cfg = compose_config("train", tmp_path, ["experiment=aami_sequence_template_swap"])
    assert list(cfg.model.class_bias) == row["class_bias"]
    assert cfg.data.reference_beats == "longest_rr" and cfg.data.augment.template_swap == 0.2
    assert "local_irregularity" not in cfg.data.rr_features and cfg.data.run_beats > 1
    averaged = " ".join(f"{b:g}" for b in row["seed_ensemble"]["class_bias"])
    text = (root / "conf" / "experiment" / "aami_sequence_template_swap.yaml").read_text()
    assert f"--class-bias {averaged} --out" in text


def test_the_record_relative_experiment_holds_what_the_twenty_seventh_and_thirty_first_rounds_chose(tmp_path):
    """experiment=aami_sequence_relative_s is S1T-RL as the selections recorded it: S1T's inputs, trained for the
    record-relative decision (the run-relative loss), the S decision relative to each record measured from its 10th
    percentile, and the operating point the thirty-first round's rule chose (in the combine line of its comment too)."""
    import json
    from pathlib import Path

    from conftest import compose_config

    root = Path(__file__).resolve().parents[1]
    trained = json.loads((root / "results" / "aami_ds1_cv5_relative_s_loss_selection.json").read_text())
    assert trained["chosen"] == "S1T-RL" and trained["candidates"]["S1T-RL"]["sweep"].endswith("s1trl")
    chosen = json.loads((root / "results" / "aami_ds1_cv5_relative_s_low_quantile_selection.json").read_text())
    row = chosen["candidates"][chosen["chosen"]]
    assert row["relative_to_records"] and row["sweep"].endswith("s1trl") and row["quantile"] == 0.1
    cfg = compose_config("train", tmp_path, ["experiment=aami_sequence_relative_s"])
    assert list(cfg.model.class_bias) == chosen["class_bias"] and cfg.model.relative_s is True
    assert cfg.model.relative_s_quantile == row["quantile"] and cfg.model.relative_s_loss == 1.0
    assert cfg.data.augment.template_swap == 0.2 and cfg.data.reference_beats == "all" and cfg.data.run_beats > 1
    text = (root / "conf" / "experiment" / "aami_sequence_relative_s.yaml").read_text()
    bias = " ".join(f"{b:g}" for b in chosen["class_bias"])
    assert f"--class-bias {bias} --relative-s --relative-s-quantile {row['quantile']:g} --out" in text


def test_the_two_irregularities_experiment_is_the_thirty_fourth_rounds_choice(tmp_path):
    """experiment=aami_sequence_two_irregularities is CB as its selections recorded it: the recommended recipe before
    it (aami_sequence_relative_s) with local_rr_change beside local_irregularity, chosen on fresh seeds 15-17 by the
    thirty-third round's rule, at that choice's operating point (in the combine line of its comment too)."""
    import json
    from pathlib import Path

    from conftest import compose_config

    root = Path(__file__).resolve().parents[1]
    first = json.loads((root / "results" / "aami_ds1_cv5_both_irregularities_selection.json").read_text())
    assert first["chosen"] == "CUR" and first["either_gain"] and "CB" in first["candidates"]
    chosen = json.loads((root / "results" / "aami_ds1_cv5_both_irregularities_fresh_seeds_selection.json").read_text())
    row = chosen["candidates"]["CB"]
    assert chosen["chosen"] == "CB" and chosen["either_gain"] and row["sweep"].endswith("cv35/cb")
    assert row["relative_to_records"] and row["quantile"] == 0.1
    cfg = compose_config("train", tmp_path, ["experiment=aami_sequence_two_irregularities"])
    before = compose_config("train", tmp_path, ["experiment=aami_sequence_relative_s"])
    assert list(cfg.data.rr_features) == [*before.data.rr_features[:3], "local_rr_change", *before.data.rr_features[3:]]
    assert list(cfg.model.class_bias) == chosen["class_bias"] and cfg.model.relative_s_quantile == row["quantile"]
    for key in ("relative_s", "relative_s_loss", "relative_s_loss_quantile"):
        assert cfg.model[key] == before.model[key], key
    assert cfg.data.augment == before.data.augment and cfg.data.run_beats == before.data.run_beats
    text = (root / "conf" / "experiment" / "aami_sequence_two_irregularities.yaml").read_text()
    bias = " ".join(f"{b:g}" for b in chosen["class_bias"])
    assert f"--class-bias {bias} --relative-s --relative-s-quantile {row['quantile']:g} --out" in text


# (experiment, the one it changes, the rounds' two selection files, current and chosen names, the settings that differ)
CHOICES = [
    ("aami_sequence_mlii", "aami_sequence_two_irregularities",
     ("mlii_alone_seeds_24_26", "mlii_alone_seeds_27_29"), "CB", "CBM",
     [("data", ["lead"]), ("model", ["class_bias", "net"]), ("model.net", ["in_channels"])]),
    ("aami_sequence_mlii_stretch", "aami_sequence_mlii",
     ("mlii_time_stretch_seeds_39_41", "mlii_time_stretch_seeds_42_44"), "CBM", "CBMS",
     [("data", ["augment"]), ("data.augment", ["stretch"]), ("model", [])]),  # the same offsets (c -5) chosen
    ("aami_sequence_mlii_premature", "aami_sequence_mlii_stretch",
     ("mlii_premature_timing_seeds_69_71", "mlii_premature_timing_seeds_72_74"), "CBMS", "CBMSP",
     [("data", ["augment"]), ("data.augment", ["premature"]), ("model", ["class_bias"])]),  # c -4.5
    ("aami_sequence_mlii_fibrillation_timing", "aami_sequence_mlii_premature",
     ("mlii_fibrillation_timing_every_run_seeds_69_71", "mlii_fibrillation_timing_every_run_seeds_72_74"), "CBMSP",
     "CBMSPI1", [("data", ["augment"]), ("data.augment", ["irregular"]), ("model", ["class_bias"])]),  # c -3.75
]  # fmt: skip


@pytest.mark.parametrize(("experiment", "before_it", "selections", "current", "candidate", "differs"), CHOICES)
def test_an_experiment_is_its_rounds_choice(tmp_path, experiment, before_it, selections, current, candidate, differs):
    """experiment=aami_sequence_mlii is CBM (the forty-first round: CB on MLII alone), aami_sequence_mlii_stretch is
    CBMS (the forty-fourth: CBM with each training record's time axis stretched), aami_sequence_mlii_premature is CBMSP
    (the sixty-third: CBMS with premature timing served to normal beats), aami_sequence_mlii_fibrillation_timing is
    CBMSPI1 (the sixty-fifth: CBMSP with fibrillation's RR intervals in every run without an S beat, chosen by fewer
    of 203's N beats called S), each as its two selections recorded
    it: passing the rule against the current recipe on one seed set and chosen on a second, at the second set's
    operating point (in the combine line of its comment too); every other setting is the recipe's it changes."""
    from pathlib import Path

    from conftest import compose_config
    from omegaconf import OmegaConf

    root = Path(__file__).resolve().parents[1]
    first, chosen = (json.loads((root / "results" / f"aami_ds1_cv5_{name}_selection.json").read_text())
                     for name in selections)  # fmt: skip
    for selection in (first, chosen):
        assert selection["chosen"] == candidate and selection["current"] == current
        assert selection["either_gain"] or selection.get("fewer_false_s")  # the gain its rule asked for
    row = chosen["candidates"][candidate]
    assert row["relative_to_records"] and row["quantile"] == 0.1
    cfg = compose_config("train", tmp_path, [f"experiment={experiment}"])
    before = compose_config("train", tmp_path, [f"experiment={before_it}"])
    assert list(cfg.model.class_bias) == chosen["class_bias"] == row["class_bias"]
    for group, keys in differs:
        mine, theirs = (OmegaConf.to_container(OmegaConf.select(c, group), resolve=True) for c in (cfg, before))
        assert not keys or any(mine[key] != theirs[key] for key in keys), group
        for key in keys:
            mine.pop(key), theirs.pop(key)
        assert mine == theirs, group
    text = (root / "conf" / "experiment" / f"{experiment}.yaml").read_text()
    bias = " ".join(f"{b:g}" for b in chosen["class_bias"])
    assert f"--class-bias {bias} --relative-s --relative-s-quantile {row['quantile']:g} --out" in text


def test_the_mlii_experiment_reads_one_lead_and_the_stretch_recipe_stretches(tmp_path):
    """What the two choices changed, said plainly: MLII and its template (two channels, where two leads gave four),
    and a stretch of 0.15 only in the forty-fourth round's recipe."""
    from conftest import compose_config

    names = ("aami_sequence_mlii", "aami_sequence_mlii_stretch", "aami_sequence_two_irregularities")
    mlii, stretch, two = (compose_config("train", tmp_path / name, [f"experiment={name}"]) for name in names)
    assert mlii.data.lead == stretch.data.lead == "MLII" and two.data.lead != "MLII"
    assert (mlii.model.net.in_channels, two.model.net.in_channels) == (2, 4)
    assert (mlii.data.augment.stretch, stretch.data.augment.stretch, two.data.augment.stretch) == (0.0, 0.15, 0.0)


def test_the_patient_mean_counts_each_s_patient_once_whatever_its_beats():
    """r1: 18 of 20 S beats found, r2: 0 of 10, r3: 5 of 5 but under the 10-beat floor — the patient mean is 0.45
    where the pooled sensitivity over r1 and r2 is 0.6."""
    from ecg_lightning.calibrate import patient_mean

    records = np.array(["r1"] * 20 + ["r2"] * 10 + ["r3"] * 5 + ["r2"] * 3)
    labels = np.r_[np.ones(35, int), np.zeros(3, int)]
    predicted = np.r_[np.ones(18, int), np.zeros(2, int), np.zeros(10, int), np.ones(5, int), np.ones(3, int)]
    mean, each = patient_mean(predicted, labels, records, 1)
    assert each == {"r1": 0.9, "r2": 0.0} and mean == pytest.approx(0.45)
    with pytest.raises(ValueError, match="no record holds 50 or more beats of class index 1"):
        patient_mean(predicted, labels, records, 1, min_beats=50)


def test_the_operating_point_finds_every_patients_s_beats_it_can_while_s_plus_p_holds():
    """Patient a's S beats are found at any offset; patient b's need a push that also calls c's N beats S: the point
    is the grid's best patient mean among offsets keeping S +P >= the floor, and with an unreachable floor the
    offset of the highest +P."""
    from ecg_lightning.calibrate import choose_operating_point, patient_mean

    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(40, int), np.ones(40, int), np.zeros(400, int)]
    records = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 400)
    logits = np.zeros((480, 5))
    logits[:40, 1] = 2.0 + rng.normal(0, 0.2, 40)  # a: S clearly
    logits[40:80, 1] = -1.0 + rng.normal(0, 0.5, 40)  # b: S only with a push
    logits[80:, 1] = -2.0 + rng.normal(0, 1.0, 400)  # c: N beats, some called S with a push
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    base = np.zeros(5)
    bias, point = choose_operating_point(probs, labels, records, CLASSES, base, min_ppv=0.6)
    assert point["ppv_S"] >= 0.6 and bias[0] == bias[2] == 0
    feasible = []
    for value in GRID:
        trial = base.copy()
        trial[1] = value
        predicted = (np.log(probs) + trial).argmax(1)
        ppv = ((predicted == 1) & (labels == 1)).sum() / max((predicted == 1).sum(), 1)
        if ppv >= 0.6:
            feasible.append(patient_mean(predicted, labels, records, 1)[0])
    assert point["patient_mean_se_S"] == pytest.approx(max(feasible)) and 0.5 < point["patient_mean_se_S"] < 1
    assert set(point["per_patient_se_S"]) == {"a", "b"} and point["per_patient_se_S"]["a"] == 1.0
    # the trade-off over the whole grid: the chosen offset on it, and the push that finds b's beats past the floor
    curve = {step["s_offset"]: step for step in point["curve"]}
    assert list(curve) == [float(v) for v in GRID]
    assert curve[float(bias[1])]["patient_mean_se_S"] == pytest.approx(point["patient_mean_se_S"])
    assert max(step["patient_mean_se_S"] for step in curve.values()) > point["patient_mean_se_S"]
    assert min(step["ppv_S"] for step in curve.values()) < 0.6
    _, unreachable = choose_operating_point(probs, labels, records, CLASSES, base, min_ppv=1.01)
    assert unreachable["ppv_S"] == pytest.approx(1.0)  # no offset reaches it: the highest +P


def test_patient_rule_takes_a_candidate_ahead_on_s_patients_only_within_the_stress_and_jk_tolerances():
    choose_by_patients = selection_script().choose_by_patients

    def row(mean, stressed, jk, at_f1, point_bias=(0, 1, 0, 0, 0), f1_bias=(0, -2, 0, 0, 0)):
        point = {"patient_mean_se_S": mean, "stressed_se_S": stressed, "jk_index": jk,
                 "patient_mean_se_S_at_f1_offsets": at_f1, "class_bias": list(point_bias)}  # fmt: skip
        return {"seed_ensemble": {"class_bias": list(f1_bias)}, "operating_point": point}

    current = row(0.20, 0.38, 0.70, 0.19)
    ahead = row(0.45, 0.35, 0.66, 0.30, point_bias=(0, 4, 0, 0, 0))
    assert choose_by_patients({"SL6IT": current, "S1": ahead}, 0.1, "SL6IT")[:2] == ("S1", [0, 4, 0, 0, 0])
    collapses = row(0.45, 0.10, 0.66, 0.30)  # finds S patients, loses them when the template is S
    assert choose_by_patients({"SL6IT": current, "S1": collapses}, 0.1, "SL6IT")[:2] == ("SL6IT", [0, -2, 0, 0, 0])
    # the highest patient mean alone is weighed: a runner-up that would pass does not step in
    assert choose_by_patients({"SL6IT": current, "S1": collapses, "S1T": row(0.40, 0.40, 0.70, 0.3)}, 0.1,
                              "SL6IT")[0] == "SL6IT"  # fmt: skip
    own_point = row(0.30, 0.38, 0.69, 0.19, point_bias=(0, -0.5, 0, 0, 0))  # its own point gains 0.11
    assert choose_by_patients({"SL6IT": own_point, "S1": collapses}, 0.1, "SL6IT")[:2] == ("SL6IT", [0, -0.5, 0, 0, 0])


def test_false_s_rule_takes_a_candidate_a_quarter_below_on_one_records_n_beats_called_s_within_the_tolerances():
    """The sixty-fourth round's rule: the share of a record's N beats called S must fall by the cut's fraction of
    the current model's, and the patient mean, composed patient mean, stressed S Se and jκ stay within 0.05."""
    choose = selection_script().choose_by_false_s

    def row(share, composed=0.5, bias=(0, -5, 0, 0, 0)):
        point = {"n_called_s_per_record": {"203": share, "100": 0.0}, "patient_mean_se_S": 0.7,
                 "composed_patient_mean_se_S": composed, "stressed_se_S": 0.7, "jk_index": 0.75,
                 "class_bias": list(bias)}  # fmt: skip
        return {"operating_point": point}

    current = row(0.32)
    fewer = row(0.24, bias=(0, -4, 0, 0, 0))
    assert choose({"P": current, "I": fewer}, "203", 0.25, "P")[:2] == ("I", [0, -4, 0, 0, 0])
    assert choose({"P": current, "I": row(0.25)}, "203", 0.25, "P")[0] == "P"  # a fifth fewer: short of a quarter
    assert choose({"P": current, "I": row(0.10, composed=0.44)}, "203", 0.25, "P")[0] == "P"  # composed lost 0.06
    with pytest.raises(SystemExit, match="999"):
        choose({"P": current, "I": row(0.1)}, "999", 0.25, "P")


def ceiling_row(paused=0.88, share=0.20, jk=0.75, patient=0.7, bias=(0, -4, 0, 0, 0), se_v=0.86, ppv_v=0.89):
    """An operating point as ``relative_candidate`` writes it, with the pause stress and 203's N beats called S."""
    point = {
        "se_V": se_v,
        "ppv_V": ppv_v,
        "n_called_s_per_record": {"203": share},
        "patient_mean_se_S": patient,
        "composed_patient_mean_se_S": 0.6,
        "stressed_se_S": 0.7,
        "jk_index": jk,
        "pause_stressed_se_S": paused,
        "class_bias": list(bias),
    }
    return {"operating_point": point}


def test_pause_rule_takes_a_candidate_finding_more_s_under_pauses_that_keeps_the_fibrillation_gain():
    """The sixty-sixth round's rule: S Se under the pause stress up by the gain, the record's N beats called S at most
    a quarter above the current model's, and the four measures within 0.05."""
    script = selection_script()

    def choose(rows, record, gain, ceiling, current):
        return script.choose_with_ceiling(rows, record, "pause_stressed_se_S", gain, ceiling, current)

    row, current = ceiling_row, ceiling_row(0.88)
    assert choose({"I1": current, "W": row(0.94, bias=(0, -3, 0, 0, 0))}, "203", 0.05, 0.25, "I1")[:2] == (
        "W", [0, -3, 0, 0, 0])  # fmt: skip
    assert choose({"I1": current, "W": row(0.92)}, "203", 0.05, 0.25, "I1")[0] == "I1"  # +0.04: short of the gain
    assert choose({"I1": current, "W": row(0.95, share=0.26)}, "203", 0.05, 0.25, "I1")[0] == "I1"  # 1.3x the false S
    assert choose({"I1": current, "W": row(0.95, jk=0.69)}, "203", 0.05, 0.25, "I1")[0] == "I1"  # jκ lost 0.06
    with pytest.raises(SystemExit, match="pause-stress"):
        choose({"I1": {"operating_point": {"class_bias": [0] * 5}}, "W": row(0.95)}, "203", 0.05, 0.25, "I1")


def test_pauses_held_rejects_a_candidate_that_loses_s_under_the_pauses_in_the_false_s_and_ceiling_rules():
    """The eighty-first round on: with ``PAUSES_HELD`` the S Se under the pause stress must stay within 0.05 too; the
    default rules do not weigh it (the sixty-fourth to eightieth rounds' files are read as they were)."""
    script = selection_script()
    current = ceiling_row(0.855, share=0.24)
    fewer = ceiling_row(0.40, share=0.04, bias=(0, -5, 0, 0, 0))  # a fifth of the false S, S lost under the pauses
    rows = {"I1": current, "TF": fewer}
    assert script.choose_by_false_s(rows, "203", 0.25, "I1")[0] == "TF"
    chosen, _, why = script.choose_by_false_s(rows, "203", 0.25, "I1", script.PAUSES_HELD)
    assert chosen == "I1" and "pause_stressed_se_S -0.455" in why
    held = ceiling_row(0.81, share=0.04, bias=(0, -5, 0, 0, 0))  # 0.045 below: within the tolerance
    assert script.choose_by_false_s({"I1": current, "TF": held}, "203", 0.25, "I1", script.PAUSES_HELD)[0] == "TF"
    patient = ceiling_row(0.40, share=0.24, patient=0.8)  # the patient mean gained, the pauses lost
    kept = script.PAUSES_HELD
    assert (
        script.choose_with_ceiling({"I1": current, "P": patient}, "203", "patient_mean_se_S", 0.05, 0.25, "I1")[0]
        == "P"
    )
    assert (
        script.choose_with_ceiling({"I1": current, "P": patient}, "203", "patient_mean_se_S", 0.05, 0.25, "I1", kept)[0]
        == "I1"
    )
    unpaused = {"I1": {"operating_point": {k: v for k, v in current["operating_point"].items()
                                             if k != "pause_stressed_se_S"}}, "TF": fewer}  # fmt: skip
    with pytest.raises(SystemExit, match="pause-stress"):
        script.choose_by_false_s(unpaused, "203", 0.25, "I1", kept)


def test_patient_mean_rule_takes_a_candidate_finding_more_s_patients_beats_that_keeps_the_fibrillation_gain():
    """The sixty-eighth round's rule: the patient mean of S Se up by the gain, the record's N beats called S at most a
    quarter above the current model's, the other three measures within 0.05 (the pauses not weighed)."""
    script = selection_script()

    def choose(rows):
        return script.choose_with_ceiling(rows, "203", "patient_mean_se_S", 0.09, 0.25, "I1")

    current = ceiling_row(patient=0.70)
    assert choose({"I1": current, "E": ceiling_row(paused=0.5, patient=0.80)})[0] == "E"  # pauses lost: not weighed
    assert choose({"I1": current, "E": ceiling_row(patient=0.78)})[0] == "I1"  # +0.08: short of the gain
    assert choose({"I1": current, "E": ceiling_row(patient=0.85, share=0.26)})[0] == "I1"  # 1.3x the false S
    assert choose({"I1": current, "E": ceiling_row(patient=0.85, jk=0.69)})[0] == "I1"  # jκ lost 0.06
    assert "patient mean of S Se 0.700" in choose({"I1": current, "E": ceiling_row(patient=0.78)})[2]
    recorded = {"operating_point": {"patient_mean_se_S": 0.9, "class_bias": [0] * 5}}  # an earlier round's row
    assert choose({"I1": current, "E": ceiling_row(patient=0.80), "SL6IT": recorded})[0] == "E"


def test_v_rule_takes_a_candidate_finding_more_v_beats_that_keeps_v_ppv_and_the_s_measures():
    """The seventy-fourth round's rule: V Se up by the gain, V +P and the four measures within 0.05, the record's N
    beats called S at most a quarter above the current model's."""
    script = selection_script()

    def choose(rows):
        return script.choose_with_ceiling(rows, "203", "se_V", 0.02, 0.25, "I1")

    current = ceiling_row()
    assert choose({"I1": current, "V": ceiling_row(se_v=0.885)})[0] == "V"
    assert choose({"I1": current, "V": ceiling_row(se_v=0.875)})[0] == "I1"  # +0.015: short of the gain
    assert choose({"I1": current, "V": ceiling_row(se_v=0.9, ppv_v=0.83)})[0] == "I1"  # V +P lost 0.06
    assert choose({"I1": current, "V": ceiling_row(se_v=0.9, patient=0.64)})[0] == "I1"  # patient mean lost 0.06
    assert choose({"I1": current, "V": ceiling_row(se_v=0.9, share=0.26)})[0] == "I1"  # 1.3x the false S
    assert "V Se 0.860, ppv_V 0.890" in choose({"I1": current, "V": ceiling_row(se_v=0.87)})[2]


def test_n_called_s_is_each_records_share_of_its_n_beats_called_s():
    n_called_s = selection_script().n_called_s
    probs = np.array([[0.9, 0.1, 0, 0, 0], [0.2, 0.8, 0, 0, 0], [0.1, 0.9, 0, 0, 0], [0.3, 0.7, 0, 0, 0],
                      [0.6, 0.4, 0, 0, 0], [0.1, 0.9, 0, 0, 0]])  # fmt: skip
    labels, records = np.array([0, 0, 1, 0, 0, 1]), np.array(["a", "a", "a", "b", "c", "d"])
    assert n_called_s(probs, labels, records, CLASSES) == {"a": 0.5, "b": 1.0, "c": 0.0}  # d: no N beat


def test_s_beats_by_rhythm_counts_s_beats_in_an_irregular_rhythm_once_per_record(tmp_path, monkeypatch):
    """benchmarks/s_beats_by_rhythm.py: record "reg" beats every 300 samples, with two S beats; record "af" has the
    RR of fibrillation (log RR spread 0.6), its S beats above both cuts; "pause" is regular with every fifth RR
    tripled (pauses), its S beat irregular by the spread alone. A record in two files (two seeds' runs) counts once."""
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parents[1] / "benchmarks"))  # its `from common import emit`
    script = selection_script("s_beats_by_rhythm")
    rng = np.random.default_rng(0)
    regular = np.arange(60) * 300
    fibrillation = np.cumsum(np.round(300 * np.exp(0.6 * rng.standard_normal(60)))).astype(int)
    paused = np.cumsum(np.where(np.arange(60) % 5 == 0, 900, 300))
    records = np.repeat(["reg", "af", "pause"], 60)
    samples = np.r_[regular, fibrillation, paused]
    labels = np.zeros(180, int)
    labels[[30, 31, 90, 100, 150]] = 1  # two S beats in reg, two in af, one in pause
    for seed in (0, 1):
        (tmp_path / str(seed)).mkdir()
        np.savez(tmp_path / str(seed) / "val_predictions.npz", record=records, sample=samples, labels=labels,
                 probs=np.zeros((180, 5)), classes=np.array(CLASSES))  # fmt: skip
    got = script.irregular_s_beats(*script.read([tmp_path])[:3], s_index=1)
    assert got == {"af": {"S": 2, "local_irregularity": 2, "local_rr_change": 2},
                   "pause": {"S": 1, "local_irregularity": 1, "local_rr_change": 0},
                   "reg": {"S": 2, "local_irregularity": 0, "local_rr_change": 0}}  # fmt: skip
    with pytest.raises(SystemExit, match="no predictions.npz"):
        script.read([tmp_path / "missing"])


def write(sweep, num, fold, seed, s_prob, n_beats=10, setting="m=a", n_prob=0.1):
    """One job of a made-up cross-validation sweep, laid out as Hydra writes it: fold ``fold``'s record r<fold>
    holds 10 S beats given S probability ``s_prob`` and ``n_beats`` N beats given ``n_prob``."""
    import yaml

    job = sweep / f"{num}_job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([setting, f"data.fold={fold}", f"seed={seed}"]))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
    labels = [1] * 10 + [0] * n_beats
    probs = [[1 - s_prob, s_prob, 0, 0, 0]] * 10 + [[1 - n_prob, n_prob, 0, 0, 0]] * n_beats
    np.savez(job / "val_predictions.npz", probs=np.asarray(probs, np.float32), labels=np.asarray(labels),
             record=np.asarray([f"r{fold}"] * len(labels)), classes=np.asarray(CLASSES), threshold=0.5)  # fmt: skip


def test_a_candidate_at_its_operating_point_is_read_from_its_cross_validation_and_stress_sweeps(tmp_path):
    """Two seeds of a 2-fold cross-validation and their stress re-scoring, as the sweeps lay them out: the seeds
    averaged at the operating point find patient b's S beats that the F1 offsets left, at S +P 1 (no N called S)."""

    for num, (fold, seed) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        write(tmp_path / "cv", num, fold, seed, 0.95 if fold == 0 else 0.5)  # r1's S beats need S pushed above 0
        write(tmp_path / "stress", num, fold, seed, 0.9 if fold == 0 else 0.4)
    point = selection_script().at_operating_point(tmp_path / "cv", tmp_path / "stress", [0, -2, 0, 0, 0])
    # at S -2: r0's 0.95 e^-2 > 0.05 found, r1's 0.5 e^-2 < 0.5 not; N beats (0.1) stay N until S > 2.2
    assert point["patient_mean_se_S_at_f1_offsets"] == 0.5
    assert point["class_bias"] == [0, 0.25, 0, 0, 0]  # the first grid step that finds r1, at S +P 1
    assert point["patient_mean_se_S"] == 1.0 and point["per_patient_se_S"] == {"r0": 1.0, "r1": 1.0}
    assert point["ppv_S"] == 1.0 and point["se_S"] == 1.0
    assert point["stressed_se_S"] == 0.5  # under the stress r1's 0.4 e^0.25 < 0.6: lost again
    fewer = tmp_path / "few"
    for num, (fold, seed) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        write(fewer, num, fold, seed, 0.9)
        np.savez(next(fewer.glob(f"{num}_job")) / "val_predictions.npz", probs=np.full((5, 5), 0.2, np.float32),
                 labels=np.r_[np.ones(4, int), 0], record=np.asarray([f"r{fold}"] * 5), classes=np.asarray(CLASSES),
                 threshold=0.5)  # fmt: skip
    with pytest.raises(SystemExit, match="few: no record holds 10 or more beats of class index 1"):
        selection_script().at_operating_point(fewer, fewer, [0, -2, 0, 0, 0])


def test_the_patient_rule_refuses_candidates_without_their_sweeps(monkeypatch, tmp_path):
    recorded = tmp_path / "l6i.json"
    recorded.write_text('{"candidates": {"L6I": {"class_bias": [0, 0, 0, 0, 0]}}}')
    argv = ["selection_over_seeds.py", "--recorded", f"L6I={recorded}", "--current", "L6I", "--patient-gain", "0.1"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match="--patient-gain weighs candidates from their sweeps"):
        selection_script().main()


def test_the_s_patients_figure_draws_each_candidates_patients_and_refuses_a_file_without_them(monkeypatch, tmp_path):
    curve = [
        {"s_offset": -1, "patient_mean_se_S": 0.5, "ppv_S": 0.4},
        {"s_offset": 1, "patient_mean_se_S": 0.8, "ppv_S": 0.1},
    ]
    point = {"class_bias": [0, -1, 0, 0, 0], "ppv_S": 0.4, "patient_mean_se_S": 0.5, "min_ppv_S": 0.385,
             "per_patient_se_S": {"209": 0.9, "220": 0.1}, "curve": curve}  # fmt: skip
    selection = tmp_path / "selection.json"
    made_up = {"candidates": {"A": {"operating_point": point}}, "references": {"F": {"operating_point": point}}}
    selection.write_text(json.dumps(made_up))
    assert list(selection_script("ds1_s_patients").per_patient(made_up)) == ["A", "F (reference)"]
    out = tmp_path / "s_patients.png"
    monkeypatch.setattr("sys.argv", ["ds1_s_patients.py", str(selection), "--out", str(out)])
    selection_script("ds1_s_patients").main()
    assert out.stat().st_size > 1000
    selection.write_text(json.dumps({"candidates": {"A": {"class_bias": [0, 0, 0, 0, 0]}}}))
    with pytest.raises(SystemExit, match="no candidate has an operating point"):
        selection_script("ds1_s_patients").main()


def test_the_candidates_figure_takes_each_gain_on_its_own_seeds_and_leaves_recorded_rows_out(
    monkeypatch, tmp_path, capsys
):
    """Two made-up selection files: each candidate's gain is over its own file's current model, ordered by the
    seeds; a row recorded from an earlier round (not record-relative) is neither a candidate nor a seed set; a
    candidate on the current model's own sweep is marked as no training; the spread is the current model's over
    its seed sets."""
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parents[1] / "benchmarks"))

    def row(mean, composed, sweep):
        point = {"patient_mean_se_S": mean, "composed_patient_mean_se_S": composed}
        return {"relative_to_records": True, "sweep": sweep, "operating_point": point}

    first = {"current": "CUR", "candidates": {"BASE": {"operating_point": {"patient_mean_se_S": 0.1}},
             "CUR": row(0.60, 0.40, "cv/a/CUR"), "NEW": row(0.55, 0.45, "cv/a/NEW")}}  # fmt: skip
    second = {"current": "CUR", "candidates": {"CUR": row(0.70, 0.30, "cv/b/CUR"), "Q": row(0.75, 0.30, "cv/b/CUR")}}
    paths = [tmp_path / "x_seeds_9_11_selection.json", tmp_path / "x_seeds_3_5_selection.json"]
    for path, selection in zip(paths, (second, first)):
        path.write_text(json.dumps(selection))
    points, own = selection_script("candidates_against_current").gains(paths)
    assert [(p["candidate"], p["seeds"], p["no_training"]) for p in points] == [
        ("NEW", "3–5", False),
        ("Q", "9–11", True),
    ]
    again = tmp_path / "y_seeds_3_5_selection.json"  # a later round reports NEW again beside its own candidate
    again.write_text(json.dumps({**first, "candidates": {**first["candidates"], "R": row(0.50, 0.40, "cv/c/R")}}))
    repeated, _ = selection_script("candidates_against_current").gains([*paths, again])
    assert [(p["candidate"], p["seeds"]) for p in repeated] == [("NEW", "3–5"), ("R", "3–5"), ("Q", "9–11")]
    assert points[0]["patient_mean_se_S"] == pytest.approx(-0.05) and points[0][
        "composed_patient_mean_se_S"
    ] == pytest.approx(0.05)
    assert points[1]["patient_mean_se_S"] == pytest.approx(0.05)
    assert "BASE" not in own and own["CUR"] == {"9–11": 0.70, "3–5": 0.60}
    out = tmp_path / "gains.png"
    monkeypatch.setattr(
        "sys.argv", ["candidates_against_current.py", *map(str, paths), "--spread", "CUR", "--out", str(out)]
    )
    selection_script("candidates_against_current").main()
    shown = capsys.readouterr().out
    assert (
        "| Q (no training) | 9–11 | CUR | +0.050 | +0.000 |" in shown and "CUR over 2 seed sets: 0.650 ± 0.071" in shown
    )
    assert out.stat().st_size > 1000
    monkeypatch.setattr(  # a file left out by name: its candidate and its seed set are gone
        "sys.argv", ["candidates_against_current.py", *map(str, paths), "--spread", "CUR", "--leave-out", "*_9_11_*"]
    )
    selection_script("candidates_against_current").main()
    shown = capsys.readouterr().out
    assert "| NEW | 3–5 | CUR |" in shown and "| Q " not in shown and "CUR over" not in shown
    other = tmp_path / "calibration.json"
    other.write_text(json.dumps({"class_bias": [0, -1, 0, 0, 0]}))
    with pytest.raises(SystemExit, match="calibration.json: not a selection file"):
        selection_script("candidates_against_current").gains([paths[0], other])


def patient_selection(monkeypatch, tmp_path, *flags: str, current: str = "CUR") -> dict:
    """selection_over_seeds.py by the patient rule on the made-up sweeps under ``tmp_path``; its JSON."""
    out = tmp_path / "selection.json"
    argv = ["selection_over_seeds.py", "--cv", str(tmp_path / "cv"), "--stress", str(tmp_path / "stress"), *flags,
            "--current", current, "--patient-gain", "0.1", "--out", str(out)]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    selection_script().main()
    return json.loads(out.read_text())


def test_a_reference_is_measured_beside_the_candidates_and_never_chosen(monkeypatch, tmp_path):
    """The current model finds one patient's S beats (the other's only when every N beat is called S, below the +P
    floor), the reference both patients' (patient mean 1.0 against 0.5): the reference is written beside the
    candidates and the choice is made among the candidates alone; as a candidate it would have been chosen."""
    jobs = [(0, 0), (1, 0), (0, 1), (1, 1)]
    for folder, r1 in (("cur", 0.05), ("ref", 0.95)):
        for sweep in ("cv", "stress"):
            for num, (fold, seed) in enumerate(jobs):
                write(tmp_path / sweep / folder, num, fold, seed, 0.95 if fold == 0 else r1, n_beats=40)
    result = patient_selection(monkeypatch, tmp_path, "--candidates", "CUR=cur", "--reference", "REF=ref")
    assert result["chosen"] == "CUR" and set(result["candidates"]) == {"CUR"}
    assert result["references"]["REF"]["operating_point"]["patient_mean_se_S"] == 1.0
    assert result["candidates"]["CUR"]["operating_point"]["patient_mean_se_S"] == 0.5
    assert patient_selection(monkeypatch, tmp_path, "--candidates", "CUR=cur", "REF=ref")["chosen"] == "REF"
    with pytest.raises(SystemExit, match="--reference REF: give NAME=FOLDER"):
        patient_selection(monkeypatch, tmp_path, "--candidates", "CUR=cur", "--reference", "REF")


def test_a_vote_candidate_finds_the_s_beats_its_voter_finds_and_loses_them_with_the_voter_under_the_stress(tmp_path):
    """The network finds r0's S beats only; the voter finds r1's too, but not under the stress: the vote (S probability
    the mean of both) finds both patients' at its operating point, and under the stress r1's are lost again."""
    jobs = [(0, 0), (1, 0), (0, 1), (1, 1)]
    for folder, setting, r1, r1_stressed in (("net", "m=net", 0.05, 0.05), ("flo", "m=floor", 0.95, 0.0)):
        for num, (fold, seed) in enumerate(jobs):
            write(tmp_path / "cv" / folder, num, fold, seed, 0.95 if fold == 0 else r1, 40, setting)
            write(tmp_path / "stress" / folder, num, fold, seed, 0.95 if fold == 0 else r1_stressed, 40, setting)
    row = selection_script().vote_candidate(tmp_path / "cv", tmp_path / "stress", "net", "flo")
    point = row["operating_point"]
    assert row["vote"] == "S" and point["per_patient_se_S"] == {"r0": 1.0, "r1": 1.0} and point["ppv_S"] == 1.0
    assert point["stressed_se_S"] == 0.5
    alone = selection_script().at_operating_point(tmp_path / "cv" / "net", tmp_path / "stress" / "net", [0] * 5)
    assert alone["patient_mean_se_S"] == 0.5


def test_relative_to_records_measures_each_beats_s_score_from_its_own_records_median():
    """Record a's beats all score low on S (its S beats below record b's N beats), b's N beats high (fibrillation):
    no shared S offset finds a's S beats without b's N beats; relative to each record's median one offset does."""
    from ecg_lightning.classifier import relative_to_records

    def beats(s_prob, n):
        return [[1 - s_prob, s_prob, 0, 0, 0]] * n

    probs = np.asarray(beats(0.01, 5) + beats(1e-4, 20) + beats(0.05, 20), dtype=np.float64)
    records = np.array(["a"] * 25 + ["b"] * 20)
    relative = relative_to_records(probs, records, CLASSES)
    assert np.allclose(relative.sum(1), 1) and relative.shape == probs.shape
    odds = np.log(relative[:, 1]) - np.log(relative[:, 0])
    assert np.allclose(odds[5:], 0, atol=1e-9)  # every record's median beat (here its N beats) at even odds
    assert odds[0] == pytest.approx(np.log(0.01 / 0.99) - np.log(1e-4 / (1 - 1e-4)))
    called = (np.log(relative) + np.array([0, -2.0, 0, 0, 0])).argmax(1) == 1
    assert called[:5].all() and not called[5:].any()
    shared = [(np.log(np.clip(probs, 1e-12, None)) + np.array([0, c, 0, 0, 0])).argmax(1) == 1 for c in GRID]
    assert not any(c[:5].all() and not c[25:].any() for c in shared)


def test_a_record_relative_candidate_finds_the_patient_whose_beats_all_score_low_and_is_chosen(monkeypatch, tmp_path):
    """r1's S beats score below r0's N beats (as 118's and 207's do against 203's): the network alone cannot find them
    above the +P floor (patient mean 0.5); its S decision relative to each record finds both (1.0) and is chosen."""
    jobs = [(0, 0), (1, 0), (0, 1), (1, 1)]
    for sweep in ("cv", "stress"):
        for num, (fold, seed) in enumerate(jobs):
            s_prob, n_prob = (0.95, 0.1) if fold == 0 else (0.05, 0.005)
            write(tmp_path / sweep / "net", num, fold, seed, s_prob, 40, n_prob=n_prob)
    result = patient_selection(monkeypatch, tmp_path, "--candidates", "NET=net", "--relative", "REL=net", current="NET")
    assert result["candidates"]["NET"]["operating_point"]["patient_mean_se_S"] == 0.5
    point = result["candidates"]["REL"]["operating_point"]
    assert point["per_patient_se_S"] == {"r0": 1.0, "r1": 1.0} and point["ppv_S"] == 1.0
    assert point["stressed_se_S"] == 1.0 and result["chosen"] == "REL"
    assert result["candidates"]["REL"]["relative_to_records"] is True


def test_a_record_relative_current_model_is_weighed_against_a_relative_candidate_from_its_base_offsets(
    monkeypatch, tmp_path
):
    """The twenty-seventh round's layout: the current model is itself a record-relative one, its V offset that of
    the network named by --relative-base. A relative candidate that finds no more S patients leaves it in place at
    its own operating point; one that finds the patient it misses replaces it; without the base it is refused."""
    jobs = [(0, 0), (1, 0), (0, 1), (1, 1)]
    for sweep in ("cv", "stress"):
        for num, (fold, seed) in enumerate(jobs):
            write(tmp_path / sweep / "net", num, fold, seed, 0.95 if fold == 0 else 0.05, 40, n_prob=0.1)
            # the current model's r1: S beats at the median of their record's N beats (not found relatively) ...
            write(tmp_path / sweep / "cur", num, fold, seed, 0.95 if fold == 0 else 0.1, 40, n_prob=0.1)
            # ... the candidate's r1: S beats far above its N beats, though all low (found relatively)
            write(tmp_path / sweep / "new", num, fold, seed, 0.95 if fold == 0 else 0.05, 40, n_prob=0.001)
    flags = ("--candidates", "NET=net", "--relative-base", "NET", "--relative", "CUR=cur")
    same = patient_selection(monkeypatch, tmp_path, *flags, "SAME=cur", current="CUR")
    assert same["chosen"] == "CUR" and same["class_bias"] == same["candidates"]["CUR"]["class_bias"]
    better = patient_selection(monkeypatch, tmp_path, *flags, "NEW=new", "WIN=new:5", current="CUR")
    assert better["candidates"]["WIN"]["window"] == 5 and better["candidates"]["NEW"]["window"] is None
    assert better["candidates"]["CUR"]["operating_point"]["per_patient_se_S"]["r1"] == 0.0
    assert better["candidates"]["NEW"]["operating_point"]["per_patient_se_S"] == {"r0": 1.0, "r1": 1.0}
    assert better["chosen"] == "NEW"
    # the current model and the base as that run recorded them (their sweeps gone): the same rows, the same choice
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(better))
    recorded = ("--recorded", f"CUR={earlier}", f"NET={earlier}", "--relative-base", "NET")
    again = patient_selection(monkeypatch, tmp_path, *recorded, "--relative", "NEW=new", current="CUR")
    assert again["chosen"] == "NEW" and again["candidates"]["CUR"] == better["candidates"]["CUR"]
    assert again["candidates"]["NEW"]["operating_point"] == better["candidates"]["NEW"]["operating_point"]
    with pytest.raises(SystemExit, match="BEATS an odd number"):  # the beat itself in the middle of its window
        patient_selection(monkeypatch, tmp_path, *flags, "EVEN=new:4", current="CUR")
    with pytest.raises(SystemExit, match="PCT-th percentile, 0-100"):
        patient_selection(monkeypatch, tmp_path, *flags, "HIGH=new:q150", current="CUR")
    with pytest.raises(SystemExit, match=r"--relative HALF=new\+:q10: give NAME=FOLDER \(or FOLDER\+FOLDER"):
        patient_selection(monkeypatch, tmp_path, *flags, "HALF=new+:q10", current="CUR")
    with pytest.raises(SystemExit, match="name it in --candidates"):
        patient_selection(monkeypatch, tmp_path, "--relative", "CUR=cur", "NEW=new", current="CUR")


def test_the_relative_decision_over_a_window_measures_each_beat_from_the_beats_around_it():
    """With a window of W beats, each beat's S log-odds is measured from the median over the W beats centred on it in
    its own record (fewer at the record's ends), in time order: a record whose second half is a fibrillation episode
    (every beat's S score raised) has its episode's N beats back at even odds, which the whole record's median does
    not do, and an isolated S beat in either half stands out by the same margin."""
    from ecg_lightning.classifier import relative_to_records

    rng = np.random.default_rng(0)
    odds = np.r_[rng.normal(-6, 0.2, 50), rng.normal(-1.5, 0.2, 30), rng.normal(-5, 0.2, 9)]
    odds[[10, 65]] += 5  # one S beat in each half of record a
    records = np.array(["a"] * 80 + ["b"] * 9)
    p_s = 1 / (1 + np.exp(-odds))
    probs = np.stack([1 - p_s, p_s, 0 * p_s, 0 * p_s, 0 * p_s], 1)
    measured = relative_to_records(probs, records, CLASSES, window=7)
    got = np.log(measured[:, 1]) - np.log(measured[:, 0])
    for i in range(len(odds)):
        mine = np.flatnonzero(records == records[i])
        lo, hi = max(mine[0], i - 3), min(mine[-1], i + 3)
        assert got[i] == pytest.approx(odds[i] - np.median(odds[lo : hi + 1]), abs=1e-6), i
    assert got[10] == pytest.approx(got[65], abs=1.0) and got[10] > 4  # both S beats stand out by ~5
    whole = relative_to_records(probs, records, CLASSES)
    whole_odds = np.log(whole[:, 1]) - np.log(whole[:, 0])
    episode = np.setdiff1d(np.arange(55, 77), [65])
    assert np.abs(got[episode]).max() < 1.5 < np.abs(whole_odds[episode]).min()  # the episode: back at even odds
    np.testing.assert_allclose(measured[:, 2:], probs[:, 2:], atol=1e-12)
    assert relative_to_records(probs, records, CLASSES, window=1)[:, 1] == pytest.approx(0.5)  # itself: even odds
    with pytest.raises(ValueError, match="odd number of beats"):
        relative_to_records(probs, records, CLASSES, window=8)


def test_a_low_quantile_reference_stays_among_the_n_beats_when_s_beats_are_most_of_a_record():
    """A record whose beats are 78 % S, each S beat ranked above every N beat: measured from the median (an S beat),
    the S beats below it (28 of 78) are lost at an offset that keeps N beats N; from the 10th percentile none is."""
    from ecg_lightning.classifier import relative_to_records

    odds = np.r_[np.linspace(-1, 1, 78), np.linspace(-7, -5, 22)]
    p_s = 1 / (1 + np.exp(-odds))
    probs = np.stack([1 - p_s, p_s, 0 * p_s, 0 * p_s, 0 * p_s], 1)
    records = np.array(["232"] * 100)
    median = relative_to_records(probs, records, CLASSES)
    low = relative_to_records(probs, records, CLASSES, quantile=0.1)
    for measured, c, found in ((median, 0, 50), (low, -2, 78)):  # S called where the measured odds are above -c
        called = (np.log(measured) + [0, c, 0, 0, 0]).argmax(1) == 1
        assert called[:78].sum() == found and not called[78:].any()
    assert np.log(low[:, 1] / low[:, 0]) == pytest.approx(odds - np.quantile(odds, 0.1), abs=1e-9)
    assert relative_to_records(probs, records, CLASSES, quantile=0.5) == pytest.approx(median)
    with pytest.raises(ValueError, match="quantile=1.5"):
        relative_to_records(probs, records, CLASSES, quantile=1.5)
    with pytest.raises(ValueError, match="either"):
        relative_to_records(probs, records, CLASSES, window=3, quantile=0.1)


def test_the_composition_stress_keeps_s_beats_at_232s_share_and_measures_the_decision_over_what_is_kept():
    """Record a: 20 S beats at S-vs-N log-odds 0, 100 N beats at -6. Over the whole record the median is an N beat and
    every S beat stands out by 6; kept at 78 % S (6 of the N beats) the median is an S beat and none stands out, while
    the 10th percentile is still an N beat. Record b (5 S beats) is not an S patient and is not weighed."""
    from ecg_lightning.classifier import relative_to_records

    selection = selection_script()
    odds = np.r_[np.zeros(20), np.full(100, -6.0), np.zeros(5), np.full(50, -6.0)]
    p_s = 1 / (1 + np.exp(-odds))
    probs = np.stack([1 - p_s, p_s, 0 * p_s, 0 * p_s, 0 * p_s], 1)
    labels = np.r_[np.ones(20, int), np.zeros(100, int), np.ones(5, int), np.zeros(50, int)]
    records = np.array(["a"] * 120 + ["b"] * 55)
    offsets = [0, -3, 0, 0, 0]
    mean, each = selection.composed_patient_mean(probs, labels, records, CLASSES, offsets, {"window": None})
    assert (mean, each) == (0.0, {"a": 0.0})
    whole = (np.log(relative_to_records(probs, records, CLASSES)) + offsets).argmax(1)
    assert (whole[:20] == 1).all()  # without the stress the same decision finds them all
    low = selection.composed_patient_mean(probs, labels, records, CLASSES, offsets, {"quantile": 0.1})
    assert low == (1.0, {"a": 1.0})
    with pytest.raises(SystemExit, match="no record holds 10 or more S beats"):
        selection.composed_patient_mean(probs[120:], labels[120:], records[120:], CLASSES, offsets, {})


def test_composition_rule_takes_a_reference_ahead_under_the_stress_only_within_the_other_tolerances(monkeypatch):
    choose = selection_script().choose_by_composition

    def row(composed, mean, stressed, jk, bias=(0, -3, -0.75, 0, 0)):
        point = {"composed_patient_mean_se_S": composed, "patient_mean_se_S": mean, "stressed_se_S": stressed,
                 "jk_index": jk, "class_bias": list(bias)}  # fmt: skip
        return {"relative_to_records": True, "operating_point": point}

    current = row(0.30, 0.43, 0.43, 0.73)
    assert choose({"CUR": current, "Q": row(0.45, 0.40, 0.40, 0.70, (0, -5, -0.75, 0, 0))}, 0.1, "CUR")[:2] == (
        "Q",
        [0, -5, -0.75, 0, 0],
    )
    assert choose({"CUR": current, "Q": row(0.45, 0.35, 0.43, 0.73)}, 0.1, "CUR")[0] == "CUR"  # loses S patients
    assert choose({"CUR": current, "Q": row(0.39, 0.43, 0.43, 0.73)}, 0.1, "CUR")[0] == "CUR"  # not 0.10 ahead
    plain = {"seed_ensemble": {"class_bias": [0] * 5}, "operating_point": {"patient_mean_se_S": 0.1}}
    with pytest.raises(SystemExit, match="give NET as a --relative one"):
        choose({"NET": plain, "Q": current}, 0.1, "NET")
    # the thirty-third round: either mean ahead by the gain, all four within the tolerance; the higher sum of the two
    ahead_on_patients = row(0.27, 0.55, 0.40, 0.70, (0, -4, -0.75, 0, 0))
    assert choose({"CUR": current, "R": ahead_on_patients}, 0.1, "CUR")[0] == "CUR"  # the composition rule alone
    assert choose({"CUR": current, "R": ahead_on_patients}, 0.1, "CUR", either=True)[:2] == ("R", [0, -4, -0.75, 0, 0])
    both = {"CUR": current, "R": ahead_on_patients, "Q": row(0.45, 0.40, 0.40, 0.70)}
    assert choose(both, 0.1, "CUR", either=True)[0] == "Q"  # both qualify: Q's sum 0.85 above R's 0.82
    losing_composed = row(0.24, 0.55, 0.43, 0.73)  # 0.06 below on the composed mean: the tolerance is 0.05
    assert choose({"CUR": current, "R": losing_composed}, 0.1, "CUR", either=True)[0] == "CUR"
    assert choose({"CUR": current, "R": row(0.30, 0.52, 0.43, 0.73)}, 0.1, "CUR", either=True)[0] == "CUR"  # +0.09
    # the fifty-second round on: the patient mean alone ahead; the fifty-seventh: the composed patient mean alone
    composed_ahead = {"CUR": current, "Q": row(0.45, 0.43, 0.43, 0.73)}
    assert choose(composed_ahead, 0.1, "CUR", either=True, ahead_on="patient")[0] == "CUR"
    assert choose(composed_ahead, 0.1, "CUR", either=True, ahead_on="composed")[0] == "Q"
    patients_ahead = {"CUR": current, "R": row(0.30, 0.55, 0.43, 0.73)}
    assert choose(patients_ahead, 0.1, "CUR", either=True, ahead_on="patient")[0] == "R"
    assert choose(patients_ahead, 0.1, "CUR", either=True, ahead_on="composed")[0] == "CUR"
    composed_but_losing = {"CUR": current, "Q": row(0.45, 0.37, 0.43, 0.73)}  # 0.06 below on the patient mean
    assert choose(composed_but_losing, 0.1, "CUR", either=True, ahead_on="composed")[0] == "CUR"


def test_a_longest_rr_reference_measures_s_from_the_beats_that_end_the_records_pauses():
    """A record as 232 is described: 78 ectopic S beats at a short preceding RR, 22 N beats ending long pauses, the
    network's S beats 2 log-odds above its N beats, twelve of them 1.5 below. Measured from the median (an S beat)
    the S beats sit at even odds; from the 10th percentile (a lowered S beat) the N beats are lifted toward S; from
    the median of the fifth that follows the longest RR (N beats) the S beats stand out and the N beats stay at even
    odds, whatever the beats' order."""
    from ecg_lightning.classifier import relative_to_records
    from ecg_lightning.data.rr import reference_mask

    rng = np.random.default_rng(1)
    is_s = np.r_[np.ones(78, bool), np.zeros(22, bool)]
    pre = np.where(is_s, rng.uniform(250, 300, 100), rng.uniform(700, 2000, 100))
    odds = np.where(is_s, -3.0, -5.0) + rng.normal(0, 0.1, 100)
    odds[:12] -= 3.5  # twelve S beats scored below the record's N beats: the 10th percentile is one of them
    p_s = 1 / (1 + np.exp(-odds))
    probs = np.stack([1 - p_s, p_s, 0 * p_s, 0 * p_s, 0 * p_s], 1)
    records = np.array(["232"] * 100)
    among = reference_mask(np.zeros(100, int), pre, "longest_rr")
    assert among.sum() == 20 and not among[is_s].any()  # the fifth with the longest preceding RR: N beats
    measured = relative_to_records(probs, records, CLASSES, among=among)
    got = np.log(measured[:, 1] / measured[:, 0])
    assert got == pytest.approx(odds - np.median(odds[among]), abs=1e-9)
    assert (got[12:78] > 1.5).all() and (np.abs(got[78:]) < 0.5).all()
    median = relative_to_records(probs, records, CLASSES)  # an S beat's score: the S beats at even odds
    assert (np.abs(np.log(median[:, 1] / median[:, 0])[12:78]) < 0.5).all()
    low = relative_to_records(probs, records, CLASSES, quantile=0.1)  # a lowered S beat's: the N beats lifted too
    assert np.median(np.log(low[:, 1] / low[:, 0])[78:]) > 1.0
    mixed = np.random.default_rng(2).permutation(100)
    again = relative_to_records(probs[mixed], records, CLASSES, among=among[mixed])
    np.testing.assert_allclose(again, measured[mixed], atol=1e-12)
    with pytest.raises(ValueError, match="record 232: none of its beats"):
        relative_to_records(probs, records, CLASSES, among=np.zeros(100, bool))
    with pytest.raises(ValueError, match="one flag per beat"):
        relative_to_records(probs, records, CLASSES, among=among[:50])
    with pytest.raises(ValueError, match="either"):
        relative_to_records(probs, records, CLASSES, window=3, among=among)


def test_the_preceding_rr_of_cross_validated_beats_is_taken_from_their_samples_or_a_stress_job_of_the_same_beats():
    selection = selection_script()
    evaluated = {"record": np.array(["a", "a", "a", "b", "b"]), "labels": np.array([0, 1, 0, 0, 0]),
                 "sample": np.array([100, 400, 500, 50, 350])}  # fmt: skip
    trained = {"record": evaluated["record"], "labels": evaluated["labels"]}  # a training job's file: no samples
    pre = selection.preceding_rr([trained], [evaluated])
    np.testing.assert_array_equal(pre, [300, 300, 100, 300, 300])  # a first beat borrows its next RR; ties: the later
    np.testing.assert_array_equal(selection.preceding_rr([evaluated], []), pre)
    np.testing.assert_array_equal(
        selection.longest_rr_beats(evaluated["record"], pre), [0, 1, 0, 0, 1]
    )  # ties: the later
    other = {**evaluated, "labels": np.array([0, 0, 0, 0, 0])}
    with pytest.raises(SystemExit, match=r"records \['a', 'b'\]: the longest-RR reference needs the beats' samples"):
        selection.preceding_rr([trained], [other])
    shuffled = {**evaluated, "sample": np.array([100, 500, 400, 50, 350])}
    with pytest.raises(SystemExit, match="not in store order"):
        selection.preceding_rr([shuffled], [])


def test_the_preceding_rr_under_the_pause_stress_is_that_of_the_paused_timing(tmp_path):
    """A sweep re-scored under ``data.pause_stress``: the longest-RR fifth is taken from the timing its features were
    computed from (every fourth N beat after an N beat paused ``factor`` times), read from the jobs' config."""
    selection = selection_script()
    labels = np.zeros(12, dtype=int)
    labels[5] = 1  # an S beat: neither paused nor, after it, the next N beat's count
    part = {"record": np.array(["a"] * 12), "labels": labels, "sample": np.arange(12) * 300}
    plain = selection.preceding_rr([part], [])
    paused = selection.preceding_rr([part], [], pause=2.5)
    np.testing.assert_array_equal(plain, np.full(12, 300))
    expected = np.full(12, 300.0)
    expected[[4, 10]] = 750.0  # the fourth eligible N beat (1-4), then the eighth (7-10; 6 follows the S beat)
    np.testing.assert_array_equal(paused, expected)
    for job, factor in (("0", 2.5), ("1", 2.5)):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "config.yaml").write_text(f"data:\n  pause_stress: {factor}\n")
    assert selection.pause_factor([tmp_path]) == 2.5
    other = tmp_path.parent / f"{tmp_path.name}_other"  # a second sweep pooled with it (NAME=A+B), stressed at 3.0
    (other / "0" / ".hydra").mkdir(parents=True)
    (other / "0" / ".hydra" / "config.yaml").write_text("data:\n  pause_stress: 3.0\n")
    with pytest.raises(SystemExit, match="one data.pause_stress"):
        selection.pause_factor([tmp_path, other])
    (tmp_path / "1" / ".hydra" / "config.yaml").write_text("data:\n  pause_stress: 3.0\n")
    with pytest.raises(SystemExit, match="one data.pause_stress"):
        selection.pause_factor([tmp_path])


def test_networks_of_several_sweeps_pool_as_one_model_one_recipe_or_two(tmp_path):
    """--relative NAME=A+B (pool_of): one recipe's seeds in two sweep folders are one mean of all its networks; two
    recipes (two settings) are each seeds-averaged, then averaged alike — with as many seeds each, the mean of every
    network. A folder of one seed alone is refused, as a seed ensemble is."""
    import yaml
    from test_aggregate import write_fold

    pool_of = selection_script().pool_of

    def sweep(folder, setting, seeds):  # a 2-fold cross-validation, P(S) of r1's first beat = 0.1 * seed
        for k, seed in enumerate(seeds):
            for fold, record in enumerate(["r1", "r2"]):
                probs = [[1 - 0.1 * seed, 0.1 * seed, 0.0], [1.0, 0.0, 0.0]]
                write_fold(tmp_path / folder, 2 * k + fold, [setting, f"data.fold={fold}", f"seed={seed}"],
                           [record] * 2, [1, 0], probs)  # fmt: skip
                (tmp_path / folder / f"{2 * k + fold}_job" / ".hydra" / "config.yaml").write_text(
                    yaml.safe_dump({"seed": seed})
                )

    sweep("a1", "m=lstm", [1, 2])
    sweep("a2", "m=lstm", [3, 4])
    sweep("b", "m=transformer", [5, 6])
    probs, labels, classes, info = pool_of([tmp_path / "a1", tmp_path / "a2"])
    assert classes == ["N", "S", "V"] and len(labels) == 4
    np.testing.assert_allclose(probs[[0, 2], 1], 0.25)  # the four networks' mean, (0.1 + 0.2 + 0.3 + 0.4) / 4
    probs, *_ = pool_of([tmp_path / "a1", tmp_path / "b"])
    np.testing.assert_allclose(probs[[0, 2], 1], (0.15 + 0.55) / 2)  # each recipe's mean, then their mean
    assert info["records"] == ["r1", "r2"]
    sweep("c", "m=one", [7])
    with pytest.raises(SystemExit, match="several training seeds"):
        pool_of([tmp_path / "c"])
