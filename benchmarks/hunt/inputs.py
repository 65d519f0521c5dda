"""Build (once, cached) every input of the hunt benchmark from public registries and a seed.

Layout under ``<cache>/<variant>/`` (variant = ``full-s<seed>`` or ``quick-s<seed>``):

- ``originals/``: the private side (full: the 1,906 first-party files of the 2.1.88 map).
- ``haystack/``: hard links to the ``.ts/.tsx/.js/.mjs/.cjs`` files (no ``.d.ts``, none over
  400 KB) of 17 popular npm packages and their dependencies.
- ``sets/{a,b1,b2}/``: a copy of the haystack with the planted copies dropped into random
  package folders (never over an existing file); ``pos/{a,b1,b2}/`` holds the planted files
  alone, at the same relative paths, for the pairwise peers.
- ``c/bundle/cli.js`` (the real bundle) and ``c/control/control.min.js`` (an esbuild
  ``--bundle --minify`` of 28 unrelated packages).
- ``e/port/`` (synthetic Python port carrying the originals' long string literals) and
  ``e/stdlib/`` (the running interpreter's standard library ``.py`` files).
- ``manifest.json``: ground truth for every set.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTS = (".ts", ".tsx", ".js", ".mjs", ".cjs")
MAX_BYTES = 400 * 1024
PLANT_FRACTION = 0.05
QUICK = {"originals": 300, "haystack": 500, "planted": 15, "port": 10, "stdlib": 300}
PORT_FILES = 40
LONG_LITERAL_WORDS = 8


def npm_install(folder: Path, manifest: Path) -> Path:
    """``npm install --ignore-scripts`` of a pinned package.json into ``folder`` (cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    want = manifest.read_text()
    stamp = folder / ".installed"
    if stamp.exists() and stamp.read_text() == want:
        return folder / "node_modules"
    (folder / "package.json").write_text(want)
    subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                    "--loglevel=error"], cwd=folder, check=True)
    stamp.write_text(want)
    return folder / "node_modules"


def node_tools(cache: Path) -> Path:
    """Install the node tools; build tree-sitter for Dolos from source (its prebuilds need a
    newer libstdc++ than Debian 12's, and ``--ignore-scripts`` skipped the native builds)."""
    tools = cache / "tools"
    npm_install(tools, HERE / "package.json")
    for script in ("transform.mjs", "dolos.mjs"):
        shutil.copyfile(HERE / script, tools / script)
    stamp = tools / ".native-built"
    if not stamp.exists():
        nodedir = ["--nodedir=/usr"] if Path("/usr/include/node/node.h").exists() else []
        for pkg in ("tree-sitter", "tree-sitter-compat", "@dodona/dolos-parsers"):
            subprocess.run(["npm", "rebuild", pkg, "--build-from-source", *nodedir,
                            "--loglevel=error"], cwd=tools, check=True)
        stamp.write_text("ok")
    return tools


def node(tools: Path, *args: str) -> dict:
    proc = subprocess.run(["node", *args], cwd=tools, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8", errors="replace").splitlines())


def list_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def link_tree(src: Path, rels: list[str], dst: Path) -> None:
    """Hard-link ``rels`` from ``src`` into ``dst`` (copy when linking is not possible)."""
    for rel in rels:
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src / rel, out)
        except OSError:
            shutil.copyfile(src / rel, out)


def haystack_files(node_modules: Path) -> list[str]:
    out = []
    for path in node_modules.rglob("*"):
        name = path.name
        if (name.endswith(EXTS) and not name.endswith(".d.ts") and path.is_file()
                and not path.is_symlink() and path.stat().st_size <= MAX_BYTES):
            out.append(path.relative_to(node_modules).as_posix())
    return sorted(out)


# -- source map ground truth ------------------------------------------------------------------

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _vlq(segment: str) -> list[int]:
    values, shift, value = [], 0, 0
    for char in segment:
        digit = _B64[char]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        shift = value = 0
    return values


def segments_per_source(mappings: str, n_sources: int) -> list[int]:
    """Count the mapping segments that point into each source (source index is delta-coded
    across the whole ``mappings`` string, so it carries over lines)."""
    counts = [0] * n_sources
    source = 0
    for line in mappings.split(";"):
        if not line:
            continue
        for seg in line.split(","):
            if not seg:
                continue
            fields = _vlq(seg)
            if len(fields) >= 4:
                source += fields[1]
                counts[source] += 1
    return counts


