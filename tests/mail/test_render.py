"""Every template in mail/templates renders with the values it names; values are escaped in
the HTML part. New templates are covered as soon as their files exist."""

from __future__ import annotations

import html

import pytest

from globeguard.mail import render

# A value with what HTML escaping must change, and a name that makes it findable.
NASTY = '<b>&"{name}"</b>'


@pytest.mark.parametrize("name", render.template_names())
def test_every_template_renders_with_the_values_it_names(name: str) -> None:
    names = render.placeholders(name)
    values = {key: NASTY.format(name=key) for key in names}

    rendered = render.render(name, values)

    assert rendered.subject
    assert "\n" not in rendered.subject
    assert "${" not in rendered.subject + rendered.text + rendered.html
    txt = render._template(name, "txt").get_identifiers()
    htm = render._template(name, "html").get_identifiers()
    for key in names:
        if key in txt:
            assert values[key] in rendered.subject + rendered.text, key
        if key in htm:
            assert html.escape(values[key]) in rendered.html, key
            assert values[key] not in rendered.html, f"{key} is not escaped in the HTML"


@pytest.mark.parametrize("name", render.template_names())
def test_every_template_has_both_parts_and_a_subject_line(name: str) -> None:
    source = render._template(name, "txt").template
    first, blank, _ = source.split("\n", 2)
    assert first.startswith("Subject: ")
    assert blank == ""


def test_a_missing_value_is_an_error_not_a_message_with_a_hole(test_template: str) -> None:
    with pytest.raises(KeyError):
        render.render(test_template, {"username": "ann"})


def test_values_are_escaped_in_html_only(test_template: str) -> None:
    rendered = render.render(
        test_template, {"username": "<ann>", "link": "https://x.test/?a=1&b=2"}
    )

    assert rendered.subject == "Hello <ann>"
    assert rendered.subject_template == "Hello ${username}"
    assert "Hi <ann>," in rendered.text
    assert "https://x.test/?a=1&b=2" in rendered.text
    assert "Hi &lt;ann&gt;," in rendered.html
    assert 'href="https://x.test/?a=1&amp;b=2"' in rendered.html


def test_a_template_without_a_subject_line_is_refused(test_template: str, tmp_path) -> None:
    (tmp_path / "templates" / "nosubject.txt").write_text("Hello\n\nbody\n")
    (tmp_path / "templates" / "nosubject.html").write_text("<p>body</p>")

    with pytest.raises(ValueError, match="Subject"):
        render.render("nosubject", {})


def test_template_names_lists_only_complete_pairs(test_template: str, tmp_path) -> None:
    (tmp_path / "templates" / "half.txt").write_text("Subject: x\n\ny\n")

    assert render.template_names() == ["hello"]
    assert render.placeholders("hello") == {"username", "link"}
