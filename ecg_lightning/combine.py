"""Combine trained checkpoints into one (``models/vote.py``): a network deciding with a second model's vote on one
class, or several networks of one recipe averaged.

    python -m ecg_lightning.combine <network.ckpt> <voter.ckpt> --out combined.ckpt [--vote S]
        [--class-bias 0 0.5 0.5 0 0]
    python -m ecg_lightning.combine <network sweep> <voter sweep> --out <folder>   # seed by seed: <folder>/seed<N>.ckpt
    python -m ecg_lightning.combine --mean <a.ckpt> <b.ckpt> ... --out mean.ckpt   # or a sweep: all its seeds

The result is an ordinary ecg-lightning checkpoint: ``evaluate`` (also as an ensemble of several), ``predict``,
``export`` and the Python API use it as they use any other. Its data config is the network's, serving the RR
features of both; the voter reads its own leads out of the network's windows, so both must have been trained on
the same records, labels, rate, band-pass and edge padding, and the voter's leads must be among the network's.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ecg_lightning.checkpoint import (
    CONFIG_KEY,
    LEADS_KEY,
    CheckpointError,
    checkpoint_config,
    input_setting,
    load_checkpoint,
)
from ecg_lightning.config import window_samples
from ecg_lightning.data.records import lead_list
from ecg_lightning.data.rr import rr_feature_names
from ecg_lightning.errors import exit_on_input_error

log = logging.getLogger("ecg_lightning")

# what both members must share: the records each trained on, what a class is, and how a window is prepared
SHARED = (
    "labels", "label_sets", "fs", "band", "standardize", "pad_edges", "reference_beats", "databases", "records",
    "split", "benchmark_protocol", "inner_split", "fold", "n_folds", "split_seed", "ds1", "ds2", "run_beats",
)  # fmt: skip


def combined_config(network: dict[str, Any], voter: dict[str, Any], vote: str, class_bias: list[float] | None):
    """The run config of the combination: the network's data serving both members' RR features, and a
    ``ClassVote`` net holding both members' nets (the voter sized to the network's windows)."""
    nd, vd = network["data"], voter["data"]
    differ = [k for k in SHARED if input_setting(nd, k) != input_setting(vd, k)]
    if differ:
        raise CheckpointError(f"the two checkpoints differ in data.{', data.'.join(differ)}; train both alike")
    if vd.get("templates"):
        raise CheckpointError("the voter was trained with data.templates=true; a voter reads leads only")
    leads = lead_list(nd["lead"])
    missing = [lead for lead in lead_list(vd["lead"]) if lead not in leads]
    if missing:
        raise CheckpointError(f"the voter's leads {missing} are not among the network's {leads}")
    if vd["window_s"] > nd["window_s"]:
        raise CheckpointError(f"the voter's window (data.window_s={vd['window_s']}) is wider than the network's")
    classes = network["model"]["classes"]
    if voter["model"]["classes"] != classes or vote not in classes:
        raise CheckpointError(f"both members must have the classes {classes}, among them the voted class {vote!r}")
    network_rr = list(rr_feature_names(nd.get("rr_features")))
    voter_rr = list(rr_feature_names(vd.get("rr_features")))
    served = network_rr + [name for name in voter_rr if name not in network_rr]
    voter_net = {**voter["model"]["net"], "input_length": window_samples(nd["window_s"], nd["fs"])}
    net = {
        "_target_": "ecg_lightning.models.ClassVote",
        "network": network["model"]["net"],
        "voter": voter_net,
        "voted_class": classes.index(vote),
        "network_rr": [served.index(n) for n in network_rr],
        "voter_rr": [served.index(n) for n in voter_rr],
        "voter_channels": [leads.index(lead) for lead in lead_list(vd["lead"])],
    }
    model = {**network["model"], "net": net, "class_bias": class_bias}
    return {**network, "data": {**nd, "rr_features": served or False}, "model": model}


# data settings that may differ between averaged members: where the data is, how fast it is served, and training-only.
# Every other one must match (stricter than evaluate's ensemble check, INPUT_KEYS): the combined checkpoint keeps one
# data config, so members trained on other records (e.g. other folds) would escape evaluate's check of unseen records.
NOT_INPUTS = ("catalog", "cache_dir", "cache_dtype", "cut_on_device", "batch_size", "num_workers", "seed", "augment")


def mean_config(
    configs: list[dict[str, Any]], class_bias: list[float] | None, relative_s: bool = False, quantile: float = 0.5
) -> dict[str, Any]:
    """The run config of several networks averaged: the first's, its net a ``NetworkMean`` of every member's net.
    The members must prepare their inputs alike and have one architecture; their seeds may differ."""
    first = configs[0]
    for k, other in enumerate(configs[1:], start=1):
        keys = {*first["data"], *other["data"]} - set(NOT_INPUTS)
        differ = sorted(key for key in keys if input_setting(first["data"], key) != input_setting(other["data"], key))
        if differ:
            raise CheckpointError(f"member {k} differs from member 0 in data.{', data.'.join(differ)}; train alike")
        if other["model"]["net"] != first["model"]["net"] or other["model"]["classes"] != first["model"]["classes"]:
            raise CheckpointError(f"member {k} is another network or class set than member 0 (model.net, .classes)")
    net = {
        "_target_": "ecg_lightning.models.NetworkMean",
        "networks": [c["model"]["net"] for c in configs],
        "binary": len(first["model"]["classes"]) == 2,
    }
    decision = {"class_bias": class_bias, "relative_s": relative_s, "relative_s_quantile": quantile}
    return {**first, "model": {**first["model"], "net": net, **decision}}


def _net_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}


def _save(model: torch.nn.Module, first_ckpt: dict[str, Any], config: dict, members: dict, out: Path) -> None:
    """Write a combined checkpoint: the combined net's weights, the classifier's buffers from ``first_ckpt``."""
    state = {k: v for k, v in first_ckpt["state_dict"].items() if not k.startswith("net.")}
    state.update({f"net.{k}": v for k, v in model.net.state_dict().items()})
    model.load_state_dict(state)  # every key accounted for: the classifier's buffers are the first member's
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), CONFIG_KEY: config}
    torch.save({**saved, LEADS_KEY: first_ckpt.get(LEADS_KEY), "members": members}, out)


def combine_mean(
    paths: list[Path],
    out: Path,
    class_bias: list[float] | None = None,
    relative_s: bool = False,
    quantile: float = 0.5,
) -> Path:
    """Write the checkpoint of ``paths``' networks averaged (a folder stands for every seed of that sweep); with
    ``relative_s`` its S decision is made relative to each record (``model.relative_s``), measured from the record's
    ``quantile`` (``model.relative_s_quantile``)."""
    paths = [p for path in paths for p in (seeds_of(path).values() if path.is_dir() else [path])]
    if len(paths) < 2:
        raise CheckpointError(f"--mean averages several networks; got {[str(p) for p in paths]}")
    ckpts = [load_checkpoint(p) for p in paths]
    configs = [OmegaConf.to_container(checkpoint_config(c), resolve=True) for c in ckpts]
    try:
        config = mean_config(configs, class_bias, relative_s, quantile)
    except CheckpointError as err:  # name the files
        raise CheckpointError(f"{', '.join(map(str, paths))}: {err}") from None
    model = instantiate(OmegaConf.create(config["model"]), _convert_="all")
    for member, ckpt in zip(model.net.networks, ckpts, strict=True):
        member.load_state_dict(_net_state(ckpt))
    _save(model, ckpts[0], config, {"mean": [str(p) for p in paths], "seeds": [c.get("seed") for c in configs]}, out)
    log.info("Wrote %s: the mean of %d networks (%s)", out, len(paths), ", ".join(map(str, paths)))
    return out


def combine(network_path: Path, voter_path: Path, out: Path, vote: str = "S", class_bias=None) -> Path:
    """Write the combined checkpoint to ``out``; the members' weights are copied, nothing is trained."""
    network_ckpt, voter_ckpt = load_checkpoint(network_path), load_checkpoint(voter_path)
    network, voter = (OmegaConf.to_container(checkpoint_config(c), resolve=True) for c in (network_ckpt, voter_ckpt))
    try:
        config = combined_config(network, voter, vote, class_bias)
    except CheckpointError as err:  # name the two files
        raise CheckpointError(f"{network_path} with {voter_path}: {err}") from None
    model = instantiate(OmegaConf.create(config["model"]), _convert_="all")
    for member, ckpt in ((model.net.network, network_ckpt), (model.net.voter, voter_ckpt)):
        member.load_state_dict(_net_state(ckpt))
    _save(model, network_ckpt, config, {"network": str(network_path), "voter": str(voter_path), "vote": vote}, out)
    log.info("Wrote %s: %s decides, %s votes on %s", out, network_path, voter_path, vote)
    return out


