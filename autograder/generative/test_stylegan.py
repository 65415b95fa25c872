"""Hidden checks for unit 5.2 `stylegan` (Karras, Laine & Aila, 2018).

Every piece is compared with the master on seeded float32 and float64 inputs.

``pixel_norm`` on (B, C) codes and (B, C, H, W) maps: batch 1, one feature, a zero vector,
the default eps and a large one (0.5), where eps outside the root shows; its gradient.

``MappingNetwork(z_dim, w_dim, num_layers)`` is built with a copied state dict (weights large
enough, biases spread enough, that both sides of the leaky ReLU are hit in every layer) with
one layer, three and eight; the state dict's layout (names, shapes, dtypes) is compared
first; forward and the gradients w.r.t. z and every parameter.

``adain`` on feature maps whose every (sample, channel) has its own mean and spread (so that
statistics over the batch or over the channels differ), H·W from 1 (the output is then the
bias) to 35, a non-square map, eps = 0.1 where eps outside the root shows; the gradients
w.r.t. x, scale and bias.

``truncate`` on (B, w_dim) and (B, L, w_dim) codes with ψ ∈ {0.7, 0, 0.3, 1, 1.5} and an
average code far from zero; its gradients.

``style_mix`` with crossovers 0, 1, …, num_layers (never exactly num_layers / 2 first, where
swapped codes and reversed layers coincide), compared exactly; its gradients.

The master was compared with ``F.instance_norm`` and a per-(sample, channel) loop with
``torch.var_mean`` (adain), and with loops for the other functions, in
``tests/test_oracle_stylegan.py``.
"""

from course.grading.cell_checks import require_state_layout
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Make, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "stylegan"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.nn.functional.instance_norm",
            "torch.instance_norm",
            "torch.nn.InstanceNorm1d",
            "torch.nn.InstanceNorm2d",
            "torch.nn.InstanceNorm3d",
            "torch.nn.functional.batch_norm",
            "torch.batch_norm",
            "torch.nn.functional.group_norm",
            "torch.group_norm",
            "torch.nn.functional.layer_norm",
            "torch.layer_norm",
            "torch.nn.functional.normalize",
        ),
        aten=("instance_norm", "native_batch_norm", "_native_batch_norm_legit",
              "batch_norm", "native_group_norm", "native_layer_norm"),
    ),
]

