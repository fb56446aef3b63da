"""Names people give: a member's display name and a device's name.

Optional; when given, 1 to 64 characters after trimming surrounding white space, in NFC.
Any script and emoji are fine; control characters, line and paragraph separators and the
bidirectional overrides (which can make a name display as something it is not) are not.
Names are shown as text everywhere and never written to the audit log.
"""

from __future__ import annotations

import unicodedata

from semafore.services.errors import InvalidInput

NAME_MAX = 64
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _parse(value: object, field: str, label: str) -> str | None:
    if value is None:
        return None
    code = f"{field}_invalid"
    if not isinstance(value, str):
        raise InvalidInput(f"{label} must be a string", code=code, details={"field": field})
    name = unicodedata.normalize("NFC", value.strip())
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput(
            f"{label} must be 1 to {NAME_MAX} characters", code=code, details={"field": field}
        )
    if any(ch in _BIDI_CONTROLS or unicodedata.category(ch) in _REFUSED_CATEGORIES
           for ch in name):
        raise InvalidInput(
            f"{label} must not contain control characters", code=code,
            details={"field": field},
        )
    return name


def parse_display_name(value: object) -> str | None:
    """A member's display name, or None for none; InvalidInput(display_name_invalid)."""
    return _parse(value, "display_name", "display name")


def parse_device_name(value: object) -> str | None:
    """A device's name, or None for none; InvalidInput(device_name_invalid)."""
    return _parse(value, "device_name", "device name")
