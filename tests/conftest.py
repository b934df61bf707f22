"""Shared pytest fixtures. SSH: real sshd processes on 127.0.0.1 (see tests/sshd.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.sshd import SshCluster, running_cluster


@pytest.fixture(scope="session")
def sshd_cluster() -> Iterator[SshCluster]:
    """mx1 (command recorder on), mx2 and a bastion, running for the whole test session."""
    with running_cluster() as cluster:
        yield cluster


HOWTO = Path(__file__).resolve().parent / "fixtures" / "howto" / "maillog"


@pytest.fixture
def howto_log(tmp_path: Path) -> Path:
    """The how-to's five yearless lines, in a file last written on 2024-05-13 (git keeps no
    modification times, and the year of yearless lines is inferred from it)."""
    target = tmp_path / "maillog"
    shutil.copyfile(HOWTO, target)
    stamp = datetime(2024, 5, 13, 23, 59, tzinfo=UTC).timestamp()
    os.utime(target, (stamp, stamp))
    return target
