# %% [markdown]
# # 1.5 U-Net — exercise
#
# Ronneberger, Fischer & Brox (2015) label every pixel of a microscopy image with a network
# shaped like a U. A *contracting path* of 3×3 convolutions and 2×2 max-pools gathers context
# at ever coarser resolutions; an *expanding path* of 2×2 up-convolutions brings the
# resolution back, and at every level it concatenates the feature map of the same level of the
# contracting path (a skip connection), so that fine localisation and wide context meet. With
# unpadded ("valid") convolutions every 3×3 layer shrinks the map by two pixels, so the skip
# features are larger than the upsampled ones and are **center-cropped** before the
# concatenation.
#
# Cells that touch are the hard part: a network that labels pixels "cell" or "background"
# merges them. The paper trains with a per-pixel weight map
#
# $$w(x) = w_c(x) + w_0 \exp\!\Big(-\frac{\big(d_1(x) + d_2(x)\big)^2}{2\sigma^2}\Big),$$
#
# where $w_c$ balances the class frequencies and $d_1, d_2$ are the distances to the nearest
# and the second-nearest cell, so that the thin background gaps between close cells weigh
# heavily, and minimises the weighted cross-entropy
# $\;\frac{1}{|\Omega|}\sum_{x\in\Omega} w(x)\,\big(-\log p_{\ell(x)}(x)\big)$ with
# $p = \operatorname{softmax}$ over the classes. You will write the crop, the network, the
# weight map and the loss.

# %%
import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt
from torch import nn

# %% [markdown]
# ## Task 1 — `center_crop`
#
# Cut the central `size × size` window (or `h × w` for a pair) out of the last two
# dimensions. When the margin to remove is odd, the extra row (column) is removed at the
# **bottom** (right): the top margin is $\lfloor (H - h)/2 \rfloor$.

