"""Request and response bodies of /api/v1/mfa."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Generous for "123 456" or "abcd-efgh-ijkl" typed with spaces; far below anything costly.
CODE_MAX = 64


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolmentRead(BaseModel):
    secret: str = Field(description="Base32, for typing into the app by hand.")
    otpauth_uri: str = Field(description="The key URI the QR code carries.")
    qr_svg: str = Field(description="The QR code as an SVG document, self-contained.")


class ConfirmBody(StrictBody):
    code: str = Field(min_length=1, max_length=64, description="The 6 digits the app shows now.")


class RecoveryCodesRead(BaseModel):
    recovery_codes: list[str] = Field(description="Shown this once; each works once.")


class ConfirmedRead(RecoveryCodesRead):
    confirmed_at: datetime


class ProofBody(StrictBody):
    """Exactly one of `code` (from the app, or a recovery code, which is then used up) and
    `password`."""

    code: str | None = Field(
        default=None,
        min_length=1,
        max_length=CODE_MAX,
        description="A code from the app, or a recovery code (used up).",
    )
    password: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _exactly_one(self) -> ProofBody:
        if (self.code is None) == (self.password is None):
            raise ValueError("send exactly one of `code` and `password`")
        return self


class TotpRead(BaseModel):
    enrolled: bool = Field(description="A confirmed authenticator is active.")
    pending: bool = Field(description="An enrolment was started and not confirmed yet.")
    confirmed_at: datetime | None


class MfaRead(BaseModel):
    totp: TotpRead
    recovery_codes_left: int
