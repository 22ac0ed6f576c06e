"""The default generation thread count (rag/cpu.py, issue 15 item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import cpu
from rag.config import Settings


@pytest.mark.parametrize("running, cores, expected", [("1/300", 2, 2), ("2/300", 2, 1), ("5/300", 2, 1),
                                                      ("3/300", 8, 6), ("1/300", 1, 1)])
def test_auto_threads_leaves_the_busy_cores(tmp_path: Path, monkeypatch, running: str, cores: int, expected: int):
    stat = tmp_path / "loadavg"
    stat.write_text(f"0.50 0.40 0.30 {running} 4242\n")
    monkeypatch.setattr(cpu, "_LOADAVG", stat)
    assert cpu.auto_threads(cores) == expected


def test_without_proc_it_falls_back_to_the_load_average(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(cpu, "_LOADAVG", tmp_path / "missing")
    monkeypatch.setattr(cpu.os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert cpu.busy_elsewhere() == 1 and cpu.auto_threads(4) == 3


def test_the_setting_wins_over_the_automatic_count(monkeypatch):
    monkeypatch.setattr(cpu, "auto_threads", lambda cores=None: 1)
    assert Settings(threads=3).n_threads == 3
    assert Settings().n_threads == 1
