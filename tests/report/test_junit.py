from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from builders import compress, pack, tar_bytes
from maps import FIRST_PARTY
from seawall.detectors import catalogue
from seawall.policy import Policy
from seawall.report import junit
from seawall.scan import scan


def test_one_suite_per_target_findings_fail_at_the_gate(tmp_path: Path) -> None:
    leaky = pack({"package/a.js.map": FIRST_PARTY, "package/big.bin": b"\0" * 10}, "tgz", tmp_path / "l")
    clean = pack({"package/index.js": b"1;\n"}, "tgz", tmp_path / "c")
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(compress(tar_bytes({"package/x.js": bytes(range(256)) * 400}), "gz")[:300])
    root = ET.fromstring(junit.render(scan([str(leaky), str(clean), str(broken)], Policy()), catalogue()))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {str(leaky), str(clean), str(broken)}
    [case] = suites[str(leaky)].iter("testcase")
    assert (case.get("classname"), case.get("name")) == ("sourcemap.embedded-source", "package/a.js.map")
    assert case.find("failure").get("type") == "critical"
    assert suites[str(leaky)].get("failures") == "1"
    assert [c.get("name") for c in suites[str(clean)].iter("testcase")] == ["nothing to report"]
    assert suites[str(clean)].get("failures") == "0"
    assert suites[str(broken)].get("errors") == "1"
    assert suites[str(broken)].find("testcase/error") is not None
