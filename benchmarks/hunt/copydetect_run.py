"""copydetect peer for ``benchmarks/hunt_vs_peers.py``; runs inside copydetect's own venv.

Usage: python copydetect_run.py CONFIG.json   CONFIG: {originals: [...], suspects: [...], chunk: n}

copydetect 0.5.0 at its defaults (noise_t = guarantee_t = 25, so every 25-char k-gram is kept;
Pygments filtering on). Its ``run()`` keeps a dict entry and overlap slices for every
test x reference pair, which for 8,000 haystack files needs more than 11 GB, so the suspects
go through in chunks against one detector whose reference fingerprints are computed once.
Scores are pair-local, so chunking changes no score. Output (stdout, JSON lines) for each
pair with any overlap: {suspect, original, similarity (test side), cov_original (ref side)}.
"""

from __future__ import annotations

import json
import sys

from copydetect import CopyDetector


def main() -> None:
    config = json.loads(open(sys.argv[1], encoding="utf-8").read())
    refs, suspects, chunk = config["originals"], config["suspects"], config.get("chunk", 1000)
    detector = CopyDetector(test_dirs=[], ref_dirs=[], extensions=["*"], silent=True,
                            autoopen=False)
    ref_data: dict = {}
    for start in range(0, len(suspects), chunk):
        part = suspects[start:start + chunk]
        detector.test_files = list(part)
        detector.ref_files = list(refs)
        detector.file_data = dict(ref_data)
        detector.run()
        if not ref_data:
            ref_data = {r: detector.file_data[r] for r in refs if r in detector.file_data}
        sims = detector.similarity_matrix
        out = []
        if sims.size:
            for i, j in zip(*(sims.max(axis=2) > 0).nonzero()):
                out.append(json.dumps({"suspect": detector.test_files[i],
                                       "original": detector.ref_files[j],
                                       "similarity": float(sims[i, j, 0]),
                                       "cov_original": float(sims[i, j, 1])}))
        sys.stdout.write("".join(line + "\n" for line in out))
        sys.stdout.flush()
        detector.slice_matrix = {}
        print(f"copydetect: {start + len(part)}/{len(suspects)} suspects", file=sys.stderr)


if __name__ == "__main__":
    main()
