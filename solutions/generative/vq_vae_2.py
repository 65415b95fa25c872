# %% [markdown]
# # 5.6 VQ-VAE-2 — exercise
#
# A VQ-VAE replaces each encoder output $z_i \in \mathbb R^D$ by its nearest codebook vector
# $e_k$, $k = \arg\min_j \lVert z_i - e_j \rVert$. The first VQ-VAE learned the codebook with a
# loss, $\lVert \mathrm{sg}[z_i] - e_k \rVert^2$, and an optimiser. VQ-VAE-2 (Razavi, van den
# Oord & Vinyals, 2019) keeps the codebook out of the optimiser altogether and moves every
# code to the running mean of the vectors assigned to it, with exponential moving averages
# (EMA) of two statistics per code $k = 0, \dots, K - 1$: a soft count $N_k$ and a soft sum
# $m_k$. For one batch $z_1, \dots, z_N$ with nearest codes $k(i)$:
#
# $$N_k \leftarrow \gamma N_k + (1 - \gamma)\, c_k, \qquad c_k = \#\{i : k(i) = k\},$$
#
# $$m_k \leftarrow \gamma m_k + (1 - \gamma) \sum_{i : k(i) = k} z_i ,$$
#
# with the decay $\gamma$ (0.99 in the paper). The new code is the mean $m_k / N_k$, except
# that a code that has been chosen rarely has $N_k \approx 0$: dividing by it is unstable, so
# the counts are first smoothed (Laplace smoothing, as in DeepMind's reference code),
# with $n = \sum_j N_j$ taken over the **updated** counts:
#
# $$\tilde N_k = \frac{N_k + \epsilon}{n + K \epsilon}\, n, \qquad e_k = \frac{m_k}{\tilde N_k}.$$
#
# The smoothed counts still add up to $n$. A code that nobody chose in this batch gets
# $c_k = 0$ and no new sum: both of its statistics decay by $\gamma$ and, as long as
# $N_k \gg \epsilon$, its vector $m_k / \tilde N_k$ hardly moves.
#
# (The paper's second idea, a hierarchy of two quantised levels, a coarse *top* map and a
# fine *bottom* map, is built in the lecture; it is not graded here.)

# %%
import torch

# %% [markdown]
# ## Task 1 — `ema_update`
#
# One EMA step of the codebook for one batch, exactly the three equations above. The counts
# $c_k$ must have length $K$ even when the last codes were not chosen (`torch.bincount` needs
# `minlength=K`), and the per-code sums can be built with `index_add_` on a fresh zero tensor
# or with a one-hot matrix. Return **new** tensors: the three state tensors you are given
# must not change (the lecture keeps them in variables and replaces them with what you
# return). The update is not part of the computational graph: the function runs under
# `torch.no_grad()` (the decorator is already there).

# %%
@torch.no_grad()
def ema_update(
    codebook: torch.Tensor,
    cluster_size: torch.Tensor,
    embed_sum: torch.Tensor,
    z: torch.Tensor,
    indices: torch.Tensor,
    decay: float = 0.99,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One exponential-moving-average update of a VQ codebook, with Laplace smoothing.

    Args:
        codebook: (K, D) current code vectors e_k (K ≥ 1). Only its shape, dtype and device
            are used: the new codebook is computed from the statistics alone.
        cluster_size: (K,) the running soft counts N_k (≥ 0), same dtype as codebook.
        embed_sum: (K, D) the running soft sums m_k, same dtype as codebook.
        z: (N, D) the batch of encoder outputs (N ≥ 1), same dtype as codebook.
        indices: (N,) LongTensor, indices[i] in [0, K) the code chosen for z[i]. Codes that
            no row chose (including the last ones) have count c_k = 0.
        decay: γ in [0, 1), a Python float; the weight of the old statistics. γ = 0
            forgets them: N_k = c_k, m_k = the batch sum, and the codebook is the
            (smoothed) batch means.
        eps: ε > 0 of the Laplace smoothing, a Python float.

    Returns:
        (codebook, cluster_size, embed_sum), three new tensors of shapes (K, D), (K,), (K, D),
        in codebook's dtype (float32 and float64 are kept) and on its device:

        - cluster_size: N_k = γ·N_k + (1 − γ)·c_k;
        - embed_sum: m_k = γ·m_k + (1 − γ)·Σ_{i: indices[i] = k} z[i];
        - codebook: e_k = m_k / Ñ_k with Ñ_k = (N_k + ε) / (n + K·ε) · n and n = Σ_j N_j, all
          three from the **updated** N and m.

        A code with c_k = 0 is not special-cased: its N_k and m_k just decay.

    The inputs must not be modified (no in-place operation on codebook, cluster_size,
    embed_sum, z or indices). No gradient flows through the update (``torch.no_grad()``).

    Forbidden: ``torch.lerp`` and ``Tensor.lerp`` / ``lerp_``: write each moving average as
    γ·old + (1 − γ)·new.
    """
    # BEGIN SOLUTION
    K = codebook.shape[0]
    counts = torch.bincount(indices, minlength=K).to(codebook.dtype)  # c_k
    sums = torch.zeros_like(embed_sum).index_add_(0, indices, z)  # Σ_{i→k} z_i
    new_size = decay * cluster_size + (1 - decay) * counts  # N_k
    new_sum = decay * embed_sum + (1 - decay) * sums  # m_k
    n = new_size.sum()  # Σ_j N_j, after the update
    smoothed = (new_size + eps) / (n + K * eps) * n  # Ñ_k, Laplace smoothing
    new_codebook = new_sum / smoothed[:, None]  # e_k = m_k / Ñ_k
    return new_codebook, new_size, new_sum
    # END SOLUTION
