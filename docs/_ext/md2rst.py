"""A small Markdown -> reStructuredText converter for the files the docs include.

It handles what ``CHANGELOG.md`` (Keep a Changelog) and ``benchmarks/results/*.md`` use:
ATX headings, paragraphs, bullet and numbered lists (with continuation lines), fenced code,
pipe tables, inline code, links (inline and reference style), bold and italic. Everything else
is passed through as text with the reST special characters escaped, so the output never makes
Sphinx warn. No dependency beyond the standard library (myst-parser is not installed).
"""

from __future__ import annotations

import re

__all__ = ["md_to_rst"]

_HEADING_CHARS = "=-~^\"'"
_LINK_DEF = re.compile(r"^\s{0,3}\[([^\]]+)\]:\s*(\S+)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)([-*+])\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+)[.)]\s+(.*)$")
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_INLINE = re.compile(
    r"(?P<code>`+)(?P<codetext>.+?)(?P=code)"
    r"|\[(?P<ltext>[^\]]+)\]\((?P<lurl>[^)\s]+)\)"
    r"|\[(?P<rtext>[^\]]+)\](?:\[(?P<rref>[^\]]*)\])?"
    r"|\*\*(?P<bold>[^*]+?)\*\*"
    r"|(?<![\w*])\*(?P<ital>[^*\s][^*]*?)\*(?![\w*])"
    r"|(?<!\w)_(?P<ital2>[^_\s][^_]*?)_(?!\w)"
    r"|(?P<url>https?://[^\s<>()]+[^\s<>().,;:!?])"
)
# characters after which / before which reST inline markup may start / end
_OK_BEFORE = set(" \t\n'\"([{<-/:")
_OK_AFTER = set(" \t\n'\")]}>-/:.,;!?\\")


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_|])", r"\\\1", text)


def _inline(text: str, refs: dict[str, str]) -> str:
    out: list[str] = []
    pos = 0

    def emit(markup: str, start: int, end: int) -> None:
        before = text[start - 1] if start > 0 else " "
        after = text[end] if end < len(text) else " "
        if before not in _OK_BEFORE:
            markup = "\\ " + markup
        if after not in _OK_AFTER:
            markup = markup + "\\ "
        out.append(markup)

    for m in _INLINE.finditer(text):
        out.append(_escape(text[pos : m.start()]))
        pos = m.end()
        if m.group("code"):
            code = m.group("codetext").strip()
            if "``" in code or not code:
                emit(_escape(code), m.start(), m.end())
            else:
                emit(f"``{code}``", m.start(), m.end())
        elif m.group("ltext"):
            label = m.group("ltext").replace("`", "").replace("<", "").strip()
            emit(f"`{label} <{m.group('lurl')}>`__", m.start(), m.end())
        elif m.group("rtext"):
            key = (m.group("rref") or m.group("rtext")).lower()
            label = m.group("rtext").replace("`", "").replace("<", "").strip()
            if key in refs:
                emit(f"`{label} <{refs[key]}>`__", m.start(), m.end())
            else:
                out.append(_escape(m.group(0)))
        elif m.group("bold"):
            emit(f"**{_escape(m.group('bold').strip())}**", m.start(), m.end())
        elif m.group("ital") or m.group("ital2"):
            emit(f"*{_escape((m.group('ital') or m.group('ital2')).strip())}*", m.start(), m.end())
        elif m.group("url"):
            emit(f"`{m.group('url')} <{m.group('url')}>`__", m.start(), m.end())
    out.append(_escape(text[pos:]))
    return "".join(out)


