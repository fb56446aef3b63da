"""Every protocol constant of PROTOCOL.md s2, in one place."""

from typing import Final

VERSION: Final = 1

X3DH_INFO: Final = b"X3DH session"
RK_INFO: Final = b"SemaFore v1 ratchet root"
MK_INFO: Final = b"SemaFore v1 message keys"
CTX_BINDING: Final = b"SemaFore v1 identity binding\x00"
CTX_SPK: Final = b"SemaFore v1 signed pre key\x00"
CK_MSG: Final = b"\x01"
CK_NEXT: Final = b"\x02"

MAX_SKIP: Final = 1000
MAX_STORED_SKIPPED: Final = 2000
PAD_BLOCK: Final = 160

FP_VERSION: Final = 1
FP_ITERATIONS: Final = 5200
FP_SCANNABLE_PREFIX: Final = b"SFfp\x01"

ATT_MAGIC: Final = b"SFA\x01"
ATT_DEFAULT_CHUNK: Final = 65536
ATT_MIN_CHUNK: Final = 1024
ATT_MAX_CHUNK: Final = 4 * 1024 * 1024

DAY_MS: Final = 24 * 60 * 60 * 1000
SPK_ROTATION_MS: Final = 7 * DAY_MS
SPK_RETENTION_MS: Final = 30 * DAY_MS
OPK_BATCH: Final = 100
OPK_REFILL_BELOW: Final = 20

# s7.4 step 8: retained (decrypt-only) sessions per remote device.
MAX_ARCHIVED_SESSIONS: Final = 5
ARCHIVED_SESSION_RETENTION_MS: Final = 30 * DAY_MS

KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64
HEADER_LEN: Final = 40
AD_LEN: Final = 72
TAG_LEN: Final = 16
U32_MAX: Final = 2**32 - 1
DEVICE_ID_MAX: Final = 2**31 - 1
USER_ID_MAX_BYTES: Final = 255
