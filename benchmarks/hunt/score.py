"""Score tools on the benchmark sets exactly as issue 5 states.

File level, (a)/(b1)/(b2)/(e): a planted suspect is a true positive when it is flagged with
its right original; one flagged only with other originals is a false positive (a wrong
attribution is a false alarm too), and every flagged negative (haystack or stdlib file) is a
false positive. A file is flagged when a row for it scores >= the threshold (seawall's rows
are its findings, score 1). Bundle, (c): an original is found when its coverage by the bundle
reaches the threshold; originals found that have no emitted code in ``cli.js`` or that are
found in the control bundle are false positives.
"""

from __future__ import annotations

from collections import defaultdict

SWEEP = [round(0.05 * i, 2) for i in range(1, 21)]
MIN_LINES = 40
MIN_SEGMENTS = 20


def _by_suspect(rows: list[dict], key: str = "score") -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        scores = out[row["suspect"]]
        scores[row["original"]] = max(scores.get(row["original"], 0.0), float(row[key]))
    return out


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def file_level(pos_rows: list[dict], neg_rows: list[dict], planted: list[dict],
               threshold: float, min_lines: int = MIN_LINES) -> dict:
    """Precision/recall over planted copies plus negatives, all sizes and files >= min_lines."""
    pos, neg = _by_suspect(pos_rows), _by_suspect(neg_rows)
    tp = fp_planted = tp_big = fp_big = big = 0
    missed: list[str] = []
    for item in planted:
        scores = pos.get(item["suspect"], {})
        is_big = item.get("lines", min_lines) >= min_lines
        big += is_big
        if scores.get(item["original"], 0.0) >= threshold:
            tp += 1
            tp_big += is_big
        elif any(s >= threshold for s in scores.values()):
            fp_planted += 1
            fp_big += is_big
            missed.append(item["original"])
        else:
            missed.append(item["original"])
    fp_neg = sum(any(s >= threshold for s in scores.values()) for scores in neg.values())
    fp = fp_planted + fp_neg
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, len(planted))
    f1 = round(2 * precision * recall / (precision + recall), 3) \
        if precision and recall else 0.0
    return {"threshold": threshold, "tp": tp, "fp": fp, "fp_negatives": fp_neg,
            "fp_wrong_original": fp_planted, "positives": len(planted),
            "precision": precision, "recall": recall, "f1": f1,
            "big": big, "tp_big": tp_big, "precision_big": _ratio(tp_big, tp_big + fp_big + fp_neg),
            "recall_big": _ratio(tp_big, big), "missed": sorted(missed)[:20]}


def negatives(neg_rows: list[dict], threshold: float, total: int) -> dict:
    flagged = sorted(s for s, scores in _by_suspect(neg_rows).items()
                     if any(v >= threshold for v in scores.values()))
    return {"threshold": threshold, "flagged": len(flagged), "files": total,
            "examples": flagged[:10]}


def bundle(bundle_rows: list[dict], control_rows: list[dict], segments: dict[str, int],
           threshold: float, key: str = "cov_original") -> dict:
    """(c): originals found in ``cli.js`` against the map's ground truth and the control."""
    found = {r["original"] for r in bundle_rows if float(r[key]) >= threshold}
    control = {r["original"] for r in control_rows if float(r[key]) >= threshold}
    emitted = {o for o, n in segments.items() if n > 0}
    big = {o for o, n in segments.items() if n >= MIN_SEGMENTS}
    tp = len(found & emitted)
    fp = len(found - emitted) + len(control)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, len(emitted))
    f1 = round(2 * precision * recall / (precision + recall), 3) \
        if precision and recall else 0.0
    return {"threshold": threshold, "found": len(found), "tp": tp, "fp": fp,
            "found_in_control": len(control), "found_without_code": len(found - emitted),
            "with_code": len(emitted), "precision": precision, "recall": recall, "f1": f1,
            "recall_ge20_segments": _ratio(len(found & big), len(big))}


def oracle(score_at, thresholds: list[float] = SWEEP) -> dict:
    """The best-F1 threshold (an oracle that flatters the tool, as in the study)."""
    best = max((score_at(t) for t in thresholds), key=lambda r: (r["f1"], r["threshold"]))
    return best
