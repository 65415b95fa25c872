# %% [markdown]
# # 3.5 Negative sampling — exercise
#
# The skip-gram model predicts the words around a centre word $c$. Every word $w$ has an
# *input* vector $v_w$ (used when $w$ is the centre) and an *output* vector $u_w$ (used when
# $w$ is predicted). With a full softmax, $p(o \mid c) = \exp(u_o^\top v_c) / \sum_{w=1}^{V}
# \exp(u_w^\top v_c)$ costs $O(V)$ per training pair. Mikolov, Sutskever, Chen, Corrado &
# Dean (2013) replace it by **negative sampling**: tell the true context word $o$ apart from
# $K$ "noise" words $w_1, \dots, w_K$ drawn from a noise distribution $P_n$, with one logistic
# regression each. With $\sigma$ the logistic sigmoid, the loss of one pair is
#
# $$\ell(c, o) = -\Big[\log \sigma(u_o^\top v_c) + \sum_{k=1}^{K} \log \sigma(-u_{w_k}^\top
#   v_c)\Big], \qquad w_k \sim P_n(w) = \frac{\operatorname{count}(w)^{3/4}}{\sum_{w'}
#   \operatorname{count}(w')^{3/4}} .$$
#
# The same paper discards frequent words at random (each occurrence of $w$ is kept with
# probability $\min(1, \sqrt{t / f(w)})$, $f(w)$ its relative frequency) and joins frequent
# word pairs into phrases by the score $(n_{ab} - \delta)/(n_a\, n_b)$. You will write all four
# formulas. Nothing here draws random numbers: the sampling itself happens in the lecture.

# %%
import torch
import torch.nn.functional as F

# %% [markdown]
# ## Task 1 — `noise_distribution`
#
# The unigram distribution raised to the power $p$ ($p = 3/4$ in the paper) and renormalised:
# $P_n(w) = c_w^{\,p} / \sum_{w'} c_{w'}^{\,p}$. Raise the *counts* to the power first, then
# normalise. The result is float64 whatever the dtype of the counts: convert them to float64
# **before** any arithmetic (the checks compare at float64 precision).

# %%
def noise_distribution(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """The noise distribution P_n(w) = c_w^power / sum_w' c_w'^power.

    Args:
        counts: (V,) tensor of non-negative word counts c_w, V >= 1, of an integer dtype
            (int32, int64) or a floating dtype (float32, float64), on any device. At least one
            count is positive; a zero count gets probability 0 (for power > 0).
        power: the exponent p (a Python float), 0.75 by default; power=1 gives the unigram
            distribution, power=0 the uniform one (every word 1/V, zero counts included,
            since 0⁰ = 1).

    Returns:
        (V,) float64 tensor on the device of ``counts``, non-negative and summing to 1.
        The output is float64 for every input dtype: convert ``counts`` to float64 first,
        then raise to the power and normalise.
    """
    # BEGIN SOLUTION
    weights = counts.to(torch.float64) ** power
    return weights / weights.sum()
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `negative_sampling_loss`
#
# A batch of $B$ training pairs: row $b$ of `center` is the input vector $v_c$ of the centre
# word, row $b$ of `context` the output vector $u_o$ of its true context word, and
# `negatives[b]` holds the output vectors $u_{w_1}, \dots, u_{w_K}$ of its $K$ noise words.
# Return the **mean over the batch** of $\ell(c, o)$ above (a sum over the $K$ negatives inside
# each pair, a mean over pairs).
#
# Scores $s = u^\top v$ can be large once training sharpens the vectors, and
# $\log\sigma(s)$ computed as `log(sigmoid(s))` breaks down: $\sigma(-200)$ is 0 in float32 and
# its log is $-\infty$. Use the identity $\log \sigma(s) = -\log(1 + e^{-s})$ in a stable form,
# for example `torch.nn.functional.logsigmoid` (or `softplus`, since
# $\log\sigma(s) = -\operatorname{softplus}(-s)$). The loss and its gradients must be finite
# and accurate for scores of any size; the checks use scores up to $\pm 1000$.

# %%
def negative_sampling_loss(
    center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """Skip-gram negative-sampling loss, averaged over a batch of (centre, context) pairs.

    Args:
        center: (B, D) input vectors v_c of the centre words.
        context: (B, D) output vectors u_o of the true context words.
        negatives: (B, K, D) output vectors u_k of K noise words per pair, K >= 1.
        All three share one dtype (float32 or float64) and one device; B >= 1, D >= 1.

    Returns:
        0-dim tensor in the inputs' dtype and device:
        mean over b of -[log σ(u_o·v_c) + Σ_k log σ(-u_k·v_c)].
        It must be differentiable by autograd w.r.t. all three inputs (no detach, .item() or
        numpy on the way), and the loss and its gradients must stay finite and accurate for
        scores u·v of any size (checked up to ±1000): use a stable log-sigmoid.

    Forbidden: ``torch.nn.functional.binary_cross_entropy_with_logits``,
    ``torch.nn.BCEWithLogitsLoss`` and ``torch.nn.functional.binary_cross_entropy`` (write the
    loss from log-sigmoids; ``torch.nn.functional.logsigmoid`` and ``softplus`` are allowed).
    """
    # BEGIN SOLUTION
    score_pos = (context * center).sum(dim=-1)                      # u_o · v_c, (B,)
    score_neg = (negatives @ center.unsqueeze(-1)).squeeze(-1)      # u_k · v_c, (B, K)
    log_likelihood = F.logsigmoid(score_pos) + F.logsigmoid(-score_neg).sum(dim=-1)
    return -log_likelihood.mean()
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `keep_probability`
#
# Subsampling of frequent words: the paper *discards* each occurrence of a word of relative
# frequency $f$ with probability $1 - \sqrt{t/f}$ (when positive), so it **keeps** it with
# probability $\min\big(1, \sqrt{t / f}\big)$. Return the keep probability. Words rarer than $t$
# are always kept; a frequency of 0 gives keep probability 1.

# %%
def keep_probability(freq: torch.Tensor, t: float = 1e-5) -> torch.Tensor:
    """Probability of keeping an occurrence of a word of relative frequency f: min(1, √(t/f)).

    Args:
        freq: tensor of any shape of relative frequencies f in [0, 1], float32 or float64, on
            any device. f = 0 gives 1.
        t: the threshold (a positive Python float), 1e-5 by default.

    Returns:
        Tensor of the shape, dtype and device of ``freq``, values in (0, 1].
    """
    # BEGIN SOLUTION
    return torch.sqrt(t / freq).clamp(max=1.0)
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `phrase_score`
#
# A bigram "a b" becomes a phrase when it occurs together far more often than its parts alone
# would predict. With $n_{ab}$ the count of the bigram, $n_a$ and $n_b$ the unigram counts and a
# discount $\delta$ that keeps phrases of very rare words out,
#
# $$\operatorname{score}(a, b) = \frac{n_{ab} - \delta}{n_a \, n_b} .$$

# %%
def phrase_score(
    n_ab: torch.Tensor, n_a: torch.Tensor, n_b: torch.Tensor, delta: float
) -> torch.Tensor:
    """Phrase score (n_ab − δ) / (n_a · n_b), elementwise.

    Args:
        n_ab: tensor of bigram counts; n_a, n_b: tensors of unigram counts, all of one shape
            and one floating dtype (float32 or float64) on one device, n_a, n_b > 0.
        delta: the discount δ >= 0 (a Python float).

    Returns:
        Tensor of that shape, dtype and device; negative where n_ab < δ.
    """
    # BEGIN SOLUTION
    return (n_ab - delta) / (n_a * n_b)
    # END SOLUTION
