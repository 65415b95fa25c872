"""Hidden checks for unit 4.12 `vit` (Dosovitskiy et al., 2020).

``patchify`` is compared with the master on float32 and float64 images over several shapes:
batch 1, one channel and several, square and non-square images (a 2×3 grid, on which a
column-major patch order shows), P = 1, and a single patch (P = H = W); its gradient w.r.t.
the images too. The syllabus's contract, patchify followed by the linear embedding equals a
stride-P ``nn.Conv2d``, is checked directly: the learner's ``patchify(x, P) @
W.flatten(1).T + b`` is compared with the master's, and the master's with ``F.conv2d`` run in
the grader's process. Sizes P does not divide must raise ValueError (the exception's name is
compared).

``Block`` is built as ``Block(dim, heads, mlp_dim)`` with a copied state dict (layer norms with
random weights and biases, so that norm1 and norm2 differ) and compared with the master in
float32 and float64 (batch 1, one token, one head, heads of width 1): ``block.attn(z)``,
``block.mlp(z)``, ``block(z)``, and the gradients w.r.t. z and every parameter. The MLP's
pre-activations have a spread of about 2, where the exact GELU and its tanh approximation
differ by far more than float32's tolerance.

``ViT`` is graded through a grader-owned driver (``course/grading/drivers/vit.py``) that
builds the learner's model with stand-in blocks (``z + tanh(z Wᵀ + mean_T(z) Uᵀ + b)``,
different per layer, mixing the tokens) in ``blocks`` and runs its forward with the grader's
own patchify, so a slip in ``Block`` or ``patchify`` does not cost ``ViT``'s checks; one
combined check (1 point) runs the learner's ``ViT`` with the learner's own blocks and
patchify. The class token, the position embeddings and the head weights are random and large
enough that a missing class token, one appended instead of prepended, missing positions, a
missing final norm or a head on the mean token all change the logits. The state dict's layout
is compared by name, shape and dtype.

The master was compared with ``nn.Conv2d`` (patchify + embedding) and with ``transformers``'
``ViTForImageClassification`` built from a ``ViTConfig`` with the weights copied, in
``tests/test_oracle_vit.py``.
"""

import torch
import torch.nn.functional as F

from course.grading.cell_checks import require_state_layout
from course.grading.dsl import (
    ATTENTION_ATEN,
    ATTENTION_CALLS,
    TRANSFORMER_LAYERS,
    Call,
    Forbid,
    Make,
    Mistake,
    check,
    dtype_word,
)
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.grader import GraderError

UNIT = "vit"

PATCH_SHORTCUTS = (
    "torch.nn.functional.unfold",
    "torch.nn.Unfold",
    "torch.nn.functional.conv2d",
    "torch.conv2d",
    "torch.nn.Conv2d",
)

FORBIDDEN = [
    Forbid(calls=PATCH_SHORTCUTS + ATTENTION_CALLS + TRANSFORMER_LAYERS,
           aten=("im2col", "convolution") + ATTENTION_ATEN),
]