def bundle_truth(map_path: Path) -> dict[str, int]:
    """Segments of emitted code per first-party original (relative path as written out)."""
    doc = json.loads(map_path.read_bytes())
    counts = segments_per_source(doc["mappings"], len(doc["sources"]))
    truth: dict[str, int] = {}
    for src, body, n in zip(doc["sources"], doc["sourcesContent"], counts):
        if body is None or "node_modules" in src.split("/"):
            continue
        rel = "/".join(p for p in src.split("/") if p not in ("", ".", ".."))
        truth[rel] = truth.get(rel, 0) + n
    return truth


# -- the port set (e) -------------------------------------------------------------------------

_PY_TEMPLATES = [
    "def {fn}(value: object = None) -> str:\n"
    "    text = {lit}\n"
    "    if value is not None:\n"
    "        text = text.replace(\"{{value}}\", str(value))\n"
    "    return text\n",
    "class {cls}:\n"
    "    \"\"\"Ported helper.\"\"\"\n\n"
    "    def __init__(self, verbose: bool = False) -> None:\n"
    "        self.verbose = verbose\n\n"
    "    def render(self) -> str:\n"
    "        message = {lit}\n"
    "        if self.verbose:\n"
    "            print(message, file=sys.stderr)\n"
    "        return message\n",
    "{const} = {lit}\n",
    "def {fn}(items: list[str]) -> list[str]:\n"
    "    out = [{lit}]\n"
    "    for item in items:\n"
    "        out.append(item.strip())\n"
    "    return out\n",
]


def long_literals(strings: list[str]) -> list[str]:
    return [s for s in strings if len(s.split()) >= LONG_LITERAL_WORDS]


def python_port(literals: list[str], rng: random.Random) -> str:
    """A Python module that carries ``literals`` over inside Python code of its own."""
    parts = ['"""Ported module."""\n', "from __future__ import annotations\n\nimport sys\n"]
    for i, lit in enumerate(literals):
        template = rng.choice(_PY_TEMPLATES)
        parts.append(template.format(fn=f"build_text_{i}", cls=f"Helper{i}", const=f"TEXT_{i}",
                                     lit=repr(lit)))
    return "\n\n".join(parts)


# -- building ---------------------------------------------------------------------------------

