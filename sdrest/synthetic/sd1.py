"""A random-weight SD1 checkpoint that the native library loads and runs.

Why this shape: the real loader (``ModelLoader::get_sd_version`` in
src/model.cpp) classifies a model purely by tensor names/shapes, and the
network classes then demand every tensor they declare with the exact shape.
So the file must use the *real* names and shapes; only the values are fake.

Size choices, all taken from the pinned source:

* UNet: the SD1 "tiny UNet" (BK-SDM-Tiny layout) - no ``middle_block``, one
  ResBlock per level, ``channel_mult = {1, 2, 4}``. It is recognised as
  ``VERSION_SD1_TINY_UNET`` because ``middle_block.1`` is absent but
  ``output_blocks.7.1`` exists (unet.hpp). ``model_channels = 320`` is
  hard-coded, so this is the smallest SD1 UNet the library builds (~323M
  params). (The even smaller "SDXS-512-DS" layout would force the TAE decoder
  and renames the VAE tensors, so it is not used.)
* Text encoder: CLIP ViT-L/14 text model, fixed at 12 x 768 (~123M params);
  the width 768 is what marks the file as SD1.
* VAE: the decoder width is inferred from ``first_stage_model.decoder.conv_in``
  (``detect_decoder_ch`` in auto_encoder_kl.hpp) so it is shrunk to ch=32
  (~3.1M params incl. post_quant_conv); ``ch_mult``, ``num_res_blocks`` and z_channels are fixed.
  The *encoder* width is NOT inferred (always ch=128), so it keeps full size
  (~34M params). Both are written because img2img/inpaint need the encoder.
  The standalone VAE file (``write_sd1_vae``) has the same layout.

Initialisation: UNet/CLIP N(0, 0.02); VAE 1/sqrt(fan_in) so decoded images
use the full pixel range instead of being almost black, and a scaled
``quant_conv`` so encoded latents are large enough for img2img/inpaint to
depend on the input image (see ``vae_specs``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ._layers import SpecList, materialize
from .safetensors import TensorSpec, write_safetensors

__all__ = [
    "CLIP_PREFIX",
    "UNET_PREFIX",
    "VAE_DECODER_CH",
    "VAE_PREFIX",
    "clip_l_specs",
    "sd1_tensor_specs",
    "unet_specs",
    "vae_specs",
    "write_sd1_checkpoint",
    "write_sd1_vae",
]

UNET_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."
VAE_PREFIX = "first_stage_model."

#: Decoder base width of the synthetic VAE (must be a multiple of 32 for the
#: 32-group GroupNorm; the loader reads it back from decoder.conv_in).
VAE_DECODER_CH = 32
#: Encoder base width; fixed in the native AutoEncoderKLModel (dd_config.ch).
VAE_ENCODER_CH = 128

# -- UNet (mirrors UnetModelBlock's constructor for VERSION_SD1_TINY_UNET) ----

_MODEL_CHANNELS = 320
_TIME_EMBED_DIM = 1280
_CONTEXT_DIM = 768
_NUM_HEADS = 8


def _resblock(s: SpecList, p: str, ch: int, out: int) -> None:
    s.norm(f"{p}.in_layers.0", ch)
    s.conv(f"{p}.in_layers.2", ch, out, 3)
    s.linear(f"{p}.emb_layers.1", _TIME_EMBED_DIM, out)
    s.norm(f"{p}.out_layers.0", out)
    s.conv(f"{p}.out_layers.3", out, out, 3)
    if out != ch:
        s.conv(f"{p}.skip_connection", ch, out, 1)


def _spatial_transformer(s: SpecList, p: str, ch: int) -> None:
    # SD1: use_linear_projection = false -> proj_in/out are 1x1 convs;
    # n_head = 8, d_head = ch / 8, depth 1, inner_dim == ch.
    s.norm(f"{p}.norm", ch)
    s.conv(f"{p}.proj_in", ch, ch, 1)
    b = f"{p}.transformer_blocks.0"
    for attn, ctx in (("attn1", ch), ("attn2", _CONTEXT_DIM)):
        s.linear(f"{b}.{attn}.to_q", ch, ch, bias=False)
        s.linear(f"{b}.{attn}.to_k", ctx, ch, bias=False)
        s.linear(f"{b}.{attn}.to_v", ctx, ch, bias=False)
        s.linear(f"{b}.{attn}.to_out.0", ch, ch)
    s.linear(f"{b}.ff.net.0.proj", ch, ch * 4 * 2)  # GEGLU
    s.linear(f"{b}.ff.net.2", ch * 4, ch)
    for n in ("norm1", "norm2", "norm3"):
        s.norm(f"{b}.{n}", ch)
    s.conv(f"{p}.proj_out", ch, ch, 1)


def unet_specs(prefix: str = UNET_PREFIX) -> SpecList:
    """Tensor specs of the SD1 tiny UNet, in LDM (original checkpoint) naming."""
    s = SpecList("normal", std=0.02)
    pre = prefix
    channel_mult = (1, 2, 4)
    num_res_blocks = 1
    attention_ds = (1, 2, 4)

    s.linear(f"{pre}time_embed.0", _MODEL_CHANNELS, _TIME_EMBED_DIM)
    s.linear(f"{pre}time_embed.2", _TIME_EMBED_DIM, _TIME_EMBED_DIM)
    s.conv(f"{pre}input_blocks.0.0", 4, _MODEL_CHANNELS, 3)

    chans = [_MODEL_CHANNELS]
    ch = _MODEL_CHANNELS
    idx = 0
    ds = 1
    for i, mult in enumerate(channel_mult):
        for _ in range(num_res_blocks):
            idx += 1
            out = mult * _MODEL_CHANNELS
            _resblock(s, f"{pre}input_blocks.{idx}.0", ch, out)
            ch = out
            if ds in attention_ds:
                _spatial_transformer(s, f"{pre}input_blocks.{idx}.1", ch)
            chans.append(ch)
            idx += 1  # tiny UNet: the second ResBlock of each level is removed
        if i != len(channel_mult) - 1:
            idx += 1
            s.conv(f"{pre}input_blocks.{idx}.0.op", ch, ch, 3)
            chans.append(ch)
            ds *= 2

    # no middle_block in the tiny UNet

    idx = 0
    for i in reversed(range(len(channel_mult))):
        mult = channel_mult[i]
        for j in range(num_res_blocks + 1):
            ich = chans.pop()
            out = mult * _MODEL_CHANNELS
            _resblock(s, f"{pre}output_blocks.{idx}.0", ch + ich, out)
            ch = out
            up_idx = 1
            if ds in attention_ds:
                _spatial_transformer(s, f"{pre}output_blocks.{idx}.1", ch)
                up_idx += 1
            if i > 0 and j == num_res_blocks:
                idx += 1
                if idx == 2:
                    up_idx = 1
                s.conv(f"{pre}output_blocks.{idx}.{up_idx}.conv", ch, ch, 3)
                ds //= 2
            idx += 1

    s.norm(f"{pre}out.0", ch)
    s.conv(f"{pre}out.2", _MODEL_CHANNELS, 4, 3)
    return s


# -- CLIP ViT-L/14 text model (HF transformers naming) --------------------------


def clip_l_specs(prefix: str = CLIP_PREFIX) -> SpecList:
    """Tensor specs of the CLIP ViT-L/14 text encoder (12 layers, width 768)."""
    s = SpecList("normal", std=0.02)
    d, ff, n_layer = 768, 3072, 12
    s.weight(f"{prefix}embeddings.token_embedding.weight", (49408, d))
    s.weight(f"{prefix}embeddings.position_embedding.weight", (77, d), std=0.01)
    for i in range(n_layer):
        p = f"{prefix}encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            s.linear(f"{p}.self_attn.{proj}", d, d)
        s.norm(f"{p}.layer_norm1", d)
        s.norm(f"{p}.layer_norm2", d)
        s.linear(f"{p}.mlp.fc1", d, ff)
        s.linear(f"{p}.mlp.fc2", ff, d)
    s.norm(f"{prefix}final_layer_norm", d)
    return s


# -- VAE (LDM AutoencoderKL naming, see auto_encoder_kl.hpp) ---------------------

_VAE_CH_MULT = (1, 2, 4, 4)
_VAE_NUM_RES = 2
_VAE_Z = 4
#: Gain on quant_conv's mean rows (see vae_specs).
_ENC_MEAN_GAIN = 8.0


def _vae_resnet(s: SpecList, p: str, n_in: int, n_out: int) -> None:
    s.norm(f"{p}.norm1", n_in)
    s.conv(f"{p}.conv1", n_in, n_out, 3)
    s.norm(f"{p}.norm2", n_out)
    s.conv(f"{p}.conv2", n_out, n_out, 3)
    if n_in != n_out:
        s.conv(f"{p}.nin_shortcut", n_in, n_out, 1)


def _vae_attn(s: SpecList, p: str, c: int) -> None:
    s.norm(f"{p}.norm", c)
    for n in ("q", "k", "v", "proj_out"):
        s.conv(f"{p}.{n}", c, c, 1)


def vae_specs(prefix: str = VAE_PREFIX, decoder_ch: int = VAE_DECODER_CH, include_encoder: bool = True) -> SpecList:
    """Tensor specs of the SD1 KL-f8 VAE with a narrowed decoder."""
    if decoder_ch % 32:
        raise ValueError("decoder_ch must be a multiple of 32 (GroupNorm with 32 groups)")
    s = SpecList("fan_in", gain=1.0)
    pre = prefix
    if include_encoder:
        ch = VAE_ENCODER_CH
        s.conv(f"{pre}encoder.conv_in", 3, ch, 3)
        block_in = ch
        for i, mult in enumerate(_VAE_CH_MULT):
            block_in = ch if i == 0 else ch * _VAE_CH_MULT[i - 1]
            block_out = ch * mult
            for j in range(_VAE_NUM_RES):
                _vae_resnet(s, f"{pre}encoder.down.{i}.block.{j}", block_in, block_out)
                block_in = block_out
            if i != len(_VAE_CH_MULT) - 1:
                s.conv(f"{pre}encoder.down.{i}.downsample.conv", block_in, block_in, 3)
        _vae_resnet(s, f"{pre}encoder.mid.block_1", block_in, block_in)
        _vae_attn(s, f"{pre}encoder.mid.attn_1", block_in)
        _vae_resnet(s, f"{pre}encoder.mid.block_2", block_in, block_in)
        s.norm(f"{pre}encoder.norm_out", block_in)
        s.conv(f"{pre}encoder.conv_out", block_in, 2 * _VAE_Z, 3)
        # quant_conv outputs (mean, logvar). Scale the mean rows so encoded
        # latents get a std of ~4 (a real SD VAE gives ~5, i.e. ~1 after the
        # 0.18215 scale factor); with gain 1 they were ~0.1 after scaling, the
        # sampler noise swamped them and img2img ignored the init image. logvar is pinned
        # low (weights 0, bias -8) so sampling the posterior adds little noise.
        z2 = 2 * _VAE_Z
        s.add(f"{pre}quant_conv.weight", (z2, z2, 1, 1), row_gain=(_ENC_MEAN_GAIN,) * _VAE_Z + (0.0,) * _VAE_Z)
        s.add(f"{pre}quant_conv.bias", (z2,), init="values", values=(0.0,) * _VAE_Z + (-8.0,) * _VAE_Z)

    s.conv(f"{pre}post_quant_conv", _VAE_Z, _VAE_Z, 1)
    ch = decoder_ch
    block_in = ch * _VAE_CH_MULT[-1]
    s.conv(f"{pre}decoder.conv_in", _VAE_Z, block_in, 3)
    _vae_resnet(s, f"{pre}decoder.mid.block_1", block_in, block_in)
    _vae_attn(s, f"{pre}decoder.mid.attn_1", block_in)
    _vae_resnet(s, f"{pre}decoder.mid.block_2", block_in, block_in)
    for i in reversed(range(len(_VAE_CH_MULT))):
        block_out = ch * _VAE_CH_MULT[i]
        for j in range(_VAE_NUM_RES + 1):
            _vae_resnet(s, f"{pre}decoder.up.{i}.block.{j}", block_in, block_out)
            block_in = block_out
        if i != 0:
            s.conv(f"{pre}decoder.up.{i}.upsample.conv", block_in, block_in, 3)
    s.norm(f"{pre}decoder.norm_out", block_in)
    s.conv(f"{pre}decoder.conv_out", block_in, 3, 3)
    return s


# -- whole checkpoint -----------------------------------------------------------


def sd1_tensor_specs(include_vae: bool = True) -> list[TensorSpec]:
    """All tensor specs of the synthetic SD1 checkpoint (no data generated)."""
    s = unet_specs()
    s.extend(clip_l_specs())
    if include_vae:
        s.extend(vae_specs())
    return s.specs


def _write(path: str | os.PathLike[str], specs: Sequence[TensorSpec], seed: int, metadata: dict[str, str]) -> Path:
    path = Path(path)
    write_safetensors(path, specs, lambda spec: materialize(spec, seed), metadata=metadata)
    return path


def write_sd1_checkpoint(path: str | os.PathLike[str], seed: int = 0, include_vae: bool = True) -> Path:
    """Write the synthetic SD1 tiny-UNet checkpoint (f16 safetensors) to ``path``.

    ~966 MB with the VAE (~892 MB without); the same seed gives identical bytes.
    Without the VAE the library needs a TAESD (``--taesd``) or ``--vae`` file.
    """
    specs = sd1_tensor_specs(include_vae=include_vae)
    meta = {
        "sdrest.synthetic": "sd1-tiny-unet",
        "sdrest.seed": str(seed),
        "sdrest.note": "random weights for tests; not a real model",
    }
    return _write(path, specs, seed, meta)


def write_sd1_vae(path: str | os.PathLike[str], seed: int = 4) -> Path:
    """Write a standalone synthetic SD1 VAE (names without prefix, like
    ``vae-ft-mse-840000``), for ``--vae`` / a server's VAE model slot (~74 MB)."""
    specs = vae_specs(prefix="").specs
    meta = {"sdrest.synthetic": "sd1-vae", "sdrest.seed": str(seed)}
    return _write(path, specs, seed, meta)