MISTAKES = [
    # -- patchify
    Mistake(
        "patch-flattened-ppc",
        "Your patches match each patch flattened in (P, P, C) order, the channels innermost "
        "(the paper's order for (H, W, C) images). For PyTorch's (C, H, W) images the order "
        "that matches a convolution's weight (D, C, P, P) is (C, P, P): entry c·P² + u·P + v "
        "is images[b, c, i·P + u, j·P + v].",
        {"grid.permute(0, 2, 4, 1, 3, 5)": "grid.permute(0, 2, 4, 3, 5, 1)"},
    ),
    Mistake(
        "patch-order-column-major",
        "Your patches come in column-major order of the grid (down the first column, then "
        "the next). Number them row by row: patch i·(W/P) + j is grid row i, column j, as a "
        "convolution's output (B, D, H/P, W/P) flattened does.",
        {"grid.permute(0, 2, 4, 1, 3, 5)": "grid.permute(0, 4, 2, 1, 3, 5)"},
    ),
    Mistake(
        "patch-pixels-transposed",
        "Your patches hold each P×P block transposed (columns before rows): entry c·P² + u·P "
        "+ v should be the pixel in row u and column v of the patch, images[b, c, i·P + u, "
        "j·P + v].",
        {"grid.permute(0, 2, 4, 1, 3, 5)": "grid.permute(0, 2, 4, 1, 5, 3)"},
    ),
    Mistake(
        "no-divisibility-check",
        "Your patchify does not raise ValueError when P does not divide H or W (it fails "
        "later, with another error, or cuts silently). Check H % P and W % P first and raise "
        "ValueError.",
        {"    if H % P != 0 or W % P != 0:\n        raise ValueError(f\"image size {H}×{W} is "
         "not divisible by patch_size {P}\")\n": ""},
    ),
    # -- Block
    Mistake(
        "post-ln",
        "Your block matches the original Transformer's post-LN order, z = LN(z + "
        "sublayer(z)). ViT normalises the input of each sub-layer and leaves the residual "
        "stream alone: z = z + attn(norm1(z)), then z = z + mlp(norm2(z)).",
        {"        z = z + self.attn(self.norm1(z))  # z'_l = MSA(LN(z_{l-1})) + z_{l-1}\n"
         "        z = z + self.mlp(self.norm2(z))  # z_l = MLP(LN(z'_l)) + z'_l\n":
         "        z = self.norm1(z + self.attn(z))\n        z = self.norm2(z + self.mlp(z))\n"},
    ),
    Mistake(
        "scale-by-dim",
        "Your attention matches scores divided by √dim. Each head scales by the square root "
        "of its own width, √(dim / heads).",
        {"/ math.sqrt(D // h)": "/ math.sqrt(D)"},
    ),
    Mistake(
        "heads-without-transpose",
        "Your attention matches heads split by reshaping (B, T, D) straight to (B, h, T, d_h) "
        "(and merged back the same way), which mixes tokens and features. View as "
        "(B, T, h, d_h) and transpose to (B, h, T, d_h); undo it the same way.",
        {"return t.view(B, T, h, D // h).transpose(1, 2)": "return t.reshape(B, h, T, D // h)",
         "(weights @ v).transpose(1, 2).reshape(B, T, D)": "(weights @ v).reshape(B, T, D)"},
    ),
    Mistake(
        "tanh-gelu",
        "Your MLP matches the tanh approximation of GELU (GPT-2's). ViT's MLP uses the exact "
        "GELU, u·Φ(u) = 0.5·u·(1 + erf(u/√2)), F.gelu's default.",
        {"0.5 * u * (1 + torch.erf(u / math.sqrt(2)))":
         "0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))"},
    ),
    # -- ViT
    Mistake(
        "no-class-token",
        "Your logits match a model without a class token: the tokens are the patches alone "
        "and the head reads the first patch. Prepend cls_token (expanded to (B, 1, dim)) to "
        "the patch embeddings, add all N + 1 rows of pos_embed, and classify position 0.",
        {"z = torch.cat([cls, x], dim=1) + self.pos_embed":
         "z = x + self.pos_embed[:, 1:]"},
    ),
    Mistake(
        "class-token-appended",
        "Your logits match the class token appended after the patches, so that position 0 "
        "(which the head reads, and which gets pos_embed's row 0) is the first patch. Put the "
        "class token in front: torch.cat([cls, patches], dim=1).",
        {"torch.cat([cls, x], dim=1)": "torch.cat([x, cls], dim=1)"},
    ),
    Mistake(
        "head-on-mean",
        "Your logits match the head applied to the mean over all tokens (global average "
        "pooling). ViT classifies the class token's final state only: head(norm(z)[:, 0]).",
        {"return self.head(self.norm(z)[:, 0])": "return self.head(self.norm(z).mean(dim=1))"},
    ),
    Mistake(
        "no-final-norm",
        "Your logits match the last block's output fed straight into the head. ViT applies a "
        "final layer norm first: y = LN(z_L^0), logits = head(norm(z)[:, 0]).",
        {"return self.head(self.norm(z)[:, 0])": "return self.head(z[:, 0])"},
    ),
    Mistake(
        "no-position-embeddings",
        "Your logits match a model without position embeddings. Add pos_embed (1, N + 1, dim) "
        "to the tokens after the class token is prepended.",
        {"z = torch.cat([cls, x], dim=1) + self.pos_embed": "z = torch.cat([cls, x], dim=1)"},
    ),
]

_dt = dtype_word


# -- patchify ---------------------------------------------------------------------------------

