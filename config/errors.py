"""The one exception of the config layer.

Every message starts with the path of the offending field (``genesis.validators[2].public_key``,
``limits.frame_bytes_max``) and says what is wrong and what was expected, so an operator can fix
the file without reading our code.
"""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A configuration or genesis value is missing, of the wrong type, or out of bounds.

    `field` is the dotted path of the offending value ("" when the problem is the whole file),
    `reason` the human explanation; `str(error)` is ``"<field>: <reason>"``.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)

    def under(self, prefix: str) -> ConfigError:
        """The same error seen from an enclosing object: ``prefix`` + ``.`` + field."""
        if not prefix:
            return ConfigError(self.field, self.reason)
        if not self.field:
            return ConfigError(prefix, self.reason)
        joiner = "" if self.field.startswith("[") else "."
        return ConfigError(f"{prefix}{joiner}{self.field}", self.reason)

    def in_file(self, path: Path) -> ConfigError:
        """The same error prefixed with the file it came from: ``<path>: <field>: <reason>``."""
        return ConfigError(f"{path}: {self.field}" if self.field else str(path), self.reason)
