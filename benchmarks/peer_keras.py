"""Training throughput against the study's own framework: its Keras models vs ours, same windows, same threads.

The study trained in Keras on windows it had materialized in memory. Here its two models (1D CNN; CNN+LSTM with
TimeDistributed) are re-expressed in TensorFlow's Keras and fit on the training windows of the study's split
(experiment=study_cnn: 82,873 windows), taken from our DataModule once and saved as one array. Ours trains on
the same split through the DataModule (windows cut per batch), as a bare PyTorch loop and through Lightning
(benchmarks/train_step.py). Each measurement runs in its own process pinned to ``threads`` cores
(``os.sched_setaffinity``) with the framework's thread pools set to the same number. Keras is timed on its
fastest of ``--repeats`` epochs after its first (which traces the graph); ours on its fastest of as many.

Needs TensorFlow: ``pip install -e ".[bench]"`` (tensorflow-cpu). Without it the script says so and exits 0.

    python benchmarks/peer_keras.py [--threads 1 2] [--models cnn cnn_lstm] [--windows N] [--repeats 2]
        [--root $MITDB_DIR] [--out results/benchmark_peer_keras.txt]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
STUDY = {"cnn": "experiment=study_cnn", "cnn_lstm": "experiment=study_cnn_lstm"}


def pin(threads: int) -> None:
    """Run this process on ``threads`` cores only."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))


def materialize(root: Path, out: Path, windows: int | None) -> int:
    """The study split's training windows and labels as arrays (as the study held them), in one .npz."""
    from common import compose_train
    from hydra.utils import instantiate

    dm = instantiate(compose_train([STUDY["cnn"], f"data.catalog.mitdb.root={root}"]).data, _convert_="all")
    dm.setup("fit")
    n = len(dm.data_train) if windows is None else min(windows, len(dm.data_train))
    x, y = dm.data_train.__getitems__(list(range(n)))
    np.savez(out, x=x.numpy()[:, 0, :], y=y.numpy())
    return n


def keras_model(name: str, length: int):
    """The study's Keras models: Conv1D(8, 4, same, relu) -> Flatten -> Dropout(0.5) -> Dense(1, sigmoid), and
    TimeDistributed(Conv1D) over 4 sub-sequences -> TimeDistributed(Flatten) -> LSTM(4) -> Dense(1, sigmoid)."""
    from tensorflow import keras
    from tensorflow.keras import layers

    if name == "cnn":
        inputs = keras.Input((length, 1))
        z = layers.Conv1D(8, 4, padding="same", activation="relu")(inputs)
        z = layers.Dropout(0.5)(layers.Flatten()(z))
    else:
        inputs = keras.Input((4, length // 4, 1))
        z = layers.TimeDistributed(layers.Conv1D(8, 4, padding="same", activation="relu"))(inputs)
        z = layers.LSTM(4)(layers.TimeDistributed(layers.Flatten())(z))
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(z))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def keras_worker(name: str, threads: int, data: Path, repeats: int) -> dict:
    """Windows/s of the study's Keras model over the materialized windows: its fastest epoch after the first."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    arrays = np.load(data)
    x, y = arrays["x"], arrays["y"].astype(np.float32)
    x = x.reshape(len(x), 4, -1, 1) if name == "cnn_lstm" else x[..., None]
    model = keras_model(name, arrays["x"].shape[1])
    epoch_times: list[float] = []

    class Clock(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=128, epochs=1 + repeats, shuffle=True, verbose=0, callbacks=[Clock()])
    return {"keras": len(x) / min(epoch_times[1:]), "version": tf.__version__}


def ours_worker(name: str, threads: int, root: Path, windows: int | None, repeats: int) -> dict[str, float]:
    """Windows/s of ours over the same split: bare PyTorch loop and Lightning (fastest of ``repeats`` epochs)."""
    import torch
    from train_step import bare_epoch, build, lightning_epoch

    torch.set_num_threads(threads)
    batches = None if windows is None else -(-windows // 128)
    module, dm = build(name, root)
    n = len(dm.data_train) if windows is None else min(windows, len(dm.data_train))
    bare = n / bare_epoch(module, dm, batches, repeats)
    module, dm = build(name, root)
    return {"bare": bare, "lightning": n / lightning_epoch(module, dm, batches, repeats)}


def run_worker(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args], check=True, capture_output=True, text=True, cwd=BENCH.parent
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--models", nargs="+", default=list(STUDY), choices=list(STUDY))
    parser.add_argument("--windows", type=int, help="train on the first N windows only (quick check)")
    parser.add_argument("--repeats", type=int, default=2, help="epochs measured per run; the fastest counts")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MITDB_DIR", "../shared/data/mitdb")))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", nargs=4, metavar=("FRAMEWORK", "MODEL", "THREADS", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    if args.worker:
        framework, model, threads, data = args.worker
        pin(int(threads))
        if framework == "keras":
            print(json.dumps(keras_worker(model, int(threads), Path(data), args.repeats)))
        else:
            print(json.dumps(ours_worker(model, int(threads), args.root, args.windows, args.repeats)))
        return
    if importlib.util.find_spec("tensorflow") is None:
        print('TensorFlow is not installed: pip install -e ".[bench]" (tensorflow-cpu), then run this again.')
        return
    from common import emit

    lines = [f"Keras (TensorFlow {{}}) vs ours; {os.cpu_count()} CPUs, each run pinned to its threads"]
    lines.append("model     threads  Keras w/s  ours bare w/s  ours Lightning w/s  ours Lightning / Keras")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "windows.npz"
        n = materialize(args.root, data, args.windows)
        lines.insert(1, f"{n} training windows of the study's split, batch 128, Adam 1e-3, binary cross-entropy")
        for model in args.models:
            for threads in args.threads:
                peer = run_worker(["keras", model, str(threads), str(data), "--repeats", str(args.repeats)])
                keras, lines[0] = peer["keras"], lines[0].replace("{}", peer["version"])
                extra = ["--repeats", str(args.repeats), *(["--windows", str(args.windows)] if args.windows else [])]
                ours = run_worker(["ours", model, str(threads), str(data), "--root", str(args.root), *extra])
                lines.append(
                    f"{model:9s} {threads:7d}  {keras:9.0f}  {ours['bare']:13.0f}  {ours['lightning']:18.0f}"
                    f"  {ours['lightning'] / keras:22.2f}"
                )
                print(lines[-1], flush=True)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
