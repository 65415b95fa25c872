# %% [markdown]
# # 5.5 Vector-quantized VAE — exercise
#
# van den Oord, Vinyals & Kavukcuoglu (2017) give an autoencoder a **discrete** latent space.
# The encoder outputs vectors $z_e(x) \in \mathbb R^D$; each one is replaced by the nearest of
# $K$ learned code vectors $e_1, \dots, e_K$ (the **codebook**), and the decoder sees only
# those codes:
#
# $$k = \arg\min_j \lVert z_e(x) - e_j \rVert_2^2, \qquad z_q(x) = e_k .$$
#
# The argmin has no useful gradient, so the paper copies the decoder's gradient from $z_q$
# straight onto $z_e$ (the **straight-through** estimator), and trains the codebook with a
# loss of its own. With $\mathrm{sg}[\cdot]$ the stop-gradient (identity forward, zero
# derivative; `.detach()` in PyTorch), the loss of one example, to be minimised, is
#
# $$L = \underbrace{-\log p(x \mid z_q(x))}_{\text{reconstruction}}
#   + \underbrace{\lVert \mathrm{sg}[z_e(x)] - e \rVert_2^2}_{\text{codebook loss}}
#   + \underbrace{\beta\, \lVert z_e(x) - \mathrm{sg}[e] \rVert_2^2}_{\text{commitment loss}}.$$
#
# The codebook loss moves the chosen codes towards the encoder outputs; the commitment
# loss keeps the encoder outputs close to their codes, weighted by $\beta$ ($0.25$ in the
# paper). You write the quantizer with its straight-through gradient, and the two codebook terms.
#
# Here, as in most implementations (Sonnet's `VectorQuantizer` among them), the squared
# norms are **averaged over all elements** (a mean squared error), not summed.
#
# Not allowed: `torch.nn.functional.mse_loss` and `torch.nn.MSELoss` in `vq_losses`: write
# the squared errors yourself.

# %%
import torch

# %% [markdown]
# ## Task 1 — `quantize`
#
# For every vector $z_i$ (the last axis of `z`; all leading axes are a batch, e.g. the
# $H \times W$ grid of an image's latents), find the nearest code,
# $k_i = \arg\min_j \lVert z_i - e_j \rVert^2$, and return $z_q$ with the straight-through
# gradient:
#
# $$z_q = z + \mathrm{sg}[e_{k} - z] .$$
#
# Forward, $z_q$ equals the chosen codes $e_k$. Backward, $\partial z_q / \partial z$ is the
# identity (the decoder's gradient reaches the encoder unchanged) and, because the whole
# correction $e_k - z$ is inside the stop-gradient, the codebook gets **no** gradient through
# $z_q$: it is trained by the codebook loss of Task 2 only.
#
# **Ties.** Two codes at exactly the same distance (a vector halfway between them, or a
# duplicated code) go to the **lowest** index, as `torch.argmin` does.