# (B, C, H, W, P): the first has C > 1 and a 2×2 grid, on which every patch-order slip shows
PATCHIFY = [
    (2, 3, 8, 8, 4),
    (1, 2, 6, 9, 3),
    (3, 1, 4, 6, 2),
    (2, 3, 5, 5, 5),
    (1, 2, 3, 4, 1),
    (2, 4, 12, 8, 4),
]


def _images(grader, B, C, H, W, dtype):
    return grader.randn(B, C, H, W, dtype=dtype)


@check(points=2, public=True, task="patchify")
def test_patchify(grader):
    """patchify: patches in row-major grid order, each flattened in (C, P, P) order"""
    for B, C, H, W, P in PATCHIFY:
        for dtype in DTYPES:
            x = _images(grader, B, C, H, W, dtype)
            grader.compare(Call("patchify", (x, P)),
                           case=f"patchify(images{list(x.shape)}, {P}), {_dt(dtype)}")


def _conv(images, weight, bias, P):
    """The stride-P convolution, flattened and transposed to (B, N, D)."""
    return F.conv2d(images, weight, bias, stride=P).flatten(2).transpose(1, 2)


@check(points=2, public=True, task="patchify")
def test_patchify_equals_convolution(grader):
    """patchify(x, P) @ W.flatten(1).T + b equals nn.Conv2d(C, D, P, stride=P) with W, b"""
    for (B, C, H, W, P), D in zip(PATCHIFY[:4], (5, 4, 3, 6)):
        for dtype in DTYPES:
            x = _images(grader, B, C, H, W, dtype)
            weight = grader.randn(D, C, P, P, dtype=dtype, scale=(C * P * P) ** -0.5)
            bias = grader.randn(D, dtype=dtype, scale=0.3)
            probe = Call("@vit.conv_embed", (x, weight, bias, P))
            ref = grader.reference(probe).out
            conv = _conv(x.double(), weight.double(), bias.double(), P)
            if not torch.allclose(ref, conv, rtol=1e-10, atol=1e-12):
                raise GraderError(f"the reference's patch embedding differs from F.conv2d on "
                                  f"images{list(x.shape)}, P={P}")
            grader.compare(probe, case=f"patchify(images{list(x.shape)}, {P}) @ "
                           f"conv.weight.flatten(1).T + conv.bias, nn.Conv2d({C}, {D}, {P}, "
                           f"stride={P}), {_dt(dtype)}")


@check(points=1, task="patchify")
def test_patchify_gradients(grader):
    """the gradient of patchify w.r.t. the images (each pixel gets its patch entry's)"""
    for B, C, H, W, P in (PATCHIFY[0], PATCHIFY[1], PATCHIFY[4]):
        for dtype in DTYPES:
            x = _images(grader, B, C, H, W, dtype)
            grader.compare(Call("patchify", (x, P), grad=(0,)),
                           case=f"d/dimages of patchify(images{list(x.shape)}, {P}), "
                           f"{_dt(dtype)}")


@check(points=1, public=True, task="patchify")
def test_patchify_not_divisible(grader):
    """patchify raises ValueError when P does not divide H or W"""
    for B, C, H, W, P in [(2, 3, 8, 6, 4), (1, 1, 5, 8, 2), (1, 2, 7, 7, 3), (2, 1, 4, 4, 8)]:
        x = _images(grader, B, C, H, W, torch.float32)
        grader.compare(Call("@vit.raises", (x, P)), exact=True,
                       case=f"patchify(images{list(x.shape)}, {P}): what it raises")


# -- Block ------------------------------------------------------------------------------------

def _block_state(grader, d, mlp, dtype, prefix=""):
    s = {}
    for ln in ("norm1", "norm2"):
        s[f"{prefix}{ln}.weight"] = 1 + grader.randn(d, dtype=dtype, scale=0.3)
        s[f"{prefix}{ln}.bias"] = grader.randn(d, dtype=dtype, scale=0.3)
    s[f"{prefix}attn.qkv.weight"] = grader.randn(3 * d, d, dtype=dtype, scale=1.5 * d**-0.5)
    s[f"{prefix}attn.qkv.bias"] = grader.randn(3 * d, dtype=dtype, scale=0.2)
    s[f"{prefix}attn.proj.weight"] = grader.randn(d, d, dtype=dtype, scale=d**-0.5)
    s[f"{prefix}attn.proj.bias"] = grader.randn(d, dtype=dtype, scale=0.1)
    s[f"{prefix}mlp.fc1.weight"] = grader.randn(mlp, d, dtype=dtype, scale=2 * d**-0.5)
    s[f"{prefix}mlp.fc1.bias"] = grader.randn(mlp, dtype=dtype, scale=0.2)
    s[f"{prefix}mlp.fc2.weight"] = grader.randn(d, mlp, dtype=dtype, scale=mlp**-0.5)
    s[f"{prefix}mlp.fc2.bias"] = grader.randn(d, dtype=dtype, scale=0.1)
    return s


