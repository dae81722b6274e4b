"""Architecture detection from headers only: every format, every type, and bad files."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from model_files import (
    FakeTensor,
    fake_torch,
    gguf_bytes,
    tensors_of,
    torch_pickle,
    write_gguf,
    write_torch_legacy,
    write_torch_zip,
)
from sdrest.models.detect import Detection, detect
from sdrest.models.headers import MAX_SAFETENSORS_HEADER, read_gguf
from sdrest.models.types import ModelType
from sdrest.synthetic.headers import (
    esrgan_basicsr,
    esrgan_old_names,
    flux_model,
    kohya_lora,
    sd1_checkpoint,
    sd2_checkpoint,
    sd3_checkpoint,
    sd_unet,
    sd_vae,
    sdxl_checkpoint,
    taesd,
    write_sparse_safetensors,
)

CKPT = ModelType.CHECKPOINT


def _detect(
    tmp_path: Path,
    tensors: dict,
    model_type: ModelType = CKPT,
    name: str = "m.safetensors",
    metadata: dict | None = None,
) -> Detection:
    return detect(write_sparse_safetensors(tmp_path / name, tensors, metadata), model_type)


# ------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize(
    ("tensors", "arch", "variant"),
    [
        (sd1_checkpoint(), "sd1", None),
        (sd1_checkpoint(middle=False), "sd1", "tiny"),
        (sd1_checkpoint(middle=False, out_71=False), "sd1", "sdxs"),
        (sd1_checkpoint(in_channels=9), "sd1", "inpaint"),
        (sd1_checkpoint(in_channels=8), "sd1", "pix2pix"),
        (sd2_checkpoint(), "sd2", None),
        (sdxl_checkpoint(), "sdxl", None),
        (sdxl_checkpoint(in_channels=9), "sdxl", "inpaint"),
        (sd3_checkpoint(), "sd3", None),
        ({**flux_model(), **sd_vae(16)}, "flux", None),
        (flux_model(in_features=384), "flux", "fill"),
        (flux_model(prefix=""), "flux", "diffusion_model"),
        (sd_unet(768, prefix=""), "sd1", "unet_only"),
        (sd_unet(2048), "sdxl", "unet_only"),
        (sd_unet(1280), "sdxl_refiner", "refiner"),
        (
            {
                "model.diffusion_model.double_stream_modulation_img.lin.weight": (18432, 3072),
                "model.diffusion_model.double_blocks.0.img_attn.qkv.weight": (9216, 3072),
            },
            "flux2",
            "klein",
        ),
        (
            {"model.diffusion_model.transformer_blocks.0.img_mod.1.weight": (18432, 3072)},
            "qwen_image",
            "diffusion_model",
        ),
        ({"model.diffusion_model.cap_embedder.0.weight": (2560,)}, "z_image", "diffusion_model"),
        (
            {
                "model.diffusion_model.blocks.0.cross_attn.norm_k.weight": (5120,),
                "model.diffusion_model.patch_embedding.weight": (5120, 36, 1, 2, 2),
            },
            "wan",
            "i2v",
        ),
    ],
)
def test_checkpoint_architectures(tmp_path: Path, tensors: dict, arch: str, variant: str | None) -> None:
    result = _detect(tmp_path, tensors)
    assert result.error is None
    assert (result.architecture, result.variant) == (arch, variant)


def test_checkpoint_details_name_components_and_context(tmp_path: Path) -> None:
    result = _detect(tmp_path, sd1_checkpoint())
    assert result.details["components"] == ["diffusion_model", "text_encoder", "vae"]
    assert result.details["context_dim"] == 768
    assert result.details["in_channels"] == 4
    assert result.details["format"] == "safetensors"
    assert result.details["tensors"] == len(sd1_checkpoint())
    assert result.details["dtypes"] == {"F16": len(sd1_checkpoint())}
    assert result.details["kind"] == "checkpoint"


def test_diffusion_model_type_uses_the_checkpoint_rules(tmp_path: Path) -> None:
    result = _detect(tmp_path, flux_model(prefix=""), ModelType.DIFFUSION_MODEL)
    assert (result.architecture, result.variant) == ("flux", "diffusion_model")
    assert result.details["kind"] == "diffusion_model"


def test_a_lora_in_the_checkpoint_folder_is_unknown_but_its_kind_is_reported(tmp_path: Path) -> None:
    lora = kohya_lora({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (768, 320)})
    result = _detect(tmp_path, lora)
    assert result.architecture == "unknown" and result.error is None
    assert result.details["kind"] == "lora"


# ------------------------------------------------------------------ LoRAs

SD1_LORA = kohya_lora(
    {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (768, 320),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (768, 768),
    }
)
SD2_LORA = kohya_lora(
    {
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj": (1024, 1024),
        "lora_unet_down_blocks_0_attentions_0_proj_in": (320, 320),
    }
)
SDXL_LORA = kohya_lora(
    {
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": (2048, 640),
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj": (768, 768),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj": (1280, 1280),
    },
    rank=16,
)
FLUX_KOHYA = kohya_lora({"lora_unet_double_blocks_0_img_attn_qkv": (3072, 9216)})
FLUX_PEFT = {
    "transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight": (16, 3072),
    "transformer.single_transformer_blocks.0.attn.to_k.lora_B.weight": (3072, 16),
}
SD3_LORA = {
    "transformer.transformer_blocks.0.attn.to_k.lora_A.weight": (16, 1536),
    "transformer.transformer_blocks.0.attn.to_k.lora_B.weight": (1536, 16),
}


@pytest.mark.parametrize(
    ("tensors", "arch", "lora_format"),
    [
        (SD1_LORA, "sd1", "kohya"),
        (SD2_LORA, "sd2", "kohya"),
        (SDXL_LORA, "sdxl", "kohya"),
        (FLUX_KOHYA, "flux", "kohya"),
        (FLUX_PEFT, "flux", "peft"),
        (SD3_LORA, "sd3", "peft"),
    ],
)
def test_lora_base_architecture(tmp_path: Path, tensors: dict, arch: str, lora_format: str) -> None:
    result = _detect(tmp_path, tensors, ModelType.LORA)
    assert result.architecture == arch
    assert result.details["lora_format"] == lora_format
    assert result.details["kind"] == "lora"


def test_lora_rank_is_reported(tmp_path: Path) -> None:
    assert _detect(tmp_path, SDXL_LORA, ModelType.LORA).details["rank"] == 16


def test_lora_falls_back_to_trainer_metadata_only_when_keys_say_nothing(tmp_path: Path) -> None:
    ambiguous = kohya_lora({"lora_unet_down_blocks_0_resnets_0_conv1": (320, 320)})
    result = _detect(tmp_path, ambiguous, ModelType.LORA, metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    assert (result.architecture, result.details["source"]) == ("sdxl", "metadata")
    assert _detect(tmp_path, ambiguous, ModelType.LORA, name="n.safetensors").architecture == "unknown"
    # Keys win over (wrong) metadata.
    assert (
        _detect(
            tmp_path,
            SD1_LORA,
            ModelType.LORA,
            name="w.safetensors",
            metadata={"ss_base_model_version": "sdxl_base_v1-0"},
        ).architecture
        == "sd1"
    )


# ------------------------------------------------------------------ VAE / TAESD


@pytest.mark.parametrize(
    ("tensors", "arch", "channels"),
    [
        (sd_vae(4, prefix=""), "sd", 4),
        (sd_vae(16, prefix=""), "sd3_flux", 16),
        (sd_vae(32, prefix="vae."), "flux2", 32),
    ],
)
def test_vae_latent_families(tmp_path: Path, tensors: dict, arch: str, channels: int) -> None:
    result = _detect(tmp_path, tensors, ModelType.VAE)
    assert result.architecture == arch
    assert result.details["latent_channels"] == channels


def test_sd_vae_notes_that_sdxl_cannot_be_told_apart(tmp_path: Path) -> None:
    result = _detect(tmp_path, sd_vae(4, prefix=""), ModelType.VAE)
    assert "SDXL" in result.details["note"]
    assert result.details["compatible"] == ["sd1", "sd2", "sdxl"]


@pytest.mark.parametrize(
    ("latent", "name", "arch"),
    [
        (4, "taesd_decoder.safetensors", "taesd"),
        (4, "taesdxl.safetensors", "taesdxl"),
        (16, "taef1.safetensors", "taef1"),
        (16, "taesd3.safetensors", "taesd3"),
        (16, "tiny.safetensors", "taesd3_f1"),
    ],
)
def test_taesd_by_latent_channels_and_name(tmp_path: Path, latent: int, name: str, arch: str) -> None:
    result = _detect(tmp_path, taesd(latent), ModelType.TAESD, name=name)
    assert result.architecture == arch
    assert result.details["latent_channels"] == latent


# ------------------------------------------------------------------ upscalers, controlnets, embeddings


def test_esrgan_safetensors_blocks_and_scale(tmp_path: Path) -> None:
    result = _detect(tmp_path, esrgan_basicsr(blocks=6, scale=2), ModelType.ESRGAN)
    assert result.architecture == "esrgan"
    assert (result.details["num_blocks"], result.details["scale"], result.details["layout"]) == (6, 2, "basicsr")


def test_esrgan_pth_zip_with_tensors(tmp_path: Path) -> None:
    path = write_torch_zip(tmp_path / "x4.pth", {"params_ema": tensors_of(esrgan_basicsr())})
    result = detect(path, ModelType.UPSCALER)
    assert result.error is None
    assert result.architecture == "esrgan"
    assert (result.details["num_blocks"], result.details["scale"]) == (23, 4)
    assert result.details["format"] == "torch_zip"
    assert result.details["wrapper"] == "params_ema"
    assert result.details["dtypes"] == {"F16": len(esrgan_basicsr())}


def test_esrgan_pth_with_placeholder_values_is_classified_by_key_names(tmp_path: Path) -> None:
    path = write_torch_zip(tmp_path / "old.pth", data_pkl=pickle.dumps(dict.fromkeys(esrgan_old_names(), 0)))
    result = detect(path, ModelType.ESRGAN)
    assert result.architecture == "esrgan"
    assert (result.details["layout"], result.details["num_blocks"], result.details["scale"]) == ("esrgan", 23, 4)
    assert result.details["parameters"] is None  # no shapes, so no (wrong) parameter count


@pytest.mark.parametrize(
    ("tensors", "arch"),
    [
        (
            {
                "control_model.input_hint_block.0.weight": (16, 3, 3, 3),
                "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
            },
            "sd1",
        ),
        (
            {
                "controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
                "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
            },
            "sdxl",
        ),
    ],
)
def test_controlnet(tmp_path: Path, tensors: dict, arch: str) -> None:
    result = _detect(tmp_path, tensors, ModelType.CONTROLNET)
    assert result.architecture == arch
    assert result.details["kind"] == "controlnet"


@pytest.mark.parametrize(
    ("tensors", "arch"),
    [
        ({"emb_params": (4, 768)}, "sd1"),
        ({"emb_params": (2, 1024)}, "sd2"),
        ({"clip_l": (3, 768), "clip_g": (3, 1280)}, "sdxl"),
    ],
)
def test_embedding_safetensors(tmp_path: Path, tensors: dict, arch: str) -> None:
    assert _detect(tmp_path, tensors, ModelType.EMBEDDING).architecture == arch


def test_a1111_embedding_in_the_legacy_torch_format(tmp_path: Path) -> None:
    obj = {"string_to_token": {"*": 265}, "string_to_param": {"*": FakeTensor((2, 1024))}, "name": "x", "step": 9}
    result = detect(write_torch_legacy(tmp_path / "style.pt", obj), ModelType.EMBEDDING)
    assert result.error is None
    assert (result.architecture, result.details["vectors"]) == ("sd2", 2)
    assert result.details["format"] == "torch_legacy"


@pytest.mark.parametrize(
    ("tensors", "arch"),
    [
        (
            {
                "text_model.embeddings.token_embedding.weight": (49408, 768),
                "text_model.encoder.layers.0.self_attn.q_proj.weight": (768, 768),
            },
            "clip_l",
        ),
        ({"text_model.embeddings.token_embedding.weight": (49408, 1280)}, "clip_g"),
        ({"shared.weight": (32128, 4096), "encoder.block.0.layer.0.SelfAttention.q.weight": (4096, 4096)}, "t5xxl"),
        ({"model.layers.0.self_attn.q_proj.weight": (3584, 3584)}, "llm"),
    ],
)
def test_text_encoders(tmp_path: Path, tensors: dict, arch: str) -> None:
    assert _detect(tmp_path, tensors, ModelType.TEXT_ENCODER).architecture == arch


# ------------------------------------------------------------------ PyTorch pickles: never executed


def test_sd1_inpaint_ckpt_gets_shapes_from_the_pickle(tmp_path: Path) -> None:
    path = write_torch_zip(
        tmp_path / "inpaint.ckpt", {"state_dict": tensors_of(sd1_checkpoint(in_channels=9)), "global_step": 840000}
    )
    result = detect(path, CKPT)
    assert (result.architecture, result.variant) == ("sd1", "inpaint")
    assert result.details["wrapper"] == "state_dict"
    assert "unsafe_globals" not in result.details


def test_malicious_pickle_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    data = torch_pickle({"state_dict": tensors_of(sd1_checkpoint()), "callback": Payload()})
    path = write_torch_zip(tmp_path / "evil.ckpt", data_pkl=data)

    result = detect(path, CKPT)
    assert not marker.exists()
    assert result.architecture == "sd1"  # still classified
    assert "posix.mkdir" in result.details["unsafe_globals"]

    # Proof that the file is really malicious: a plain unpickler runs the payload.
    class Loader(pickle.Unpickler):
        def persistent_load(self, pid):
            return None

    with fake_torch(), zipfile.ZipFile(path) as archive:
        Loader(archive.open("archive/data.pkl")).load()
    assert marker.is_dir()


def test_pickle_with_unmodelled_opcodes_falls_back_to_names(tmp_path: Path) -> None:
    obj = {name: pickle.PickleBuffer(b"xx") for name in esrgan_old_names(blocks=2)}
    data = pickle.dumps(obj, protocol=5, buffer_callback=lambda buffer: False)  # NEXT_BUFFER opcodes
    result = detect(write_torch_zip(tmp_path / "x.pth", data_pkl=data), ModelType.ESRGAN)
    assert result.details.get("pickle_fallback") is True
    assert (result.architecture, result.details["num_blocks"]) == ("esrgan", 2)


# ------------------------------------------------------------------ GGUF

FLUX_GGUF_KV = [
    ("general.architecture", "str", "flux"),
    ("general.quantization_version", "u32", 2),
    ("general.file_type", "i64", 8),
    ("some.scale", "f32", 0.5),
    ("some.flag", "bool", True),
    ("tokenizer.tokens", "arr:str", ["<s>", "</s>", "a"]),
    ("tokenizer.scores", "arr:f32", [0.0] * 1000),
]


def test_gguf_metadata_and_tensor_infos(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "flux-q8.gguf", FLUX_GGUF_KV, {name: (shape, 8) for name, shape in flux_model(prefix="").items()}
    )
    header = read_gguf(path)
    assert header.metadata["general.architecture"] == "flux"
    assert header.metadata["general.quantization_version"] == 2
    assert header.metadata["some.scale"] == 0.5 and header.metadata["some.flag"] is True
    assert header.metadata["tokenizer.tokens"] == ["<s>", "</s>", "a"]
    assert header.metadata["tokenizer.scores"] == "<array of 1000>"
    # Dimensions come back in torch order although GGUF stores them innermost first.
    assert header.tensors["img_in.weight"].shape == (3072, 64)
    assert header.tensors["img_in.weight"].dtype == "Q8_0"

    result = detect(path, ModelType.DIFFUSION_MODEL)
    assert (result.architecture, result.variant) == ("flux", "diffusion_model")
    assert result.details["dtypes"] == {"Q8_0": 3}
    assert result.details["gguf_version"] == 3


def test_gguf_v2_sd1_checkpoint_with_mixed_types(tmp_path: Path) -> None:
    tensors = {
        name: (shape, 1 if name.endswith("token_embedding.weight") else 12)
        for name, shape in sd1_checkpoint(in_channels=9).items()
    }
    result = detect(write_gguf(tmp_path / "sd1.gguf", [], tensors, version=2), CKPT)
    assert (result.architecture, result.variant) == ("sd1", "inpaint")
    assert result.details["dtypes"]["F16"] == 1 and result.details["dtypes"]["Q4_K"] == len(tensors) - 1


# ------------------------------------------------------------------ bad files: error set, never raise


def _truncated_gguf() -> bytes:
    data = gguf_bytes(FLUX_GGUF_KV, {n: (s, 8) for n, s in flux_model(prefix="").items()})
    return data[: len(data) - 60]


def _header_only(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


def _zip_without_pickle(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/version", "3\n")


def _cut_zip(path: Path) -> None:
    write_torch_zip(path, {"state_dict": tensors_of(sd1_checkpoint())})
    path.write_bytes(path.read_bytes()[:100])


BAD_FILES = {
    "empty.safetensors": (b"", "empty file"),
    "short.safetensors": (b"\x05\x00\x00", "truncated safetensors header"),
    "cut_header.safetensors": (struct.pack("<Q", 1000) + b'{"a": {', "truncated safetensors header"),
    "huge_header.safetensors": (struct.pack("<Q", MAX_SAFETENSORS_HEADER + 1) + b"{}", "claims"),
    "list.safetensors": (struct.pack("<Q", 6) + b"[1, 2]", "expected an object"),
    "badjson.safetensors": (struct.pack("<Q", 5) + b"{oops", "invalid safetensors header JSON"),
    "badentry.safetensors": (struct.pack("<Q", 12) + b'{"a": "F16"}', "malformed entry for tensor 'a'"),
    "cut_data.safetensors": (
        _header_only({"w": {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 32]}}) + b"\0" * 8,
        "truncated safetensors data",
    ),
    "empty.gguf": (b"", "empty file"),
    "magic.gguf": (b"GGML" + b"\x00" * 20, "bad magic"),
    "v1.gguf": (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "unsupported GGUF version 1"),
    "count.gguf": (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "claims"),
    "cut.gguf": (_truncated_gguf(), "truncated GGUF"),
    "text.pth": (b"this is not a model, just some text", "not a zip archive"),
    "empty.ckpt": (b"", "empty file"),
    "garbage.pt": (b"\x80\x02garbage that is no pickle", "not a zip archive"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_corrupt_files_give_unknown_with_a_reason(tmp_path: Path, name: str) -> None:
    data, reason = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = detect(path, ModelType.ESRGAN if name.endswith(".pth") else CKPT)
    assert result.architecture == "unknown"
    assert result.error is not None and reason in result.error


@pytest.mark.parametrize(
    ("builder", "reason"),
    [
        (_zip_without_pickle, "no data.pkl"),
        (_cut_zip, "not a zip archive"),
        (lambda p: write_torch_zip(p, data_pkl=b"\xff\xfe\xfd not a pickle"), "corrupt pickle"),
    ],
)
def test_corrupt_torch_zips(tmp_path: Path, builder, reason: str) -> None:
    path = tmp_path / "bad.ckpt"
    builder(path)
    result = detect(path, CKPT)
    assert result.architecture == "unknown" and reason in (result.error or "")


def test_no_type_raises_on_any_bad_file(tmp_path: Path) -> None:
    for name, (data, _reason) in BAD_FILES.items():
        path = tmp_path / name
        path.write_bytes(data)
        for model_type in ModelType.singles():
            result = detect(path, model_type)
            assert isinstance(result, Detection)
            assert result.architecture == "unknown"


def test_missing_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    result = detect(tmp_path / "gone.safetensors", CKPT)
    assert result.architecture == "unknown" and "unreadable" in (result.error or "")


def test_presets_and_templates_are_validated(tmp_path: Path) -> None:
    good = tmp_path / "fast.yaml"
    good.write_text("steps: 4\ncfg_scale: 1.5\n")
    bad = tmp_path / "broken.json"
    bad.write_text("[1, 2]")
    template = tmp_path / "style.txt"
    template.write_text("oil painting of {prompt}\n")
    assert detect(good, ModelType.PRESETS).details["fields"] == ["cfg_scale", "steps"]
    broken = detect(bad, ModelType.PRESETS)
    assert broken.architecture == "unknown" and "mapping" in (broken.error or "")
    assert detect(template, ModelType.PROMPTS).details["has_placeholder"] is True


# ------------------------------------------------------------------ the real synthetic checkpoint


def test_real_synthetic_sd1_checkpoint_header(models) -> None:
    """The ~1 GB synthetic SD1 file from the test suite: only its header is read."""
    result = detect(models.checkpoint, CKPT)
    assert (result.architecture, result.variant) == ("sd1", "tiny")
    assert result.details["components"] == ["diffusion_model", "text_encoder", "vae"]
