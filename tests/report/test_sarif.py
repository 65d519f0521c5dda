"""SARIF as GitHub code scanning reads it; validated against the official 2.1.0 schema."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from builders import pack
from maps import FIRST_PARTY
from seawall.detectors import catalogue
from seawall.policy import Policy
from seawall.report import sarif
from seawall.scan import scan

LEAKY = {"package/index.js": b"1;\n", "package/index.js.map": FIRST_PARTY,
         "package/big.js": b"//# sourceMappingURL=https://cdn.example.com/big.js.map\n"}


def render(tmp_path: Path) -> dict:
    target = pack(LEAKY, "tgz", tmp_path)
    report = scan([str(target)], Policy())
    return json.loads(sarif.render(report, catalogue()))


def test_github_required_fields(tmp_path: Path) -> None:
    doc = render(tmp_path)
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    [run] = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "seawall"
    for rule in driver["rules"]:
        assert rule["id"] and rule["shortDescription"]["text"] and rule["help"]["text"]
        assert len(rule["fullDescription"]["text"]) <= 1000
        assert 0 < float(rule["properties"]["security-severity"]) < 10
    ids = [r["id"] for r in driver["rules"]]
    results = {r["ruleId"]: r for r in run["results"]}
    assert set(results) == {"sourcemap.embedded-source", "sourcemap.remote-map"}
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].endswith("artifact.tgz")
        assert location["region"]["startLine"] >= 1
        assert result["partialFingerprints"]["primaryLocationLineHash"]
    leak = results["sourcemap.embedded-source"]
    assert leak["level"] == "error"
    assert leak["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "package/index.js.map"
    assert "package/index.js.map" in leak["message"]["text"]
    assert run["invocations"][0]["executionSuccessful"] is True


def test_directory_targets_point_at_the_real_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = pack(LEAKY, "dir", tmp_path)
    monkeypatch.chdir(tmp_path)  # as in CI: scanning a build folder from the repository root
    report = scan(["tree"], Policy())
    doc = json.loads(sarif.render(report, catalogue()))
    uris = {r["ruleId"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"]}
    assert uris["sourcemap.embedded-source"] == "tree/package/index.js.map"
    assert (root / "package/index.js.map").is_file()


@pytest.mark.network
def test_validates_against_the_official_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from seawall import fetch

    # Microsoft's jest-sarif package ships the OASIS SARIF 2.1.0 (rtm.5) schema.
    target = fetch.resolve("npm:@microsoft/jest-sarif@1.0.0-beta.0", cache_dir=tmp_path / "cache")
    assert target.error is None, target.error
    with tarfile.open(target.path) as tar:
        member = tar.extractfile("package/lib/schemas/sarif-2.1.0-rtm.5.json")
        assert member is not None
        schema = json.load(member)
    jsonschema.validate(render(tmp_path / "art"), schema)