def _block(grader, d, heads, mlp, dtype):
    return Make("Block", (d, heads, mlp), state_dict=_block_state(grader, d, mlp, dtype),
                dtype=dtype, train=False)


# (B, T, dim, heads, mlp_dim)
BLOCK_SHAPES = [
    (2, 5, 8, 2, 16),
    (1, 7, 12, 3, 24),
    (3, 1, 8, 2, 8),
    (2, 6, 6, 1, 12),
    (1, 4, 8, 8, 20),
]


def _require_state_layout(grader, name, args, advice):
    require_state_layout(grader, Call("@vit.state", (name, args)), f"{name}{args} state dict",
                         advice)


@check(points=1, public=True, task="Block")
def test_block_layout(grader):
    """Block(dim, heads, mlp_dim) has norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2"""
    for args in [(8, 2, 16), (12, 3, 20)]:
        _require_state_layout(
            grader, "Block", args,
            "The block holds norm1 and norm2 (nn.LayerNorm(dim)), attn.qkv (nn.Linear(dim, "
            "3·dim)), attn.proj (nn.Linear(dim, dim)), mlp.fc1 (nn.Linear(dim, mlp_dim)) and "
            "mlp.fc2 (nn.Linear(mlp_dim, dim)), all with biases, float32, and nothing else.",
        )


@check(points=2, public=True, task="Block")
def test_attention_forward(grader):
    """block.attn(z), multi-head self-attention over all tokens, with copied weights"""
    for B, T, d, heads, mlp in BLOCK_SHAPES:
        for dtype in DTYPES:
            z = grader.randn(B, T, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, mlp, dtype), (z,), method="attn"),
                           case=f"Block({d}, {heads}, {mlp}).attn(z{list(z.shape)}), "
                           f"{_dt(dtype)}")


@check(points=1, public=True, task="Block")
def test_mlp_forward(grader):
    """block.mlp(z): fc1, exact GELU, fc2, with copied weights"""
    for B, T, d, heads, mlp in BLOCK_SHAPES[:3]:
        for dtype in DTYPES:
            z = grader.randn(B, T, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, mlp, dtype), (z,), method="mlp"),
                           case=f"Block({d}, {heads}, {mlp}).mlp(z{list(z.shape)}), "
                           f"{_dt(dtype)}")


@check(points=2, public=True, task="Block")
def test_block_forward(grader):
    """block(z), the pre-LN encoder block, with copied weights"""
    for B, T, d, heads, mlp in BLOCK_SHAPES:
        for dtype in DTYPES:
            z = grader.randn(B, T, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, mlp, dtype), (z,)),
                           case=f"Block({d}, {heads}, {mlp})(z{list(z.shape)}), {_dt(dtype)}")


@check(points=2, task="Block")
def test_block_gradients(grader):
    """gradients of block(z) w.r.t. z and every parameter of the block"""
    for B, T, d, heads, mlp in [(2, 5, 8, 2, 16), (1, 3, 6, 3, 10)]:
        for dtype in DTYPES:
            z = grader.randn(B, T, d, dtype=dtype)
            grader.compare(Call(_block(grader, d, heads, mlp, dtype), (z,), grad=(0, "params")),
                           case=f"d/dz and d/dparams of Block({d}, {heads}, {mlp})"
                           f"(z{list(z.shape)}), {_dt(dtype)}")


# -- ViT --------------------------------------------------------------------------------------

# (image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim), batch
VIT_SHAPES = [
    ((8, 4, 3, 5, 8, 2, 2, 16), 2),
    ((6, 3, 1, 4, 6, 1, 3, 12), 1),
    ((8, 2, 2, 3, 4, 3, 1, 8), 3),
    ((4, 4, 2, 3, 8, 1, 2, 8), 2),  # one patch: two tokens
]


