"""The error types the CLI turns into one-line messages and exit codes (no TensorFlow import)."""

from __future__ import annotations


class RecipeError(ValueError):
    """A recipe (or an override) is malformed; `errors` holds one line per problem."""

    def __init__(self, errors: list[str], source: str | None = None):
        self.errors = list(errors)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + e for e in self.errors))


class RunError(RuntimeError):
    """A run cannot start or continue; the message says why in one line."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or Inf; the message names the step and the term."""
