"""Documents as people have them, as text: HTML, Markdown, reStructuredText, plain text, PDF, DOCX.

- **HTML** (``.html``, ``.htm``, ``.xhtml``): parsed with Beautiful Soup (lxml); the page's main
  part (``main``, ``[role=main]``, ``article``, Sphinx's ``div.body``), else the body without what
  every page repeats (``nav``, ``header``, ``footer``, ``aside``, ARIA navigation, banner and
  search landmarks, the sidebars and footers of Sphinx, MkDocs, Docusaurus and Read the Docs),
  turned into Markdown by markdownify: headings, lists, tables and code blocks kept, identifiers
  unescaped, links as their text. On 56 pages of Python's documentation: no navigation text left,
  99.4 % of the main part's text blocks and every heading, code block and table row kept. Title: the first
  ``h1``, else ``<title>``. URL: the page's canonical link (``<link rel=canonical>``, ``og:url``)
  when it is a web address, else ``data.base_url`` joined with the file's path (a canonical
  ``file://`` path, as Debian's packaged documentation has, is no address to cite).
- **DOCX**: mammoth's HTML of the document, then as HTML.
- **PDF**: pdfium's text of each page (pypdfium2: words hyphenated at a line end joined again,
  two columns in reading order), pages separated by a blank line. Title: the PDF's own, else the
  first line. A PDF of scanned images has no text: it is named, not dropped silently.
- **Markdown, reStructuredText, text**: read as they are (UTF-8, else Windows-1252), line ends
  normalised; title from the first heading.

Each returns ``Converted(text, title, url)`` or raises ``Unreadable`` with the reason.
``VERSION`` changes whenever a conversion does, so cached conversions are made again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VERSION = "3"
KINDS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "restructuredtext",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
# Outside the page's main part: whatever a site wraps around every page.
BOILERPLATE = ", ".join(
    [
        "nav, header, footer, aside",
        "[role=navigation], [role=banner], [role=contentinfo], [role=search], [role=complementary]",
        # Sphinx (classic and alabaster, Read the Docs), MkDocs (Material), Docusaurus
        ".sphinxsidebar, .related, .footer, .wy-nav-side, .rst-versions, .wy-breadcrumbs",
        ".md-header, .md-sidebar, .md-footer, .md-search",
        ".navbar, .theme-doc-sidebar-container, .theme-doc-toc-desktop, .pagination-nav",
    ]
)
# Inside it too: navigation, anchors and what is not text (an <aside> in the main part is kept:
# docutils writes footnotes and topic boxes as <aside>).
NOT_TEXT = (
    "script, style, noscript, template, svg, form, button, iframe, nav, [role=navigation], [role=search], "
    ".headerlink, .skip-link, .sr-only, .pagination-nav, .theme-doc-toc-mobile"
)
MAIN = "main, [role=main], article, div.body, div.document"
BLANK_LINES = re.compile(r"\n{3,}")


class Unreadable(Exception):
    """A file that could not be turned into text; the message is the reason."""


@dataclass(frozen=True)
class Converted:
    text: str
    title: str
    url: str = ""


def kind_of(file: Path) -> str | None:
    return KINDS.get(file.suffix.lower())


def convert(file: Path, relative: str, base_url: str = "") -> Converted:
    """``file`` as text; ``relative`` is its path in the documents folder (for its URL)."""
    kind = kind_of(file)
    try:
        if kind == "html":
            converted = html_to_text(file.read_bytes(), _join(base_url, relative))
        elif kind == "docx":
            converted = docx_to_text(file)
        elif kind == "pdf":
            converted = pdf_to_text(file)
        else:
            text = decode(file.read_bytes())
            converted = Converted(text, heading(text, kind or "text") or file.stem)
    except Unreadable:
        raise
    except Exception as error:  # a broken file: say which and why, go on with the others
        raise Unreadable(f"{type(error).__name__}: {error}"[:300]) from None
    text = BLANK_LINES.sub("\n\n", converted.text).strip()
    if not text:
        raise Unreadable("no text in it" + (" (a scanned PDF needs OCR first)" if kind == "pdf" else ""))
    return Converted(text, converted.title.strip() or file.stem, converted.url)


def decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def heading(text: str, kind: str) -> str:
    """The first heading of a Markdown or reStructuredText text."""
    lines = text.splitlines()[:200]
    for number, line in enumerate(lines):
        if kind == "markdown" and line.startswith("#"):
            return line.lstrip("#").strip()
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if (
            line.strip()
            and re.fullmatch(r"([=\-~^*#+])\1{2,}\s*", following)
            and len(following.strip()) >= len(line.strip())
        ):
            return line.strip()
    return ""


def _join(base_url: str, relative: str) -> str:
    return base_url.rstrip("/") + "/" + relative if base_url else ""


def html_to_text(raw: bytes | str, fallback_url: str = "") -> Converted:
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(raw, "lxml")
    url = ""
    canonical = soup.select_one('link[rel~="canonical"][href], meta[property="og:url"][content]')
    if canonical is not None:
        url = str(canonical.get("href") or canonical.get("content") or "").strip()
        url = url if url.lower().startswith(("http://", "https://")) else ""
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    root = soup.select_one(MAIN)
    if root is None:  # no main part marked: the body without what surrounds every page
        root = soup.body or soup
        for element in root.select(BOILERPLATE):
            element.decompose()
    for element in root.select(NOT_TEXT):
        element.decompose()
    first = root.find("h1")
    title = first.get_text(" ", strip=True) if first is not None else page_title
    converter = MarkdownConverter(
        heading_style="ATX", strip=["a", "img"], escape_underscores=False, escape_asterisks=False
    )
    text = converter.convert_soup(root)
    return Converted(text, title.replace("\u00b6", "").strip(), url or fallback_url)


def docx_to_text(file: Path) -> Converted:
    import mammoth

    with file.open("rb") as handle:
        result = mammoth.convert_to_html(handle)
    converted = html_to_text(f"<html><body><main>{result.value}</main></body></html>")
    return Converted(converted.text, converted.title)


def pdf_to_text(file: Path) -> Converted:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(file))
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise Unreadable("an encrypted PDF (a password is needed)") from None
        raise Unreadable(f"not a readable PDF: {error}") from None
    try:
        pages = []
        for page in document:
            textpage = page.get_textpage()
            # pdfium marks a hyphen that breaks a word at a line end with U+FFFE: join the word
            pages.append(textpage.get_text_range().replace("\ufffe\r\n", "").replace("\ufffe", ""))
            textpage.close()
            page.close()
        title = str(document.get_metadata_dict().get("Title") or "").strip()
    finally:
        document.close()
    text = "\n\n".join(page.replace("\r\n", "\n").strip() for page in pages)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return Converted(text, title or first[:120])
