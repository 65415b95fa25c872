# %% [markdown]
# # 5.10 Classifier guidance — exercise
#
# Dhariwal & Nichol (2021) steer an *unconditional* diffusion model towards a class $y$ with a
# separate classifier $p_\phi(y \mid x_t, t)$ trained on noised inputs. One reverse step of
# DDPM samples $x_{t-1} \sim \mathcal N(\mu, \Sigma)$ with $\mu = \mu_\theta(x_t, t)$ and
# $\Sigma = \sigma_t^2 I$. Multiplying that gaussian by $p_\phi(y \mid x_{t-1})^s$ and expanding
# $\log p_\phi$ to first order around $x_t$ gives again a gaussian with the same covariance
# and a shifted mean (the paper's Algorithm 1):
#
# $$x_{t-1} \sim \mathcal N\big(\mu + s\,\Sigma\, g,\ \Sigma\big), \qquad
#   g = \nabla_{x_t} \log p_\phi(y \mid x_t, t) = \nabla_{x_t} \log
#   \operatorname{softmax}\big(f_\phi(x_t, t)\big)_y ,$$
#
# where $f_\phi$ returns the classifier's logits and $s$ is the *guidance scale*: $s = 1$ aims
# at $p(x \mid y)$, larger $s$ at the sharper $p(x)\,p(y \mid x)^s$, more typical of the class
# and less diverse. You write the two pieces: the gradient $g$ for a whole batch, and the
# shifted mean.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Two small classifiers (given)
#
# The checks hand `classifier_grad` classifiers like these two, with fixed weights: a linear
# one, whose gradient has the closed form $W^\top(\mathrm{onehot}(y) - \mathrm{softmax})$, and
# a small MLP that also sees the step $t$, as a noise-aware classifier must. Both are called
# as `classifier(x_t, t)` with `t` a (B,) LongTensor, flatten the trailing dimensions of $x_t$,
# and return logits of shape (B, C). Do not change them.

# %%
class LinearClassifier(nn.Module):
    """logits = flatten(x_t) · Wᵀ + b, the same at every step t (given; do not change).

    ``forward(x_t, t)``: x_t (B, ...) with ``in_features`` values per sample, t a (B,)
    LongTensor (checked, otherwise unused); returns (B, classes) logits.
    """

    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, classes)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != x_t.shape[:1]:
            raise TypeError("call the classifier as classifier(x_t, t), t a (B,) LongTensor")
        return self.linear(x_t.flatten(1))


