"""Request and response bodies for accounts and users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, EmailStr, Field

from globeguard.kit.limits import JsonObject

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

Username = Field(
    min_length=3,
    max_length=64,
    pattern=USERNAME_PATTERN,
    validation_alias=AliasChoices("username", "user_name"),
    description="3-64 letters, digits, '.', '_' or '-'; unique regardless of case.",
)
Password = Field(min_length=8, max_length=128, description="8-128 characters.")
GivenName = Field(
    default=None, max_length=128, validation_alias=AliasChoices("given_name", "first_name")
)
FamilyName = Field(
    default=None, max_length=128, validation_alias=AliasChoices("family_name", "last_name")
)


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)


class UserCreate(StrictBody):
    username: str = Username
    password: str = Password
    email: EmailStr | None = None
    given_name: str | None = GivenName
    family_name: str | None = FamilyName
    user_metadata: JsonObject = Field(default_factory=dict)


class UserSelfUpdate(StrictBody):
    """Top-level keys of `user_metadata` are merged; a key set to null is removed."""

    email: EmailStr | None = None
    given_name: str | None = GivenName
    family_name: str | None = FamilyName
    user_metadata: JsonObject | None = None


class UserAdminUpdate(UserSelfUpdate):
    email_verified: bool | None = None
    app_metadata: JsonObject | None = None


class PasswordChange(StrictBody):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Password


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    email: str | None
    email_verified: bool
    given_name: str | None
    family_name: str | None
    user_metadata: dict[str, Any]
    app_metadata: dict[str, Any]
    roles: list[str] = Field(default_factory=list)
    status: str
    # A login of the account was reviewed "compromised": its password signs in again only
    # once it is set again.
    password_reset_required: bool = False
    logins_count: int
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
    items: list[UserRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
