"""Content padding (s7.5): ISO/IEC 7816-4 to a multiple of PAD_BLOCK."""

from .constants import PAD_BLOCK
from .errors import DecodeError


def pad(content: bytes) -> bytes:
    """Append 0x80, then zero bytes up to the next multiple of PAD_BLOCK."""
    return content + b"\x80" + bytes(-(len(content) + 1) % PAD_BLOCK)


def unpad(padded: bytes) -> bytes:
    """Inverse of `pad`; anything that `pad` cannot have produced is an error."""
    if not padded or len(padded) % PAD_BLOCK:
        raise DecodeError("invalid padding")
    stripped = padded.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise DecodeError("invalid padding")
    return stripped[:-1]
