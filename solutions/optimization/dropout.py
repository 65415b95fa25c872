# %% [markdown]
# # 2.4 Dropout — exercise
#
# Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov (2014) fight overfitting by
# switching hidden units off at random while a network trains: every unit is kept with
# probability $1-p$ and set to zero with probability $p$, afresh for every example and every
# step, so no unit can rely on a particular set of partners. At test time nothing is dropped,
# and the outputs must be rescaled so that each unit's expected value is the same as in training.
#
# Modern libraries put that rescaling in training ("inverted" dropout). With a mask
# $m_i \sim \mathrm{Bernoulli}(1-p)$,
#
# $$y_i = \frac{m_i\, x_i}{1-p} \quad\text{(training)}, \qquad y_i = x_i \quad\text{(test)},
#   \qquad \mathbb{E}[y_i] = x_i .$$
#
# The paper writes $p$ for the probability of *keeping* a unit, multiplies nothing in training
# and multiplies the weights (here: the outputs) by $p$ at test time. You will write both
# conventions, a module, and a mask that is reproducible given a `torch.Generator`.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `dropout_mask`
#
# Draw one uniform number per entry with `torch.rand(shape, generator=generator)` (float32,
# on the CPU) and keep the entries whose number is at least $p$. Each entry is then kept with
# probability $1-p$, and the same generator state always gives the same mask.

# %%
def dropout_mask(
    shape: tuple[int, ...] | torch.Size,
    p: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A random keep-mask: True where a unit is kept, False where it is dropped.

    Args:
        shape: shape of the mask (e.g. ``x.shape``).
        p: drop probability, 0 <= p <= 1.
        generator: a CPU ``torch.Generator``; None uses torch's global generator.

    Returns:
        A bool tensor of ``shape`` on the CPU, equal to
        ``torch.rand(shape, generator=generator) >= p``: exactly one float32 uniform draw per
        entry, in row-major order. p = 0 keeps everything, p = 1 drops everything.
    """
    # BEGIN SOLUTION
    u = torch.rand(shape, generator=generator)
    return u >= p
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `dropout` (inverted dropout)
#
# In training, multiply `x` by a mask from `dropout_mask(x.shape, p, generator)` (moved to
# `x`'s device) and divide by $1-p$, so that the expected output equals `x`. Each entry of
# `x` gets its own mask entry: every example in a batch is dropped independently. With
# $p = 1$ every unit is dropped: return zeros, not $0/0$ = NaN. Outside training, return `x`
# unchanged. The gradient with respect to `x` is then $m/(1-p)$ in training and 1 at test.

# %%
def dropout(
    x: torch.Tensor,
    p: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Inverted dropout: kept units are scaled by 1 / (1 - p) during training.

    Args:
        x: input of any shape, float32 or float64, on any device.
        p: drop probability, 0 <= p <= 1.
        training: drop and rescale when True; return ``x`` unchanged when False.
        generator: CPU generator for the mask; the mask is ``dropout_mask`` of ``x.shape``,
            ``p`` and ``generator`` (drawn on the CPU, then moved to ``x``'s device).

    Returns:
        A tensor like ``x`` (same shape, dtype and device), differentiable w.r.t. ``x``.
        With p = 1 in training it is all zeros (never NaN).

    Forbidden: ``F.dropout`` and the other library dropouts (``torch.dropout``,
    ``nn.Dropout``, ``F.dropout2d``, ``F.alpha_dropout``, ...).
    """
    # BEGIN SOLUTION
    if not training:
        return x
    keep = dropout_mask(x.shape, p, generator).to(x.device)
    if p == 1:
        return x * keep  # every unit dropped: zeros with zero gradient, never 0 / 0
    return x * keep / (1 - p)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — the `Dropout` module
#
# A module with no parameters that stores `p` and calls `dropout` in its `forward`, dropping
# only while the module is in training mode (`self.training`, switched by `.train()` and
# `.eval()`).

# %%
class Dropout(nn.Module):
    """Inverted dropout as a layer.

    Args:
        p: drop probability, 0 <= p <= 1 (stored as ``self.p``).

    ``forward(x)`` returns ``dropout(x, self.p, self.training)``'s result, like
    ``torch.nn.Dropout``: random drops in training mode, the identity in eval mode; in x's dtype
    and on its device, differentiable w.r.t. x. The mask
    comes from torch's global generator (``torch.manual_seed`` makes it reproducible): after
    ``torch.manual_seed(s)``, ``Dropout(p)(x)`` equals ``dropout(x, p)`` after the same seed.
    An optional ``generator=`` keyword, passed on to :func:`dropout`, is allowed; the checks
    do not use it.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.p = p
        # END SOLUTION

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        # BEGIN SOLUTION
        return dropout(x, self.p, training=self.training, generator=generator)
        # END SOLUTION


# %% [markdown]
# ## Task 4 — `paper_dropout` (the paper's convention)
#
# In the paper, $p$ is the probability of **retaining** a unit. In training, multiply `x` by a
# mask and do not rescale; at test time, multiply `x` by $p$, which is the expected value of the
# training output. Draw the mask as `dropout_mask(x.shape, 1 - p_retain, generator)`: the same
# generator then gives the same mask as `dropout(x, 1 - p_retain, generator=...)`, and the two
# conventions differ only by the constant factor $p_{\text{retain}}$.

# %%
def paper_dropout(
    x: torch.Tensor,
    p_retain: float,
    training: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dropout as written in Srivastava et al. (2014): p is the retention probability.

    Args:
        x: input of any shape, float32 or float64, on any device.
        p_retain: probability of keeping a unit, 0 <= p_retain <= 1.
        training: True: ``x * mask`` with the mask ``torch.rand(x.shape, generator=generator)
            >= 1 - p_retain`` (that is, ``dropout_mask`` with drop probability
            ``1 - p_retain``), moved to ``x``'s device, and no rescaling. False: ``p_retain * x``.
        generator: CPU generator for the mask: one float32 draw per entry, in row-major order,
            and no other draw (None uses torch's global generator).

    Returns:
        A tensor like ``x`` (same shape, dtype and device), differentiable w.r.t. ``x``.

    Forbidden: the library dropouts, as in :func:`dropout`.
    """
    # BEGIN SOLUTION
    if training:
        keep = dropout_mask(x.shape, 1 - p_retain, generator).to(x.device)
        return x * keep
    return x * p_retain
    # END SOLUTION
