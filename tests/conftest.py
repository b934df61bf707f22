"""Shared pytest fixtures. SSH: real sshd processes on 127.0.0.1 (see tests/sshd.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sshd import SshCluster, running_cluster


@pytest.fixture(scope="session")
def sshd_cluster() -> Iterator[SshCluster]:
    """mx1 (command recorder on), mx2 and a bastion, running for the whole test session."""
    with running_cluster() as cluster:
        yield cluster
