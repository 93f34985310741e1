"""The API design rules linter: a Spectral ruleset run over an OpenAPI document.

Pure: no HTTP, no SQL. The workers call it with each new document version.
"""

from .linter import Finding, lint, score
from .paths import OutOfTime
from .ruleset import Ruleset, RulesetError, load, parse

__all__ = ["Finding", "OutOfTime", "Ruleset", "RulesetError", "lint", "load", "parse", "score"]
