"""No mail URL (the default, `make run`): messages become .eml files under <data_dir>/mail/,
with one log line each that never holds the body (its links are single-use secrets)."""

from __future__ import annotations

import logging
import stat
from email import policy
from email.parser import BytesParser

from tests.mail.conftest import queue, rows
from tests.support.smtp import links_in, text_of

SECRET_LINK = "https://id.example.test/reset#t=SINGLE-USE-SECRET"


async def test_a_message_becomes_an_eml_file_and_one_log_line(
    mail_container, test_template, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    async with mail_container() as container:
        message_id = await queue(container, "ann@example.com", link=SECRET_LINK)

        assert await container.mail_sender.send_due() == 1

        [path] = (tmp_path / "mail").glob("*.eml")
        assert str(message_id) in path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert msg["To"] == "ann@example.com"
        assert msg["Subject"] == "Hello ann"
        assert msg.get_content_type() == "multipart/alternative"
        assert links_in(msg) == [SECRET_LINK]
        assert "Hi ann," in text_of(msg)

        lines = [r for r in caplog.records if r.name == "globeguard.adapters.mail.files"]
        assert len(lines) == 1
        line = lines[0].getMessage()
        assert "ann@example.com" in line
        assert "(hello)" in line
        assert str(path) in line
        assert "SINGLE-USE-SECRET" not in caplog.text  # no SMTP server here: all ours
        [row] = await rows(container)
        assert row.sent_at is not None and row.body_sealed == ""


async def test_each_message_gets_its_own_file(mail_container, test_template, tmp_path) -> None:
    async with mail_container() as container:
        await queue(container, "ann@example.com")
        await queue(container, "bob@example.com")

        assert await container.mail_sender.send_due() == 2

        files = sorted((tmp_path / "mail").glob("*.eml"))
        recipients = sorted(
            BytesParser(policy=policy.default).parsebytes(f.read_bytes())["To"] for f in files
        )
        assert recipients == ["ann@example.com", "bob@example.com"]
        assert not list((tmp_path / "mail").glob("*.part"))


async def test_an_unwritable_directory_is_retried_not_lost(
    mail_container, test_template, tmp_path
) -> None:
    (tmp_path / "mail").write_text("a file where the directory should be")
    async with mail_container() as container:
        await queue(container, "ann@example.com")

        assert await container.mail_sender.send_due() == 0

        [row] = await rows(container)
        assert row.failed_at is None and row.sent_at is None
        assert "cannot write" in (row.last_error or "")