def _table(rows: list[str], refs: dict[str, str]) -> list[str]:
    def cells(line: str) -> list[str]:
        line = line.strip()
        if line.startswith("|"):
            line = line[1:]
        if line.endswith("|") and not line.endswith("\\|"):
            line = line[:-1]
        return [c.strip() for c in re.split(r"(?<!\\)\|", line)]

    header = cells(rows[0])
    body = [cells(r) for r in rows[2:]]
    width = len(header)
    out = ["", ".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        row = (row + [""] * width)[:width]
        for i, cell in enumerate(row):
            lead = "   * - " if i == 0 else "     - "
            out.append(lead + (_inline(cell, refs) if cell else ""))
    out.append("")
    return out


def _is_item(line: str) -> bool:
    return bool(re.match(r"^\s*(- |#\. )", line))


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(
        _HEADING.match(line)
        or _FENCE.match(line)
        or _BULLET.match(line)
        or _NUMBERED.match(line)
        or ("|" in line and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]))
    )


def md_to_rst(md: str, base_level: int = 0, drop_first_heading: bool = False) -> str:
    """Convert Markdown text to reStructuredText.

    Args:
        md: the Markdown source.
        base_level: the reST heading level (0 ``=``, 1 ``-``, 2 ``~``, ...) that the file's
            highest Markdown heading maps to; deeper headings follow in order.
        drop_first_heading: leave out the first heading (when the including page has its own
            title).
    """
    lines = md.replace("\r\n", "\n").replace("\t", "    ").split("\n")
    refs: dict[str, str] = {}
    kept: list[str] = []
    for line in lines:
        m = _LINK_DEF.match(line)
        if m:
            refs[m.group(1).lower()] = m.group(2)
        else:
            kept.append(line)
    levels = sorted({len(m.group(1)) for ln in kept if (m := _HEADING.match(ln))})
    out: list[str] = []
    i = 0
    dropped = not drop_first_heading
    while i < len(kept):
        line = kept[i]
        fence = _FENCE.match(line)
        if fence:
            lang = fence.group(3) or "text"
            out += ["", f".. code-block:: {lang}", ""]
            i += 1
            indent = len(fence.group(1))
            while i < len(kept) and not kept[i].strip().startswith(fence.group(2)):
                out.append("   " + kept[i][indent:] if kept[i].strip() else "")
                i += 1
            out.append("")
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            if not dropped:
                dropped = True
                i += 1
                continue
            level = base_level + levels.index(len(heading.group(1)))
            title = _inline(heading.group(2), refs)
            char = _HEADING_CHARS[min(level, len(_HEADING_CHARS) - 1)]
            out += ["", title, char * max(len(title), 3), ""]
            i += 1
            continue
        if "|" in line and i + 1 < len(kept) and _TABLE_SEP.match(kept[i + 1]):
            rows = [line, kept[i + 1]]
            i += 2
            while i < len(kept) and "|" in kept[i] and kept[i].strip():
                rows.append(kept[i])
                i += 1
            out += _table(rows, refs)
            continue
        bullet = _BULLET.match(line) or _NUMBERED.match(line)
        if bullet:
            depth = len(bullet.group(1)) // 2
            marker = "-" if bullet.group(2) in "-*+" else "#."
            pad = "  " * depth
            item = [bullet.group(3).strip()]
            i += 1
            while i < len(kept) and kept[i].strip() and not _starts_block(kept, i):
                item.append(kept[i].strip())
                i += 1
            if out and out[-1].strip() and not _is_item(out[-1]):
                out.append("")
            elif out and _is_item(out[-1]) and (len(out[-1]) - len(out[-1].lstrip())) != len(pad):
                out.append("")
            out.append(f"{pad}{marker} {_inline(' '.join(item), refs)}")
            continue
        if not line.strip():
            out.append("")
            i += 1
            continue
        para = [line.strip()]
        i += 1
        while i < len(kept) and kept[i].strip() and not _starts_block(kept, i):
            para.append(kept[i].strip())
            i += 1
        if out and out[-1].strip():
            out.append("")
        indent = ""
        if line.startswith("  ") and out:
            # continuation paragraph of a list item
            prev = next((o for o in reversed(out) if o.strip()), "")
            if _is_item(prev):
                indent = " " * (len(prev) - len(prev.lstrip()) + (3 if "#." in prev[:8] else 2))
        out.append(indent + _inline(" ".join(para), refs))
        out.append("")
    text = "\n".join(line.rstrip() for line in out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text + "\n"
