# %% [markdown]
# # 5.16 DALL·E 2 — exercise
#
# Ramesh et al. (2022) generate an image from a caption in two stages that meet in the
# embedding space of a CLIP model (unit 5.14). A **prior** maps the caption's CLIP text
# embedding $z_t$ to a CLIP image embedding $z_i$; a **decoder** (a diffusion model) paints an
# image from $z_i$. Because the image side is a point on CLIP's embedding sphere, two images
# can be blended by walking between their embeddings and decoding each point on the way.
#
# You write the two pieces that are specific to this design:
#
# 1. `slerp`, the spherical interpolation the paper uses to walk between embeddings;
# 2. `prior_loss`, the training loss of the diffusion prior, which, unlike DDPM (unit 5.8),
#    predicts the clean embedding $z_i$ itself rather than the noise:
#
# $$z_i^{(t)} = \sqrt{\bar\alpha_t}\, z_i + \sqrt{1 - \bar\alpha_t}\,\epsilon, \qquad
#   L_\text{prior} = \mathbb E_{t, \epsilon}\,
#   \big\| f_\theta\big(z_i^{(t)}, t, z_t\big) - z_i \big\|^2 .$$
#
# Steps are 0-indexed, $t = 0, \dots, T - 1$, as in unit 5.8.
#
# Not allowed in `prior_loss`: `torch.nn.functional.mse_loss` and `torch.nn.MSELoss`; write the
# squared error yourself.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `slerp`
#
# Between two vectors $a$ and $b$ at angle $\theta$, with
# $\cos\theta = \hat a \cdot \hat b$ where $\hat a = a / \|a\|$, spherical linear
# interpolation is
#
# $$\operatorname{slerp}(a, b; t) = \frac{\sin\big((1 - t)\theta\big)}{\sin\theta}\, a
#   + \frac{\sin(t\theta)}{\sin\theta}\, b, \qquad
#   \theta = \arccos\big(\operatorname{clamp}(\hat a \cdot \hat b, -1, 1)\big).$$
#
# It runs from $a$ at $t = 0$ to $b$ at $t = 1$. When $a$ and $b$ have the same norm, every
# point on the way has that norm too, and the points are equally spaced in angle; the straight
# line $(1 - t)a + tb$ (lerp) cuts through the inside of the sphere instead.
#
# Two numerical details. The rounded dot product of two (nearly) parallel unit vectors can
# come out a hair above 1, where `arccos` is NaN: clamp it to $[-1, 1]$ first. And where
# $\sin\theta$ is (nearly) zero, $a$ and $b$ parallel or opposite, the formula is $0/0$: fall
# back to the straight line there.

