# ruff: noqa: E501 (the mutants are lines of code, quoted whole)
"""Semantic mutants: realistic one-line slips across module boundaries (train vs serve, what a network computes,
what the files and sweeps mean, units), each run against the default test run in a copy of the repository.

    python benchmarks/semantic_mutants.py [--only N ...] [--out results/semantic_mutants.txt]

A mutant is caught when the default run (``pytest -x -q``) fails with it applied. The working tree is never
touched: each mutant is applied to a fresh copy (tracked files only), imported ahead of any installed copy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (file, text, replacement, what the slip means)
MUTANTS: list[tuple[str, str, str, str]] = [
    ("ecg_lightning/predict.py", "index = index_beats(records, labels, half_width, pad_edges=True, reference=reference)",
     "index = index_beats(records, labels, half_width, pad_edges=False, reference=reference)",
     "predict drops edge beats (not every beat gets a row; templates from other beats)"),
    ("ecg_lightning/predict.py", 'return tuple(data.band) if data.get("band") else None', "return None",
     "predict (and the API) skip the band-pass that training applied"),
    ("ecg_lightning/predict.py", "templates = beat_templates(records, index, half_width, reference=reference)",
     "templates = beat_templates(records, index, half_width, max_beats=8, reference=reference)",
     "predict's record template from fewer beats than training's"),
    ("ecg_lightning/evaluate.py", "threshold = check_threshold(cfg.threshold) if cfg.threshold is not None else models[0].hparams.threshold",
     "threshold = models[0].hparams.threshold", "evaluate ignores threshold="),
    ("ecg_lightning/data/datamodule.py", "self.data_val = self._dataset(self._beats_of(self.val_records), plan_only=on_device)",
     "self.data_val = self._dataset(self._beats_of(self.val_records), train=True, plan_only=on_device)",
     "validation windows augmented like training ones"),
    ("ecg_lightning/data/datamodule.py", "stride = (self.hparams.run_stride or max(1, runs // 2)) if train else runs",
     "stride = self.hparams.run_stride or max(1, runs // 2)",
     "evaluation runs overlap: beats scored twice"),
    ("ecg_lightning/classifier.py", "keep = target.reshape(-1) >= 0", "keep = target.reshape(-1) > 0",
     "run padding mask drops every normal beat"),
    ("ecg_lightning/models/sequence.py", "logits = self.head(h)",
     "logits = self.head(torch.cat([h[..., : h.shape[-1] // 2]] * 2, -1))",
     "the head reads only the forward direction of the LSTM"),
    ("ecg_lightning/models/linear.py", "self.lo, self.hi = centre - round(before_s * fs), centre + round(after_s * fs)",
     "self.lo, self.hi = centre - round(after_s * fs), centre + round(before_s * fs)",
     "the linear floor's stretch reversed around the beat"),
    ("ecg_lightning/config.py", "return 2 * int(round(float(window_s) * float(fs)))",
     "return int(round(float(window_s) * float(fs)))", "network sized for one side of the window"),
    ("ecg_lightning/data/rr.py", "np.log(pre / context),", "np.log(post / context),",
     "RR feature log_pre_local computed from the post RR"),
    ("ecg_lightning/train.py", 'best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback and weights == "best" else ""',
     'best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""',
     "test_weights=last ignored: the best checkpoint is tested"),
    ("ecg_lightning/data/datamodule.py", 'shared = hp.benchmark_protocol == "published"',
     'shared = hp.benchmark_protocol == "strict"', "benchmark protocols swapped"),
    ("ecg_lightning/callbacks.py", "record=np.asarray(trainer.datamodule.records.names)[data.beats.record],",
     "record=np.asarray(trainer.datamodule.records.names)[np.sort(data.beats.record)[::-1]],",
     "validation predictions saved against the wrong records"),
    ("ecg_lightning/aggregate.py", "probs = np.concatenate([part[\"probs\"] for part in parts])",
     "probs = np.concatenate([part[\"probs\"] for part in parts[:1] * len(parts)])",
     "pooled CV scores one fold's probabilities as all folds'"),
    ("ecg_lightning/evaluate.py", 'NOT_SPLIT_KEYS = (\n    "seed",', 'NOT_SPLIT_KEYS = (\n    "fold",\n    "split_seed",\n    "seed",',
     "ensemble check treats another fold or split seed as the same split"),
    ("ecg_lightning/models/resnet.py", "mid, half = z.shape[-1] // 2, self.center_steps // 2",
     "mid, half = self.center_steps // 2, self.center_steps // 2", "BeatResNet pools the window's start, not its centre"),
    ("ecg_lightning/models/sequence.py", "z - z.median(dim=1, keepdim=True).values",
     "z - z.median(dim=0, keepdim=True).values", "run template taken across the batch, not the run"),
    ("ecg_lightning/data/datamodule.py", 'jitter = int(round(float(spec.pop("jitter_s", 0.0)) * self.hparams.fs))',
     'jitter = int(round(float(spec.pop("jitter_s", 0.0))))', "jitter in seconds used as samples (no jitter)"),
    ("ecg_lightning/data/records.py", "ann_sample = np.asarray(ann.sample, dtype=np.int64) * spf",
     "ann_sample = np.asarray(ann.sample, dtype=np.int64)", "multi-rate annotations left at the frame rate"),
    ("ecg_lightning/data/split.py", "    if leaking and keep_shared:", "    if leaking and not keep_shared:",
     "the strict protocol keeps 201, the published one drops it"),
    ("ecg_lightning/predict.py", '"source": np.where(p.beats.annotated, "annotation", "detector"),',
     '"source": np.where(p.beats.annotated, "detector", "annotation"),', "beats.csv source column inverted"),
    ("ecg_lightning/predict.py", "p.probs[known], p.index.label[known].astype(np.int64), p.classes, p.threshold",
     "p.probs, p.index.label.astype(np.int64), p.classes, p.threshold",
     "reference metrics count detected (unlabelled) beats as normal"),
    ("ecg_lightning/data/windows.py", "inputs = [t.masked_fill(pad.reshape(*pad.shape, *[1] * (t.dim() - 2)), 0) for t in inputs]",
     "inputs = list(inputs)", "padding beats of a run keep a real beat's window"),
    # the combined model, the reference beats, the noise flag, evaluate's deletions, export, runs that did not finish
    ("ecg_lightning/models/vote.py", "(p[..., k : k + 1] + q[..., k : k + 1]) / 2", "(p[..., k : k + 1] + p[..., k : k + 1]) / 2",
     "the voter's vote is ignored (the network's probability twice)"),
    ("ecg_lightning/combine.py", 'voter_net = {**voter["model"]["net"], "input_length": window_samples(nd["window_s"], nd["fs"])}',
     'voter_net = {**voter["model"]["net"], "input_length": window_samples(vd["window_s"], vd["fs"])}',
     "the voter cuts its stretch as if from its own (narrower) window: off the beat"),
    ("ecg_lightning/aggregate.py", "    probs = combined([joined[s][0] for s in settings])", "    probs = joined[settings[0]][0]",
     "a pooled ensemble scores its first member only"),
    ("ecg_lightning/data/rr.py", "keep[order] = rank >= cut[group]", "keep[order] = rank < cut[group]",
     "the reference beats are those with the shortest preceding RR"),
    ("ecg_lightning/data/windows.py", "mine = np.flatnonzero((beats.record == r) & chosen)", "mine = np.flatnonzero(beats.record == r)",
     "templates ignore data.reference_beats (train and predict alike)"),
    ("ecg_lightning/signal_quality.py", "similarity[order][(starts + (counts - 1) // 2)[counts > 0]]", "similarity[order][starts[counts > 0]]",
     "a stretch judged by its least similar beat, not its median (ectopic beats flag real ECG)"),
    ("ecg_lightning/checkpoint.py", "        node.pop(key)", "        pass", "evaluate's ~data.key deletions dropped"),
    ("ecg_lightning/export.py", "configured_lead(data),  #", 'data["lead"],  #', "export names data.lead, not the lead predict reads"),
    ("ecg_lightning/train.py", "    (Path(cfg.paths.output_dir) / FAILED).unlink(missing_ok=True)", "    pass",
     "a resumed run that finished still says FAILED"),
    # the dominant-S stress test, evaluate sweeps pooled, final runs, job folders
    ("ecg_lightning/data/rr.py", "return np.where(enough, annotated, True)", "return np.where(enough, annotated, False)",
     "a record with few S beats gets an empty reference under the stress test"),
    ("ecg_lightning/data/windows.py", "annotated = None if reference_class is None else beats.label == reference_class",
     "annotated = None if reference_class is None else beats.label != reference_class",
     "the stress test's template from the record's other beats"),
    ("ecg_lightning/data/datamodule.py", "reference_class = self._reference_class(reference)", "reference_class = None",
     "evaluate's stress test never passes the labels on"),
    ("ecg_lightning/aggregate.py", 'return f"{source} | evaluate {job_setting(job)}"', "return job_setting(job)",
     "two models' evaluate sweeps pooled as one setting"),
    ("ecg_lightning/aggregate.py", "torch.tensor(bias)", "-torch.tensor(bias)",
     "aggregate --class-bias applies the offsets with the wrong sign"),
    ("ecg_lightning/train.py", "callbacks = [c for c in callbacks if not (isinstance(c, ModelCheckpoint) and c.monitor)]",
     "callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]",
     "a final model keeps no checkpoint at all"),
    ("ecg_lightning/config.py", 'return f"{text[: limit - len(digest) - 1]}~{digest}"', 'return f"{text[:limit]}~{digest}"',
     "a cut folder name still longer than the limit"),
]  # fmt: skip


FIRST = ("test_train_serve", "test_sequence", "test_reference_forwards", "test_decision_rule", "test_faults",
         "test_aggregate", "test_api")  # fmt: skip


def run_one(k: int, timeout: int) -> tuple[bool, float, str]:
    path, old, new, _ = MUTANTS[k]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        for f in files:
            (copy / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, copy / f)
        target = copy / path
        text = target.read_text()
        if text.count(old) != 1:
            return False, 0.0, f"text not found once in {path}"
        target.write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy)}
        start = time.perf_counter()
        try:
            # the whole default run, the cross-module test files first (pytest would sort them back into the
            # folder's order), so a mutant they catch stops early (-x); the rest only if they pass
            first = [f"tests/{name}.py" for name in FIRST]
            base = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
            done = subprocess.run([*base, *first], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
            if done.returncode == 0:
                rest = [f"--ignore={f}" for f in first]
                done = subprocess.run([*base, *rest, "tests"], cwd=copy, env=env, capture_output=True, text=True,
                                      timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return False, float(timeout), "timeout"
        seconds = time.perf_counter() - start
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        return done.returncode != 0, seconds, failed[0] if failed else done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="*", help="mutant numbers (default: all)")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines, caught = [], 0
    chosen = args.only if args.only else range(len(MUTANTS))
    for k in chosen:
        killed, seconds, detail = run_one(k, args.timeout)
        caught += killed
        line = f"{k:2d} {'caught' if killed else 'MISSED'} {seconds:6.1f}s  {MUTANTS[k][3]}  [{detail}]"
        print(line, flush=True)
        lines.append(line)
    summary = f"caught {caught} of {len(chosen)} ({100 * caught / len(chosen):.1f} %)"
    print(summary)
    if args.out:
        args.out.write_text("\n".join([summary, *lines]) + "\n")


if __name__ == "__main__":
    main()
