"""Optuna searches that resume: Hydra's Optuna sweeper, continuing the study it keeps in its storage.

(Hydra loads sweepers only from its ``hydra_plugins`` namespace, hence this package beside ``ecg_lightning``.)

hydra-optuna-sweeper stores every trial in ``storage`` (conf/hparams_search/optuna.yaml: SQLite in the sweep
folder) and reloads the study when it exists, but then runs ``n_trials`` more and numbers its jobs from 0 again.
Rerun an interrupted search with the same ``hydra.sweep.dir`` and this sweeper runs only the trials still
missing (TPE sees the finished ones), numbering the new jobs after the old so no job folder is reused.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

try:  # the sweep extra; Hydra imports every plugin module at start, so without it this one stays empty
    import optuna
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
    from optuna.trial import TrialState
except ImportError:  # pragma: no cover
    OptunaSweeper = None


def trial_counts(storage: str | None, study_name: str | None) -> tuple[int, int]:
    """(finished, all) trials of the study in ``storage``; (0, 0) when it holds no such study yet."""
    if storage is None or study_name is None:
        return 0, 0
    try:
        trials = optuna.load_study(study_name=study_name, storage=storage).trials
    except KeyError:  # optuna: no study of that name in this storage
        return 0, 0
    return sum(t.state == TrialState.COMPLETE for t in trials), len(trials)


if OptunaSweeper is not None:

    class ResumableOptunaSweeper(OptunaSweeper):
        """hydra-optuna-sweeper's OptunaSweeper, resuming a study already in its storage (see the module doc)."""

        def sweep(self, arguments: list[str]) -> None:
            impl = self.sweeper
            if str(impl.storage).startswith("sqlite:///"):  # the sweep folder, made before Hydra makes it
                Path(str(impl.storage).removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            finished, started = trial_counts(impl.storage, impl.study_name)
            if started:
                log.info(
                    "Resuming study %s: %d of %d trials finished (%d unfinished are left as they are)",
                    impl.study_name,
                    finished,
                    impl.n_trials,
                    started - finished,
                )
                impl.n_trials = max(0, impl.n_trials - finished)
                impl.job_idx = started
            return impl.sweep(arguments)
