# %% [markdown]
# # 1.3 LeNet-5 — exercise
#
# LeCun, Bottou, Bengio & Haffner (1998) put the ideas of convolutional networks together in
# one seven-layer network for 32×32 images of handwritten digits: small shared filters
# (convolutions) that detect the same local feature everywhere, subsampling layers that make the
# features less sensitive to exact positions, more and more feature maps at lower and lower
# resolution, and two fully connected layers on top. Every layer is trained end to end by
# gradient descent.
#
# With the input $x$ of shape (N, 1, 32, 32) and $f$ the scaled hyperbolic tangent below, the
# variant you build computes
#
# $$\begin{aligned}
# h_1 &= \operatorname{avgpool}_2\big(f(C_1 * x)\big) && (N, 6, 14, 14)\\
# h_2 &= \operatorname{avgpool}_2\big(f(C_3 * h_1)\big) && (N, 16, 5, 5)\\
# h_3 &= f(C_5 * h_2) && (N, 120, 1, 1) \to (N, 120)\\
# h_4 &= f(W_6 h_3 + b_6) && (N, 84)\\
# \text{logits} &= W_7 h_4 + b_7 && (N, \text{num\_classes})
# \end{aligned}$$
#
# where $C_k *$ is a 5×5 convolution with a bias (no padding, stride 1). `nn.Conv2d`,
# `nn.Linear` and `nn.AvgPool2d` are allowed: this exercise is about the architecture. The
# grader copies its own weights into your model with `load_state_dict` and then trains your
# model with its own training loop, so the attribute names below are part of the exercise.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `scaled_tanh`
#
# The paper's squashing function is $f(a) = A \tanh(S a)$ with $A = 1.7159$ and $S = 2/3$.
# These constants make $f(1) = 1$ and $f(-1) = -1$ (to four digits), so targets of ±1 sit where
# the curve still bends and the gain is close to one around the origin.

# %%
def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """LeCun's scaled hyperbolic tangent, ``1.7159 * tanh(2 x / 3)``, element-wise.

    Args:
        x: a tensor of any shape (0-dim included), float32 or float64, on any device.

    Returns:
        A tensor of the same shape, dtype and device, with values in (−1.7159, 1.7159),
        differentiable by autograd: its derivative is ``1.7159 * (2/3) * (1 − tanh²(2x/3))``.
    """
    # BEGIN SOLUTION
    return 1.7159 * torch.tanh(2.0 / 3.0 * x)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `LeNet5`
#
# The seven layers of the paper, with the simplifications that the lecture discusses: the
# subsampling layers S2 and S4 are plain 2×2 averages **without** trainable coefficients or
# biases, and C3 connects every one of its 16 maps to all 6 maps of S2 (the paper used a sparse
# connection table). The output layer is linear and returns logits (the paper used Euclidean
# RBF units). The activation comes **after each convolution and before its pooling**, and after
# C5 and F6; the output layer has none.
#
# That is 156 + 2,416 + 48,120 + 10,164 + 850 = **61,706** trainable parameters for 10 classes.

# %%
class LeNet5(nn.Module):
    """LeNet-5 for (N, 1, 32, 32) images.

    Args:
        num_classes: number of outputs (logits) per image.

    Submodules (exactly these names, so that state dicts copy across):
        ``c1``: ``nn.Conv2d(1, 6, 5)`` with bias, stride 1, no padding:
            (N, 1, 32, 32) → (N, 6, 28, 28).
        ``s2``: 2×2 average pooling with stride 2, no parameters: → (N, 6, 14, 14).
        ``c3``: ``nn.Conv2d(6, 16, 5)`` with bias (every map sees all 6 maps): → (N, 16, 10, 10).
        ``s4``: 2×2 average pooling with stride 2, no parameters: → (N, 16, 5, 5).
        ``c5``: ``nn.Conv2d(16, 120, 5)`` with bias: → (N, 120, 1, 1), then flattened to (N, 120).
        ``f6``: ``nn.Linear(120, 84)``.
        ``output``: ``nn.Linear(84, num_classes)``.
    The model has no buffers, and no other parameters (61,706 for ``num_classes=10``).

    ``forward(x)`` maps float (N, 1, 32, 32) to logits (N, num_classes) in the input's dtype and
    on its device, for every N ≥ 1 (a batch of one keeps its batch dimension):
    ``scaled_tanh`` after c1, c3, c5 and f6, each convolution's activation applied before its
    pooling (``s2(scaled_tanh(c1(x)))``), and no activation (nor softmax) after ``output``.
    The checks load their weights by state dict, cast the model to the input's dtype
    (``model.double()``) and back-propagate: the forward must stay differentiable w.r.t. the
    input and every parameter.

    Forbidden: loading weights or models from elsewhere (``torch.load``, ``torch.hub.load``,
    ``torch.hub.load_state_dict_from_url``, ``torch.jit.load``, ...) and torchvision's models.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.c1 = nn.Conv2d(1, 6, kernel_size=5)
        self.s2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.s4 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        h = self.s2(scaled_tanh(self.c1(x)))  # C1 + S2: (N, 6, 14, 14)
        h = self.s4(scaled_tanh(self.c3(h)))  # C3 + S4: (N, 16, 5, 5)
        h = scaled_tanh(self.c5(h))  # C5: (N, 120, 1, 1)
        h = h.flatten(start_dim=1)  # (N, 120)
        h = scaled_tanh(self.f6(h))  # F6: (N, 84)
        return self.output(h)  # logits: (N, num_classes)
        # END SOLUTION