def seeds_of(sweep: Path, name: str = "last.ckpt") -> dict[int, Path]:
    """{seed: <job>/checkpoints/<name>} of a multirun folder, the seed read from each checkpoint's config."""
    found = {}
    for path in sorted(sweep.glob(f"*/checkpoints/{name}")):
        seed = checkpoint_config(load_checkpoint(path)).get("seed")
        if seed in found:
            raise CheckpointError(f"{sweep}: seed {seed} twice ({found[seed]}, {path}); give one sweep of seeds")
        found[seed] = path
    if not found:
        raise CheckpointError(f"{sweep}: no */checkpoints/{name}; give a training multirun folder or a checkpoint")
    return found


def combine_sweeps(network: Path, voter: Path, out_dir: Path, vote: str = "S", class_bias=None) -> list[Path]:
    """Seed by seed: each seed's network with the same seed's voter, written to ``out_dir/seed<N>.ckpt``."""
    networks, voters = seeds_of(network), seeds_of(voter)
    if set(networks) != set(voters):
        raise CheckpointError(f"the sweeps' seeds differ: {sorted(networks)} in {network}, {sorted(voters)} in {voter}")
    return [combine(networks[s], voters[s], out_dir / f"seed{s}.ckpt", vote, class_bias) for s in sorted(networks)]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(
        description="Combine a network and a voter (one class), or several networks averaged, into one checkpoint."
    )
    parser.add_argument(
        "members",
        type=Path,
        nargs="+",
        help="the network that decides every class and the model that votes on one class (checkpoints or sweeps); "
        "with --mean the networks to average (checkpoints, or a sweep: all its seeds)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="the combined checkpoint; with two sweeps a folder of seed<N>.ckpt"
    )
    parser.add_argument("--mean", action="store_true", help="average the members' class probabilities")
    parser.add_argument("--vote", default="S", help="the class the voter votes on (default S)")
    parser.add_argument("--class-bias", type=float, nargs="+", help="decision offsets per class (calibrate)")
    parser.add_argument(
        "--relative-s",
        action="store_true",
        help="with --mean: the S offset applies relative to each record's median S-vs-N log-odds (model.relative_s)",
    )
    parser.add_argument(
        "--relative-s-quantile",
        type=float,
        default=0.5,
        help="with --relative-s: the quantile of each record's S-vs-N log-odds measured from (default 0.5, the median; "
        "model.relative_s_quantile)",
    )
    args = parser.parse_args()
    if args.relative_s_quantile != 0.5 and not args.relative_s:
        parser.error("--relative-s-quantile goes with --relative-s")
    if args.mean:
        exit_on_input_error(
            lambda: combine_mean(args.members, args.out, args.class_bias, args.relative_s, args.relative_s_quantile)
        )
        return
    if args.relative_s:
        parser.error("--relative-s goes with --mean (a network with a voter decides per beat)")
    if len(args.members) != 2:
        parser.error(f"give a network and a voter (two paths), or --mean; got {len(args.members)} paths")
    args.network, args.voter = args.members
    if args.network.is_dir() and args.voter.is_dir():  # two multiruns of seeds: paired seed by seed
        exit_on_input_error(lambda: combine_sweeps(args.network, args.voter, args.out, args.vote, args.class_bias))
    else:
        exit_on_input_error(lambda: combine(args.network, args.voter, args.out, args.vote, args.class_bias))


if __name__ == "__main__":
    main()
