"""The spec's three client examples: where the spec prints them, and their copies in examples/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
#: The product's original README (the spec), kept beside the repository in shared/.
SPEC = ROOT.parent / "shared" / "seed-README.txt"
#: Where the spec prints each example: the text between these two headings.
SECTIONS = {
    "generate_requests.py": ("\nPython with requests\n", "\nJavaScript with fetch\n"),
    "generate_fetch.js": ("\nJavaScript with fetch\n", "\ncURL\n"),
    "generate_curl.sh": ("\ncURL\n", "\nDevelopment Roadmap\n"),
}
#: The server address every example is written for; tests put their server's in its place.
SPEC_SERVER = "http://localhost:8080"


def spec_example(name: str) -> str:
    """The example as the spec prints it."""
    start, end = SECTIONS[name]
    text = SPEC.read_text(encoding="utf-8")
    begin = text.index(start) + len(start)
    return text[begin : text.index(end, begin)].strip("\n") + "\n"


def example(name: str, server: str) -> str:
    """The copy in examples/, pointed at ``server`` (nothing else changed)."""
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert text.count(SPEC_SERVER) >= 1
    return text.replace(SPEC_SERVER, server)
