# %% [markdown]
# # 5.1 Generative adversarial networks — exercise
#
# Goodfellow et al. (2014) train two networks against each other. A **generator** $G$ turns
# noise $z \sim p_z$ into samples $G(z)$; a **discriminator** $D$ outputs the probability
# $D(x) = \sigma(\ell(x))$ that $x$ came from the data rather than from $G$, where $\ell(x)$ is
# the network's raw output, its **logit**. The two play the minimax game
#
# $$\min_G \max_D \; V(D, G) = \mathbb E_{x \sim p_\text{data}}\big[\log D(x)\big]
#   + \mathbb E_{z \sim p_z}\big[\log\big(1 - D(G(z))\big)\big].$$
#
# You write the two losses that training minimises, in terms of logits. The one identity you
# need: with the softplus $\zeta(a) = \log(1 + e^{a})$,
#
# $$-\log \sigma(\ell) = \zeta(-\ell), \qquad -\log\big(1 - \sigma(\ell)\big) = \zeta(\ell).$$
#
# **Numerical stability.** A confident discriminator has logits of size 50 to $10^4$. There
# $\sigma(\ell)$ rounds to exactly 0 or 1, even in float64, and `torch.log(torch.sigmoid(l))` or
# `torch.log(1 - torch.sigmoid(l))` is $-\infty$: the loss is infinite and its gradient NaN.
# `F.softplus` (or `F.logsigmoid`) computes the same quantity without forming $\sigma$ first
# and stays finite (it is $\approx |\ell|$ on the wrong side, $\approx 0$ on the right one).
#
# Not allowed: `F.binary_cross_entropy_with_logits`, `nn.BCEWithLogitsLoss`,
# `F.binary_cross_entropy` and `nn.BCELoss`, which would do the exercise for you.
# `F.softplus`, `F.logsigmoid` and `torch.sigmoid` are allowed.

# %%
import torch  # noqa: F401 (yours to use)
import torch.nn.functional as F

# %% [markdown]
# ## Task 1 — `discriminator_loss`
#
# The discriminator ascends $V$: it wants $D(x) \to 1$ on real data and $D(G(z)) \to 0$ on
# fakes. As a loss to minimise, with $B_r$ real logits $\ell^r_i = \ell(x_i)$ and $B_f$ fake
# logits $\ell^f_j = \ell(G(z_j))$,
#
# $$L_D = -\frac{1}{B_r}\sum_{i} \log \sigma(\ell^r_i) - \frac{1}{B_f}\sum_{j}
#   \log\big(1 - \sigma(\ell^f_j)\big)
#   = \frac{1}{B_r}\sum_{i} \zeta(-\ell^r_i) + \frac{1}{B_f}\sum_{j} \zeta(\ell^f_j).$$
#
# Each expectation of $V$ is estimated by its **own** batch mean, so a real and a fake batch of
# different sizes weigh the same: do not average all $B_r + B_f$ terms together. This is the
# binary cross-entropy with label 1 for real and 0 for fake, summed over the two batches.

# %%
def discriminator_loss(real_logits, fake_logits):
    """The discriminator's loss mean(softplus(−real_logits)) + mean(softplus(fake_logits)).

    Args:
        real_logits: discriminator logits ℓ(x) on a batch of real samples, any shape
            ((B_r,), (B_r, 1), ...; B_r ≥ 1), float32 or float64, on any device. The mean is
            over all its elements.
        fake_logits: logits ℓ(G(z)) on a batch of generated samples, any shape with its own
            number of elements B_f ≥ 1 (B_f may differ from B_r), same dtype and device.

    Returns:
        a 0-dim tensor in the inputs' dtype and on their device:
        ``mean(softplus(-real_logits)) + mean(softplus(fake_logits))``, i.e.
        −mean log D(x) − mean log(1 − D(G(z))). Real data get label 1, fakes label 0; the
        **mean** of each batch separately (not the sum, not one mean over both batches
        together), the two means **added** (not averaged).

    Must stay finite, with finite gradients, for logits of any size (|ℓ| from 50 to 10^4 of
    either sign is checked, where ``torch.log(torch.sigmoid(ℓ))`` is −inf): use
    ``F.softplus`` or ``F.logsigmoid``. Differentiable (autograd) w.r.t. both inputs, and the
    inputs are not modified in place.

    Forbidden: ``F.binary_cross_entropy_with_logits``, ``nn.BCEWithLogitsLoss``,
    ``F.binary_cross_entropy``, ``nn.BCELoss``.
    """
    # BEGIN SOLUTION
    real_term = F.softplus(-real_logits).mean()  # -E_x[log D(x)]
    fake_term = F.softplus(fake_logits).mean()  # -E_z[log(1 - D(G(z)))]
    return real_term + fake_term
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `generator_loss`
#
# The generator descends $V$; only the second term depends on it. Minimising it as written is
# the **saturating** loss of the minimax game,
#
# $$L_G^\text{sat} = \frac{1}{B_f}\sum_j \log\big(1 - \sigma(\ell^f_j)\big)
#   = -\frac{1}{B_f}\sum_j \zeta(\ell^f_j),$$
#
# whose gradient, $\partial L_G^\text{sat} / \partial \ell^f_j = -\sigma(\ell^f_j)/B_f$,
# vanishes exactly when the discriminator confidently rejects the fakes
# ($\ell^f \ll 0$), early in training. The paper's fix is the **non-saturating** loss: maximise
# $\log D(G(z))$ instead,
#
# $$L_G^\text{ns} = -\frac{1}{B_f}\sum_j \log \sigma(\ell^f_j) = \frac{1}{B_f}\sum_j
#   \zeta(-\ell^f_j), \qquad \frac{\partial L_G^\text{ns}}{\partial \ell^f_j} =
#   -\frac{1 - \sigma(\ell^f_j)}{B_f},$$
#
# the binary cross-entropy of the fakes with the label 1 ("real"). It has the same fixed point
# but a strong gradient where the saturating one has none. The default is the non-saturating
# loss (`saturating=False`).

# %%
def generator_loss(fake_logits, saturating=False):
    """The generator's loss on the discriminator's logits of generated samples.

    Args:
        fake_logits: logits ℓ(G(z)) of a batch of generated samples, any shape (B_f ≥ 1
            elements; the mean is over all of them), float32 or float64, on any device.
        saturating: False (default) for the non-saturating loss
            ``mean(softplus(-fake_logits))`` = −mean log D(G(z)); True for the saturating
            loss of the minimax game ``-mean(softplus(fake_logits))`` = mean log(1 − D(G(z))),
            which is ≤ 0 and decreases as the fakes fool the discriminator.

    Returns:
        a 0-dim tensor in the input's dtype and on its device. The **mean** over the batch
        (not the sum), with the signs above: both branches are losses to minimise.

    Must stay finite, with finite gradients, for logits of any size (|ℓ| from 50 to 10^4 of
    either sign is checked, in both branches, where ``torch.log(torch.sigmoid(ℓ))`` and
    ``torch.log(1 - torch.sigmoid(ℓ))`` are −inf): use ``F.softplus`` or ``F.logsigmoid``.
    Differentiable (autograd) w.r.t. ``fake_logits``, which is not modified in place.

    Forbidden: ``F.binary_cross_entropy_with_logits``, ``nn.BCEWithLogitsLoss``,
    ``F.binary_cross_entropy``, ``nn.BCELoss``.
    """
    # BEGIN SOLUTION
    if saturating:
        return -F.softplus(fake_logits).mean()  # E_z[log(1 - D(G(z)))]
    return F.softplus(-fake_logits).mean()  # -E_z[log D(G(z))]
    # END SOLUTION