# %%
def slerp(a, b, t):
    """Spherical linear interpolation between a and b along the last dimension.

    Args:
        a: (..., D) tensor, float32 or float64, on any device; no row may be all zero.
        b: tensor of a's dtype and device, broadcastable with a (typically the same shape).
        t: the position, a Python float (0 gives a, 1 gives b), or a tensor of a's dtype and
            device broadcastable against the angle of shape (..., 1), e.g. shape (N, 1) for N
            positions between two (D,) vectors, or (B, 1) for one position per row. Values
            outside [0, 1] extrapolate along the same great circle.

    Returns:
        the broadcast shape of a, b and t (a's shape for a float t), in a's dtype and on its
        device: ``(sin((1 − t)θ)·a + sin(tθ)·b) / sin θ`` with
        ``θ = arccos(clamp(â·b̂, −1, 1))`` per row, the cosine computed as
        ``(a·b) / (‖a‖ ‖b‖)`` over the last dimension. Rows where ``sin θ < 1e-7`` (a and b
        parallel or opposite, a == b included) get the linear interpolation
        ``(1 − t)·a + t·b`` instead, and must be finite there (checked with a == b, b = 3a,
        b = a/2, and b = −a for vectors whose cosine is exactly −1; for nearly opposite
        vectors the great circle is not determined and no value is checked).

    Differentiable (autograd) w.r.t. a, b and a tensor t where a and b are not parallel
    (gradients checked there only). Inputs are not modified in place.
    """
    # BEGIN SOLUTION
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True)
                                           * b.norm(dim=-1, keepdim=True))
    theta = torch.arccos(cos.clamp(-1.0, 1.0))  # the angle between a and b, (..., 1)
    sin = torch.sin(theta)
    small = sin < 1e-7
    safe = torch.where(small, torch.ones_like(sin), sin)  # no 0/0 in the unused branch
    spherical = (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / safe
    linear = (1 - t) * a + t * b
    return torch.where(small, linear, spherical)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `prior_loss`
#
# The diffusion prior is a network $f_\theta(x_t, t, z_t)$ that sees a noised image
# embedding, the step and the caption's text embedding. Noise the image embedding exactly as
# `q_sample` does in unit 5.8 (gather $\bar\alpha_t$ per row, cast it to the embedding's
# dtype), call the model, and return the mean squared error between its output and the
# **clean** image embedding $z_i$ (the paper's prior predicts $z_i$ directly, not $\epsilon$).
#
# `TinyPrior` below is a small network with this interface; the checks pass you models like it.

# %%
class TinyPrior(nn.Module):
    """A small prior network ``model(x_t, t, text_emb) -> (B, D)`` (given; do not change).

    Input: the noised image embedding x_t (B, D), the steps t (a (B,) LongTensor) and the
    text embedding (B, D); the step enters as (sin, cos) of ``t / period``. Two linear layers
    with a tanh between them. Raises if t is not a (B,) LongTensor or text_emb is not (B, D).
    """

    def __init__(self, dim: int, hidden: int = 32, period: float = 10.0) -> None:
        super().__init__()
        self.period = period
        self.inp = nn.Linear(2 * dim + 2, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, text_emb: torch.Tensor):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != x_t.shape[:1]:
            raise TypeError("call the prior as model(x_t, t, text_emb) with t a (B,) LongTensor")
        if text_emb.shape != x_t.shape:
            raise ValueError(f"text_emb must have x_t's shape {tuple(x_t.shape)}, "
                             f"got {tuple(text_emb.shape)}")
        phase = t.to(x_t.dtype)[:, None] / self.period
        h = torch.cat([x_t, text_emb, torch.sin(phase), torch.cos(phase)], dim=-1)
        return self.out(torch.tanh(self.inp(h)))


# %%
def prior_loss(model, image_emb, text_emb, t, noise, alphas_cumprod):
    """The DALL·E 2 diffusion prior's loss: mean((model(x_t, t, text_emb) − image_emb)²).

    Args:
        model: the prior, called once as ``model(x_t, t, text_emb)`` in this argument order,
            with x_t the noised image embeddings (B, D) and the (B,) LongTensor t below;
            returns a (B, D) prediction of the clean image embeddings.
        image_emb: (B, D) clean image embeddings z_i (the regression target), float32 or
            float64, on any device.
        text_emb: (B, D) text embeddings z_t of the captions, same dtype and device; passed
            to the model unchanged.
        t: (B,) LongTensor of steps, 0-indexed, each in [0, T).
        noise: (B, D) standard normal noise ε, same dtype and device as image_emb.
        alphas_cumprod: (T,) the products ᾱ_0, …, ᾱ_{T−1}, possibly float64 for float32
            embeddings: gather ᾱ_t per row and cast it to image_emb's dtype and device.

    Returns:
        0-dim tensor in image_emb's dtype: the mean over all B·D elements of
        ``(model(x_t, t, text_emb) − image_emb)²`` with
        ``x_t = sqrt(ᾱ_t)·image_emb + sqrt(1 − ᾱ_t)·noise``. The target is the clean
        embedding, not the noise. Differentiable (autograd) w.r.t. image_emb, text_emb,
        noise and the model's parameters (no ``.item()``, no detaching). Inputs are not
        modified in place.

    Forbidden: ``F.mse_loss`` and ``nn.MSELoss``.
    """
    # BEGIN SOLUTION
    abar = alphas_cumprod[t].to(device=image_emb.device, dtype=image_emb.dtype)[:, None]
    x_t = torch.sqrt(abar) * image_emb + torch.sqrt(1 - abar) * noise  # q(z_i^(t) | z_i)
    pred = model(x_t, t, text_emb)  # f_theta(z_i^(t), t, z_t) predicts z_i itself
    return ((pred - image_emb) ** 2).mean()
    # END SOLUTION
