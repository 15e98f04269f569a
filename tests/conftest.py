from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FACES_TRAIN = SHARED_DATA / "faces68" / "train"
FACES_TEST = SHARED_DATA / "faces68" / "test"
CLIP = SHARED_DATA / "video" / "royal_opera_house_1080p25.mp4"


def need(path: Path) -> Path:
    """Skip (with the reason) when the shared data is absent, e.g. on a user's machine."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (clone the project beside ../shared to run this test)")
    return path


@pytest.fixture
def faces_train() -> Path:
    return need(FACES_TRAIN)


@pytest.fixture
def faces_test() -> Path:
    return need(FACES_TEST)


@pytest.fixture
def clip() -> Path:
    return need(CLIP)