# %%
def center_crop(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The central window of the last two dimensions of ``x``.

    Args:
        x: (..., H, W) tensor of any dtype, on any device.
        size: an int ``s`` for an (s, s) window, or a pair ``(h, w)``; 1 ≤ h ≤ H, 1 ≤ w ≤ W.

    Returns:
        (..., h, w): the rows top … top + h − 1 and columns left … left + w − 1 of ``x``,
        with top = ⌊(H − h) / 2⌋ and left = ⌊(W − w) / 2⌋ (rounded down: when a margin is
        odd, the extra row is dropped at the bottom and the extra column at the right).
        Same dtype and device as ``x``, and differentiable w.r.t. ``x`` (a view or a copy
        made by indexing: the gradient flows back into the window). Raises ``ValueError`` if
        the window is larger than the input.

    Forbidden: torchvision's ``center_crop`` / ``CenterCrop``.
    """
    # BEGIN SOLUTION
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    H, W = x.shape[-2], x.shape[-1]
    if not (1 <= h <= H and 1 <= w <= W):
        raise ValueError(f"cannot crop a {h}×{w} window out of a {H}×{W} map")
    top = (H - h) // 2
    left = (W - w) // 2
    return x[..., top:top + h, left:left + w]
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `UNet`
#
# `depth` counts resolution levels (the paper's network has 5: 64, 128, 256, 512, 1024
# channels). Level $i$ has $c_i = \text{base\_channels}\cdot 2^i$ channels. The grader copies
# its weights into your module, so the submodule names and their order are part of the task:
#
# - `down[i]` ($i = 0 \dots \text{depth}-1$): a double convolution
#   `nn.Sequential(Conv2d(c_in, c_i, 3, padding=padding), ReLU(), Conv2d(c_i, c_i, 3,
#   padding=padding), ReLU())`, with `c_in = in_channels` for `i = 0` and $c_{i-1}$ after.
#   Between two levels: a 2×2 max-pool with stride 2 (no parameters).
# - `up[j]` ($j = 0 \dots \text{depth}-2$, deepest first): `ConvTranspose2d(c_{i+1}, c_i,
#   2, stride=2)` with $i = \text{depth}-2-j$: it doubles the resolution and **halves** the
#   channels.
# - `dec[j]`: a double convolution from $2c_i$ to $c_i$ channels (same layout as `down`). Its
#   input is `torch.cat([skip, upsampled], dim=1)`: **skip first**, where `skip` is the output of
#   `down[i]` center-cropped to the upsampled map's height and width.
# - `head`: `Conv2d(c_0, num_classes, 1)`, no ReLU after it (it outputs logits).

# %%
class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) for per-pixel classification.

    Args:
        in_channels: channels of the input image.
        num_classes: channels of the output (one logit per class and pixel).
        depth: number of resolution levels (≥ 1); ``depth - 1`` max-pools and up-convolutions.
        base_channels: channels c_0 of the first level; level i has c_i = c_0 · 2**i.
        padding: 1 keeps the size through every 3×3 convolution; 0 is the paper's valid
            convolutions, each shrinking the map by 2 pixels (then skips are cropped).

    Submodules (exactly these names, so that state dicts copy across):
        ``down``: ``nn.ModuleList`` of ``depth`` double convolutions; ``down[i]`` is
            ``nn.Sequential(nn.Conv2d(c_in, c_i, 3, padding=padding), nn.ReLU(),
            nn.Conv2d(c_i, c_i, 3, padding=padding), nn.ReLU())`` (keys ``down.i.0.weight``,
            ``down.i.0.bias``, ``down.i.2.weight``, ``down.i.2.bias``), c_in = in_channels
            for i = 0, else c_{i-1}.
        ``up``: ``nn.ModuleList`` of ``depth - 1`` ``nn.ConvTranspose2d(c_{i+1}, c_i,
            kernel_size=2, stride=2)``, deepest first: ``up[j]`` has i = depth - 2 - j.
        ``dec``: ``nn.ModuleList`` of ``depth - 1`` double convolutions (2·c_i → c_i, same
            layout as ``down``), ``dec[j]`` with i = depth - 2 - j.
        ``head``: ``nn.Conv2d(c_0, num_classes, kernel_size=1)``.

    ``forward(x)``: (N, in_channels, H, W) → (N, num_classes, H', W') logits, in x's dtype
    and on its device. Contracting path: ``down[0]``, then for i ≥ 1 a 2×2 max-pool (stride 2,
    rounding down) followed by ``down[i]``; the outputs of ``down[0 .. depth-2]`` are kept as
    skips. Expanding path, for j = 0 .. depth-2 (level i = depth - 2 - j): upsample with
    ``up[j]``, center-crop the skip of level i to the upsampled map's height and width,
    concatenate along the channels with the **skip first** ([skip, upsampled]) and apply
    ``dec[j]``. Finally ``head``. With padding=1 and H, W divisible by 2**(depth-1),
    H' = H and W' = W (otherwise the pools round down and the skips are cropped); with
    padding=0 each 3×3 convolution removes 2 pixels (572 → 388 for the paper's depth 5).
    Every map must keep at least one pixel. The checks cast the model to the input's dtype
    (``model.double()``) and back-propagate: the forward must stay differentiable w.r.t. the
    input and every parameter.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        depth: int = 3,
        base_channels: int = 16,
        padding: int = 1,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION
        def double_conv(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=padding),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, kernel_size=3, padding=padding),
                nn.ReLU(),
            )

        widths = [base_channels * 2**i for i in range(depth)]
        self.down = nn.ModuleList(
            double_conv(in_channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth)
        )
        levels = list(reversed(range(depth - 1)))  # deepest first
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2) for i in levels
        )
        self.dec = nn.ModuleList(double_conv(2 * widths[i], widths[i]) for i in levels)
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, kernel_size=2, stride=2)
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottom level feeds the expanding path directly
        for up, dec in zip(self.up, self.dec):
            u = up(x)
            s = center_crop(skips.pop(), (u.shape[-2], u.shape[-1]))
            x = dec(torch.cat([s, u], dim=1))
        return self.head(x)
        # END SOLUTION


# %% [markdown]
# ## Task 3 — `unet_weight_map`
#
# From an instance mask (0 background, 1..K one label per cell) build the paper's weight map
# $w = w_c + w_0 \exp(-(d_1+d_2)^2 / 2\sigma^2)$:
#
# - **class balance** $w_c$: with $f_c$ the fraction of pixels of class $c$ (background, or
#   foreground = any cell) and $C$ the number of classes present in the mask (1 or 2),
#   $w_c = 1 / (C f_c)$. The mean of $w_c$ over the image is then exactly 1.
# - **border term**, on background pixels only: $d_1$ and $d_2$ are the Euclidean distances
#   (in pixels, to pixel centres) to the nearest pixel of the nearest cell and of the
#   second-nearest cell. `scipy.ndimage.distance_transform_edt(mask != k)` gives the distance
#   to cell $k$ at every pixel. With fewer than two cells there is no border term.

# %%
def unet_weight_map(mask: torch.Tensor, w0: float = 10.0, sigma: float = 5.0) -> torch.Tensor:
    """The U-Net loss weight map of an instance mask.

    Args:
        mask: (H, W) integer tensor: 0 for background, a positive label per object (labels
            need not be consecutive), on any device.
        w0: height of the border term.
        sigma: width (in pixels) of the border term.

    Returns:
        (H, W) float64 tensor on ``mask``'s device: ``w_c + border``, where
        ``w_c = 1 / (C · f_c)`` with f_c the fraction of pixels in the pixel's class
        (background: label 0; foreground: label > 0) and C ∈ {1, 2} the number of classes
        present; ``border = w0 · exp(−(d1 + d2)² / (2 σ²))`` on background pixels and 0 on
        object pixels, d1 ≤ d2 the Euclidean distances to the nearest and second-nearest
        object. With fewer than two objects the border term is 0 everywhere.
    """
    # BEGIN SOLUTION
    labels = mask.detach().cpu().numpy()
    fg = labels > 0
    classes = [c for c in (~fg, fg) if c.any()]
    w = np.ones(labels.shape, dtype=np.float64)
    for c in classes:
        w[c] = labels.size / (len(classes) * c.sum())
    objects = np.unique(labels[fg])
    if len(objects) >= 2:
        dist = np.stack([distance_transform_edt(labels != k) for k in objects])
        dist.sort(axis=0)
        d1, d2 = dist[0], dist[1]
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
        w = w + np.where(fg, 0.0, border)
    return torch.from_numpy(w).to(mask.device)
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `weighted_cross_entropy`
#
# The pixel-wise softmax over the class axis (dim 1), the negative log-probability of the
# target class at every pixel, multiplied by the weight map, **averaged over all N·H·W
# pixels** (a plain mean, not divided by the sum of the weights).

# %%
def weighted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight_map: torch.Tensor
) -> torch.Tensor:
    """Mean over pixels of w · (−log softmax(logits)[target]).

    Args:
        logits: (N, C, H, W) float32 or float64, on any device.
        target: (N, H, W) int64 class indices in [0, C).
        weight_map: (N, H, W), or (H, W) shared by every image; cast to ``logits``' dtype
            and device.

    Returns:
        0-dim tensor, ``(1 / (N·H·W)) · Σ_{n,y,x} w[n,y,x] · (−log p[n, target[n,y,x], y, x])``
        with p the softmax over dim 1; ``logits``' dtype. Differentiable w.r.t. ``logits``
        (and ``weight_map``).

    Forbidden: ``F.cross_entropy``, ``F.nll_loss``, ``nn.CrossEntropyLoss``, ``nn.NLLLoss``.
    """
    # BEGIN SOLUTION
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    nll = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)  # (N, H, W)
    w = weight_map.to(dtype=logits.dtype, device=logits.device)
    return (w * nll).mean()
    # END SOLUTION
