"""What every OTP provider is, and the sandboxed template rendering they share."""

from __future__ import annotations

from typing import Any, Protocol

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from semafore.services.errors import Unavailable

# Templates come from the operator's config, but are still rendered in a sandbox: a template
# can read the values it is given and nothing else.
_ENVIRONMENT = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


class OtpDeliveryError(Unavailable):
    """The provider could not hand the message over. Never carries the number or code."""

    code = "otp_delivery_failed"


class OtpProvider(Protocol):
    name: str

    async def send(self, phone: str, message: str) -> None:
        """Deliver ``message`` to ``phone`` (E.164) or raise OtpDeliveryError."""
        ...


def render_template(source: str, **values: Any) -> str:
    try:
        return _ENVIRONMENT.from_string(source).render(**values)
    except TemplateError as exc:
        raise OtpDeliveryError(
            f"OTP template could not be rendered ({type(exc).__name__})"
        ) from None


def phone_values(phone: str, message: str) -> dict[str, str]:
    """The variables a provider template sees."""
    return {"number": phone, "number_digits": phone.lstrip("+"), "message": message}
