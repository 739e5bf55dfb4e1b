"""The email flows' services, built together (wiring holds them as `email_flows`; the
notices they share are `container.notices`, which the step-up policy calls too)."""

from __future__ import annotations

from dataclasses import dataclass

from globeguard.account.email_throttle import EmailThrottle
from globeguard.account.feedback import LoginFeedbackService
from globeguard.account.notices import NoticeService
from globeguard.account.one_time import OneTimeTokens
from globeguard.account.reset import PasswordResetService
from globeguard.account.verification import EmailVerificationService
from globeguard.adapters.geoip.port import GeoLocator
from globeguard.adapters.kv.port import Counters
from globeguard.identity.users.service import UserService
from globeguard.mail.outbox import MailOutbox
from globeguard.settings import AccountSettings
from globeguard.travel.review import LoginReviewService


@dataclass(frozen=True, slots=True)
class EmailFlows:
    verification: EmailVerificationService
    resets: PasswordResetService
    feedback: LoginFeedbackService


def build_email_flows(
    mail: MailOutbox,
    counters: Counters,
    users: UserService,
    reviews: LoginReviewService,
    locator: GeoLocator,
    settings: AccountSettings,
) -> tuple[NoticeService, EmailFlows]:
    tokens = OneTimeTokens()
    throttle = EmailThrottle(counters, settings)
    notices = NoticeService(mail, tokens, locator, settings)
    resets = PasswordResetService(mail, tokens, users, throttle, notices, settings)
    flows = EmailFlows(
        verification=EmailVerificationService(mail, tokens, users, throttle, settings),
        resets=resets,
        feedback=LoginFeedbackService(tokens, reviews, resets),
    )
    return notices, flows
