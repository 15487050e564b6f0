"""Labels are claims, so they are earned: a default never says 'verified'.

- ``verified``: the target's own step recorded at least one check, and every check any of
  its steps recorded passed (a numeric comparison against the FP32 export, or a vendor
  simulator's comparison, with its figures).
- ``compiled``: a real build with no passed check of its own; publishing it needs consent.
- ``contract-test``: made by a stand-in toolchain; never published.

Step scripts record checks in their report (``report.json`` or ``export.json``) as
``"checks": [{"name": ..., "passed": true|false, "figures": {...}}]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VERIFIED = "verified"
COMPILED = "compiled"
CONTRACT_TEST = "contract-test"


@dataclass(frozen=True)
class Check:
    step: str
    name: str
    passed: bool
    figures: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "name": self.name, "passed": self.passed, "figures": dict(self.figures)}


def checks_in(step: str, report: Mapping[str, Any]) -> list[Check]:
    return [Check(step, c["name"], bool(c["passed"]), c.get("figures", {})) for c in report.get("checks", [])]


def of_manifest(manifest: Mapping[str, Any]) -> str:
    """The label a manifest's recorded checks earn (contract-test only as the manifest says it: a
    stand-in's output is never promoted, and nothing is promoted above what its checks show)."""
    checks = [Check(c["step"], c["name"], bool(c["passed"]), c.get("figures", {})) for c in manifest["checks"]]
    return earned(manifest["label"] == CONTRACT_TEST, manifest["steps"][-1]["id"], checks)


def earned(contract_test: bool, final_step: str, checks: Iterable[Check]) -> str:
    checks = list(checks)
    if contract_test:
        return CONTRACT_TEST
    own = [c for c in checks if c.step == final_step]
    if own and all(c.passed for c in checks):
        return VERIFIED
    return COMPILED
