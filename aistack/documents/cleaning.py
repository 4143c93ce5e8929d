"""From a document's bytes to the plain text a summarizer should read.

`decode()` accepts UTF-8 (with or without BOM) and BOM-marked UTF-16; anything else, and text
with NUL bytes (a binary file), is a `DocumentError`, so a bad document fails on its own.

`clean_text()` keeps what a reader would read and drops markup noise:

- every format: Unicode NFC; newlines normalized (CRLF, CR, U+2028/2029); control characters,
  zero-width characters and soft hyphens removed; tabs and no-break spaces become spaces;
  runs of spaces collapse; lines are trimmed; hard-wrapped prose lines are joined into one
  line per paragraph (list items, headings, quotes and table rows keep their lines); at most
  one blank line between paragraphs;
- HTML: the text of the body, with `<title>` as a heading; script, style, template, nav and
  similar blocks are dropped; block elements become line breaks, headings "# " lines, list
  items "- " lines; entities are decoded;
- Markdown: YAML front matter, HTML comments, inline tags, image and link URLs (the link text
  stays), reference definitions, emphasis and code markers, horizontal rules, code fences and
  table separator rows are removed (code blocks keep their lines); headings stay "# " lines (their structure helps the
  model), `*`/`+` bullets become "- ", table rows "| a | b"; entities are decoded;
- plain text: only the common rules.

`document_format()` picks the format from the file name (sniffing for HTML in plain text).
"""

from __future__ import annotations

import codecs
import html
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Literal

Format = Literal["text", "markdown", "html"]

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".rst", ".log", ""})
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES


class DocumentError(ValueError):
    """This document cannot be summarized (undecodable, binary, empty...); retrying will not help."""


def suffix_of(key: str) -> str:
    return PurePosixPath(key).suffix.lower()


def is_supported(key: str) -> bool:
    return suffix_of(key) in SUPPORTED_SUFFIXES


def document_format(key: str, text: str | None = None) -> Format:
    suffix = suffix_of(key)
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in HTML_SUFFIXES:
        return "html"
    if text is not None and re.match(r"\s*(<!doctype\s+html|<html[\s>])", text[:1000], re.IGNORECASE):
        return "html"
    return "text"


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """The document's text; DocumentError for bytes that are not text."""
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data
    else:
        encoding, body = "utf-8", data
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"not {encoding.upper()} text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start} cannot be decoded (save the document as UTF-8)"
        ) from None
    if "\x00" in text:
        raise DocumentError("binary content (NUL bytes): only text documents can be summarized")
    return text


# -- common rules --------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
WRAPPED_LINE = 40
_BLOCK_START = re.compile(r"^(?:[-*+•]\s|\d{1,3}[.)]\s|#{1,6}\s|>|\|)")