# %%
def quantize(z, codebook):
    """Nearest-code quantization with a straight-through gradient.

    Args:
        z: (..., D) encoder outputs, float32 or float64, any number of leading dims (none
            too: a single vector of shape (D,)). Each vector z[..., :] is quantized.
        codebook: (K, D) code vectors e_0, …, e_{K−1}, float32 or float64 (it may differ
            from z's dtype), on z's device.

    Returns:
        (z_q, indices):
        - indices: LongTensor (int64) of shape ``z.shape[:-1]`` on z's device:
          indices[...] = argmin_k ||z[...] − codebook[k]||² (squared Euclidean distance;
          the plain distance gives the same argmin and is fine too). Ties go to the
          **lowest** index k (checked on vectors exactly halfway between two codes and on
          duplicated codes).
        - z_q: shape of z, **in z's dtype** (also when the codebook's dtype differs) and on
          its device. Its values are codebook[indices]; it is computed as
          z + (codebook[indices] − z).detach(), differentiable (autograd) w.r.t. z, so that
          * the gradient of z_q w.r.t. z is the identity: for any weights w,
            d sum(w * z_q) / d z = w (checked exactly);
          * the codebook gets **no** gradient through z_q (none at all, or zeros; checked):
            the whole difference (codebook[indices] − z) is detached, not just one side.

    The inputs are not modified. No gradient flows through indices (they are integers).
    """
    # BEGIN SOLUTION
    flat = z.reshape(-1, z.shape[-1])  # (N, D): one row per vector z_i
    dist = ((flat[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)  # (N, K): ||z_i - e_j||^2
    indices = torch.argmin(dist, dim=1).reshape(z.shape[:-1])  # k_i; ties: lowest index
    e = codebook[indices].to(z.dtype)  # (..., D): the chosen codes e_k
    z_q = z + (e - z).detach()  # straight-through: forward e_k, backward identity
    return z_q, indices
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `vq_losses`
#
# Given the encoder outputs $z$, the codebook and the chosen indices, return the codebook
# loss and the commitment loss, each a mean squared error over **all** elements of $z$:
#
# $$L_\text{codebook} = \operatorname{mean}\big((e_k - \mathrm{sg}[z])^2\big), \qquad
#   L_\text{commit} = \beta \operatorname{mean}\big((z - \mathrm{sg}[e_k])^2\big).$$
#
# Both have the same value up to $\beta$; what differs is **where their gradients go**:
# $L_\text{codebook}$ trains the codebook only, $L_\text{commit}$ the encoder only.
# With $n$ the number of elements of $z$:
#
# $$\frac{\partial L_\text{codebook}}{\partial e_j} = \sum_{i:\,k_i = j}
#   \frac{2\,(e_j - z_i)}{n}, \quad \frac{\partial L_\text{codebook}}{\partial z} = 0,
#   \qquad \frac{\partial L_\text{commit}}{\partial z_i} = \frac{2\beta\,(z_i - e_{k_i})}{n},
#   \quad \frac{\partial L_\text{commit}}{\partial e} = 0 .$$

# %%
def vq_losses(z, codebook, indices, beta=0.25):
    """The codebook and commitment terms of the VQ-VAE loss.

    Args:
        z: (..., D) encoder outputs, float32 or float64, any leading dims.
        codebook: (K, D) code vectors, same dtype and device as z.
        indices: LongTensor of shape ``z.shape[:-1]`` with values in [0, K): the code chosen
            for each vector (usually from :func:`quantize`, but any valid indices must work;
            codes may be chosen several times or never).
        beta: the commitment weight β, a Python float (0.25 in the paper).

    Returns:
        (codebook_loss, commitment_loss), two 0-dim tensors in z's dtype and on its device:
        - codebook_loss = mean((codebook[indices] − z.detach())²), the mean over all
          z.numel() elements (not a sum, not a sum over D). It gives gradient to the
          codebook **only**: d/d codebook[j] = Σ_{i: indices_i = j} 2(codebook[j] − z_i)
          / z.numel() (zero for codes never chosen), and **none** to z.
        - commitment_loss = beta · mean((z − codebook[indices].detach())²). It gives
          gradient to z **only**: 2·beta·(z − codebook[indices]) / z.numel(), and **none**
          to the codebook. β multiplies this term, never the codebook loss.
        Both must stay differentiable (no ``.item()``); the checks back-propagate through
        both at once and also with beta = 0.

    The inputs are not modified.

    Forbidden: ``F.mse_loss`` and ``nn.MSELoss``.
    """
    # BEGIN SOLUTION
    e = codebook[indices]  # (..., D): the chosen codes e_k
    codebook_loss = ((e - z.detach()) ** 2).mean()  # ||sg[z_e] - e||^2: moves the codes
    commitment_loss = beta * ((z - e.detach()) ** 2).mean()  # beta ||z_e - sg[e]||^2
    return codebook_loss, commitment_loss
    # END SOLUTION