class Inputs:
    """Paths and ground truth of one variant; ``build`` makes whatever is missing."""

    def __init__(self, cache: Path, seed: int, quick: bool, sources: Path, package: Path) -> None:
        self.cache, self.seed, self.quick = cache, seed, quick
        self.sources, self.package = sources, package
        self.root = cache / f"{'quick' if quick else 'full'}-s{seed}"
        self.originals = self.root / "originals"
        self.haystack = self.root / "haystack"
        self.manifest_path = self.root / "manifest.json"
        self.manifest: dict = json.loads(self.manifest_path.read_text()) \
            if self.manifest_path.exists() else {}

    def save(self) -> None:
        self.manifest_path.write_text(json.dumps(self.manifest, indent=1))

    def set_dir(self, name: str) -> Path:
        return self.root / "sets" / name

    def pos_dir(self, name: str) -> Path:
        return self.root / "pos" / name

    def build(self, sets: list[str], tools: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._base()
        for name in ("a", "b1", "b2"):
            if name in sets and name not in self.manifest.get("planted", {}):
                self._plant(name, tools)
        if "c" in sets and "c" not in self.manifest:
            self._bundles(tools)
        if "e" in sets and "e" not in self.manifest:
            self._port(tools)

    def _base(self) -> None:
        if "originals" in self.manifest:
            return
        rng = random.Random(self.seed)
        originals = list_files(self.sources)
        if self.quick:
            originals = sorted(rng.sample(originals, QUICK["originals"]))
        link_tree(self.sources, originals, self.originals)
        hay_nm = npm_install(self.cache / "haystack-npm", HERE / "haystack.json")
        hay = haystack_files(hay_nm)
        if self.quick:
            hay = sorted(rng.sample(hay, QUICK["haystack"]))
        link_tree(hay_nm, hay, self.haystack)
        n_plant = QUICK["planted"] if self.quick else round(PLANT_FRACTION * len(originals))
        sample = sorted(random.Random(f"{self.seed}:sample").sample(originals, n_plant))
        self.manifest.update({
            "seed": self.seed, "quick": self.quick,
            "originals": len(originals),
            "original_lines": {rel: line_count(self.originals / rel) for rel in sample},
            "haystack": hay, "haystack_bytes": sum((self.haystack / r).stat().st_size for r in hay),
            "sample": sample, "planted": {},
        })
        self.save()

    def _place(self, name: str, files: list[str]) -> dict[str, str]:
        """Pick a random package folder for each file, never over an existing name."""
        rng = random.Random(f"{self.seed}:{name}:place")
        taken = set(self.manifest["haystack"])
        folders = sorted({str(Path(r).parent) for r in self.manifest["haystack"]})
        placed = {}
        for original in files:
            base = Path(original).name
            if name == "b2":
                base = Path(base).stem + ".js"
            while True:
                rel = f"{rng.choice(folders)}/{base}"
                if rel not in taken:
                    break
            taken.add(rel)
            placed[original] = rel
        return placed

    def _plant(self, name: str, tools: Path) -> None:
        sample = self.manifest["sample"]
        placed = self._place(name, sample)
        pos = self.pos_dir(name)
        shutil.rmtree(pos, ignore_errors=True)
        summary: dict = {"files": len(sample), "failed": []}
        if name == "a":  # the verbatim copy keeps its name, in another folder
            for original in sample:
                out = pos / placed[original]
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.originals / original, out)
        else:
            jobs = [{"src": str(self.originals / o), "dst": str(pos / placed[o])} for o in sample]
            jobs_file = self.root / f"jobs-{name}.json"
            jobs_file.write_text(json.dumps(jobs))
            summary = node(tools, "transform.mjs", "rename" if name == "b1" else "mangle",
                           str(jobs_file))
        planted = [{"suspect": placed[o], "original": o,
                    "lines": self.manifest["original_lines"][o]}
                   for o in sample if (pos / placed[o]).exists()]
        target = self.set_dir(name)
        shutil.rmtree(target, ignore_errors=True)
        link_tree(self.haystack, self.manifest["haystack"], target)
        link_tree(pos, [p["suspect"] for p in planted], target)
        self.manifest["planted"][name] = {"files": planted, "transform": summary}
        self.save()

    def _bundles(self, tools: Path) -> None:
        root = self.root / "c"
        shutil.rmtree(root, ignore_errors=True)
        (root / "bundle").mkdir(parents=True)
        (root / "control").mkdir(parents=True)
        link_tree(self.package, ["cli.js"], root / "bundle")
        control_nm = npm_install(self.cache / "control-npm", HERE / "control.json")
        deps = sorted(json.loads((HERE / "control.json").read_text())["dependencies"])
        entry = control_nm.parent / "entry.mjs"
        entry.write_text("".join(f'import * as m{i} from "{d}";\n' for i, d in enumerate(deps))
                         + "export default [" + ", ".join(f"m{i}" for i in range(len(deps)))
                         + "];\n")
        subprocess.run([str(tools / "node_modules" / ".bin" / "esbuild"), str(entry), "--bundle",
                        "--minify", "--platform=node", "--format=esm", "--log-level=error",
                        f"--outfile={root / 'control' / 'control.min.js'}"], check=True)
        truth = bundle_truth(self.package / "cli.js.map")
        kept = set(list_files(self.originals))
        self.manifest["c"] = {
            "segments": {rel: n for rel, n in truth.items() if rel in kept},
            "packages": deps,
            "bundle_bytes": (root / "bundle" / "cli.js").stat().st_size,
            "control_bytes": (root / "control" / "control.min.js").stat().st_size,
        }
        self.save()

    def _port(self, tools: Path) -> None:
        root = self.root / "e"
        shutil.rmtree(root, ignore_errors=True)
        (root / "strings").mkdir(parents=True)
        originals = list_files(self.originals)
        jobs = [{"src": str(self.originals / o), "dst": str(root / "strings" / f"{i}.json")}
                for i, o in enumerate(originals)]
        jobs_file = self.root / "jobs-strings.json"
        jobs_file.write_text(json.dumps(jobs))
        node(tools, "transform.mjs", "strings", str(jobs_file))
        candidates = {}
        for i, original in enumerate(originals):
            found = root / "strings" / f"{i}.json"
            lits = long_literals(json.loads(found.read_text())) if found.exists() else []
            if sum(len(s.split()) for s in lits) >= 40:
                candidates[original] = lits
        shutil.rmtree(root / "strings")
        rng = random.Random(f"{self.seed}:port")
        n = QUICK["port"] if self.quick else PORT_FILES
        chosen = sorted(rng.sample(sorted(candidates), min(n, len(candidates))))
        port = []
        for i, original in enumerate(chosen):
            rel = f"port/{Path(original).stem.lower().replace('-', '_')}_{i}.py"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(python_port(candidates[original], rng))
            port.append({"suspect": rel.removeprefix("port/"), "original": original,
                         "literals": len(candidates[original])})
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        py = sorted(p.relative_to(stdlib).as_posix() for p in stdlib.rglob("*.py")
                    if "site-packages" not in p.parts and "dist-packages" not in p.parts)
        if self.quick:
            py = sorted(random.Random(f"{self.seed}:stdlib").sample(py, QUICK["stdlib"]))
        link_tree(stdlib, py, root / "stdlib")
        self.manifest["e"] = {"port": port, "candidates": len(candidates), "stdlib": py,
                              "python": sys.version.split()[0]}
        self.save()
