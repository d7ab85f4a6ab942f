"""The HTML of the pages: a layout, tables and state badges, built with escaping throughout.

Plain semantic HTML and one small stylesheet, no JavaScript: a state is a word in a coloured
badge (colour and text), and pages refresh by <meta http-equiv="refresh">."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

STYLE = """
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); margin: 0; background: #fff; }
header, main, footer { padding: 0.6rem 1.2rem; }
header { display: flex; gap: 1rem; align-items: center; border-bottom: 1px solid var(--line); }
header a.home { font-weight: 700; text-decoration: none; color: var(--fg); }
header form { margin-left: auto; }
h1 { font-size: 1.35rem; margin: 0.6rem 0; } h2 { font-size: 1.1rem; margin: 1.2rem 0 0.4rem; }
table { border-collapse: collapse; margin: 0.3rem 0 0.8rem; }
th, td { text-align: left; padding: 0.25rem 0.7rem 0.25rem 0; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
a { color: #0550ae; } a:focus, button:focus, input:focus { outline: 3px solid #0969da; }
.state { display: inline-block; padding: 0 0.45rem; border-radius: 0.3rem; font-weight: 600;
  border: 1px solid; }
.fresh, .completed, .active { background: #dafbe1; color: #116329; border-color: #4ac26b; }
.warn, .running, .paused, .backoff { background: #fff8c5; color: #7d4e00; border-color: #d4a72c; }
.stale, .failed { background: #ffebe9; color: #a40e26; border-color: #ff8182; }
.never, .archived { background: #eaeef2; color: #24292f; border-color: #8c959f; }
.banner { background: #a40e26; color: #fff; padding: 0.7rem 1rem; font-weight: 700;
  border-radius: 0.3rem; margin: 0.6rem 0; }
.notice { background: #ddf4ff; color: #0a3069; padding: 0.5rem 1rem; border-radius: 0.3rem; }
.muted { color: var(--muted); } pre { background: #f6f8fa; padding: 0.6rem; overflow-x: auto; }
button { font: inherit; padding: 0.1rem 0.6rem; margin-right: 0.2rem; cursor: pointer; }
form.inline { display: inline; }
"""


def page(
    title: str,
    body: str,
    *,
    user: str | None = None,
    csrf: str | None = None,
    refresh_s: int | None = None,
) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    logout = (
        f'<form method="post" action="/logout">{csrf_field(csrf)}'
        f'<span class="muted">{escape(user)}</span> <button type="submit">Log out</button></form>'
        if user and csrf
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>{escape(title)} · pipectl</title><style>{STYLE}</style></head><body>"
        f'<header><a class="home" href="/">pipectl</a><span>{escape(title)}</span>{logout}</header>'
        f"<main>{body}</main></body></html>"
    )


def csrf_field(token: str | None) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(token or "")}">'


def state(word: str, css: str | None = None) -> str:
    """A state as a coloured badge that says it in words too."""
    return f'<span class="state {escape(css or word)}">{escape(word)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "") -> str:
    """`rows` hold HTML already escaped (cells are built with `text` or the helpers here)."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cap = f'<caption class="muted">{escape(caption)}</caption>' if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text(value: object) -> str:
    return "—" if value is None or value == "" else escape(str(value))


def link(href: str, label: str) -> str:
    return f'<a href="{escape(href)}">{escape(label)}</a>'


def button_form(action: str, label: str, csrf: str, aria: str) -> str:
    return (
        f'<form class="inline" method="post" action="{escape(action)}">{csrf_field(csrf)}'
        f'<button type="submit" aria-label="{escape(aria)}">{escape(label)}</button></form>'
    )
