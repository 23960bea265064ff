"""Text written into XML by hand, as libxml2 writes it (XML 1.0).

- In an attribute value '&', '<', '>' and '"' are escaped, and TAB, LF and CR too:
  they survive attribute-value normalisation only as character references (3.3.3).
- In character data '&', '<' and '>' are escaped, and CR, which line-end handling
  would turn into LF (2.11).
- A Char (2.2) is TAB, LF, CR or U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF; no
  document holds anything else, escaped or not.
"""

from __future__ import annotations

import re

ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)
TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

__all__ = ["ATTRIBUTE_ESCAPES", "NOT_XML_CHAR", "TEXT_ESCAPES"]
