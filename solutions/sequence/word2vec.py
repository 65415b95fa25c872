# %% [markdown]
# # 3.4 Word2vec — exercise
#
# Mikolov, Chen, Corrado & Dean (2013) learn a vector for every word of a vocabulary of $V$
# words from nothing but running text, with two log-linear models that drop the hidden layer
# of earlier neural language models. Every word $w$ owns an *input* vector $v_w$ (a row of the
# embedding `in_embed`) and an *output* vector $u_w$ (a row of `out_embed`), both of size $D$.
#
# - **Skip-gram** predicts each word $w_{t+j}$ around a centre word $w_t$, for
#   $1 \le |j| \le c$ (the *window* $c$), with a softmax over the whole vocabulary:
#   $$p(o \mid w_t) = \frac{\exp(u_o^\top v_{w_t})}{\sum_{w=1}^{V} \exp(u_w^\top v_{w_t})}.$$
# - **CBOW** (continuous bag of words) predicts the centre word from the *mean* of its $2c$
#   context vectors, $\bar v_t = \frac{1}{2c} \sum_{1 \le |j| \le c} v_{w_{t+j}}$:
#   $p(w_t \mid \text{context}) \propto \exp(u_{w_t}^\top \bar v_t)$.
#
# Both are trained by minimising the cross-entropy of these predictions. Afterwards the input
# vectors are compared by **cosine similarity**, $\cos(x, y) = x^\top y / (\lVert x \rVert
# \lVert y \rVert)$, and analogies ("man is to king as woman is to ?") are answered by the
# word whose vector is closest to $v_{\text{king}} - v_{\text{man}} + v_{\text{woman}}$.
#
# You will write the training data (skip-gram pairs and CBOW examples), the two models (only
# their forward pass: the logits; the loss and the optimiser are the lecture's), and the two
# queries on a trained embedding matrix.
#
# Not allowed anywhere in this exercise: `torch.nn.functional.cosine_similarity`,
# `torch.cosine_similarity`, `torch.nn.CosineSimilarity` (write the cosine yourself; dividing
# by norms and `torch.nn.functional.normalize` are fine), and `torch.nn.EmbeddingBag` /
# `torch.nn.functional.embedding_bag` (write CBOW's mean yourself; `torch.nn.Embedding` is
# what the models are built from).

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `skipgram_pairs`
#
# For a sequence of token ids $w_0, \dots, w_{n-1}$ and a window $c \ge 1$, list every
# training pair (centre $w_i$, context $w_j$) with $1 \le |i - j| \le c$ and $0 \le j < n$:
# the centre itself is never its own context, and the window is cut off at both ends of the
# sequence (no wrapping around). Order the pairs by centre position $i$, and for one $i$ by
# context position $j$ ascending: for $n = 4$, $c = 1$ the positions are
# $(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)$. Return token ids, not positions.

# %%
def skipgram_pairs(tokens: torch.Tensor, window: int) -> torch.Tensor:
    """All (centre, context) pairs of a token sequence, as token ids.

    Args:
        tokens: 1-D LongTensor (int64) of n token ids, n >= 0, on any device. (A Python list
            of ints works too, as a CPU tensor would; the checks pass LongTensors.)
        window: the window c, an int >= 1; it may exceed the sequence length.

    Returns:
        LongTensor (N, 2), int64, on the device of ``tokens``: row = (tokens[i], tokens[j]) for
        every position i and every j with 1 <= |i - j| <= window and 0 <= j < n, ordered by i,
        then by j ascending. N = 0 (shape (0, 2)) when there are no pairs (n < 2).
    """
    # BEGIN SOLUTION
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    n = tokens.shape[0]
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)])
    centre = torch.arange(n, device=tokens.device).unsqueeze(1)  # (n, 1)
    context = centre + offsets.to(tokens.device)  # (n, 2c): j = i - c .. i + c without i
    centre = centre.expand_as(context)
    inside = (context >= 0) & (context < n)  # cut the window at both ends of the sequence
    return torch.stack([tokens[centre[inside]], tokens[context[inside]]], dim=1)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `cbow_examples`
