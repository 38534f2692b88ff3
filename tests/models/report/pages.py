"""Reading a results page as a person does: the text of each section, the images it holds."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(page: str) -> str:
    """The visible text, cells separated by single spaces."""
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


def section(page: str, anchor: str) -> str:
    """The text of the element ``id=anchor`` (a section or the footer)."""
    found = re.search(rf'<(section|footer) id="{anchor}">(.*?)</\1>', page, re.S)
    assert found, f"no section {anchor}"
    return text_of(found.group(2))


def images(page: str, anchor: str) -> list[str]:
    """The alternative texts of the images in a section."""
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert found, f"no section {anchor}"
    alts = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', found.group(1))
    return [html.unescape(alt) for alt in alts]
