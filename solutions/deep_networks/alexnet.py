# %% [markdown]
# # 1.4 AlexNet — exercise
#
# Krizhevsky, Sutskever & Hinton (2012) won ImageNet with a bundle of tricks around a deep
# convolutional network. You will implement two of them that are easy to get subtly wrong:
#
# 1. **Local response normalization** (paper, Section 3.3). The response $a^i_{x,y}$ of channel
#    $i$ at position $(x, y)$ is divided by a power of the sum of squares of its neighbours
#    *across channels* at the same position:
#
#    $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\,i-n/2)}^{\min(N-1,\,i+n/2)}
#      \big(a^j_{x,y}\big)^2\Big)^{\beta}$$
#
#    with $N$ channels and the paper's constants $k = 2$, $n = 5$, $\alpha = 10^{-4}$,
#    $\beta = 0.75$. Note that $\alpha$ multiplies the *sum* of squares. (PyTorch's
#    `F.local_response_norm` multiplies $\alpha$ by the *mean* over the window instead, so its
#    $\alpha$ is the paper's $\alpha$ times $n$.)
# 2. **Ten-crop testing** (Section 4.1). At test time the network sees the four corner crops
#    and the centre crop of each image, and the horizontal mirror of each of those five, and
#    averages its ten softmax outputs.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `local_response_norm`
#
# The window holds `size` channels: ⌊size/2⌋ channels below $i$, channel $i$ itself, and
# ⌈size/2⌉ − 1 channels above it. For odd `size` (the paper's $n = 5$) that is $n/2$ (rounded
# down) on each side, exactly the sum above. For even `size` the window leans one channel
# towards the lower indices (as in PyTorch's LRN). Near the first and last channels the window
# is clipped: it only sums the channels that exist.

# %%
def local_response_norm(
    x: torch.Tensor,
    size: int = 5,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 2.0,
) -> torch.Tensor:
    """Local response normalization across channels, with the paper's formula.

    Args:
        x: (N, C, H, W) activations (also (N, C) or (N, C, L): any shape whose dimension 1
            holds the channels), float32 or float64, on any device.
        size: number of channels n in the window (≥ 1).
        alpha: multiplies the *sum* of squares over the window (not its mean).
        beta: exponent of the denominator.
        k: additive constant of the denominator.

    Returns:
        A tensor of the shape, dtype and device of ``x``:
        ``b[:, i] = x[:, i] / (k + alpha * sum(x[:, j] ** 2 for j in window(i))) ** beta``
        with ``window(i) = max(0, i - size // 2) … min(C - 1, i + (size - 1) // 2)``.

    Forbidden: ``torch.nn.functional.local_response_norm`` and ``torch.nn.LocalResponseNorm``.
    Gradients must flow through your operations (autograd).
    """
    # BEGIN SOLUTION
    channels = x.shape[1]
    squared = x * x
    below = size // 2
    above = size - 1 - below
    window_sums = []
    for i in range(channels):
        first = max(0, i - below)
        last = min(channels - 1, i + above)
        window_sums.append(squared[:, first:last + 1].sum(dim=1))
    window_sum = torch.stack(window_sums, dim=1)
    return x / (k + alpha * window_sum) ** beta
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `ten_crop`
#
# For each image, in this order: top-left, top-right, bottom-left, bottom-right and centre
# crops, then the horizontal mirror images (left–right flips) of those same five crops, in the
# same order. The ten views of image 0 come first, then the ten of image 1, and so on, so that
# `ten_crop(images, crop).reshape(N, 10, C, crop, crop)[n, v]` is view `v` of image `n`.
#
# The centre crop starts at row ⌊(H − crop)/2⌋ and column ⌊(W − crop)/2⌋ (when the margin is
# odd, it sits one pixel nearer the top-left corner).

# %%
def ten_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    """The ten crops of AlexNet's test-time augmentation.

    Args:
        images: (N, C, H, W) images, any dtype, on any device; H and W may differ.
        crop: side of the square crops, ``1 <= crop <= min(H, W)``.

    Returns:
        (N·10, C, crop, crop), same dtype and device as ``images``. Rows 10·n … 10·n + 9 are,
        for image n: top-left, top-right, bottom-left, bottom-right, centre, then the
        horizontal flips (last axis reversed) of those five in the same order.

    Forbidden: torchvision's ``ten_crop`` / ``five_crop`` / ``TenCrop`` / ``FiveCrop``.
    """
    # BEGIN SOLUTION
    height, width = images.shape[-2], images.shape[-1]
    if not 1 <= crop <= min(height, width):
        raise ValueError(f"crop {crop} does not fit in images of size {height}×{width}")
    bottom = height - crop
    right = width - crop
    top = (height - crop) // 2
    left = (width - crop) // 2
    corners = [(0, 0), (0, right), (bottom, 0), (bottom, right), (top, left)]
    views = [images[:, :, r:r + crop, c:c + crop] for r, c in corners]
    views += [view.flip(-1) for view in views]
    return torch.stack(views, dim=1).reshape(-1, images.shape[1], crop, crop)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `ten_crop_predict`
#
# Run the model on all ten views of every image, turn each view's logits into class
# probabilities with a softmax, and average the ten probability vectors of each image.

# %%
def ten_crop_predict(model: nn.Module, images: torch.Tensor, crop: int) -> torch.Tensor:
    """Class probabilities averaged over the ten crops of each image.

    Args:
        model: maps a batch (M, C, crop, crop) to logits (M, num_classes). Use it as it is
            (do not change its mode or its weights).
        images: (N, C, H, W) images, float32 or float64, on any device.
        crop: side of the square crops, as in :func:`ten_crop`.

    Returns:
        (N, num_classes) probabilities (each row sums to 1), same dtype and device as the
        model's logits: the mean over the ten views of ``softmax(logits)``, not the softmax of
        the mean logits.
    """
    # BEGIN SOLUTION
    logits = model(ten_crop(images, crop))
    probs = torch.softmax(logits, dim=-1)
    return probs.reshape(images.shape[0], 10, -1).mean(dim=1)
    # END SOLUTION
