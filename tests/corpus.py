"""Where the shared public corpus lives, and how tests skip cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def corpus_dir(*parts: str) -> Path:
    """The corpus folder, or a skip (a failure when CI=true: CI always has it)."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the shared corpus is missing at {path}; CI must have it")
        pytest.skip("the shared corpus (../shared/corpus) is not here")
    return path
