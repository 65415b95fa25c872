"""Unit 4.12 `vit`: the master against independent implementations.

- ``patchify`` followed by the linear embedding equals ``nn.Conv2d(C, D, P, stride=P)`` with
  the same weight (flattened) and bias, its output flattened and transposed, over square and
  non-square images, P = 1 and a single patch, in float64; ``patchify`` itself equals a loop
  over the index formula of the docstring, and its gradient is the cotangent put back pixel
  by pixel. Sizes P does not divide raise ValueError.
- ``ViT`` equals ``transformers``' ``ViTForImageClassification`` built from a ``ViTConfig``
  (nothing downloaded; exact GELU, LayerNorm eps 1e-5, no dropout, eager attention, whose
  softmax the library takes in float32, hence a float32 tolerance) with the
  master's weights copied in: the conv patch embedding gets ``patch_embed.weight`` reshaped
  to (D, C, P, P), the fused ``qkv`` is split into query, key and value. Logits and the
  gradients w.r.t. the images and every parameter, in float64 (``Block`` is covered through
  the whole model, depth 1 to 3).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("vit")).namespace
patchify, ViT = NS["patchify"], NS["ViT"]

SHAPES = [(2, 3, 8, 8, 4), (1, 2, 6, 9, 3), (3, 1, 4, 6, 2), (2, 3, 5, 5, 5), (1, 2, 3, 4, 1)]


@pytest.mark.parametrize(("B", "C", "H", "W", "P"), SHAPES)
def test_patch_embedding_equals_strided_convolution(B, C, H, W, P):
    torch.manual_seed(B * 100 + C * 10 + P)
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    conv = nn.Conv2d(C, 7, P, stride=P, dtype=torch.float64)
    want = conv(x).flatten(2).transpose(1, 2)
    got = patchify(x, P) @ conv.weight.flatten(1).T + conv.bias
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("B", "C", "H", "W", "P"), SHAPES)
def test_patchify_equals_index_formula(B, C, H, W, P):
    x = torch.randn(B, C, H, W, dtype=torch.float64, requires_grad=True)
    got = patchify(x, P)
    cols = W // P
    want = torch.empty(B, (H // P) * cols, C * P * P, dtype=torch.float64)
    for b in range(B):
        for i in range(H // P):
            for j in range(cols):
                for c in range(C):
                    for u in range(P):
                        for v in range(P):
                            want[b, i * cols + j, c * P * P + u * P + v] = x[b, c, i * P + u,
                                                                             j * P + v]
    assert torch.equal(got.detach(), want)
    # the same as F.unfold (im2col) transposed, which the exercise forbids
    assert torch.equal(got.detach(), nn.functional.unfold(x.detach(), P, stride=P).transpose(1, 2))
    cot = torch.randn_like(got)
    (grad,) = torch.autograd.grad(got, x, cot)
    back = torch.empty_like(x)
    for b in range(B):
        for n in range(got.shape[1]):
            i, j = divmod(n, cols)
            back[b, :, i * P:(i + 1) * P, j * P:(j + 1) * P] = cot[b, n].view(C, P, P)
    assert torch.equal(grad, back)


@pytest.mark.parametrize(("H", "W", "P"), [(8, 6, 4), (5, 8, 2), (7, 7, 3), (4, 4, 8)])
def test_patchify_rejects_sizes_not_divisible(H, W, P):
    with pytest.raises(ValueError):
        patchify(torch.zeros(1, 1, H, W), P)


# -- ViT against transformers' ViTForImageClassification --------------------------------------

transformers = pytest.importorskip("transformers")

# The library's eager attention takes its softmax in float32 even for a float64 model
# (``softmax(..., dtype=torch.float32)``), so the two agree to float32 precision only; every
# mistake of the unit's bank changes the logits by far more than this.
HF_TOL = {"rtol": 1e-5, "atol": 1e-6}


def _hf_model(args):
    from transformers import ViTConfig, ViTForImageClassification

    image_size, P, C, K, d, depth, heads, mlp = args
    config = ViTConfig(hidden_size=d, num_hidden_layers=depth, num_attention_heads=heads,
                       intermediate_size=mlp, hidden_act="gelu", hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5,
                       image_size=image_size, patch_size=P, num_channels=C, qkv_bias=True,
                       num_labels=K)
    config._attn_implementation = "eager"
    return ViTForImageClassification(config).double().eval()


def _layer_names(hf_state: dict, i: int) -> dict:
    """Our block's names -> the library's, for its current (5.x) or earlier (4.x) layout."""
    if f"vit.layers.{i}.attention.q_proj.weight" in hf_state:  # transformers 5
        p = f"vit.layers.{i}."
        return {"q": p + "attention.q_proj", "k": p + "attention.k_proj",
                "v": p + "attention.v_proj", "attn.proj": p + "attention.o_proj",
                "norm1": p + "layernorm_before", "norm2": p + "layernorm_after",
                "mlp.fc1": p + "mlp.fc1", "mlp.fc2": p + "mlp.fc2"}
    p = f"vit.encoder.layer.{i}."  # transformers 4
    return {"q": p + "attention.attention.query", "k": p + "attention.attention.key",
            "v": p + "attention.attention.value", "attn.proj": p + "attention.output.dense",
            "norm1": p + "layernorm_before", "norm2": p + "layernorm_after",
            "mlp.fc1": p + "intermediate.dense", "mlp.fc2": p + "output.dense"}


def _hf_state(ours: dict, hf_keys: dict, args) -> dict:
    image_size, P, C, K, d, depth, heads, mlp = args
    out = {
        "vit.embeddings.cls_token": ours["cls_token"],
        "vit.embeddings.position_embeddings": ours["pos_embed"],
        "vit.embeddings.patch_embeddings.projection.weight":
            ours["patch_embed.weight"].reshape(d, C, P, P),
        "vit.embeddings.patch_embeddings.projection.bias": ours["patch_embed.bias"],
        "vit.layernorm.weight": ours["norm.weight"], "vit.layernorm.bias": ours["norm.bias"],
        "classifier.weight": ours["head.weight"], "classifier.bias": ours["head.bias"],
    }
    for i in range(depth):
        names, b = _layer_names(hf_keys, i), f"blocks.{i}."
        for part, w, bias in zip("qkv", ours[b + "attn.qkv.weight"].split(d),
                                 ours[b + "attn.qkv.bias"].split(d)):
            out[names[part] + ".weight"], out[names[part] + ".bias"] = w, bias
        for mine in ("attn.proj", "norm1", "norm2", "mlp.fc1", "mlp.fc2"):
            for kind in ("weight", "bias"):
                out[f"{names[mine]}.{kind}"] = ours[f"{b}{mine}.{kind}"]
    return out


def _randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight")) or name == "norm.weight":
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize(("args", "B"), [
    ((8, 4, 3, 5, 8, 2, 2, 16), 2),
    ((6, 3, 1, 4, 6, 1, 3, 12), 1),
    ((8, 2, 2, 3, 4, 3, 1, 8), 3),
    ((4, 4, 2, 3, 8, 1, 2, 8), 2),
])
def test_vit_equals_transformers(args, B):
    ours = ViT(*args).double().eval()
    _randomise(ours, seed=sum(args))
    hf = _hf_model(args)
    state = _hf_state(dict(ours.state_dict()), hf.state_dict(), args)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and not [k for k in missing if "pooler" not in k], (missing, unexpected)
    x = torch.randn(B, args[2], args[0], args[0], dtype=torch.float64)
    x_ours, x_hf = x.clone().requires_grad_(), x.clone().requires_grad_()
    logits = ours(x_ours)
    want = hf(pixel_values=x_hf).logits
    torch.testing.assert_close(logits, want, **HF_TOL)
    cot = torch.randn_like(logits)
    (logits * cot).sum().backward()
    (want * cot).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_hf.grad, **HF_TOL)
    hf_params = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        if name.endswith("attn.qkv.weight") or name.endswith("attn.qkv.bias"):
            i, kind = name.split(".")[1], name.rsplit(".", 1)[1]
            names = _layer_names(hf.state_dict(), int(i))
            want_grad = torch.cat([hf_params[f"{names[q]}.{kind}"].grad for q in "qkv"])
        else:
            want_grad = _hf_grad(hf_params, name)
        torch.testing.assert_close(p.grad, want_grad, **HF_TOL, msg=name)


def _hf_grad(hf_params, name):
    """The library's gradient for our parameter ``name`` (not the fused qkv)."""
    fixed = {"cls_token": "vit.embeddings.cls_token",
             "pos_embed": "vit.embeddings.position_embeddings",
             "patch_embed.weight": "vit.embeddings.patch_embeddings.projection.weight",
             "patch_embed.bias": "vit.embeddings.patch_embeddings.projection.bias",
             "norm.weight": "vit.layernorm.weight", "norm.bias": "vit.layernorm.bias",
             "head.weight": "classifier.weight", "head.bias": "classifier.bias"}
    if name in fixed:
        return hf_params[fixed[name]].grad.flatten(1) if name == "patch_embed.weight" \
            else hf_params[fixed[name]].grad
    _, i, rest = name.split(".", 2)
    mine, kind = rest.rsplit(".", 1)
    names = _layer_names({k: None for k in hf_params}, int(i))
    return hf_params[f"{names[mine]}.{kind}"].grad
