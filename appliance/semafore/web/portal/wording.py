"""What the portal says: notices after an action, friendlier text for some service errors,
audit event names and CSV import outcomes. Only fixed strings: nothing here echoes input."""

from __future__ import annotations

NOTICES = {
    "signed_out": "You have signed out.",
    "session_ended": "Your session has ended. Sign in again to continue.",
    "member_added": "Member added. They can now enrol a device with their phone number.",
    "members_imported": "Every row was imported.",
    "member_renamed": "Display name saved.",
    "member_removed": "The member was removed, and every device they had was signed out.",
    "device_approved": "Device approved. It can send and receive messages now.",
    "device_rejected": "Device rejected. It never got access.",
    "device_revoked": "Device revoked. It was signed out at once.",
    "reauthenticated": "Thanks, that's confirmed. You can approve and revoke for a while "
                       "without being asked again.",
    "checkpoint_signed": "A new checkpoint was signed.",
    "test_sent": "The test message was handed to the code provider. Check your phone.",
}

ERRORS = {
    "otp_invalid": "That code didn't work. It may be mistyped or out of date; ask for a new one.",
    "second_factor_invalid": "That authenticator or recovery code didn't work. Check the time "
                             "on your phone is right and try the newest code.",
    "sign_in_expired": "This sign-in took too long and has expired. Please start again.",
    "sign_in_rate_limited": "Too many failed attempts. Wait a few minutes and try again.",
    "otp_rate_limited": "Too many codes were requested for this number. Wait a while and try "
                        "again.",
    "member_exists": "That phone number already belongs to an account.",
    "member_limit_reached": "Your organisation has reached its member limit. Ask the operator "
                            "to raise it, or remove a member first.",
    "last_admin": "An organisation must keep at least one admin. Make another member an admin "
                  "first.",
    "phone_invalid": "Enter the number in international format, starting with + and the "
                     "country code, for example +44 7700 900123.",
    "device_not_pending": "That device has already been dealt with.",
    "display_name_invalid": "A display name has 1 to 64 characters and no control characters.",
    "test_message_rate_limited": "Several test messages were sent recently. Wait a while "
                                 "before sending another.",
    "signup_disabled": "Self-service sign-up is turned off on this appliance.",
}

EVENTS = {
    "org.created": "Organisation created",
    "org.member_limit_changed": "Member limit changed",
    "member.added": "Member added",
    "member.removed": "Member removed",
    "member.role_changed": "Member role changed",
    "member.display_name_changed": "Member display name changed",
    "device.registered": "Device registered",
    "device.approved": "Device approved",
    "device.rejected": "Device rejected",
    "device.revoked": "Device revoked",
    "device.enrolment_expired": "Pending device lapsed",
    "session.refresh_reused": "Refresh token reused",
    "admin.signed_in": "Admin signed in",
    "admin.signed_out": "Admin signed out",
    "admin.sign_in_failed": "Failed admin sign-in",
    "admin.reauthenticated": "Admin confirmed identity",
    "admin.totp_enrolled": "Authenticator enrolled",
    "admin.second_factor_reset": "Authenticator reset by operator",
    "api_token.created": "API token created",
    "api_token.revoked": "API token revoked",
    "audit.verified": "Audit chain verified",
    "keys.jwt_rotated": "Token signing key rotated",
    "verification.ran": "Appliance self-check ran",
    "otp.test_sent": "Test message sent",
}

# The type filter: whole groups (a prefix ending in a dot) and single events.
EVENT_GROUPS = [
    ("admin.", "Admin sign-ins"),
    ("member.", "Members"),
    ("device.", "Devices"),
    ("org.", "Organisation"),
    ("api_token.", "API tokens"),
    ("audit.", "Audit log"),
    ("otp.", "Code provider"),
]

IMPORT_STATUS = {
    "added": "Will be added",
    "invalid": "Not a valid row",
    "duplicate": "Repeated in the file",
    "exists": "Already has an account",
    "over_limit": "Over the member limit",
}


def error_message(code: str, message: str) -> str:
    text = ERRORS.get(code) or message
    return text[:1].upper() + text[1:]


def event_label(event: str) -> str:
    return EVENTS.get(event, event)


def import_status(status: str, imported: bool) -> str:
    if status == "added" and imported:
        return "Added"
    return IMPORT_STATUS.get(status, status)
