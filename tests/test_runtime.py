"""CPU settings of a training process: torch's threads, the allocator keeping freed memory."""

import os
import platform
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from ecg_lightning import runtime
from ecg_lightning.errors import ConfigError


def test_threads_auto_divides_the_cores_among_the_jobs_running_at_once(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    launcher: dict = {"n_jobs": 2}
    monkeypatch.setattr(runtime, "launcher_setting", launcher.get)
    before = torch.get_num_threads()
    try:
        for settings, expected in (({"n_jobs": 2}, 2), ({"n_jobs": -1}, 1), ({}, 4), ({"cpus_per_task": 3}, 3)):
            launcher.clear()
            launcher.update(settings)
            runtime.set_threads("auto")
            assert torch.get_num_threads() == expected, settings
        launcher.clear()
        runtime.set_threads("auto", processes=2)  # DDP on the CPU: 2 processes share the 4 cores
        assert torch.get_num_threads() == 2
        ddp = OmegaConf.create({"strategy": "ddp", "accelerator": "cpu", "devices": 2})
        assert runtime.cpu_processes(ddp) == 2
        assert runtime.cpu_processes(OmegaConf.merge(ddp, {"accelerator": "gpu"})) == 1
        assert runtime.cpu_processes(OmegaConf.merge(ddp, {"strategy": "auto"})) == 1
        runtime.set_threads(5)
        assert torch.get_num_threads() == 5
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(2)
        runtime.set_threads("auto")  # the environment's choice stands
        assert torch.get_num_threads() == 2
        with pytest.raises(ConfigError, match="threads='many'"):
            runtime.set_threads("many")
    finally:
        torch.set_num_threads(before)


MAPPED_DURING_ALLOCATION = """
import ctypes, sys, torch
from ecg_lightning.runtime import reuse_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
before = libc.mallinfo2().hblkhd
buffer = torch.empty(2_500_000)  # 10 MB, an activation-sized buffer
mapped = libc.mallinfo2().hblkhd - before
del buffer
print(mapped, libc.mallinfo2().fordblks)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt/mallinfo2 are glibc's")
def test_reuse_freed_memory_serves_activation_buffers_from_the_heap_and_keeps_them():
    def run(mode: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", MAPPED_DURING_ALLOCATION, mode], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        mapped, free_in_heap = map(int, out.stdout.split())
        return mapped, free_in_heap

    default_mapped, _ = run("default")
    mapped, free_in_heap = run("reuse")
    assert default_mapped >= 10_000_000  # glibc's default: a fresh mapping, returned to the OS when freed
    assert mapped == 0 and free_in_heap >= 10_000_000  # now from the heap, and kept there once freed


def test_reuse_freed_memory_changes_nothing_off_glibc(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert runtime.reuse_freed_memory() is False
