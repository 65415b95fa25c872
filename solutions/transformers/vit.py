# %% [markdown]
# # 4.12 Vision Transformer — exercise
#
# Dosovitskiy et al. (2020) feed an image to a plain Transformer encoder, the one BERT uses,
# by cutting it into a grid of $P \times P$ patches and treating each patch as a word. An image
# $x \in \mathbb{R}^{C \times H \times W}$ becomes $N = HW / P^2$ flattened patches
# $x_p^1, \dots, x_p^N \in \mathbb{R}^{C P^2}$, each mapped to width $D$ by one linear layer
# $E$. A learned **class token** $x_\text{class}$ is put in front, learned **position
# embeddings** $E_\text{pos}$ are added, and $L$ pre-LN encoder blocks follow:
#
# $$z_0 = [x_\text{class};\ x_p^1 E;\ \dots;\ x_p^N E] + E_\text{pos}, \qquad
#   E \in \mathbb{R}^{C P^2 \times D},\ E_\text{pos} \in \mathbb{R}^{(N + 1) \times D}$$
# $$z'_\ell = \operatorname{MSA}(\operatorname{LN}(z_{\ell-1})) + z_{\ell-1}, \qquad
#   z_\ell = \operatorname{MLP}(\operatorname{LN}(z'_\ell)) + z'_\ell, \qquad \ell = 1 \dots L$$
# $$y = \operatorname{LN}(z_L^0), \qquad \text{logits} = \text{head}(y).$$
#
# Only the class token's final state $z_L^0$ is classified. Cutting into patches and applying
# $E$ is exactly a convolution with kernel $P$ and stride $P$: the paper's "hybrid" remark,
# and how most code computes it. Here you write the cut yourself, in the order that makes the
# two agree for PyTorch's (C, H, W) images.
#
# The parameter names follow the common PyTorch layout of ViT (`patch_embed`, `cls_token`,
# `pos_embed`, `blocks`, `norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`,
# `norm`, `head`); the only difference is that `patch_embed` here is an `nn.Linear` on
# patches rather than an `nn.Conv2d` on the image.
#
# Not allowed anywhere in this exercise: convolutions (`torch.nn.Conv2d`,
# `torch.nn.functional.conv2d`, `torch.conv2d`), `torch.nn.functional.unfold` and
# `torch.nn.Unfold` (they cut the patches for you), and library attention
# (`torch.nn.functional.scaled_dot_product_attention`, `torch.nn.MultiheadAttention`,
# `torch.nn.functional.multi_head_attention_forward`, the `torch.nn.Transformer*` classes).
# `reshape`, `permute`, `Tensor.unfold`, `nn.Linear`, `nn.LayerNorm` and
# `torch.nn.functional.gelu` are fine.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `patchify`
#
# Cut a batch of images (B, C, H, W) into non-overlapping $P \times P$ patches. The patches
# form a grid of $H/P$ rows and $W/P$ columns; number them **row by row** (patch $n = i \cdot
# (W/P) + j$ is the one in grid row $i$, column $j$, whose pixels are rows $iP \dots iP + P - 1$
# and columns $jP \dots jP + P - 1$ of the image). Flatten each patch in **(C, P, P)** order:
# entry $c \cdot P^2 + u \cdot P + v$ of patch $n$ is `images[b, c, i*P + u, j*P + v]`.
#
# That is the order of a convolution's weight `conv.weight` of shape (D, C, P, P) flattened to
# (D, C·P·P), so that `patchify(x, P) @ conv.weight.flatten(1).T + conv.bias` is the output of
# `nn.Conv2d(C, D, P, stride=P)` on x, flattened to (B, D, N) and transposed to (B, N, D).
# (The paper flattens in (P, P, C) order because its images are (H, W, C).)
#
# Hint: a `reshape` to (B, C, H/P, P, W/P, P), a `permute`, and a `reshape`.

