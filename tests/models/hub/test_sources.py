"""Model sources: every accepted spelling parses to its source (and back from its canonical text);
every malformed one is refused with a message naming the problem."""

from __future__ import annotations

import re

import pytest

from sdrest.models.hub.sources import CivitaiSource, HfSource, SourceError, UrlSource, parse_source

ACCEPTED = [
    ("hf:owner/repo/model.safetensors", HfSource("owner/repo", "model.safetensors")),
    ("hf:owner/repo/sub/dir/model.gguf@v1.0", HfSource("owner/repo", "sub/dir/model.gguf", "v1.0")),
    ("  hf:owner/repo/a.safetensors@refs/pr/1 ", HfSource("owner/repo", "a.safetensors", "refs/pr/1")),
    ("HF:o/r.x/f.gguf@" + "a" * 40, HfSource("o/r.x", "f.gguf", "a" * 40)),
    (
        "https://huggingface.co/owner/repo/blob/main/sub/m.safetensors",
        HfSource("owner/repo", "sub/m.safetensors", "main"),
    ),
    (
        "https://huggingface.co/owner/repo/resolve/abc123/m.gguf?download=true",
        HfSource("owner/repo", "m.gguf", "abc123"),
    ),
    ("https://hf.co/owner/repo/resolve/main/m%2Bx.gguf", HfSource("owner/repo", "m+x.gguf", "main")),
    ("civitai:128713", CivitaiSource(128713)),
    ("https://civitai.com/models/4384?modelVersionId=128713", CivitaiSource(128713)),
    ("https://civitai.com/models/4384/dreamshaper?modelVersionId=128713", CivitaiSource(128713)),
    ("https://civitai.com/models/4384", CivitaiSource(None, 4384)),
    ("https://www.civitai.com/models/4384/dreamshaper", CivitaiSource(None, 4384)),
    ("https://civitai.com/api/download/models/128713", CivitaiSource(128713)),
    ("https://civitai.com/api/download/models/128713?type=VAE", CivitaiSource(128713, None, "VAE")),
    ("https://example.com/models/m.safetensors", UrlSource("https://example.com/models/m.safetensors")),
    ("https://example.com/m.gguf?sig=1#frag", UrlSource("https://example.com/m.gguf?sig=1")),
    ("http://mirror.lan:8080/m.safetensors", UrlSource("http://mirror.lan:8080/m.safetensors")),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms_parse_and_round_trip(text: str, expected: object) -> None:
    parsed = parse_source(text)
    assert parsed == expected
    assert parse_source(parsed.text) == parsed


def test_canonical_texts() -> None:
    assert parse_source("https://huggingface.co/o/r/blob/main/a/b.gguf").text == "hf:o/r/a/b.gguf@main"
    assert parse_source("https://civitai.com/models/1?modelVersionId=2").text == "civitai:2"
    assert parse_source("hf:o/r/a.gguf").text == "hf:o/r/a.gguf"


MALFORMED = [
    ("", "empty source"),
    ("   ", "empty source"),
    ("hf:owner/repo", "must be hf:OWNER/REPO/PATH"),
    ("hf:owner//file.gguf", "must be hf:OWNER/REPO/PATH"),
    ("hf:owner/repo/", "names no file"),
    ("hf:owner/repo/a.gguf@", "empty revision"),
    ("hf:owner/repo/../x.gguf", "'..' parts"),
    ("hf:owner/repo/a//b.gguf", "empty, '.' or '..' parts"),
    ("hf:owner/repo/a\\b.gguf", "backslashes"),
    ("hf:-bad/repo/a.gguf", "invalid Hugging Face owner"),
    ("hf:owner/re..po/a.gguf", "invalid Hugging Face repository name"),
    ("hf:owner/repo/a.gguf@../main", "invalid revision"),
    ("hf:owner/repo/a b.gguf", "spaces or control characters"),
    ("hf:owner/repo/a\x00.gguf", "spaces or control characters"),
    ("https://huggingface.co/o/r/resolve/main/a%0A.gguf", "spaces or control characters"),
    ("civitai:", "numeric model version id"),
    ("civitai:abc", "numeric model version id"),
    ("civitai:0", "invalid Civitai model version id"),
    ("civitai:\uff11\uff12", "numeric model version id"),
    ("https://civitai.com/api/download/models/\uff11", "a Civitai URL must be"),
    ("https://civitai.com/models/abc", "a Civitai URL must be"),
    ("https://civitai.com/models/4?modelVersionId=x", "modelVersionId must be a number"),
    ("https://civitai.com/api/download/models/9?type=../x", "invalid Civitai file type"),
    ("https://civitai.com/user/someone", "a Civitai URL must be"),
    ("https://huggingface.co/owner/repo", "a Hugging Face URL must be"),
    ("https://huggingface.co/owner/repo/tree/main/a.gguf", "a Hugging Face URL must be"),
    ("https://user:secret@example.com/m.gguf", "credentials in a source URL"),
    ("https://example.com/", "names no file"),
    ("https://:80/m.gguf", "URL has no host"),
    ("https://example.com:99999/m.gguf", "malformed URL"),
    ("ftp://example.com/m.gguf", "unsupported source scheme 'ftp'"),
    ("file:///etc/passwd", "unsupported source scheme 'file'"),
    ("models/m.safetensors", "unrecognised source"),
    ("https://example.com/" + "a" * 3000, "longer than 2048"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_sources_are_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=re.escape(message)) as raised:
        parse_source(text)
    assert isinstance(raised.value, ValueError)


def test_a_source_must_be_a_string() -> None:
    with pytest.raises(SourceError, match="must be a string"):
        parse_source(42)  # type: ignore[arg-type]
