"""Error types a user can fix by changing an input, shared by the core and the CLI.

The CLI prints these as one line naming the file or field (exit code 2); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class WeightsError(ValueError):
    """A weights file does not fit the model it is loaded into; the message names the file."""


class BundleError(ValueError):
    """A model bundle is missing, incomplete, corrupt or from another version; the message says which."""
