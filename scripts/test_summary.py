"""One summary of a pytest JUnit XML: tests that ran, skipped for torch, skipped for other reasons.

Usage: python scripts/test_summary.py JUNIT_XML PROFILE
Torch skips are recognised by their reason (``NO_TORCH`` in test/model_fixtures.py: "needs torch").
"""
from __future__ import annotations

import platform
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from importlib import metadata

TORCH_REASON = "needs torch"
VERSIONS = ("numpy", "opencv-python-headless", "PyYAML", "pyserial", "matplotlib", "onnxruntime", "torch")


def main(argv: list[str]) -> int:
    path, profile = argv
    cases = ET.parse(path).getroot().iter("testcase")
    outcome: Counter[str] = Counter()
    other_skips: Counter[str] = Counter()
    for case in cases:
        if (skipped := case.find("skipped")) is not None:
            reason = skipped.get("message", "")
            if reason == "collection skipped":  # a module-level skip: the reason is in the text
                text = (skipped.text or "").rpartition("Skipped: ")[2].removesuffix("')")
                reason = f"{case.get('name')}: {text}"
            if TORCH_REASON in reason:
                outcome["torch"] += 1
            else:
                outcome["skipped"] += 1
                other_skips[reason] += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome["failed"] += 1
        else:
            outcome["passed"] += 1
    ran = outcome["passed"] + outcome["failed"]
    versions = []
    for dist in VERSIONS:
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"no {dist}")
    print(f"{profile} profile (Python {platform.python_version()}; {', '.join(versions)}):")
    print(f"  {ran} tests ran ({outcome['passed']} passed, {outcome['failed']} failed or errored), "
          f"{outcome['torch']} skipped for torch, {outcome['skipped']} skipped for other reasons")
    for reason, n in sorted(other_skips.items()):
        print(f"  skipped {n}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
