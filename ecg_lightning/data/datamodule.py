"""LightningDataModule serving beat windows of one or more WFDB databases, split by subject."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ecg_lightning.data import cache
from ecg_lightning.data.databases import Database, catalog_databases, check_leads
from ecg_lightning.data.labels import check_classes, label_beats
from ecg_lightning.data.records import Lead, RecordSet, RecordSource, lead_key, lead_list, unnamed_lead
from ecg_lightning.data.rr import ANNOTATED, annotated_class, check_reference, enough_annotated, rr_columns
from ecg_lightning.data.split import (
    STUDY_BIN_EDGES,
    abnormal_fraction,
    benchmark_split,
    holdout_split,
    kfold_split,
    subject_ids,
)
from ecg_lightning.data.windows import (
    P_WAVE_S,
    Augment,
    BeatIndex,
    BeatWindowDataset,
    EpochShuffle,
    Shard,
    beat_templates,
    cut_windows,
    index_beats,
    passthrough_collate,
    record_balance_weights,
)
from ecg_lightning.errors import ConfigError, InputError

log = logging.getLogger(__name__)

SPLITS = ("seed", "patient", "kfold", "ds1ds2")
INNER_SPLITS = ("seed", "patient", "kfold", "none")
SIDES = ("train", "val", "test", "all")
PROTOCOLS = ("strict", "published")


class BeatDataModule(L.LightningDataModule):
    """Beat windows of one or more beat-annotated WFDB databases, split by subject.

    Args:
        databases: the catalog's databases to train and validate on (e.g. ["mitdb", "incartdb"]).
        catalog: database name -> its settings (databases.Database: root, physionet, download, annotation, lead,
            same_subject, subject_pattern); ``conf/data/database/*.yaml``.
        test_databases: databases that are the test set (cross-database evaluation: train and validation come from
            ``databases``); empty: no test set except with ``split="ds1ds2"``.
        train_only_databases: databases of ``databases`` whose every record is a training record, never validated
            or tested, whatever the split: more patients to learn from (INCART, SVDB) while the validation folds,
            and so every selection rule's measures, stay those of the other databases (DS1's subjects).
        records: record names to use, in this order (default: every record of the databases, in RECORDS order).
        lead: channel index (the study: 0), signal name (e.g. "MLII"), or a list of them (one input channel each);
            a database's own ``lead`` replaces it there.
        fs: the sampling rate every record is resampled to (annotations follow).
        band: band-pass (low, high) in Hz applied before standardization (None: raw, as in the study).
        standardize: each lead to zero mean and unit variance over its whole record (the study); False keeps the
            physical units (mV), so a patient's amplitude stays in the input.
        window_s: seconds of signal on each side of the beat.
        pad_edges: keep beats whose window runs past the record's edge, zero-padded (False: drop them, as the study).
        templates: serve each record's median beat (windows.beat_templates) as extra input channels.
        reference_beats: which of a record's beats stand for its normal beat — its template and the RR that the
            record-normalized RR features divide by: "all", or "longest_rr" (the fifth with the longest preceding
            RR, so a patient whose most frequent beat is premature still has a normal reference).
        pause_stress: an evaluation stress (0: off): the RR features computed as if every fourth normal beat after
            a normal beat came after a pause, its RR this factor times the one before (``rr.paused_timing``): S
            beats between sinus pauses, which DS1's S patients lack (docs/inter_patient.md, sixty-fifth round).
        rr_features: RR-interval features served with each window (data/rr.py): false, true (record-normalized
            five) or a list of feature names.
        augment: training-time augmentation: jitter_s (max window shift, s), scale, noise, template_swap, stretch,
            record_scale, rr_scale, swap_by_record, premature, irregular (irregular_without_p: windows.Augment.p_wave),
            pauses (see windows.Augment), swap_class:
            the class whose annotated beats make a training record's swap template (default "S"; records with fewer
            than rr.MIN_ANNOTATED of them keep their own template) and premature_class: the class a normal beat served
            early takes, whose beats keep a run's rhythm under irregular and their early timing under pauses (default
            "S").
        labels, label_sets: the label set to use, by name, among ``label_sets`` (class name -> annotation
            symbols, in class order, the normal class first); symbols in no class are not beats.
        split: "seed" (the study's record split), "patient" (same, grouping records by subject), "kfold", or
            "ds1ds2" (the inter-patient benchmark: ``ds1`` trains, ``ds2`` is the test set, records in neither
            are left out; validation is carved out of DS1 by ``inner_split``).
        inner_split: how "ds1ds2" carves validation subjects out of DS1: "patient" or "kfold"; "none" trains on
            every DS1 subject with no validation (a final model: epochs and settings chosen beforehand by
            cross-validation, its final weights tested).
        benchmark_protocol: with "ds1ds2", "strict" leaves out of training every DS1 record whose subject has a DS2
            record (MIT-BIH's 201, the man of 202), so no subject is on both sides; "published" trains on the whole
            published DS1 list, as de Chazal et al. (2004) and the rows that quote them did.
        val_fraction, split_seed, bin_edges: the stratified hold-out split.
        fold, n_folds: which fold of the subject-grouped k-fold is validation.
        cache_dir: where the read records are stored, memory-mapped (None: read into memory at every setup).
        cache_dtype: the store's sample type: float32, or float16 (half the disk; ~1e-3 relative rounding).
        cut_on_device: keep the signals on the training device (e.g. the GPU: they must fit there) and cut each
            batch's windows there with one gather (``windows.cut_windows``); the loaders then carry only each
            batch's plan (starts, scales, labels), not its samples.
        run_beats: beats per item: 1 serves single beats; more serves runs of that many consecutive beats of one
            record (beat-sequence models, ``windows.beat_runs``): every beat of a validation or test record in
            exactly one run, training runs starting every ``run_stride`` beats (default: half a run).
        balance_class, balance_power: training items drawn with replacement, weighted so that the patients with
            few beats of ``balance_class`` are not drowned by the one with many (``windows.record_balance_weights``;
            power 0: a plain permutation, as before).
        batch_by_record: every training batch holds items of one record only (``windows.EpochShuffle`` groups), so
            the network's batch-norm layers train on one patient's statistics at a time, as ``evaluate
            record_norm=true`` scores (docs/inter_patient.md, seventy-third round).
        patient_codes: training batches also hold each window's patient (its record's rank among the training
            records) before the labels, for a patient-adversarial loss (``model.patient_adversary``); validation and
            test batches never do.
        seed: seeds shuffling and augmentation (per epoch and batch, independent of the global RNG).
    """

    def __init__(
        self,
        databases: Sequence[str] = ("mitdb",),
        catalog: Mapping[str, Mapping] | None = None,
        test_databases: Sequence[str] = (),
        train_only_databases: Sequence[str] = (),
        records: Sequence[str] | None = None,
        lead: Lead | Sequence[Lead] = 0,
        fs: float = 360.0,
        band: Sequence[float] | None = None,
        standardize: bool = True,
        window_s: float = 3.0,
        pad_edges: bool = False,
        templates: bool = False,
        reference_beats: str = "all",
        pause_stress: float = 0.0,
        rr_features: bool | Sequence[str] | None = False,
        augment: dict | None = None,
        labels: str = "study",
        label_sets: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        split: str = "seed",
        inner_split: str = "patient",
        benchmark_protocol: str = "strict",
        ds1: Sequence[str] = (),
        ds2: Sequence[str] = (),
        val_fraction: float = 0.25,
        split_seed: int = 42,
        bin_edges: Sequence[float] = STUDY_BIN_EDGES,
        fold: int = 0,
        n_folds: int = 4,
        cache_dir: str | Path | None = None,
        cache_dtype: str = "float32",
        cut_on_device: bool = False,
        batch_size: int = 128,
        num_workers: int = 0,
        run_beats: int = 1,
        run_stride: int | None = None,
        balance_class: str = "S",
        balance_power: float = 0.0,
        batch_by_record: bool = False,
        patient_codes: bool = False,
        seed: int = 0,
    ) -> None:  # pragma: no mutate block (mutmut's trampoline hides the init frame from save_hyperparameters)
        super().__init__()
        if split not in SPLITS:
            raise ConfigError(f"data.split={split!r}; choose one of {SPLITS}")
        if not isinstance(standardize, bool):  # a string such as "no" would read as true
            raise ConfigError(f"data.standardize={standardize!r}; give true (the study) or false (physical units)")
        if inner_split not in INNER_SPLITS:
            raise ConfigError(f"data.inner_split={inner_split!r}; choose one of {INNER_SPLITS}")
        if inner_split == "none" and split != "ds1ds2":
            raise ConfigError(
                "data.inner_split=none (no validation) is for data.split=ds1ds2, whose DS2 is the test set"
            )
        if benchmark_protocol not in PROTOCOLS:
            raise ConfigError(f"data.benchmark_protocol={benchmark_protocol!r}; choose one of {PROTOCOLS}")
        if run_beats > 1 and cut_on_device:
            raise ConfigError("data.run_beats > 1 (runs of beats) is cut on the CPU; set data.cut_on_device=false")
        if patient_codes and cut_on_device:
            raise ConfigError("data.patient_codes are served by batches cut on the CPU; set data.cut_on_device=false")
        if split == "ds1ds2" and not (ds1 and ds2):
            raise ConfigError("data.split=ds1ds2 needs the record lists data.ds1 (training) and data.ds2 (test)")
        if split == "ds1ds2" and test_databases:
            raise ConfigError("data.split=ds1ds2 has its own test set (data.ds2); leave data.test_databases empty")
        if not databases:
            raise ConfigError("data.databases is empty; name at least one database of data.catalog to train on")
        both = sorted(set(map(str, databases)) & set(map(str, test_databases)))
        if both:
            raise ConfigError(f"{both} in both data.databases and data.test_databases; a test database is unseen")
        stray = sorted(set(map(str, train_only_databases)) - set(map(str, databases)))
        if stray:
            raise ConfigError(
                f"data.train_only_databases={list(train_only_databases)}: {stray} not in data.databases "
                f"({list(databases)}); add them there too"
            )
        if set(map(str, databases)) <= set(map(str, train_only_databases)):
            raise ConfigError(
                "data.train_only_databases names every database of data.databases: leave one to validate on "
                "(e.g. data.databases=[mitdb,incartdb] data.train_only_databases=[incartdb])"
            )
        check_reference(reference_beats)
        if pause_stress and (pause_stress <= 1 or not rr_features):
            raise ConfigError(
                f"data.pause_stress={pause_stress}: give a factor above 1 (a pause's RR against the one before it; 0: "
                "off) for a model that reads RR features (data.rr_features)"
            )
        swap = float((augment or {}).get("template_swap", 0.0))
        if not 0 <= swap <= 1:
            raise ConfigError(f"data.augment.template_swap={swap}: must be a probability in [0, 1]")
        if swap and not templates:
            raise ConfigError("data.augment.template_swap swaps templates; set data.templates=true or leave it 0")
        if (augment or {}).get("swap_by_record", False):
            if not swap:
                raise ConfigError("data.augment.swap_by_record draws data.augment.template_swap per record; set it > 0")
            if cut_on_device:
                raise ConfigError("data.augment.swap_by_record is cut on the CPU; set data.cut_on_device=false")
        for key, example in (("stretch", "time axis"), ("record_scale", "amplitude"), ("rr_scale", "RR intervals")):
            value = float((augment or {}).get(key, 0.0))
            if not 0 <= value < 1:
                raise ConfigError(f"data.augment.{key}={value}: must be in [0, 1) (0.1: {example} 0.9-1.1x)")
            if value and cut_on_device:
                raise ConfigError(f"data.augment.{key} is cut on the CPU; set data.cut_on_device=false or {key}=0")
        if cache_dtype not in cache.DTYPES:
            raise ConfigError(f"data.cache_dtype={cache_dtype!r}; choose one of {cache.DTYPES}")
        if not label_sets or labels not in label_sets:
            raise ConfigError(f"data.labels={labels!r}; choose one of data.label_sets: {list(label_sets or {})}")
        for key, value, ok, allowed in (
            ("fs", fs, fs > 0, "> 0 Hz"),
            ("window_s", window_s, window_s > 0 and window_s * fs >= 1, "> 0 s"),
            ("batch_size", batch_size, batch_size >= 1, ">= 1"),
            ("val_fraction", val_fraction, 0 < val_fraction < 1, "in (0, 1)"),
            ("n_folds", n_folds, n_folds >= 2, ">= 2"),
            ("run_beats", run_beats, run_beats >= 1, ">= 1"),
            ("run_stride", run_stride, run_stride is None or 1 <= run_stride <= run_beats, "in [1, run_beats]"),
            ("balance_power", balance_power, balance_power >= 0, ">= 0 (0: off)"),
        ):
            if not ok:
                raise ConfigError(f"data.{key}={value}: must be {allowed}")
        self.save_hyperparameters(logger=False)
        self.classes = check_classes(label_sets[labels])
        if batch_by_record and balance_power:
            raise ConfigError(
                "data.batch_by_record=true draws each batch from one record, data.balance_power weights items across "
                "records: set one of them (data.balance_power=0 or data.batch_by_record=false)"
            )
        if balance_power and balance_class not in self.classes:
            raise ConfigError(f"data.balance_class={balance_class!r}: no such class in {list(self.classes)}")
        self.rr_columns = rr_columns(rr_features)
        self.databases: list[Database] = catalog_databases(databases, catalog or {})
        self.test_databases: list[Database] = catalog_databases(test_databases, catalog or {}, "data.test_databases")
        check_leads(self.databases + self.test_databases, lead)
        self.half_width = int(round(window_s * fs))
        self.records: RecordSet | None = None
        self.beats: BeatIndex | None = None
        self.templates: np.ndarray | None = None
        self.train_records: list[str] = []
        self.val_records: list[str] = []
        self.test_records: list[str] = []
        self.data_train: BeatWindowDataset | None = None
        self.data_val: BeatWindowDataset | None = None
        self.data_test: BeatWindowDataset | None = None
        self._on_device: tuple[torch.Tensor, torch.Tensor | None] | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)

    @property
    def leads_seen(self) -> list[list[str]] | None:
        """Per input lead, the signal names it had in the training records (after name matching and fall-backs)."""
        if self.records is None:
            return None
        train = [leads for name, leads in zip(self.records.names, self.records.leads) if name in self.train_records]
        return [sorted({leads[i] for leads in train}) for i in range(self.records.signal.shape[0])]

    @property
    def window_length(self) -> int:
        return 2 * self.half_width

    def prepare_data(self) -> None:
        for db in self.databases + self.test_databases:
            db.record_names()

    def _sources(self) -> list[RecordSource]:
        """Every record to read, database by database (or in ``records`` order), each with its database's lead."""
        hp, listed, every = self.hparams, {}, self.databases + self.test_databases
        for db in every:
            for name in db.record_names():
                if name in listed:
                    raise ConfigError(
                        f"record {name} is in both {listed[name].name} ({listed[name].root}) and {db.name} "
                        f"({db.root}); record names must be unique across data.databases and data.test_databases"
                    )
                listed[name] = db
        if hp.records is not None and len(hp.records) == 0:
            raise ConfigError("data.records=[] names no record; leave it out (null) to use every record")
        names = [str(r) for r in hp.records] if hp.records else list(listed)
        unknown = [n for n in names if n not in listed]
        if unknown:
            raise ConfigError(
                f"data.records: {unknown[:10]} not in the records of {[db.name for db in every]} "
                f"({', '.join(str(db.root) for db in every)})"
            )
        return [source for n in names for source in listed[n].sources([n], hp.lead)]

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        hp = self.hparams
        cache_dir = Path(hp.cache_dir).expanduser() if hp.cache_dir else None
        band = tuple(float(f) for f in hp.band) if hp.band else None
        self.records = cache.load_or_read(
            self._sources(), float(hp.fs), cache_dir, band, hp.cache_dtype, hp.standardize
        )
        labels = label_beats(self.records.ann_symbol, self.classes)
        reference = hp.reference_beats
        reference_class = self._reference_class(reference)
        self.beats = index_beats(
            self.records,
            labels,
            self.half_width,
            hp.pad_edges,
            self.rr_columns,
            reference,
            reference_class,
            float(hp.pause_stress),
        )
        self.templates = (
            beat_templates(
                self.records, self.beats, self.half_width, reference=reference, reference_class=reference_class
            )
            if hp.templates
            else None
        )
        self.swap_rows = self._add_swap_templates() if self._augment().template_swap else None
        self.train_records, self.val_records, self.test_records = self._split()
        on_device = hp.cut_on_device
        self.data_train = self._dataset(self._beats_of(self.train_records), train=True, plan_only=on_device)
        self.data_val = self._dataset(self._beats_of(self.val_records), plan_only=on_device)
        self.data_test = self._dataset(self._beats_of(self.test_records), plan_only=on_device)
        if len(self.data_train.labels) == 0:
            raise ConfigError(
                f"no training windows in the {len(self.train_records)} training records: no beat's "
                f"{2 * hp.window_s:g} s window (data.window_s={hp.window_s} each side) fits inside its record; "
                "lower data.window_s or set data.pad_edges=true"
            )
        self._log_summary()

    def _reference_class(self, reference: str) -> int | None:
        """The class index of an ``annotated_<class>`` reference (the stress test), checked against the classes."""
        name = annotated_class(reference)
        if name is None:
            return None
        if name not in self.classes:
            raise ConfigError(f"data.reference_beats={reference}: no class {name!r} in {list(self.classes)}")
        return list(self.classes).index(name)

    def _add_swap_templates(self) -> np.ndarray:
        """Append each record's swap template (``Augment.template_swap``: the median of its beats annotated
        ``augment.swap_class``) to ``self.templates``; return the row each record swaps to — its own where it has
        fewer than ``MIN_ANNOTATED`` such beats. Labels are read, so only training windows are ever swapped."""
        name = str((self.hparams.augment or {}).get("swap_class", "S"))
        reference = f"{ANNOTATED}{name}"
        cls = self._reference_class(reference)
        n = len(self.records.names)
        swap = beat_templates(self.records, self.beats, self.half_width, reference=reference, reference_class=cls)
        self.templates = np.concatenate([self.templates, swap])
        enough = enough_annotated(self.beats.record, self.beats.label == cls, n)
        log.info(
            "template swap (%s): %d of the %d records read have one; only training windows swap",
            name,
            int(enough.sum()),
            n,
        )
        return np.where(enough, n + np.arange(n), np.arange(n))

    def _beats_of(self, records: Sequence[str]) -> np.ndarray:
        """Mask of the indexed beats that belong to ``records`` (one lookup per record, not per beat)."""
        return np.isin(np.asarray(self.records.names), list(records))[self.beats.record]

    def _dataset(self, mask: np.ndarray, train: bool = False, plan_only: bool = False) -> BeatWindowDataset:
        augment = self._augment() if train else None
        runs = self.hparams.run_beats
        stride = (self.hparams.run_stride or max(1, runs // 2)) if train else runs
        return BeatWindowDataset(
            self.records,
            self.beats.subset(mask),
            self.half_width,
            self.rr_columns,
            augment,
            self.hparams.seed,
            self.templates,
            plan_only,
            runs,
            stride,
            self.swap_rows if train else None,
            bool(self.hparams.patient_codes) and train,
        )

    def on_after_batch_transfer(self, batch: object, dataloader_idx: int) -> object:
        """With ``cut_on_device``: the batch's windows, cut on its device from signals moved there once."""
        if not isinstance(batch, dict):
            return batch
        device = batch["start"].device
        if self._on_device is None or self._on_device[0].device != device:
            signal = torch.from_numpy(np.array(self.records.signal, copy=True)).to(device)  # a writable copy
            templates = None if self.templates is None else torch.as_tensor(self.templates).to(device)
            self._on_device = (signal, templates)
        return cut_windows(batch, *self._on_device, self.window_length)

    def subjects(self) -> np.ndarray:
        """Each record's subject key, ``<database>:<subject>`` (Database.subject_keys), in record order."""
        keys = np.empty(len(self.records.names), dtype=object)
        dbs = np.asarray(self.records.databases)
        for db in self.databases + self.test_databases:
            at = np.flatnonzero(dbs == db.name)
            keys[at] = db.subject_keys([self.records.names[i] for i in at], [self.records.comments[i] for i in at])
        return keys.astype(str)

    def _augment(self) -> Augment:
        spec = dict(self.hparams.augment or {})
        spec.pop("swap_class", None)  # read by _add_swap_templates
        premature_class = str(spec.pop("premature_class", "S"))
        if any(spec.get(key) for key in ("premature", "atrial_runs", "irregular", "pauses")):
            if premature_class not in list(self.classes)[1:]:
                raise ConfigError(
                    f"data.augment.premature_class={premature_class}: choose an abnormal class of {list(self.classes)}"
                )
            spec["premature_label"] = list(self.classes).index(premature_class)
        jitter = int(round(float(spec.pop("jitter_s", 0.0)) * self.hparams.fs))
        if spec.pop("irregular_without_p", False):  # fibrillation's timing served without P waves
            spec["p_wave"] = tuple(int(round(s * self.hparams.fs)) for s in P_WAVE_S)
        if "premature_earlier" in spec:
            spec["premature_earlier"] = tuple(float(f) for f in spec["premature_earlier"])
        return Augment(jitter=jitter, **spec)

    def class_counts(self) -> np.ndarray:
        """Training windows per class."""
        return np.bincount(self.data_train.labels, minlength=len(self.classes))

    def _split(self) -> tuple[list[str], list[str], list[str]]:
        """Train, validation and test records. The test set is DS2 (``split="ds1ds2"``) or the test databases;
        otherwise empty. Validation subjects come from the training pool only; the train-only databases' records
        are all training records, whatever the split."""
        hp, every = self.hparams, np.asarray(self.records.names)
        train_only = np.isin(self.records.databases, list(hp.train_only_databases))
        mine = ~train_only  # the records split below; the train-only databases' join the training side at the end
        names = every[mine]
        fraction = abnormal_fraction(self.beats.record, self.beats.label, len(every))[mine]
        windows = np.bincount(self.beats.record, minlength=len(every)).astype(np.float64)[mine]
        keys, mode = self.subjects()[mine], hp.split
        in_test = np.isin(np.asarray(self.records.databases)[mine], [db.name for db in self.test_databases])
        if hp.split == "ds1ds2":
            shared = hp.benchmark_protocol == "published"
            pool, test = benchmark_split(names.tolist(), hp.ds1, hp.ds2, subject_ids(keys), shared)
            if not pool or not test:
                raise ValueError(f"data.split=ds1ds2: no DS1 or no DS2 record among the {len(names)} records read")
            listed = np.isin(names, [*map(str, hp.ds1), *map(str, hp.ds2)])
            databases = np.asarray(self.records.databases)[mine]
            unlisted = sorted(map(str, set(databases) - set(databases[listed])))  # no record of theirs in DS1 or DS2
            if unlisted:
                log.warning(
                    "data.split=ds1ds2: the records of %s are in neither data.ds1 nor data.ds2 and are left out; "
                    "to train on them, name them in data.train_only_databases",
                    unlisted,
                )
            keep, mode = np.isin(names, pool), hp.inner_split
        else:
            keep, test = ~in_test, names[in_test].tolist()
        names, fraction, windows, keys = names[keep].tolist(), fraction[keep], windows[keep], keys[keep]
        subjects = subject_ids(keys)
        if mode == "none":
            train, val = names, []
        elif mode == "seed":
            train, val = holdout_split(names, fraction, windows, hp.val_fraction, hp.split_seed, None, hp.bin_edges)
        elif mode == "patient":
            train, val = holdout_split(names, fraction, windows, hp.val_fraction, hp.split_seed, subjects, hp.bin_edges)
        else:
            train, val = kfold_split(
                names, fraction, windows, subjects, hp.fold, hp.n_folds, hp.split_seed, hp.bin_edges
            )
        return [*train, *every[train_only].tolist()], list(val), test

    def _warn_lead_fallbacks(self) -> None:
        """Say, at every setup (cached or not), which records lacked a lead asked for by name and what was read."""
        for db in self.databases + self.test_databases:
            mine = [i for i, d in enumerate(self.records.databases) if d == db.name]
            for k, want in enumerate(lead_list(db.lead_for(self.hparams.lead))):
                if not isinstance(want, str):
                    continue
                other = {
                    self.records.names[i]: self.records.leads[i][k]
                    for i in mine
                    if lead_key(self.records.leads[i][k]) != lead_key(want)
                }
                found = sorted({g for i in mine for g in self.records.leads[i]})
                if other and len(other) == len(mine) and not all(map(unnamed_lead, found)):
                    raise ConfigError(
                        f"{'data.lead' if db.lead is None else f'data.catalog.{db.name}.lead'}: no {db.name} record "
                        f"has a {want} lead (their leads: {', '.join(found)}); choose one of those"
                    )
                if other:
                    log.warning(
                        "%s %s: %d of %d %s records lack it and give another lead there: %s",
                        "data.lead" if db.lead is None else f"data.catalog.{db.name}.lead",
                        want,
                        len(other),
                        len(mine),
                        db.name,
                        ", ".join(f"{n} {g}" for n, g in other.items()),
                    )

    def _log_summary(self) -> None:
        self._warn_lead_fallbacks()
        sides = (
            ("train", self.train_records, self.data_train),
            ("val", self.val_records, self.data_val),
            ("test", self.test_records, self.data_test),
        )
        for side, records, data in sides:
            if not records:
                continue
            counts = np.bincount(data.labels, minlength=len(self.classes))
            share = ", ".join(f"{c} {100 * n / max(len(data.labels), 1):.1f}%" for c, n in zip(self.classes, counts))
            log.info(
                "%s: %d records, %d windows, %.1f%% abnormal (%s)",
                side,
                len(records),
                len(data.labels),
                100 * float((data.labels != 0).mean()) if len(data.labels) else 0.0,
                share,
            )
        log.info("val records: %s", " ".join(self.val_records))
        if self.test_records:
            log.info("test records: %s", " ".join(self.test_records))

    def eval_dataset(self, side: str) -> BeatWindowDataset:
        """Windows of one side ("train", "val", "test" or "all") without augmentation, for evaluation."""
        if side not in SIDES:
            raise InputError(f"side={side!r}; choose one of {SIDES}")
        if side == "test" and not self.test_records:
            raise InputError(
                "side=test: this split has no test set; use data.split=ds1ds2 or data.test_databases=[...] "
                "(or evaluate side=val)"
            )
        chosen = {"train": self.train_records, "val": self.val_records, "test": self.test_records}.get(side)
        return self._dataset(np.ones(len(self.beats), bool) if chosen is None else self._beats_of(chosen))

    def loader(self, data: BeatWindowDataset, batch_size: int | None = None) -> DataLoader:
        """An ordered loader over ``data`` (evaluation and prediction)."""
        return DataLoader(data, batch_size=batch_size or self.hparams.batch_size, collate_fn=passthrough_collate)

    @property
    def nbytes(self) -> int:
        """Memory of the signals plus every side's index."""
        return self.records.signal.nbytes + sum(d.nbytes for d in (self.data_train, self.data_val, self.data_test))

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _rank_and_world(self) -> tuple[int, int]:
        """This process's rank and the number of processes (DDP); (0, 1) in a single process."""
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def _loader(self, data: BeatWindowDataset, sampler: EpochShuffle | Shard) -> DataLoader:
        return DataLoader(
            data,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            collate_fn=passthrough_collate,
            generator=torch.Generator().manual_seed(self.hparams.seed),  # worker seeds, not the global RNG
        )

    # The loaders shard by rank themselves (the trainer configs set use_distributed_sampler: false): training
    # windows as a per-epoch permutation split across ranks, evaluation windows each on exactly one rank.

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_and_world()
        data, hp = self.data_train, self.hparams
        groups = data.item_records() if hp.batch_by_record else None
        shuffle = EpochShuffle(
            len(data), hp.seed, self._current_epoch, rank, world, self.train_weights(), groups, hp.batch_size
        )
        return self._loader(self.data_train, shuffle)

    def train_weights(self) -> np.ndarray | None:
        """Each training item's sampling weight (``data.balance_power`` > 0), else None (a plain permutation)."""
        hp = self.hparams
        if not hp.balance_power:
            return None
        data = self.data_train
        cls = list(self.classes).index(hp.balance_class)
        weights = record_balance_weights(data.beats.record, data.labels, cls, float(hp.balance_power), data.runs)
        log.info(
            "balanced sampling (%s, power %g): %d of %d training items weighted %.2f-%.2f",
            hp.balance_class,
            hp.balance_power,
            int((weights != 1).sum()),
            len(weights),
            weights.min(),
            weights.max(),
        )
        return weights

    def val_dataloader(self) -> DataLoader:
        limit = self.trainer.limit_val_batches if self.trainer is not None else 1.0
        # a whole number is a count of batches (fast_dev_run's 1 too), a float a fraction of them
        limited = isinstance(limit, int) or limit < 1.0
        # a quick check validates on its first batches only: take them from a fixed shuffle of every record's
        # windows, not from the first record (whose classes could all be one)
        n = len(self.data_val)
        order = np.random.default_rng([0, 0]).permutation(n) if limited else np.arange(n)
        return self._loader(self.data_val, Shard(order, *self._rank_and_world()))

    def test_dataloader(self) -> DataLoader:
        if not self.test_records:
            raise ValueError("this split has no test set; train with data.split=ds1ds2 or data.test_databases=[...]")
        return self._loader(self.data_test, Shard(np.arange(len(self.data_test)), *self._rank_and_world()))


class MITBIHDataModule(BeatDataModule):
    """The earlier one-folder form (``root``, ``download``, ``same_subject``) over MIT-BIH, kept so that checkpoints
    trained with it still evaluate and predict."""

    def __init__(
        self,
        root: str | Path,
        download: bool = True,
        same_subject: Sequence[Sequence[str]] = (("201", "202"),),
        **kwargs: object,
    ) -> None:  # pragma: no mutate block
        spec = {"root": root, "physionet": "mitdb", "download": download, "same_subject": same_subject}
        super().__init__(databases=["mitdb"], catalog={"mitdb": spec}, **kwargs)
