"""Process-wide CPU settings of a training run: torch's threads and how the C allocator keeps freed memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ecg_lightning.errors import ConfigError

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h) and its largest mmap threshold on this platform (4 MiB x sizeof(long))
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)


def launcher_setting(key: str) -> int | None:
    """A setting of the Hydra launcher running this job (e.g. joblib's n_jobs, submitit's cpus_per_task)."""
    if not HydraConfig.initialized():
        return None
    return (HydraConfig.get().get("launcher") or {}).get(key)


def cpu_processes(trainer: DictConfig) -> int:
    """Training processes sharing this machine's CPU: the devices of a DDP run on the CPU, else 1."""
    distributed = str(trainer.get("strategy", "auto")).startswith("ddp")
    devices = trainer.get("devices")
    return devices if distributed and trainer.get("accelerator") == "cpu" and isinstance(devices, int) else 1


def set_threads(setting: int | str | None, processes: int = 1) -> None:
    """torch's CPU threads for this training process.

    ``auto``: the cores this process may run on (its CPU affinity: under SLURM, the cores it was given) divided
    among the sweep jobs running at once, so jobs x threads never exceeds the cores: joblib's ``n_jobs`` (-1:
    one per core) or submitit's ``cpus_per_task`` set the share, and so does ``processes`` (DDP on the CPU: one
    process per device); a number: that many; null: torch's default.
    Where OMP_NUM_THREADS is set, ``auto`` keeps it: the user's choice, or the one Lightning's DDP on CPU and
    joblib's workers make themselves (cores divided among the processes).
    """
    if setting is None:
        return
    if setting == "auto" and "OMP_NUM_THREADS" in os.environ:
        log.info("torch CPU threads: %d (OMP_NUM_THREADS)", torch.get_num_threads())
        return
    if setting == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        n_jobs = launcher_setting("n_jobs") or 1
        share = launcher_setting("cpus_per_task") or max(1, cores // (cores if n_jobs < 0 else n_jobs))
        threads = max(1, share // processes)
    elif isinstance(setting, int) and setting >= 1:
        threads = setting
    else:
        raise ConfigError(f"threads={setting!r}: use auto, a number >= 1, or null (torch's default)")
    torch.set_num_threads(threads)
    log.info("torch CPU threads: %d", threads)


def reuse_freed_memory(keep_bytes: int = 1 << 30) -> bool:
    """Let glibc's malloc serve activation-sized buffers (up to 32 MiB) from its heap and keep up to ``keep_bytes``
    of freed memory there for the next step, instead of mapping fresh pages from the OS for each one.

    Why: a CPU training step allocates and frees its activations (a study-CNN batch: 8.8 MB per tensor, a dozen a
    step). Above glibc's mmap threshold each allocation is a fresh ``mmap`` whose pages fault in, zero-filled, on
    first touch; the threshold adapts to freed sizes, so the cost comes and goes with the allocation history (runs
    of the same step measured 10-14 k windows/s). Pinning it, like TensorFlow's caching allocator, makes steps
    faster and steadier (benchmarks/train_step.py). The price: the training process keeps up to ``keep_bytes`` of
    freed memory. Returns False (and changes nothing) where the C library is not glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        log.debug("reuse_freed_memory: not glibc (%s), left as is", platform.libc_ver()[0] or platform.system())
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    done = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and libc.mallopt(M_TRIM_THRESHOLD, keep_bytes) == 1
    if done:
        log.info("malloc keeps freed memory for reuse (up to %d MiB; reuse_freed_memory=false: off)", keep_bytes >> 20)
    return done
