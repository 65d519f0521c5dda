"""Comparison reports: text for a terminal, JSON for machines, one self-contained HTML page.

The HTML page draws the per-layer similarity heatmap as inline SVG: no script, no CDN,
so it can be attached to an incident ticket and opened offline.
"""

from __future__ import annotations

import html
import json
from typing import Any

from seawall.models.lineage import Comparison


def render(result: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2) + "\n"
    if fmt == "html":
        return to_html(result)
    return to_text(result)


def _bound(result: Comparison) -> str:
    cal = result.thresholds.get("calibration", {})
    if not cal:
        return "thresholds are nominal (not calibrated)"
    return (f"thresholds calibrated on {cal.get('null_pairs', '?')} unrelated pairs "
            f"({cal.get('null_layer_pairs', '?')} layer pairs) with no exceedance: false-positive "
            f"rate per pair <= {cal.get('fpr_bound_95', '?')} at 95% confidence")


def to_text(result: Comparison) -> str:
    lines = [f"verdict: {result.verdict.upper()}", f"  {result.reason}",
             f"  base: {_who(result.base)}", f"  suspect: {_who(result.suspect)}"]
    exact = result.tiers.get("exact", {})
    lines.append(f"tier 1 exact hashes: {exact.get('shared', 0)} of {exact.get('suspect_significant', 0)} "
                 "suspect tensors bit-identical to a base tensor")
    cos = result.tiers.get("cosine")
    if cos:
        lines.append(f"tier 2 name-free cosine: {cos['matched']} of {cos['compared']} matrices >= "
                     f"threshold; median best {cos['median_best']:.3f}, max {cos['max_best']:.3f}")
    units = result.tiers.get("units")
    if units and units.get("ran"):
        lines.append(f"tier 3 unit matching: embedding alignment {units['alignment_score']:.3f}; "
                     f"{units['matched_blocks']} of {units['blocks']} suspect blocks matched")
    elif units:
        lines.append(f"tier 3 unit matching: not run ({units.get('why', '')})")
    inv = result.tiers.get("invariants")
    if inv and inv.get("ran"):
        lines.append(f"tier 4 centred invariants: {inv['matched_blocks']} of {inv['blocks']} "
                     "suspect blocks above threshold")
    if result.layers:
        lines.append("layer map (suspect block -> base block):")
        for row in result.layers:
            scores = ", ".join(f"{k} {row[k]:.3f}" for k in ("xcos", "invariant", "cos") if k in row)
            target = row["base_block"] if row["base_block"] is not None else "none (new)"
            lines.append(f"  {row['suspect_block']:>3} -> {target}  ({scores})")
    t = result.thresholds.get("thresholds", {})
    lines.append("thresholds: " + ", ".join(f"{k} {v:.3f}" for k, v in t.items()))
    lines.append(_bound(result))
    return "\n".join(lines) + "\n"


def _who(side: dict[str, Any]) -> str:
    skel = side.get("skeleton") or {}
    return (f"{side.get('source')} ({side.get('format')}, {side.get('tensors')} tensors, "
            f"{skel.get('blocks', 0)} blocks, d={skel.get('d_model', 0)})")


def _color(v: float) -> str:
    v = max(0.0, min(1.0, v))
    r, g, b = int(255 - 200 * v), int(255 - 120 * v), int(255 - 40 * v)
    return f"rgb({r},{g},{b})"


def heatmap_svg(matrix: list[list[float]], metric: str) -> str:
    if not matrix or not matrix[0]:
        return "<p>No per-layer matrix (no blocks recognised).</p>"
    cell, pad = 36, 70
    rows, cols = len(matrix), len(matrix[0])
    width, height = pad + cols * cell + 10, pad + rows * cell + 10
    parts = [f'<svg width="{width}" height="{height}" '
             f'role="img" aria-label="{html.escape(metric)} heatmap">',
             f'<text x="{pad}" y="14" font-size="12">base block →</text>',
             f'<text x="4" y="{pad - 6}" font-size="12">suspect ↓</text>']
    for i in range(cols):
        parts.append(f'<text x="{pad + i * cell + cell / 2}" y="{pad - 8}" font-size="11" '
                     f'text-anchor="middle">{i}</text>')
    for j, row in enumerate(matrix):
        y = pad + j * cell
        parts.append(f'<text x="{pad - 8}" y="{y + cell / 2 + 4}" font-size="11" '
                     f'text-anchor="end">{j}</text>')
        for i, v in enumerate(row):
            x = pad + i * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="{_color(v)}"><title>suspect {j} / base {i}: {v:.3f}</title></rect>'
                         f'<text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 3}" font-size="9" '
                         f'text-anchor="middle">{v:.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(result: Comparison) -> str:
    esc = html.escape
    heat = result.heatmap or {}
    rows = "".join(
        f"<tr><td>{r['suspect_block']}</td><td>{'—' if r['base_block'] is None else r['base_block']}"
        f"</td><td>{esc(', '.join(f'{k} {r[k]:.3f}' for k in ('xcos', 'invariant', 'cos') if k in r))}"
        "</td></tr>" for r in result.layers)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>seawall model compare: {esc(result.verdict)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}
.verdict{{font-size:1.6em;font-weight:bold}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px}} pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style>
</head><body>
<p class="verdict">Verdict: {esc(result.verdict)}</p>
<p>{esc(result.reason)}</p>
<p>Base: {esc(_who(result.base))}<br>Suspect: {esc(_who(result.suspect))}</p>
<h2>Per-layer similarity ({esc(heat.get('metric', ''))})</h2>
{heatmap_svg(heat.get('matrix', []), heat.get('metric', ''))}
<h2>Layer map</h2>
<table><tr><th>suspect block</th><th>base block</th><th>scores</th></tr>{rows}</table>
<h2>Evidence</h2>
<pre>{esc(to_text(result))}</pre>
<details><summary>JSON</summary><pre>{esc(json.dumps(result.to_dict(), indent=1))}</pre></details>
</body></html>
"""