class NoiseAwareClassifier(nn.Module):
    """A small MLP p(y | x_t, t) whose logits depend on the step t (given; do not change).

    ``forward(x_t, t)``: the input is [flatten(x_t), sin(t / period), cos(t / period)], then
    Linear → tanh → Linear; x_t (B, ...) with ``in_features`` values per sample, t a (B,)
    LongTensor; returns (B, classes) logits.
    """

    def __init__(self, in_features: int, classes: int, hidden: int = 16,
                 period: float = 10.0) -> None:
        super().__init__()
        self.period = period
        self.inp = nn.Linear(in_features + 2, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != x_t.shape[:1]:
            raise TypeError("call the classifier as classifier(x_t, t), t a (B,) LongTensor")
        phase = t.to(x_t.dtype)[:, None] / self.period
        h = torch.cat([x_t.flatten(1), torch.sin(phase), torch.cos(phase)], dim=1)
        return self.out(torch.tanh(self.inp(h)))


# %% [markdown]
# ## Task 1 — `classifier_grad`
#
# For each sample $i$ of the batch, the gradient of **its own** log-probability of **its
# own** class, $g_i = \nabla_{x_i} \log \operatorname{softmax}(f_\phi(x_i, t_i))_{y_i}$. The
# samples do not interact in the classifier, so one backward pass of the *sum*
# $\sum_i \log p_\phi(y_i \mid x_i, t_i)$ with respect to the batch gives every $g_i$ at once
# (a mean would divide them all by $B$).
#
# Samplers run under `torch.no_grad()`, so switch gradients back on inside the function, and
# differentiate with respect to a fresh leaf copy of $x_t$ rather than the caller's tensor:
# the caller's `x_t` must come back exactly as it was, and the returned gradient must carry
# no autograd graph (a sampler loop would otherwise keep every step's graph alive).

# %%
def classifier_grad(classifier, x_t: torch.Tensor, t: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
    """∇ₓ log softmax(classifier(x_t, t))[y], per sample, for a whole batch.

    Args:
        classifier: a module called once as ``classifier(x, t)`` with x shaped like x_t;
            returns (B, C) logits. It treats the samples independently.
        x_t: (B, ...) noisy samples, float32 or float64, on any device. Not modified: its
            values and its ``requires_grad`` flag are the same after the call (differentiate
            w.r.t. a detached copy, ``x_t.detach().requires_grad_(True)``, never
            ``x_t.requires_grad_()``), whether or not the caller's x_t requires grad.
        t: the steps, passed to the classifier unchanged (a (B,) LongTensor here).
        y: (B,) LongTensor of target classes in [0, C), on x_t's device; classes may repeat.

    Returns:
        (B, ...) tensor, same shape, dtype and device as x_t: row i is the gradient of
        log p(y_i | x_i, t_i) w.r.t. x_i, i.e. the gradient w.r.t. x of the **sum** over the
        batch of each sample's own log-probability (not the mean). The log-probability is
        the log-softmax over the class axis (the last one) picked at y_i; take it with
        ``torch.log_softmax`` (log(softmax) underflows to log 0 for very confident logits
        and its gradient turns NaN; the checks include such logits). The result is
        detached: no autograd graph back to x_t or to the classifier's weights (no
        ``create_graph=True``; ``.detach()`` it if your method keeps one, as
        ``torch.func.grad`` does when autograd is on outside), so it is not differentiable
        and a gradient check finds no path through it. Works when called inside
        ``torch.no_grad()``: enable autograd locally, in a ``torch.enable_grad()`` block.

    Forbidden: ``F.cross_entropy`` / ``F.nll_loss`` (write the log-softmax and pick y
    yourself: their minus sign and batch mean are two classic slips), and full Jacobians
    (``torch.func.jacrev``, ``jacfwd``, ``vmap``, ``torch.autograd.functional.jacobian``):
    one backward pass of the summed log-probabilities is all it takes.
    """
    # BEGIN SOLUTION
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        logits = classifier(x, t)
        log_probs = torch.log_softmax(logits, dim=-1)
        chosen = log_probs[torch.arange(x.shape[0], device=x.device), y]  # log p(y_i | x_i)
        (grad,) = torch.autograd.grad(chosen.sum(), x)
    return grad
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `guided_mean`
#
# Shift the reverse step's mean along the classifier's gradient, scaled by the step's
# **variance** $\Sigma = \sigma_t^2$ (not the standard deviation $\sigma_t$) and by the
# guidance scale: $\mu + s\,\Sigma\,g$. The variance usually comes from a float64 schedule
# while the samples are float32: cast it to the mean's dtype and device first.

# %%
def guided_mean(mean: torch.Tensor, variance, grad: torch.Tensor, scale: float) -> torch.Tensor:
    """The classifier-guided mean μ + scale · Σ · g of one reverse step.

    Args:
        mean: (B, ...) the model's mean μ_θ(x_t, t), float32 or float64, on any device.
        variance: the reverse step's variance Σ = σ_t² (not σ_t): a Python float, a 0-dim
            tensor, or a tensor that broadcasts against mean ((B, 1, …, 1) per sample, or
            mean's own shape), possibly float64 for float32 data.
        grad: (B, ...) the classifier's gradient g = ∇ log p(y | x_t, t), shaped like mean,
            same dtype and device.
        scale: the guidance scale s, a Python float (s = 0 gives mean back).

    Returns:
        (B, ...) mean + scale · variance · grad, with ordinary broadcasting, in mean's dtype
        and on mean's device: cast variance to mean's dtype and device first (a Python
        float must not pass through float32 on its way to float64 data: ``torch.tensor(0.3)``
        is float32 by default, and the checks compare float64 to about 1e-7). A new tensor:
        mean is not modified in place. Differentiable (autograd) w.r.t. mean, variance and
        grad.
    """
    # BEGIN SOLUTION
    variance = torch.as_tensor(variance, dtype=mean.dtype, device=mean.device)
    return mean + scale * variance * grad
    # END SOLUTION