def _drop_controls(text: str) -> str:
    return "".join(ch for ch in text.translate(_INVISIBLE) if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def _unwrap(lines: list[str]) -> list[str]:
    """Join hard-wrapped prose lines of a paragraph; structured lines and short ones keep their line.

    A line continues the line before it when that one is long enough to have been wrapped
    (WRAPPED_LINE characters or more) and neither is a list item, heading, quote or table row,
    so a short title over a byline stays two lines. Joining clean text changes nothing.
    """
    out: list[str] = []
    for line in lines:
        previous = out[-1] if out else ""
        joinable = previous and line and len(previous) >= WRAPPED_LINE and not _BLOCK_START.match(line) and not previous.startswith(("#", "|"))
        if joinable:
            out[-1] = f"{previous} {line}"
        else:
            out.append(line)
    return out


def normalize(text: str, unwrap: bool = True) -> str:
    """The rules every format shares (see the module docstring); `unwrap=False` keeps every line."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _drop_controls(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    if unwrap:
        lines = _unwrap(lines)
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# -- HTML ----------------------------------------------------------------------------------

_SKIPPED_TAGS = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "nav",
        "footer",
        "iframe",
        "object",
        "canvas",
        "select",
    }
)
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "blockquote",
        "pre",
        "table",
        "tr",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "figure",
        "figcaption",
        "form",
        "fieldset",
        "address",
        "hr",
        "body",
        "html",
    }
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "track", "wbr"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping: list[str] = []
        self.in_head = False
        self.in_title = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            if tag == self.skipping[-1] and tag not in _VOID:
                self.skipping.append(tag)
            return
        if tag in _SKIPPED_TAGS:
            self.skipping.append(tag)
        elif tag == "head":
            self.in_head = True
        elif tag == "title":
            self.in_title = True
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in _HEADINGS:
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag == "head":
            self.in_head = False
        elif tag == "title":
            self.in_title = False
        elif tag in _HEADINGS or tag in _BLOCK_TAGS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.in_title:
            self.title += data
        elif not self.in_head:
            text = re.sub(r"\s+", " ", data)
            if text == " " and (not self.out or self.out[-1].endswith((" ", "\n"))):
                return  # whitespace between tags
            self.out.append(text)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    body = "".join(parser.out)
    title = " ".join(parser.title.split())
    if title and title not in body:
        body = f"# {title}\n\n{body}"
    return body


# -- Markdown ------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_INLINE_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_REF_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|={3,})$", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$", re.MULTILINE)
_TABLE_SEPARATOR = re.compile(r"^ *\|?(?: *:?-{2,}:? *\|)+ *:?-*:? *\|? *(?:\n|\Z)", re.MULTILINE)
_QUOTE = re.compile(r"^ {0,3}> ?", re.MULTILINE)
_BULLET = re.compile(r"^( *)[*+] ", re.MULTILINE)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_CODE = re.compile(r"`+([^`\n]+?)`+")


def _table_row(match: re.Match[str]) -> str:
    cells = [cell.strip() for cell in match.group(0).strip().strip("|").split("|")]
    return "| " + " | ".join(cells)


def split_fences(markdown: str) -> list[tuple[bool, str]]:
    """The document as (is_code, text) blocks: fenced code blocks apart from the prose around them."""
    blocks: list[tuple[bool, str]] = []
    current: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        match = _FENCE.match(line)
        if fence is None and match:
            blocks.append((False, "\n".join(current)))
            current, fence = [], match.group(1)
        elif fence is not None and match and match.group(1) == fence and not line.strip()[3:].strip("`~"):
            blocks.append((True, "\n".join(current)))
            current, fence = [], None
        else:
            current.append(line)
    blocks.append((fence is not None, "\n".join(current)))
    return [(code, text) for code, text in blocks if text.strip()]


def markdown_to_text(markdown: str) -> str:
    """Markdown prose (no code fences: see split_fences) as plain text."""
    text = _COMMENT.sub("", markdown)
    text = _REF_DEFINITION.sub("", text)
    text = _TABLE_SEPARATOR.sub("", text)
    text = _RULE.sub("", text)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _INLINE_LINK.sub(lambda m: m.group(1), text)
    text = _REF_LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: m.group(1), text)
    text = _BREAK_TAG.sub("\n", text)
    text = _TAG.sub("", text)
    text = _HEADING.sub(lambda m: f"{m.group(1)} {m.group(2)}", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}- ", text)
    text = _STRONG.sub(lambda m: m.group(2), text)
    text = _STRIKE.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)
    text = _CODE.sub(lambda m: m.group(1), text)
    text = re.sub(r"^ *\|.*\| *$", _table_row, text, flags=re.MULTILINE)
    return html.unescape(text)


def clean_text(text: str, fmt: Format = "text") -> str:
    """The readable text of a decoded document (see the module docstring); may be empty."""
    if fmt == "html":
        return normalize(html_to_text(text))
    if fmt == "markdown":
        text = _FRONT_MATTER.sub("", unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n"))
        # Code keeps its lines (no unwrapping); prose is cleaned block by block.
        blocks = [normalize(body, unwrap=False) if code else normalize(markdown_to_text(body)) for code, body in split_fences(text)]
        return normalize("\n\n".join(block for block in blocks if block), unwrap=False)
    return normalize(text)


def clean_document(key: str, data: bytes) -> str:
    """Decode and clean one document; DocumentError when nothing readable is left."""
    text = decode(data)
    cleaned = clean_text(text, document_format(key, text))
    if not cleaned:
        raise DocumentError("the document is empty after cleaning (no readable text)")
    return cleaned
