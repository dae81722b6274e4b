"""Presets, prompt templates and <lora:name:weight> tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdrest.models.presets import (
    PromptTemplate,
    apply_template,
    load_preset,
    load_template,
    parse_lora_tags,
)

# ------------------------------------------------------------------ presets


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("fast.json", '{"steps": 30, "cfg_scale": 6, "sampler": "dpm++2m"}'),
        ("fast.yaml", "steps: 30\ncfg_scale: 6\nsampler: dpm++2m\n"),
        ("fast.yml", "# comment\nsteps: 30\ncfg_scale: 6.0\nsampler: 'dpm++2m'\n"),
    ],
)
def test_load_preset_formats(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert load_preset(path) == {"steps": 30, "cfg_scale": 6, "sampler": "dpm++2m"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("list.json", "[1, 2]", "must be a mapping of request fields, not a list"),
        ("str.yaml", "just text", "not a str"),
        ("bad.json", '{"steps": 30,}', "invalid JSON"),
        ("bad.yaml", "steps: [1, 2\nsampler: x", "invalid YAML"),
        ("tabs.yml", "steps: 1\n\tcfg: 2\n", "line 2"),
        ("empty.yaml", "", "empty preset"),
        ("keys.yaml", "1: one\n", "field names must be strings"),
        ("preset.toml", "steps = 1", ".json, .yaml or .yml"),
    ],
)
def test_load_preset_errors_name_the_file_and_the_problem(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_preset(path)
    assert name in str(info.value) and message in str(info.value)


def test_yaml_preset_cannot_construct_python_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("steps: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_preset(path)


# ------------------------------------------------------------------ templates


def test_load_templates(tmp_path: Path) -> None:
    txt = tmp_path / "ink.txt"
    txt.write_text("ink drawing of {prompt}, high contrast\n")
    js = tmp_path / "photo.json"
    js.write_text('{"template": "photo of {prompt}", "description": "35mm look"}')
    assert load_template(txt) == PromptTemplate("ink drawing of {prompt}, high contrast")
    assert load_template(js) == PromptTemplate("photo of {prompt}", "35mm look")


@pytest.mark.parametrize(
    "text",
    [
        '{"description": "no template"}',
        '["photo of {prompt}"]',
        '{"template": 3}',
        '{"template": "x", "description": 5}',
        "{bad",
    ],
)
def test_bad_json_templates(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"t\.json"):
        load_template(path)


@pytest.mark.parametrize(
    ("template", "prompt", "negative", "expected"),
    [
        ("photo of {prompt}, 35mm", "a cat", False, "photo of a cat, 35mm"),
        ("{prompt}, {prompt}", "x", False, "x, x"),
        ("masterpiece", "a cat", False, "masterpiece, a cat"),
        ("masterpiece", "", False, "masterpiece"),
        ("{prompt}, masterpiece", "", False, "masterpiece"),
        ("{a|b} style, {prompt}", "a cat", False, "{a|b} style, a cat"),  # other braces survive
        ("blurry, lowres", "ugly", True, "blurry, lowres"),
        ("blurry, {prompt}", "ugly", True, "blurry, ugly"),
        ("blurry, {prompt}", "", True, "blurry"),
    ],
)
def test_apply_template(template: str, prompt: str, negative: bool, expected: str) -> None:
    assert apply_template(template, prompt, negative=negative) == expected


# ------------------------------------------------------------------ <lora:...> tags


@pytest.mark.parametrize(
    ("prompt", "clean", "loras"),
    [
        ("a cat <lora:ink:0.8>", "a cat", [("ink", 0.8)]),
        ("<lora:ink> a cat", "a cat", [("ink", 1.0)]),
        ("a cat, <lora:styles/ink.v2:-0.5>, sitting", "a cat, sitting", [("styles/ink.v2", -0.5)]),
        ("a cat,<lora:a:1><lora:b:.25>, on a mat", "a cat, on a mat", [("a", 1.0), ("b", 0.25)]),
        ("<LoRA:Mixed Case:1e-1>", "", [("Mixed Case", 0.1)]),
        ("a <lora:x:1> b <lora:x:0.5> c", "a b c", [("x", 1.0), ("x", 0.5)]),
    ],
)
def test_parse_lora_tags(prompt: str, clean: str, loras: list) -> None:
    assert parse_lora_tags(prompt) == (clean, loras)


def test_prompt_without_tags_is_returned_unchanged() -> None:
    prompt = "a  cat ,, <hypernet:x:1> (detailed:1.2)"
    assert parse_lora_tags(prompt) == (prompt, [])


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a <lora:ink:strong>", "<lora:ink:strong>: weight 'strong' is not a number"),
        ("a <lora:ink:>", "<lora:ink:>: weight '' is not a number"),
        ("a <lora:ink:1_0>", "weight '1_0' is not a number"),
        ("a <lora:ink:nan>", "not a number"),
        ("a <lora:ink:1e999>", "out of range"),
        ("a <lora::1>", "<lora::1>: missing LoRA name"),
        ("a <lora:ink:0.5:0.7>", "only <lora:name:weight>"),
    ],
)
def test_malformed_lora_tags_raise_naming_the_tag(prompt: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_lora_tags(prompt)
    assert message in str(info.value)