MISTAKES = [
    # -- pixel_norm
    Mistake(
        "pixel-norm-over-batch",
        "Your pixel_norm matches taking the mean of z² over the batch (dimension 0). Pixel "
        "norm normalises each sample by itself: the mean is over its features, dimension 1.",
        {"(z * z).mean(dim=1, keepdim=True)": "(z * z).mean(dim=0, keepdim=True)"},
    ),
    Mistake(
        "pixel-norm-eps-outside",
        "Your pixel_norm matches z / (sqrt(mean(z²)) + eps). eps goes inside the square "
        "root: z / sqrt(mean(z²) + eps).",
        {"z / torch.sqrt(mean_square + eps)": "z / (torch.sqrt(mean_square) + eps)"},
    ),
    Mistake(
        "pixel-norm-l2",
        "Your pixel_norm matches dividing by the Euclidean norm sqrt(Σ z²). Pixel norm uses "
        "the root MEAN square, sqrt((1/C) Σ z² + eps), so the result has unit mean square "
        "(its norm is sqrt(C), not 1).",
        {"(z * z).mean(dim=1, keepdim=True)": "(z * z).sum(dim=1, keepdim=True)"},
    ),
    # -- MappingNetwork
    Mistake(
        "mapping-no-pixel-norm",
        "Your mapping network matches feeding z to the first layer as it is. Normalise it "
        "first: h = pixel_norm(z), then the layers.",
        {"h = pixel_norm(z)  # h_0 = PN(z)": "h = z"},
    ),
    Mistake(
        "mapping-leaky-slope",
        "Your mapping network matches leaky ReLUs of slope 0.01 (nn.LeakyReLU()'s default). "
        "StyleGAN uses slope 0.2: nn.LeakyReLU(0.2).",
        {"self.act = nn.LeakyReLU(0.2)": "self.act = nn.LeakyReLU()"},
    ),
    Mistake(
        "mapping-last-linear",
        "Your mapping network matches leaving the last layer linear. Every layer, the last "
        "one included, is followed by the leaky ReLU of slope 0.2.",
        {"        for layer in self.layers:\n"
         "            h = self.act(layer(h))  # h_l = lrelu(W_l h_{l-1} + b_l)\n":
         "        for i, layer in enumerate(self.layers):\n"
         "            h = layer(h) if i == len(self.layers) - 1 else self.act(layer(h))\n"},
    ),
    # -- adain
    Mistake(
        "adain-batch-stats",
        "Your adain matches statistics taken over the batch too (dims 0, 2, 3, as batch "
        "norm does). AdaIN normalises each sample and channel by itself: mean and variance "
        "over H and W only (dims 2, 3).",
        {"mu = x.mean(dim=(2, 3), keepdim=True)": "mu = x.mean(dim=(0, 2, 3), keepdim=True)",
         "var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)":
         "var = ((x - mu) ** 2).mean(dim=(0, 2, 3), keepdim=True)"},
    ),
    Mistake(
        "adain-channel-stats",
        "Your adain matches statistics taken over the channels too (dims 1, 2, 3, as layer "
        "norm does). AdaIN gives every channel its own mean and variance, over H and W only.",
        {"mu = x.mean(dim=(2, 3), keepdim=True)": "mu = x.mean(dim=(1, 2, 3), keepdim=True)",
         "var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)":
         "var = ((x - mu) ** 2).mean(dim=(1, 2, 3), keepdim=True)"},
    ),
    Mistake(
        "adain-unbiased-var",
        "Your adain matches the unbiased variance (divided by H·W − 1, torch.var's "
        "default). Instance norm uses the biased one, divided by H·W: "
        "x.var(..., unbiased=False) or the mean of (x − μ)².",
        {"var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)":
         "var = x.var(dim=(2, 3), keepdim=True)"},
    ),
    Mistake(
        "adain-eps-outside",
        "Your adain matches (x − μ) / (σ + eps). eps goes inside the square root: "
        "(x − μ) / sqrt(σ² + eps).",
        {"(x - mu) / torch.sqrt(var + eps)": "(x - mu) / (torch.sqrt(var) + eps)"},
    ),
    Mistake(
        "adain-scale-bias-swapped",
        "Your adain matches style_bias used as the scale and style_scale as the bias. The "
        "output is style_scale · x̂ + style_bias.",
        {"style_scale[:, :, None, None] * x_hat + style_bias[:, :, None, None]":
         "style_bias[:, :, None, None] * x_hat + style_scale[:, :, None, None]"},
    ),
    # -- truncate
    Mistake(
        "truncate-towards-zero",
        "Your truncate matches ψ·w, truncation towards zero. StyleGAN truncates towards the "
        "average code: w_avg + ψ·(w − w_avg).",
        {"return w_avg + psi * (w - w_avg)": "return psi * w"},
    ),
    Mistake(
        "truncate-psi-reversed",
        "Your truncate matches w + ψ·(w_avg − w), where ψ = 1 gives the average. It is the "
        "other way round: w_avg + ψ·(w − w_avg), so ψ = 1 leaves w unchanged and ψ = 0 gives "
        "w_avg.",
        {"return w_avg + psi * (w - w_avg)": "return w + psi * (w_avg - w)"},
    ),
    # -- style_mix
    Mistake(
        "style-mix-off-by-one",
        "Your style_mix matches w1 for the layers l <= crossover. Layer crossover itself "
        "already takes w2: w1 for l < crossover, w2 for l >= crossover (crossover = 0 is all "
        "w2).",
        {"take_w1 = (layer < crossover)": "take_w1 = (layer <= crossover)"},
    ),
    Mistake(
        "style-mix-swapped",
        "Your style_mix matches w2 for the layers before crossover and w1 after. w1 drives "
        "the first (coarse) layers l < crossover, w2 the layers l >= crossover.",
        {"take_w1 = (layer < crossover)": "take_w1 = (layer >= crossover)"},
    ),
    Mistake(
        "style-mix-layers-reversed",
        "Your style_mix matches w1 on the LAST crossover layers. Layers are counted from the "
        "coarsest, layer 0: w1 for layers 0 … crossover − 1, w2 for the rest.",
        {"layer = torch.arange(num_layers, device=w1.device)":
         "layer = torch.arange(num_layers - 1, -1, -1, device=w1.device)"},
    ),
]


# -- Task 1: pixel_norm ---------------------------------------------------------------------

PN_SHAPES = [(4, 8), (1, 5), (3, 1), (2, 3, 4, 5), (1, 2, 1, 1), (5, 512)]


@check(points=2, public=True, task="pixel_norm")
def test_pixel_norm(grader):
    """pixel_norm divides each sample by its root mean square over dimension 1"""
    for shape in PN_SHAPES:
        for dtype in DTYPES:
            z = grader.randn(*shape, dtype=dtype, scale=1.7)
            grader.compare(Call("pixel_norm", (z,)),
                           case=f"pixel_norm(z{list(shape)} {_dt(dtype)})")
    for shape in [(4, 6), (2, 3, 2, 2)]:
        for dtype in DTYPES:
            z = grader.randn(*shape, dtype=dtype, scale=0.6)
            grader.compare(Call("pixel_norm", (z,), {"eps": 0.5}),
                           case=f"pixel_norm(z{list(shape)} {_dt(dtype)}, eps=0.5)")


