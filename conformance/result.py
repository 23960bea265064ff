"""What a conformance run produces, whatever ran it (xdsi plans or NIST testkit plans)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # an assertion did not hold
    ERROR = "error"  # the test could not be carried out (transport error, bad plan)
    NOT_RUNNABLE = "not-runnable"  # needs data or an actor that is absent; reason says which


@dataclass(frozen=True, slots=True)
class Check:
    """One assertion of a step: what was expected, what was seen, and where the rule is."""

    description: str
    passed: bool
    expected: str = ""
    actual: str = ""
    source: str = ""  # e.g. "ITI TF-2 3.18.4.1.3" or "NIST 11897/eventcode"


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    transaction: str  # "ITI-41", "ITI-18", "ITI-8", ...
    outcome: Outcome
    checks: tuple[Check, ...] = ()
    request: bytes | None = None  # what was sent (for the report), truncated by the runner
    response: bytes | None = None
    message: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One test case (an xdsi plan, or one NIST test folder with its sections)."""

    case_id: str
    title: str
    outcome: Outcome
    steps: tuple[StepResult, ...] = ()
    reason: str = ""  # why FAILED / ERROR / NOT_RUNNABLE, one line
    seconds: float = 0.0
    tags: tuple[str, ...] = field(default=())  # transactions and error codes it covers


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The system under test."""

    registry_url: str | None = None
    repository_url: str | None = None
    imaging_source_url: str | None = None
    mllp: tuple[str, int] | None = None
    repository_unique_id: str | None = None
    home_community_id: str | None = None
    affinity_domain: str | None = None  # assigning authority OID for generated patient ids
    # the Imaging Document Source's own repositoryUniqueId (RAD TF-3 4.68.4.1.2.3)
    imaging_source_id: str | None = None
    # its DICOMweb root (STOW-RS); None = ``/dicomweb`` on the imaging source's host
    dicomweb_url: str | None = None


__all__ = ["CaseResult", "Check", "Endpoints", "Outcome", "StepResult"]
