# %% [markdown]
# # 5.14 CLIP — exercise
#
# Radford et al. (2021) train an image encoder and a text encoder together, from pairs
# (image, caption) found on the web, so that an image and its own caption land close together
# in a shared embedding space. For a batch of $B$ pairs, let $I_i$ and $T_j$ be the two
# encoders' outputs, $\hat I_i = I_i / \lVert I_i\rVert$ and $\hat T_j = T_j / \lVert
# T_j\rVert$ their unit-length versions, and $s$ a learned scalar, the **log** of the inverse
# temperature $1/\tau$. The $B\times B$ matrix of scaled cosine similarities
#
# $$\ell_{ij} = e^{s}\,\hat I_i \cdot \hat T_j$$
#
# is read twice as a classification problem: row $i$ asks "which of the $B$ captions belongs
# to image $i$?" and column $j$ asks "which of the $B$ images belongs to caption $j$?". The
# right answer is always the diagonal, and the loss is the mean of the two cross-entropies,
#
# $$\mathcal L = \frac12\Big(\underbrace{-\frac1B\sum_i \log\frac{e^{\ell_{ii}}}{\sum_j
#   e^{\ell_{ij}}}}_{\text{image}\to\text{text}} \;\underbrace{-\;\frac1B\sum_j
#   \log\frac{e^{\ell_{jj}}}{\sum_i e^{\ell_{ij}}}}_{\text{text}\to\text{image}}\Big).$$
#
# After training, a classifier for any set of classes comes for free: write one caption per
# class ("a zero", …, "a nine"), embed it, and give each image the class whose caption is the
# most similar by cosine (**zero-shot** classification).
#
# You will write the loss and the zero-shot classifier.
#
# Not allowed: the library cross-entropy in `clip_loss` (`torch.nn.functional.cross_entropy`,
# `torch.nn.functional.nll_loss`, `torch.nn.CrossEntropyLoss`, `torch.nn.NLLLoss`), and the
# library cosine in `zero_shot_classify` (`torch.nn.functional.cosine_similarity`,
# `torch.nn.CosineSimilarity`). `torch.nn.functional.normalize`,
# `torch.nn.functional.log_softmax` and `torch.logsumexp` are allowed.

# %%
import torch
import torch.nn.functional as F

# %% [markdown]
# ## Task 1 — `clip_loss`
#
# Normalise both sets of features along the feature dimension, form
# $\ell = e^{s}\,\hat I\hat T^{\top}$ (shape $B\times B$, images along the rows), and return
# $\tfrac12\big(\mathrm{CE}(\ell, [0, 1, \dots, B-1]) + \mathrm{CE}(\ell^{\top}, [0, 1, \dots,
# B-1])\big)$, each cross-entropy averaged over its $B$ rows. With the correct class on the
# diagonal, the image→text term is minus the mean of the diagonal of a log-softmax over each
# row of $\ell$ (over $j$), and the text→image term the same for a log-softmax over each
# column (over $i$).
#
# **Numerical stability.** CLIP starts at $e^s = 1/0.07 \approx 14.3$ and lets $e^s$ grow to
# 100, so a logit can reach $\pm 100$, and `torch.exp(100.)` is `inf` in float32. Compute the
# log-softmax in one stable step (`F.log_softmax`, or `torch.logsumexp`), never as
# `log(exp(ℓ) / exp(ℓ).sum())`.