# %%
def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened, non-overlapping patches, row-major over the patch grid.

    Args:
        images: (B, C, H, W), float32 or float64, on any device; B, C >= 1.
        patch_size: P, an int >= 1 that divides both H and W (H and W may differ).

    Returns:
        (B, N, C·P·P) with N = (H/P)·(W/P), in the dtype and on the device of ``images``:
        ``out[b, i * (W // P) + j, c * P * P + u * P + v] == images[b, c, i * P + u, j * P + v]``
        (patches in row-major order of the (H/P, W/P) grid, each flattened in (C, P, P)
        order). Only a rearrangement: the values are copied exactly, and the result is
        differentiable w.r.t. ``images`` (autograd; each pixel's gradient is the gradient of
        the one entry it went to). With P = H = W there is one patch, the whole image
        flattened; with P = 1 every pixel is a patch of C values. ``images`` is not changed.

    Raises:
        ValueError: when H or W is not divisible by ``patch_size`` (checked before anything
            else; the message says which).

    Forbidden: ``torch.nn.functional.unfold``, ``torch.nn.Unfold`` and convolutions; use
    ``reshape`` / ``view``, ``permute`` / ``transpose`` (or ``Tensor.unfold``).
    """
    # BEGIN SOLUTION
    B, C, H, W = images.shape
    P = patch_size
    if H % P != 0 or W % P != 0:
        raise ValueError(f"image size {H}×{W} is not divisible by patch_size {P}")
    grid = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, i, u, j, v)
    grid = grid.permute(0, 2, 4, 1, 3, 5)  # (B, i, j, C, u, v): row-major grid, (C, P, P) inside
    return grid.reshape(B, (H // P) * (W // P), C * P * P)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `Block`
#
# The encoder block of equations (2) and (3), pre-LN as in GPT-2, without a causal mask.
#
# *Attention* $\operatorname{MSA}$: one `qkv = nn.Linear(D, 3D)` gives queries, keys and
# values side by side (output columns $[0, D)$ the queries, $[D, 2D)$ the keys, $[2D, 3D)$
# the values). Split each into `heads` heads of width $d_h = D / \text{heads}$ (view as
# $(B, T, \text{heads}, d_h)$, transpose to $(B, \text{heads}, T, d_h)$), take
# $\operatorname{softmax}(QK^\top / \sqrt{d_h})$ over the keys (every token sees every token),
# average the values, put the heads back side by side and apply `proj = nn.Linear(D, D)`.
#
# *MLP*: `fc1 = nn.Linear(D, mlp_dim)`, the exact GELU $u\,\Phi(u)$ (`F.gelu` with its
# default, erf-based; not the tanh approximation), `fc2 = nn.Linear(mlp_dim, D)`.
#
# *Block*: `z = z + attn(norm1(z))`, then `z = z + mlp(norm2(z))`.

# %%
class Attention(nn.Module):
    """Multi-head self-attention over all tokens: ``attn(z)``, z (B, T, D) -> (B, T, D).

    Parameters: ``qkv`` = ``nn.Linear(dim, 3 * dim)`` (queries, keys, values in that order
    along its output; head j owns columns ``j·d_h … (j+1)·d_h − 1`` of each),
    ``proj`` = ``nn.Linear(dim, dim)``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        if dim % heads != 0:
            raise ValueError(f"dim={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        # END SOLUTION

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        B, T, D = z.shape
        h = self.heads

        def split(t):  # (B, T, D) -> (B, h, T, d_h)
            return t.view(B, T, h, D // h).transpose(1, 2)

        q, k, v = self.qkv(z).split(D, dim=-1)
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // h)  # (B, h, T, T)
        weights = torch.softmax(scores, dim=-1)  # over the keys
        out = (weights @ v).transpose(1, 2).reshape(B, T, D)  # heads side by side again
        return self.proj(out)
        # END SOLUTION


class MLP(nn.Module):
    """The block's MLP: ``fc2(gelu(fc1(z)))`` with the exact GELU, (B, T, D) -> (B, T, D).

    Parameters: ``fc1`` = ``nn.Linear(dim, mlp_dim)``, ``fc2`` = ``nn.Linear(mlp_dim, dim)``.
    """

    def __init__(self, dim: int, mlp_dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)
        # END SOLUTION

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        u = self.fc1(z)
        return self.fc2(0.5 * u * (1 + torch.erf(u / math.sqrt(2))))  # GELU(u) = u·Φ(u)
        # END SOLUTION


class Block(nn.Module):
    """One pre-LN encoder block: ``z = z + attn(norm1(z)); z = z + mlp(norm2(z))``.

    Args:
        dim: D, the width of the tokens, divisible by ``heads``.
        heads: the number of attention heads, each of width dim // heads.
        mlp_dim: the width of the MLP's hidden layer.

    Submodules (their names are the contract: the checks copy a state dict into them):

    - ``norm1``, ``norm2``: ``nn.LayerNorm(dim)`` (default eps 1e-5, with weight and bias);
    - ``attn``: :class:`Attention` with ``attn.qkv`` = ``nn.Linear(dim, 3 * dim)`` and
      ``attn.proj`` = ``nn.Linear(dim, dim)``; ``attn(z)`` maps (B, T, D) to (B, T, D), no mask;
    - ``mlp``: :class:`MLP` with ``mlp.fc1`` = ``nn.Linear(dim, mlp_dim)``, the exact (erf)
      GELU, ``mlp.fc2`` = ``nn.Linear(mlp_dim, dim)``; ``mlp(z)`` maps (B, T, D) to (B, T, D).

    No other parameters or persistent buffers, no dropout.

    ``forward(z)``: z (B, T, dim), float32 or float64, on any device, T >= 1. Returns
    (B, T, dim) in z's dtype and on its device. The checks call ``block(z)``,
    ``block.attn(z)`` and ``block.mlp(z)`` on modules built as ``Block(dim, heads, mlp_dim)``,
    cast to float32 or float64 (the module's dtype is the input's), with copied weights, and
    compare the outputs and their gradients w.r.t. z and every parameter: keep it
    differentiable (autograd, no ``.detach()``).

    Forbidden: library attention (``scaled_dot_product_attention``, ``nn.MultiheadAttention``,
    ``multi_head_attention_forward``, the ``nn.Transformer*`` classes).
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim)
        # END SOLUTION

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        z = z + self.attn(self.norm1(z))  # z'_l = MSA(LN(z_{l-1})) + z_{l-1}
        z = z + self.mlp(self.norm2(z))  # z_l = MLP(LN(z'_l)) + z'_l
        return z
        # END SOLUTION


# %% [markdown]
# ## Task 3 — `ViT`
#
# The whole model, equations (1) and (4): `patchify`, the linear patch embedding, the class
# token in **front** of the patch tokens (position 0), the position embeddings added to all
# $N + 1$ tokens, the blocks in order, the final `norm`, and the `head` applied to the class
# token's state only (position 0; not the mean over tokens).
#
# Most checks of this task build your `ViT` with grader-owned stand-ins: while your
# `__init__` runs, the name `Block` means a grader-owned stand-in block (and every entry of
# `blocks` is one afterwards), and while `forward` runs, the name `patchify` means the
# grader's own patchify. A slip in your `Block` or `patchify` then costs only their own
# checks (one hidden check, worth 1 point, runs the whole model with your own pieces). So
# build the blocks as `Block(dim, heads, mlp_dim)`, keep them in `blocks`, call each as
# `block(z)`, and cut the images with `patchify(images, patch_size)`.

# %%
class ViT(nn.Module):
    """The Vision Transformer for classification (Dosovitskiy et al., 2020).

    Args:
        image_size: the height and width of the (square) input images, divisible by
            ``patch_size``.
        patch_size: P.
        in_channels: C.
        num_classes: the number of classes K.
        dim: D, the width of the tokens.
        depth: the number of encoder blocks L.
        heads: attention heads per block.
        mlp_dim: the width of each block's MLP.

    Raises ``ValueError`` when ``image_size`` is not divisible by ``patch_size``.

    Submodules and parameters (names and shapes are the contract; the checks copy state
    dicts into them), with N = (image_size / patch_size)²:

    - ``patch_embed`` = ``nn.Linear(in_channels * patch_size**2, dim)`` (E and its bias);
    - ``cls_token``: ``nn.Parameter`` of shape (1, 1, dim), the class token x_class;
    - ``pos_embed``: ``nn.Parameter`` of shape (1, N + 1, dim), E_pos; row 0 belongs to the
      class token, row 1 + n to patch n;
    - ``blocks`` = ``nn.ModuleList`` of ``depth`` blocks, each built as
      ``Block(dim, heads, mlp_dim)``;
    - ``norm`` = ``nn.LayerNorm(dim)``; ``head`` = ``nn.Linear(dim, num_classes)``.

    No other parameters or persistent buffers, no dropout. How the parameters are initialised
    is not checked (a usual choice: ``cls_token`` and ``pos_embed`` drawn from a normal
    distribution with standard deviation 0.02, truncated at ±2 standard deviations).


    ``forward(images)``: images (B, in_channels, image_size, image_size) in the model's dtype
    (float32, or float64 when the checks cast the model with ``.to(torch.float64)``), on its
    device. Returns the logits (B, num_classes) in that dtype:
    ``head(norm(z)[:, 0])``, where z starts as ``cat([cls_token expanded to (B, 1, dim),
    patch_embed(patchify(images, patch_size))], dim=1) + pos_embed`` (B, N + 1, dim) and passes
    through ``blocks[0], blocks[1], …`` in order, each called as ``block(z)``. The checks
    compare the logits and their gradients w.r.t. the images and every parameter of the
    model: keep it differentiable (autograd).

    Forbidden: as in the rest of the exercise (convolutions, ``unfold``, library attention).
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, num_classes: int,
                 dim: int, depth: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        if image_size % patch_size != 0:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size "
                             f"{patch_size}")
        self.patch_size = patch_size
        num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Linear(in_channels * patch_size**2, dim)  # E
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))  # x_class
        self.pos_embed = nn.Parameter(torch.empty(1, num_patches + 1, dim))  # E_pos
        nn.init.trunc_normal_(self.cls_token, std=0.02, a=-0.04, b=0.04)
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        # END SOLUTION

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        x = self.patch_embed(patchify(images, self.patch_size))  # (B, N, D): x_p^n E
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        z = torch.cat([cls, x], dim=1) + self.pos_embed  # z_0, eq. (1)
        for block in self.blocks:
            z = block(z)  # eqs. (2) and (3)
        return self.head(self.norm(z)[:, 0])  # y = LN(z_L^0), eq. (4)
        # END SOLUTION
