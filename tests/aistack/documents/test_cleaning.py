"""Decoding and cleaning: what the summarizer reads of a document."""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

import pytest

from aistack.documents.cleaning import (
    DocumentError,
    clean_document,
    clean_text,
    decode,
    document_format,
    is_supported,
    split_fences,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "documents"


# -- decoding --------------------------------------------------------------------------------


def test_decode_accepts_utf8_with_or_without_bom_and_utf16_with_bom():
    assert decode("café".encode()) == "café"
    assert decode(codecs.BOM_UTF8 + "café".encode()) == "café"
    assert decode("café 抹茶".encode("utf-16")) == "café 抹茶"  # Python writes the BOM
    assert decode(codecs.BOM_UTF16_BE + "ok".encode("utf-16-be")) == "ok"


def test_undecodable_bytes_are_a_document_error_that_says_where():
    with pytest.raises(DocumentError, match=r"byte 0xe9 at offset 3.*UTF-8"):
        decode(b"caf\xe9 au lait")


def test_binary_content_is_a_document_error():
    with pytest.raises(DocumentError, match="binary"):
        decode(b"PK\x03\x04\x00\x00\x00")


# -- common rules ----------------------------------------------------------------------------


def test_whitespace_and_invisible_characters_are_normalized():
    raw = "Title\r\n\r\n\r\n\r\nA\tline\u00a0with   spaces \u200band a soft\u00adhyphen.\rNext\x07 line\u2028end"
    assert clean_text(raw) == "Title\n\nA line with spaces and a softhyphen.\nNext line\nend"


def test_unicode_is_composed_nfc():
    decomposed = "cafe\u0301 Zu\u0308rich"
    cleaned = clean_text(decomposed)
    assert cleaned == "café Zürich"
    assert unicodedata.is_normalized("NFC", cleaned)


def test_hard_wrapped_prose_is_joined_but_short_lines_and_lists_keep_their_lines():
    raw = (
        "A Title\nBy Someone\n\n"
        "This paragraph was wrapped by an editor at a fixed width of\n"
        "about sixty characters, so its lines belong together.\n\n"
        "- first item of a list that is long enough to be wrapped\n"
        "- second item\n"
        "1. numbered items stay on their own lines, however long they get\n"
        "2. second"
    )
    assert clean_text(raw).split("\n") == [
        "A Title",
        "By Someone",
        "",
        "This paragraph was wrapped by an editor at a fixed width of about sixty characters, so its lines belong together.",
        "",
        "- first item of a list that is long enough to be wrapped",
        "- second item",
        "1. numbered items stay on their own lines, however long they get",
        "2. second",
    ]


# -- HTML ------------------------------------------------------------------------------------


def test_html_keeps_the_text_and_drops_scripts_styles_navigation_and_footers():
    page = (
        "<!doctype html><html><head><title>Report</title><style>p{color:red}</style>"
        "<script>var secret = 1;</script></head><body><nav><a href='/'>Home</a></nav>"
        "<h1>Report</h1><p>Fish &amp; chips cost 5&nbsp;&euro;.</p><ul><li>one</li>\n<li>two</li></ul>"
        "<p>Line<br>break</p><footer>&copy; Someone</footer></body></html>"
    )
    cleaned = clean_text(page, "html")
    assert cleaned == "# Report\n\nFish & chips cost 5 €.\n\n- one\n- two\n\nLine\nbreak"


def test_html_title_is_kept_when_the_body_does_not_repeat_it():
    assert clean_text("<html><head><title>Only here</title></head><body><p>Body text.</p></body></html>", "html") == ("# Only here\n\nBody text.")


# -- Markdown --------------------------------------------------------------------------------


def test_markdown_markup_is_stripped_and_the_words_kept():
    markdown = (
        "---\ntitle: x\n---\n<!-- a comment -->\n# Heading #\n\n"
        "Some **bold**, *emphasis*, __strong__, ~~gone~~ and `code` with snake_case_names and 2*3*4.\n"
        'See [the guide](https://example.org/guide "Guide") and ![a chart](chart.png) and <https://example.org>.\n'
        'Reference [link][ref] and <span class="x">inline html</span>.\n\n'
        "***\n\n> a quoted paragraph, wrapped at forty characters\n> or more, joins up\n\n* star bullet\n+ plus bullet\n\n"
        "| a | b |\n|---|:-:|\n| 1 | 2 |\n\n[ref]: https://example.org/ref\n"
    )
    assert clean_text(markdown, "markdown").split("\n") == [
        "# Heading",
        "",
        "Some bold, emphasis, strong, gone and code with snake_case_names and 2*3*4. "
        "See the guide and a chart and https://example.org. Reference link and inline html.",
        "",
        "a quoted paragraph, wrapped at forty characters or more, joins up",
        "",
        "- star bullet",
        "- plus bullet",
        "",
        "| a | b",
        "| 1 | 2",
    ]


def test_markdown_code_blocks_keep_their_lines():
    markdown = "Intro text.\n\n```yaml\nkey: 1\nother: **not bold**\n```\n\nAfter the code."
    assert split_fences(markdown) == [(False, "Intro text.\n"), (True, "key: 1\nother: **not bold**"), (False, "\nAfter the code.")]
    assert clean_text(markdown, "markdown") == "Intro text.\n\nkey: 1\nother: **not bold**\n\nAfter the code."


# -- formats and documents -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("notes/a.md", None, "markdown"),
        ("a.MARKDOWN", None, "markdown"),
        ("page.htm", None, "html"),
        ("page.txt", "  <!DOCTYPE html><html>", "html"),
        ("page.txt", "plain <b>text</b>", "text"),
        ("README", None, "text"),
    ],
)
def test_document_format(key, text, expected):
    assert document_format(key, text) == expected


def test_supported_types():
    assert all(is_supported(k) for k in ("a.txt", "b.md", "c.html", "d.rst", "NOTES"))
    assert not any(is_supported(k) for k in ("a.pdf", "b.png", "c.docx"))


def test_a_document_empty_after_cleaning_is_a_document_error():
    with pytest.raises(DocumentError, match="empty after cleaning"):
        clean_document("empty.md", b"<!-- nothing here -->\n\n---\n\n   \n")
    with pytest.raises(DocumentError, match="empty"):
        clean_document("blank.txt", b"")


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_examples_clean_deterministically_and_cleaning_is_stable(path: Path):
    data = path.read_bytes()
    cleaned = clean_document(path.name, data)
    assert cleaned == clean_document(path.name, data)
    assert clean_text(cleaned, "text") == cleaned, "cleaning clean text changes nothing"
    assert "<" not in cleaned or path.suffix not in (".html", ".md"), "no markup left"
    assert "http" not in cleaned, "link targets are gone"
    assert "\n\n\n" not in cleaned and "  " not in cleaned


def test_examples_keep_their_substance():
    report = clean_document("field-report.html", (EXAMPLES / "field-report.html").read_bytes())
    assert "analytics" not in report and "font-family" not in report and "Privacy" not in report
    assert "“sways more than it used to”" in report and "centre pier & should" in report
    notes = clean_document("release-notes.md", (EXAMPLES / "release-notes.md").read_bytes())
    assert "Draft for the docs site" not in notes and "title:" not in notes
    assert "Storm mode. When the wind forecast passes 40 knots" in notes
    glossary = clean_document("multilingual-notes.md", (EXAMPLES / "multilingual-notes.md").read_bytes())
    assert "Пирожки (pirozhki)" in glossary and "抹茶 (matcha)" in glossary and "🙂" in glossary