@check(points=1, task="pixel_norm")
def test_pixel_norm_edges(grader):
    """pixel_norm keeps a zero vector zero, and is differentiable"""
    for dtype in DTYPES:
        z = grader.randn(3, 4, dtype=dtype)
        z[1] = 0.0
        grader.compare(Call("pixel_norm", (z,)),
                       case=f"pixel_norm(z[3, 4] {_dt(dtype)} with a zero row)")
        for shape, eps in [((4, 7), 1e-8), ((2, 3, 2, 3), 0.3), ((1, 1), 1e-8)]:
            z = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("pixel_norm", (z,), {"eps": eps}, grad=(0,)),
                           case=f"d pixel_norm(z{list(shape)} {_dt(dtype)}, eps={eps}) / dz")


# -- Task 2: MappingNetwork ----------------------------------------------------------------

# (z_dim, w_dim, num_layers), batch
MAP_SHAPES = [((8, 6, 3), 5), ((5, 7, 1), 1), ((4, 4, 8), 4), ((3, 9, 2), 3)]


def _map_state(grader, args, dtype):
    z_dim, w_dim, n = args
    s = {}
    for i in range(n):
        fan_in = z_dim if i == 0 else w_dim
        s[f"layers.{i}.weight"] = grader.randn(w_dim, fan_in, dtype=dtype,
                                               scale=1.6 * fan_in**-0.5)
        s[f"layers.{i}.bias"] = grader.randn(w_dim, dtype=dtype, scale=0.4)
    return s


def _mapping(grader, args, dtype):
    return Make("MappingNetwork", args, state_dict=_map_state(grader, args, dtype),
                dtype=dtype, train=False)


@check(points=1, public=True, task="MappingNetwork")
def test_mapping_layout(grader):
    """MappingNetwork's state dict: layers.{l}.weight and layers.{l}.bias (names, shapes)"""
    for args in [(8, 6, 3), (5, 7, 1), (16, 32, 8)]:
        require_state_layout(
            grader, Call("@modules.state", ("MappingNetwork", args)),
            f"MappingNetwork{args} state dict",
            "MappingNetwork(z_dim, w_dim, num_layers) holds layers = nn.ModuleList of "
            "num_layers nn.Linear with biases: layers[0] = nn.Linear(z_dim, w_dim), the others "
            "nn.Linear(w_dim, w_dim); float32, and nothing else.",
        )


@check(points=2, public=True, task="MappingNetwork")
def test_mapping_forward(grader):
    """MappingNetwork(z): pixel norm, then Linear + LeakyReLU(0.2) per layer, with copied weights"""
    for args, batch in MAP_SHAPES:
        for dtype in DTYPES:
            z = grader.randn(batch, args[0], dtype=dtype, scale=2.0)
            grader.compare(Call(_mapping(grader, args, dtype), (z,)),
                           case=f"MappingNetwork{args}(z[{batch}, {args[0]}]), {_dt(dtype)}")


@check(points=1, task="MappingNetwork")
def test_mapping_gradients(grader):
    """gradients of MappingNetwork(z) w.r.t. z and every parameter"""
    for args, batch in MAP_SHAPES[:3]:
        for dtype in DTYPES:
            z = grader.randn(batch, args[0], dtype=dtype, scale=2.0)
            grader.compare(Call(_mapping(grader, args, dtype), (z,), grad=(0, "params")),
                           case=f"d/dz, d/dparams of MappingNetwork{args} on batch {batch}, "
                           f"{_dt(dtype)}")


# -- Task 3: adain -------------------------------------------------------------------------

ADAIN_SHAPES = [(2, 3, 4, 5), (1, 2, 3, 3), (3, 4, 2, 2), (4, 1, 2, 7), (2, 5, 5, 7)]


def _adain_inputs(grader, shape, dtype):
    B, C = shape[:2]
    spread = 0.3 + 2 * grader.rand(B, C, 1, 1)
    offset = grader.randn(B, C, 1, 1, scale=2.0)
    x = (grader.randn(*shape) * spread + offset).to(dtype)
    scale = (1 + grader.randn(B, C, scale=0.7)).to(dtype)
    bias = grader.randn(B, C, dtype=dtype)
    return x, scale, bias


@check(points=2, public=True, task="adain")
def test_adain(grader):
    """adain normalises each sample and channel over H, W, then applies its scale and bias"""
    for shape in ADAIN_SHAPES:
        for dtype in DTYPES:
            x, s, b = _adain_inputs(grader, shape, dtype)
            grader.compare(Call("adain", (x, s, b)),
                           case=f"adain(x{list(shape)}, scale, bias), {_dt(dtype)}")


