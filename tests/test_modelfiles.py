"""``sdrest convert`` (the library's GGUF converter, with a weight type and tensor type rules) and
``sdrest metadata`` (a model file's header as JSON), run as the command runs them."""

from __future__ import annotations

import json

import pytest

from sdrest.cli import main, server_main


def _metadata(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["metadata", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_convert_quantises_with_tensor_type_rules(models, tmp_path, capsys) -> None:
    source = _metadata(capsys, str(models.lora), "--tensors")
    assert source["format"] == "safetensors" and "Q8_0" not in source["dtypes"] and source["kind"] == "lora"
    output = tmp_path / "lora.gguf"
    rule = r"attn1_to_q\.lora_down=f32"
    assert main(["convert", str(models.lora), "-o", str(output), "--type", "q8_0", "--tensor-type-rules", rule]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    converted = _metadata(capsys, str(output), "--tensors")
    assert converted["format"] == "gguf" and converted["tensors"] == source["tensors"]
    assert converted["parameters"] == source["parameters"] and converted["kind"] == "lora"
    types = {t["name"]: t["dtype"] for t in converted["tensor_list"]}
    ruled = [name for name in types if "attn1_to_q.lora_down" in name]
    assert ruled and all(types[name] == "F32" for name in ruled)
    # The other 2-D down projections (320 wide: whole q8_0 blocks) took the weight type.
    others = [t["name"] for t in converted["tensor_list"] if t["name"].endswith("attn1_to_k.lora_down.weight")]
    assert others and all(types[name] == "Q8_0" for name in others)


def test_convert_default_output_refuses_to_overwrite(models, tmp_path, capsys) -> None:
    source = tmp_path / "style.safetensors"
    source.write_bytes(models.lora.read_bytes())
    assert main(["convert", str(source), "--type", "f16"]) == 0
    output = tmp_path / "style.f16.gguf"
    assert capsys.readouterr().out.strip() == str(output) and output.stat().st_size > 0
    assert main(["convert", str(source), "--type", "f16"]) == 1
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "q9_9"], "output_type"),
        (["--tensor-type-rules", "no rules here"], "--tensor-type-rules"),
    ],
)
def test_convert_refuses_bad_options(models, tmp_path, capsys, args, message) -> None:
    output = tmp_path / "out.gguf"
    assert main(["convert", str(models.lora), "-o", str(output), *args]) in (1, 2)
    assert message in capsys.readouterr().err and not output.exists()


def test_convert_refuses_a_missing_input(tmp_path, capsys) -> None:
    assert main(["convert", str(tmp_path / "nope.safetensors")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_metadata_summarises_a_model_file_and_refuses_a_non_model(models, tmp_path, capsys) -> None:
    meta = _metadata(capsys, str(models.esrgan))
    assert meta["file"] == models.esrgan.name and meta["bytes"] == models.esrgan.stat().st_size
    assert meta["tensors"] > 0 and meta["kind"] == "esrgan" and "tensor_list" not in meta
    junk = tmp_path / "notes.safetensors"
    junk.write_text("not a model")
    assert server_main(["metadata", str(junk)]) == 1
    assert "notes.safetensors" in capsys.readouterr().err