# %%
def clip_loss(image_features, text_features, logit_scale):
    """CLIP's symmetric contrastive loss of B (image, text) pairs, a 0-dim tensor.

    Args:
        image_features: (B, D) tensor, row i the image encoder's output for pair i, float32
            or float64, on any device; rows are not unit length (normalise them here).
        text_features: (B, D) tensor of the same dtype and device, row j the text encoder's
            output for pair j. Pair i is (image_features[i], text_features[i]).
        logit_scale: s, the log of the inverse temperature: either a Python float or a
            0-dim tensor in the features' dtype and on their device (a learnable parameter).
            The logits are multiplied by exp(s), not by s (s = log(1/0.07) ≈ 2.66 gives
            the paper's initial 14.3). No clamping here: any s up to 8 is checked.

    Returns:
        a 0-dim tensor in the features' dtype and on their device:
        ``(CE(logits, labels) + CE(logits.T, labels)) / 2`` with
        ``logits = exp(s) * normalize(image_features) @ normalize(text_features).T``,
        ``labels = arange(B)`` and each CE the **mean** over its B rows. Both features are
        L2-normalised along the last dim (dim=-1, the D features of each row), not over the
        batch. Both directions count, image→text (rows) and text→image (columns), and their
        mean is taken (½ of their sum). With B = 1 the loss is exactly 0.

    Must stay finite for large scales (exp(s) up to e^8 with nearly aligned pairs, where
    exp(logits) overflows even in float64): use a stable log-softmax (``F.log_softmax``).
    Differentiable (autograd) w.r.t. ``image_features``, ``text_features`` and, when it is a
    tensor, ``logit_scale``. Inputs are not modified in place.

    Forbidden: ``F.cross_entropy``, ``F.nll_loss``, ``nn.CrossEntropyLoss``, ``nn.NLLLoss``.
    """
    # BEGIN SOLUTION
    image = image_features / image_features.norm(dim=-1, keepdim=True)  # I_i / |I_i|
    text = text_features / text_features.norm(dim=-1, keepdim=True)  # T_j / |T_j|
    s = torch.as_tensor(logit_scale, dtype=image.dtype, device=image.device)
    logits = s.exp() * image @ text.T  # l_ij = e^s cos(I_i, T_j), images along the rows
    log_p_image = F.log_softmax(logits, dim=1)  # row i: p(caption j | image i)
    log_p_text = F.log_softmax(logits, dim=0)  # column j: p(image i | caption j)
    loss_image = -log_p_image.diagonal().mean()  # the right caption is on the diagonal
    loss_text = -log_p_text.diagonal().mean()  # the right image too
    return (loss_image + loss_text) / 2
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `zero_shot_classify`
#
# Given the image features of $B$ images and the text features of $C$ class prompts (one
# caption per class, e.g. "a zero" … "a nine"), return for every image the index of the class
# whose prompt has the highest cosine similarity,
#
# $$\hat y_i = \arg\max_{c}\ \frac{I_i \cdot T_c}{\lVert I_i\rVert\,\lVert T_c\rVert}.$$
#
# The temperature does not matter here (a positive scale does not change an argmax), and
# neither does the norm of $I_i$; the norms of the prompts' features do.

# %%
def zero_shot_classify(image_features, class_text_features):
    """The zero-shot class of each image: the prompt with the largest cosine similarity.

    Args:
        image_features: (B, D) tensor of B images' features, float32 or float64, any device.
        class_text_features: (C, D) tensor, row c the text features of class c's prompt, in
            the same dtype and on the same device. Rows are not unit length.

    Returns:
        a (B,) int64 (LongTensor) tensor on the features' device: entry i is
        ``argmax_c cos(image_features[i], class_text_features[c])``, a class index in
        [0, C). One entry per image (an argmax over the C classes, dim=-1 of the (B, C)
        similarity matrix), also when B = 1 or C = 1. Cosine, not the dot product: the
        prompts' norms must not change the answer. Not differentiable (indices). Inputs are
        not modified in place.

    Forbidden: ``F.cosine_similarity``, ``nn.CosineSimilarity``.
    """
    # BEGIN SOLUTION
    images = F.normalize(image_features, dim=-1)
    prompts = F.normalize(class_text_features, dim=-1)  # unit-length class embeddings
    cosine = images @ prompts.T  # (B, C): cos(I_i, T_c)
    return cosine.argmax(dim=-1)
    # END SOLUTION