def _vit_state(grader, args, dtype, own_blocks=False):
    image_size, P, C, K, d, depth, _, mlp = args
    N = (image_size // P) ** 2
    s = {"patch_embed.weight": grader.randn(d, C * P * P, dtype=dtype, scale=(C * P * P)**-0.5),
         "patch_embed.bias": grader.randn(d, dtype=dtype, scale=0.3),
         "cls_token": grader.randn(1, 1, d, dtype=dtype),
         "pos_embed": grader.randn(1, N + 1, d, dtype=dtype, scale=0.7)}
    for i in range(depth):
        if own_blocks:
            s.update(_block_state(grader, d, mlp, dtype, prefix=f"blocks.{i}."))
        else:
            s[f"blocks.{i}.weight"] = grader.randn(d, d, dtype=dtype, scale=1.2 * d**-0.5)
            s[f"blocks.{i}.mix"] = grader.randn(d, d, dtype=dtype, scale=d**-0.5)
            s[f"blocks.{i}.bias"] = grader.randn(d, dtype=dtype, scale=0.3)
    s["norm.weight"] = 1 + grader.randn(d, dtype=dtype, scale=0.3)
    s["norm.bias"] = grader.randn(d, dtype=dtype, scale=0.3)
    s["head.weight"] = grader.randn(K, d, dtype=dtype, scale=d**-0.5)
    s["head.bias"] = grader.randn(K, dtype=dtype, scale=0.1)
    return s


@check(points=1, public=True, task="ViT")
def test_vit_layout(grader):
    """ViT's state dict: patch_embed, cls_token, pos_embed, blocks (stand-ins), norm, head"""
    for args in [(8, 4, 3, 5, 8, 2, 2, 16), (6, 2, 1, 10, 12, 1, 3, 24)]:
        _require_state_layout(
            grader, "ViT", args,
            "ViT holds patch_embed (nn.Linear(C·P², dim)), cls_token (1, 1, dim), pos_embed "
            "(1, N + 1, dim) with N = (image_size / P)², blocks (an nn.ModuleList of depth "
            "blocks; here the grader's stand-ins, whose parameters are blocks.<i>.weight, "
            "blocks.<i>.mix and blocks.<i>.bias), norm (nn.LayerNorm(dim)) and head "
            "(nn.Linear(dim, num_classes)), float32, and nothing else.",
        )


def _describe_vit(args, images, dtype, what="with stand-in blocks"):
    return f"ViT{args} {what}, images{list(images.shape)}, {_dt(dtype)}"


@check(points=2, public=True, task="ViT")
def test_vit_forward(grader):
    """ViT logits with copied weights, its blocks replaced by the grader's stand-ins"""
    for args, B in VIT_SHAPES:
        for dtype in DTYPES:
            x = grader.randn(B, args[2], args[0], args[0], dtype=dtype)
            grader.compare(Call("@vit.vit_logits", (args, _vit_state(grader, args, dtype), x)),
                           case=_describe_vit(args, x, dtype))


@check(points=2, task="ViT")
def test_vit_gradients(grader):
    """ViT gradients w.r.t. the images and every parameter, stand-in blocks"""
    for args, B in VIT_SHAPES[:3]:
        for dtype in DTYPES:
            x = grader.randn(B, args[2], args[0], args[0], dtype=dtype)
            cot = grader.randn(B, args[3], dtype=dtype)
            grader.compare(
                Call("@vit.vit_logits", (args, _vit_state(grader, args, dtype), x, cot)),
                case=f"gradients of {_describe_vit(args, x, dtype)}")


@check(points=1, task="ViT")
def test_vit_with_own_parts(grader):
    """ViT logits with copied weights and your own Blocks and patchify (the whole model)"""
    for args, B in VIT_SHAPES[:2]:
        for dtype in DTYPES:
            x = grader.randn(B, args[2], args[0], args[0], dtype=dtype)
            model = Make("ViT", args, state_dict=_vit_state(grader, args, dtype, True),
                         dtype=dtype, train=False)
            grader.compare(Call(model, (x,)),
                           case=_describe_vit(args, x, dtype, "with your Blocks and patchify"))
