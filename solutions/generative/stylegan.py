# %% [markdown]
# # 5.2 StyleGAN — exercise
#
# Karras, Laine & Aila (2018) stop feeding the latent code $z$ into the first layer of the
# generator. Instead a **mapping network** $f$, an MLP, turns $z \sim \mathcal N(0, I)$ into an
# intermediate latent $w = f(z)$, and the **synthesis network** starts from a learned constant.
# After every convolution, $w$ sets the feature maps' per-channel scale and bias through
# **adaptive instance normalisation** (AdaIN), with the style $(y_s, y_b)$ an affine function
# of $w$:
#
# $$\operatorname{AdaIN}(x_i, y) = y_{s,i}\,\frac{x_i - \mu(x_i)}{\sigma(x_i)} + y_{b,i},$$
#
# where $x_i$ is channel $i$ of one sample's feature map and $\mu, \sigma$ are its mean and
# standard deviation over the spatial positions. Because every layer reads $w$ afresh, two
# codes can drive different layers (**style mixing**), and samples can be pulled towards the
# average code $\bar w$ (the **truncation trick**):
#
# $$w' = \bar w + \psi\,(w - \bar w), \qquad 0 \le \psi \le 1 .$$
#
# The mapping network first normalises $z$ with **pixel norm** (from ProGAN): each sample's
# vector is divided by its root mean square,
# $z / \sqrt{\tfrac1C \sum_j z_j^2 + \epsilon}$.
#
# You write these five pieces. No random numbers are drawn anywhere: every input is given.
# Not allowed anywhere in this exercise: the library normalisations
# (`torch.nn.functional.instance_norm`, `torch.nn.InstanceNorm1d/2d/3d`,
# `torch.nn.functional.batch_norm`, `torch.nn.functional.group_norm`,
# `torch.nn.functional.layer_norm`, `torch.nn.functional.normalize`). `mean`, `var`,
# `var_mean`, `sqrt`, `rsqrt`, `torch.where`, `nn.Linear` and `nn.LeakyReLU` are fine.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `pixel_norm`
#
# Normalise every sample's feature vector to unit root mean square, over **dimension 1**
# (the features or channels), separately at every other index:
#
# $$\operatorname{PN}(z)_{b,j} = \frac{z_{b,j}}{\sqrt{\tfrac1C \sum_{k=1}^{C} z_{b,k}^2
#   + \epsilon}} .$$
#
# The mean is over the $C$ features of one sample (never over the batch), and $\epsilon$ is
# inside the square root.

# %%
def pixel_norm(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixel-wise feature normalisation (ProGAN, used on z by StyleGAN's mapping network).

    Args:
        z: (B, C) latent codes, or (B, C, H, W) feature maps (any number of dimensions
            >= 2), float32 or float64, on any device.
        eps: a float added to the mean of squares **inside** the square root.

    Returns:
        Same shape, dtype and device as ``z``:
        ``z / sqrt(mean(z ** 2, dim=1, keepdim=True) + eps)``: for every sample (and, for
        feature maps, every spatial position) the mean is taken over dimension 1 only.
        Differentiable w.r.t. ``z`` (the checks back-propagate through it); ``z`` is not
        changed. An all-zero vector stays zero.
    """
    # BEGIN SOLUTION
    mean_square = (z * z).mean(dim=1, keepdim=True)  # (1/C) Σ_k z_k², per sample
    return z / torch.sqrt(mean_square + eps)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `MappingNetwork`
#
# The mapping $f: z \mapsto w$: pixel norm of $z$ first, then `num_layers` fully connected
# layers, each followed by a leaky ReLU of slope 0.2, the last one included (as in the
# paper's code; its mapping has 8 layers of width 512):
#
# $$h_0 = \operatorname{PN}(z), \qquad h_\ell = \operatorname{lrelu}_{0.2}(W_\ell h_{\ell-1} +
#   b_\ell),\ \ \ell = 1, \dots, L, \qquad w = h_L .$$
#
# Layer 1 maps `z_dim` to `w_dim`, every later layer `w_dim` to `w_dim`. The paper also uses
# an "equalised learning rate" (weights rescaled at run time) and a 100× smaller learning
# rate for the mapping; both are training details and are left out here: plain `nn.Linear`
# layers.

# %%
class MappingNetwork(nn.Module):
    """StyleGAN's mapping network f: z (B, z_dim) -> w (B, w_dim).

    Args:
        z_dim: the width of z.
        w_dim: the width of w and of every hidden layer.
        num_layers: L >= 1, the number of fully connected layers.

    Submodules (names and shapes are the contract: the checks copy a state dict into them):

    - ``layers``: an ``nn.ModuleList`` of L ``nn.Linear`` layers with biases,
      ``layers[0] = nn.Linear(z_dim, w_dim)`` and ``layers[l] = nn.Linear(w_dim, w_dim)`` for
      l >= 1. The state dict holds exactly ``layers.{l}.weight`` (w_dim, in) and
      ``layers.{l}.bias`` (w_dim,) for l = 0 … L − 1, and nothing else (no buffers; the
      activation has no parameters).

    ``forward(z)``: z (B, z_dim), float32 or float64, on any device (the module is cast to
    z's dtype by the checks). Returns (B, w_dim) in z's dtype and on its device:
    ``pixel_norm(z)`` (eps 1e-8), then for every layer in order ``x = leaky_relu(layer(x),
    0.2)``, the last layer included. Differentiable w.r.t. z and every parameter (the checks
    compare the gradients).
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        widths = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1]) for i in range(num_layers)
        )
        self.act = nn.LeakyReLU(0.2)
        # END SOLUTION

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        h = pixel_norm(z)  # h_0 = PN(z)
        for layer in self.layers:
            h = self.act(layer(h))  # h_l = lrelu(W_l h_{l-1} + b_l)
        return h
        # END SOLUTION


