"""ecg-lightning's Hydra plugins: an Optuna sweeper that resumes its study (resumable_optuna)."""