#
# CBOW's training examples: for every position $i$ with a **full** window on both sides
# ($c \le i \le n - 1 - c$), the $2c$ context ids in the order
# $w_{i-c}, \dots, w_{i-1}, w_{i+1}, \dots, w_{i+c}$ and the target $w_i$. Positions closer
# than $c$ to either end are skipped.

# %%
def cbow_examples(tokens: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CBOW's (context, target) examples of a token sequence.

    Args:
        tokens: 1-D LongTensor (int64) of n token ids, on any device (a list of ints works too).
        window: the window c, an int >= 1.

    Returns:
        ``(contexts, targets)``: contexts LongTensor (N, 2c) and targets LongTensor (N,), int64,
        on the device of ``tokens``, one row per position i = c, c + 1, ..., n - 1 - c in that
        order: contexts[r] = tokens[i - c], ..., tokens[i - 1], tokens[i + 1], ...,
        tokens[i + c] and targets[r] = tokens[i]. N = max(0, n - 2c); with N = 0 the shapes
        are (0, 2c) and (0,).
    """
    # BEGIN SOLUTION
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    n = tokens.shape[0]
    device = tokens.device
    left = torch.arange(-window, 0, device=device)  # i - c, ..., i - 1
    right = torch.arange(1, window + 1, device=device)  # i + 1, ..., i + c
    centres = torch.arange(window, max(window, n - window), device=device)  # full windows
    positions = centres.unsqueeze(1) + torch.cat([left, right])  # (N, 2c)
    return tokens[positions], tokens[centres]
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `SkipGram`
#
# The skip-gram model holds two `nn.Embedding(vocab_size, dim)` tables, `in_embed` (the
# $v_w$) and `out_embed` (the $u_w$), and no other parameters. Its forward pass takes a batch
# of centre ids and returns the logits of $p(\cdot \mid w_t)$ over the whole vocabulary:
# $\text{logits}[b, w] = u_w^\top v_{\text{center}[b]}$, i.e. `in_embed(center)` times the
# transposed weight matrix of `out_embed`. The softmax and the loss are not part of the model.
# How you initialise the tables is up to you (the checks load their own weights; the lecture
# uses word2vec's own initialisation).

# %%
class SkipGram(nn.Module):
    """Skip-gram with a full softmax output layer (the logits only).

    Args:
        vocab_size: V, the number of words.
        dim: D, the size of every word vector.

    Submodules: ``in_embed`` and ``out_embed``, both ``nn.Embedding(vocab_size, dim)``; the
    model's parameters are exactly ``in_embed.weight`` (V, D) and ``out_embed.weight`` (V, D).

    ``forward(center)``: center is a LongTensor (B,) of word ids. Returns logits (B, V) in the
    dtype and on the device of the model's weights, logits[b, w] = u_w · v_center[b]
    (out_embed.weight[w] · in_embed.weight[center[b]]). Differentiable w.r.t. both tables.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.in_embed = nn.Embedding(vocab_size, dim)
        self.out_embed = nn.Embedding(vocab_size, dim)
        # END SOLUTION

    def forward(self, center: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        v = self.in_embed(center)  # (B, D): v_{w_t}
        return v @ self.out_embed.weight.T  # (B, V): u_w . v_{w_t}
        # END SOLUTION


# %% [markdown]
# ## Task 4 — `CBOW`
#
# The same two tables, `in_embed` and `out_embed`. The forward pass takes a batch of contexts
# (each row the $2c$ context ids of one example), looks up their input vectors, **averages**
# them over the context (not a sum), and scores the mean $\bar v$ against every output vector:
# $\text{logits}[b, w] = u_w^\top \bar v_b$.

# %%
class CBOW(nn.Module):
    """Continuous bag of words with a full softmax output layer (the logits only).

    Args:
        vocab_size: V, the number of words.
        dim: D, the size of every word vector.

    Submodules: ``in_embed`` and ``out_embed``, both ``nn.Embedding(vocab_size, dim)``; the
    model's parameters are exactly ``in_embed.weight`` (V, D) and ``out_embed.weight`` (V, D).

    ``forward(contexts)``: contexts is a LongTensor (B, 2c) of word ids (any width >= 1).
    Returns logits (B, V) in the dtype and on the device of the weights, logits[b, w] =
    u_w · mean_j v_contexts[b, j]. Differentiable w.r.t. both tables.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.in_embed = nn.Embedding(vocab_size, dim)
        self.out_embed = nn.Embedding(vocab_size, dim)
        # END SOLUTION

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        v_mean = self.in_embed(contexts).mean(dim=1)  # (B, D): the mean context vector
        return v_mean @ self.out_embed.weight.T  # (B, V)
        # END SOLUTION


# %% [markdown]
# ## Task 5 — `most_similar`
#
# The $k$ nearest neighbours of word `index` by cosine similarity between rows of the
# embedding matrix, most similar first, never the word itself. Use the cosine, not the raw
# dot product: a long vector (often a frequent word's) is not more similar for being long.

# %%
def most_similar(embeddings: torch.Tensor, index: int, k: int) -> torch.Tensor:
    """The k words most similar to word ``index`` by cosine similarity.

    Args:
        embeddings: (V, D) float32 or float64 tensor, one word vector per row, on any device.
            No row is zero.
        index: the query word's id, an int in [0, V).
        k: how many neighbours, an int with 1 <= k <= V - 1.

    Returns:
        LongTensor (k,), int64, on the device of ``embeddings``: the ids of the k rows with
        the largest cosine similarity to row ``index``, in descending order of similarity,
        with ``index`` itself excluded. (The checks use similarities that differ by more than
        1e-4, so there are no ties to break and float32 rounding cannot reorder them.)

    Forbidden: torch.nn.functional.cosine_similarity, torch.cosine_similarity,
    torch.nn.CosineSimilarity.
    """
    # BEGIN SOLUTION
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)  # rows of length 1
    cosine = unit @ unit[index]  # (V,): cos(e_w, e_index)
    cosine[index] = -float("inf")  # never the query itself
    return cosine.topk(k).indices
    # END SOLUTION


# %% [markdown]
# ## Task 6 — `analogy`
#
# "a is to b as c is to ?": form the query vector $q = e_b - e_a + e_c$ from the rows of
# `embeddings` **as given** (do not normalise them before the sum), and return the $k$ words
# whose rows have the largest cosine similarity to $q$, excluding $a$, $b$ and $c$ themselves
# (without the exclusion the answer would often be $b$ or $c$). For "man is to king as woman is
# to ?", a = man, b = king, c = woman, and the expected answer is queen.

# %%
def analogy(embeddings: torch.Tensor, a: int, b: int, c: int, k: int = 1) -> torch.Tensor:
    """The k words closest (cosine) to e_b - e_a + e_c, excluding a, b and c.

    Args:
        embeddings: (V, D) float32 or float64 tensor of word vectors (rows), on any device.
            No row is zero, nor is the query vector.
        a, b, c: word ids (ints in [0, V)): "a is to b as c is to ?".
        k: how many answers, 1 <= k <= V - 3 (default 1).

    Returns:
        LongTensor (k,), int64, on the device of ``embeddings``: the ids w (w not in {a, b, c})
        with the largest cos(e_w, e_b - e_a + e_c), in descending order, where e_a, e_b, e_c
        are the rows exactly as given (not normalised first). As in ``most_similar``, the
        checks have no near-ties.

    Forbidden: torch.nn.functional.cosine_similarity, torch.cosine_similarity,
    torch.nn.CosineSimilarity.
    """
    # BEGIN SOLUTION
    query = embeddings[b] - embeddings[a] + embeddings[c]  # e_b - e_a + e_c
    rows = embeddings / embeddings.norm(dim=1, keepdim=True)
    score = rows @ (query / query.norm())  # (V,): cos(e_w, query)
    score[[a, b, c]] = -float("inf")  # the question's own words are not answers
    return score.topk(k).indices
    # END SOLUTION