# %% [markdown]
# ## Task 3 — `adain`
#
# Adaptive instance normalisation of a batch of feature maps $x \in \mathbb R^{B \times C
# \times H \times W}$ with per-sample styles $y_s, y_b \in \mathbb R^{B \times C}$:
#
# $$\mu_{b,c} = \frac{1}{HW}\sum_{h,w} x_{b,c,h,w}, \qquad
#   \sigma^2_{b,c} = \frac{1}{HW}\sum_{h,w} (x_{b,c,h,w} - \mu_{b,c})^2,$$
# $$\operatorname{AdaIN}(x, y_s, y_b)_{b,c,h,w} = y_{s,b,c}\,
#   \frac{x_{b,c,h,w} - \mu_{b,c}}{\sqrt{\sigma^2_{b,c} + \epsilon}} + y_{b,b,c} .$$
#
# The statistics belong to **one sample and one channel** (over H and W only: not over the
# batch, not over the channels), the variance is the **biased** one (divide by $HW$, as
# instance norm does), and $\epsilon$ sits inside the square root.

# %%
def adain(
    x: torch.Tensor,
    style_scale: torch.Tensor,
    style_bias: torch.Tensor,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Adaptive instance normalisation: instance-normalise x, then apply per-sample styles.

    Args:
        x: (B, C, H, W) feature maps, float32 or float64, on any device; H·W may be 1.
        style_scale: (B, C) the scales y_s, same dtype and device as x.
        style_bias: (B, C) the biases y_b, same dtype and device as x.
        eps: a float added to the variance **inside** the square root.

    Returns:
        (B, C, H, W) in x's dtype and on its device:
        ``style_scale[b, c] * (x[b, c] - mu[b, c]) / sqrt(var[b, c] + eps) + style_bias[b, c]``
        with mu and var the mean and the biased variance (divided by H·W) of ``x[b, c]`` over
        its H·W positions. With H = W = 1 the variance is 0 and the output is the bias.
        Differentiable w.r.t. x, style_scale and style_bias (the checks compare all three
        gradients); no input is changed.

    Forbidden: the library normalisations (``F.instance_norm``, ``nn.InstanceNorm2d``,
    ``F.batch_norm``, ``F.group_norm``, ``F.layer_norm``).
    """
    # BEGIN SOLUTION
    mu = x.mean(dim=(2, 3), keepdim=True)  # μ(x_{b,c}) over H, W
    var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)  # biased σ² over H, W
    x_hat = (x - mu) / torch.sqrt(var + eps)
    return style_scale[:, :, None, None] * x_hat + style_bias[:, :, None, None]
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `truncate`
#
# The truncation trick in $\mathcal W$: pull each code towards the **average code**
# $\bar w$ (in the paper, the mean of $f(z)$ over many $z$), not towards zero:
#
# $$w' = \bar w + \psi\,(w - \bar w).$$
#
# $\psi = 1$ leaves $w$ unchanged, $\psi = 0$ gives $\bar w$ for every sample.

# %%
def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """Truncation towards the average code.

    Args:
        w: (B, w_dim) codes, or (B, num_layers, w_dim) per-layer codes, float32 or float64.
        w_avg: (w_dim,) the average code, same dtype and device as w; broadcast over the
            leading dimensions of w.
        psi: a Python float ψ (usually in [0, 1]; any value is allowed, ψ > 1 extrapolates).

    Returns:
        Same shape, dtype and device as w: ``w_avg + psi * (w - w_avg)``. Differentiable
        w.r.t. w and w_avg (the checks compare both gradients); no input is changed.
    """
    # BEGIN SOLUTION
    return w_avg + psi * (w - w_avg)
    # END SOLUTION


# %% [markdown]
# ## Task 5 — `style_mix`
#
# Style mixing: the synthesis network has `num_layers` style inputs (layer 0 the coarsest,
# nearest the constant input). Broadcast two codes to one code per layer and switch from the
# first to the second at layer `crossover`:
#
# $$w_\text{mix}[b, \ell] = \begin{cases} w_1[b] & \ell < \text{crossover} \\
#   w_2[b] & \ell \ge \text{crossover} \end{cases}, \qquad \ell = 0, \dots,
#   \text{num\_layers} - 1 .$$
#
# So `crossover = 0` gives $w_2$ everywhere, `crossover = num_layers` gives $w_1$ everywhere,
# and `crossover = 2` lets $w_1$ drive the two coarsest layers (pose, shape) and $w_2$ the rest.

# %%
def style_mix(
    w1: torch.Tensor, w2: torch.Tensor, crossover: int, num_layers: int
) -> torch.Tensor:
    """Per-layer codes: w1 for the layers before ``crossover``, w2 from it on.

    Args:
        w1: (B, w_dim) the first code per sample, float32 or float64, on any device.
        w2: (B, w_dim) the second code, same shape, dtype and device.
        crossover: a Python int in [0, num_layers], one for the whole batch: layers
            0 … crossover − 1 take w1, layers crossover … num_layers − 1 take w2.
        num_layers: the number of style inputs L >= 1.

    Returns:
        (B, num_layers, w_dim) in w1's dtype and on its device, with
        ``out[b, l] == w1[b]`` for l < crossover and ``out[b, l] == w2[b]`` otherwise (exact
        copies). A new tensor (not a view of the inputs); differentiable w.r.t. w1 and w2
        (the checks compare both gradients); no input is changed.
    """
    # BEGIN SOLUTION
    layer = torch.arange(num_layers, device=w1.device)
    take_w1 = (layer < crossover)[None, :, None]  # (1, L, 1)
    return torch.where(take_w1, w1[:, None, :], w2[:, None, :])
    # END SOLUTION
