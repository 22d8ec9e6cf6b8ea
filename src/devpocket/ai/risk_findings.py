"""The words a risk label is made of: a level, and a finding that pairs a level with its reason.

Kept apart because every part of the classifier speaks them: the parser (a wrapper such as sudo
carries a finding of its own), the rules and the assessment. Down here they are shared without
an import cycle; `devpocket.ai.risk` re-exports `Risk` as part of its public API.
"""

from __future__ import annotations

from enum import StrEnum


class Risk(StrEnum):
    SAFE = "safe"
    CAUTION = "caution"
    DANGEROUS = "dangerous"


Finding = tuple[Risk, str]


def _caution(reason: str) -> Finding:
    return (Risk.CAUTION, reason)


def _danger(reason: str) -> Finding:
    return (Risk.DANGEROUS, reason)