@check(points=1, task="adain")
def test_adain_edges(grader):
    """adain with a 1×1 map (the bias comes out), a 1×N map, and eps = 0.1"""
    for dtype in DTYPES:
        for shape, eps in [((2, 3, 1, 1), 1e-8), ((3, 2, 1, 6), 1e-8),
                           ((2, 3, 3, 4), 0.1), ((1, 4, 2, 3), 0.1)]:
            x, s, b = _adain_inputs(grader, shape, dtype)
            if eps > 1e-8:
                x = 0.4 * x  # spreads comparable to eps, where its place matters
            grader.compare(Call("adain", (x, s, b), {"eps": eps}),
                           case=f"adain(x{list(shape)}, scale, bias, eps={eps}), {_dt(dtype)}")


@check(points=2, task="adain")
def test_adain_gradients(grader):
    """gradients of adain w.r.t. x, style_scale and style_bias"""
    for shape in [(2, 3, 4, 5), (1, 2, 3, 3), (3, 2, 1, 1), (2, 4, 2, 6)]:
        for dtype in DTYPES:
            x, s, b = _adain_inputs(grader, shape, dtype)
            grader.compare(Call("adain", (x, s, b), grad=(0, 1, 2)),
                           case=f"d adain(x{list(shape)}, scale, bias) / d(x, scale, bias), "
                           f"{_dt(dtype)}")


# -- Task 4: truncate ----------------------------------------------------------------------

TRUNC_CASES = [((5, 6), 0.7), ((3, 4, 6), 0.7), ((4, 3), 0.0), ((1, 8), 0.3),
               ((2, 5, 3), 1.0), ((3, 4), 1.5)]


def _trunc_inputs(grader, shape, dtype):
    w = grader.randn(*shape, dtype=dtype)
    w_avg = (grader.randn(shape[-1]) + 2.0).to(dtype)  # far from zero
    return w, w_avg


@check(points=2, public=True, task="truncate")
def test_truncate(grader):
    """truncate gives w_avg + ψ·(w − w_avg), for (B, w_dim) and (B, L, w_dim) codes"""
    for shape, psi in TRUNC_CASES:
        for dtype in DTYPES:
            w, w_avg = _trunc_inputs(grader, shape, dtype)
            grader.compare(Call("truncate", (w, w_avg, psi)),
                           case=f"truncate(w{list(shape)}, w_avg[{shape[-1]}], psi={psi}), "
                           f"{_dt(dtype)}")


@check(points=1, task="truncate")
def test_truncate_gradients(grader):
    """gradients of truncate w.r.t. w and w_avg"""
    for shape, psi in [((5, 6), 0.7), ((2, 3, 4), 0.4), ((1, 3), 0.0)]:
        for dtype in DTYPES:
            w, w_avg = _trunc_inputs(grader, shape, dtype)
            grader.compare(Call("truncate", (w, w_avg, psi), grad=(0, 1)),
                           case=f"d truncate(w{list(shape)}, w_avg, psi={psi}) / d(w, w_avg), "
                           f"{_dt(dtype)}")


# -- Task 5: style_mix ---------------------------------------------------------------------

# (B, w_dim, crossover, num_layers)
MIX_CASES = [(3, 5, 2, 6), (1, 4, 0, 3), (2, 3, 4, 4), (4, 2, 1, 5), (2, 3, 3, 7),
             (1, 6, 1, 1), (2, 2, 0, 1)]


@check(points=2, public=True, task="style_mix")
def test_style_mix(grader):
    """style_mix: w1 for layers l < crossover, w2 for l >= crossover, shape (B, L, w_dim)"""
    for B, d, c, L in MIX_CASES:
        for dtype in DTYPES:
            w1, w2 = grader.randn(B, d, dtype=dtype), grader.randn(B, d, dtype=dtype)
            grader.compare(Call("style_mix", (w1, w2, c, L)), exact=True,
                           case=f"style_mix(w1[{B}, {d}], w2[{B}, {d}], crossover={c}, "
                           f"num_layers={L}), {_dt(dtype)}")


@check(points=1, task="style_mix")
def test_style_mix_gradients(grader):
    """gradients of style_mix w.r.t. w1 and w2, every crossover of an 8-layer mix"""
    for c in (3, 0, 8, 1, 6):
        for dtype in DTYPES:
            w1, w2 = grader.randn(2, 4, dtype=dtype), grader.randn(2, 4, dtype=dtype)
            grader.compare(Call("style_mix", (w1, w2, c, 8), grad=(0, 1)),
                           case=f"d style_mix(w1[2, 4], w2[2, 4], crossover={c}, 8) / d(w1, w2)"
                           f", {_dt(dtype)}")
