"""A Python PyTorch reference of fervid's network family, loss and model files.

It mirrors, operation for operation:
  include/fervid/config.h, src/core/config.cpp   ModelConfig (width rounding, defaults, checks)
  include/fervid/model.h, src/nn/network.cpp     MCSANet and its modules, with the SAME module
                                                 tree, so parameter and buffer names and shapes
                                                 equal the C++ ones (a .fervid file loads as is)
  src/nn/losses.cpp, src/train/train_step.cpp    FerLoss (CE + lambda_c * center loss, Wen et
                                                 al.'s center update) and one training step
  src/io/model_io.cpp                            the .fervid reader (magic, version, checksum)

It exists to measure fervid against Python PyTorch doing the same work
(bench/compare_with_pytorch.py) and to prove both compute the same thing
(bench/reference/check_same_outputs.py, ctest `reference_outputs`). Needs torch (Debian's
python3-torch: run it with /usr/bin/python3).

Input: float NCHW [N, in_channels, input_size, input_size], already normalised. forward()
returns NetOutput(logits [N, K], embedding [N, D]). Call eval() (and torch.no_grad()) for
inference, as in C++.
"""

import json
import math
import struct
from dataclasses import dataclass, field
from typing import List, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- configuration (config.h / config.cpp) ----------------------------------------------------

VARIANTS = ("vgg16", "m", "mca", "msa", "mcsa")  # the order of fervid::Variant
EXPRESSION_NAMES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
BLOCK_BASE = (64, 128, 256, 512, 512)  # VGG16's five blocks
LAYERS_PER_BLOCK = (2, 2, 3, 3, 3)


def has_fusion(variant: str) -> bool:
    return variant != "vgg16"


def has_channel_attention(variant: str) -> bool:
    return variant in ("mca", "mcsa")


def has_spatial_attention(variant: str) -> bool:
    return variant in ("msa", "mcsa")


def scaled_channels(base: int, width: float) -> int:
    """round(base * width) to the nearest multiple of 8 (halves away from zero, as std::lround), >= 8."""
    return max(8, int(math.floor(base * width / 8.0 + 0.5)) * 8)


@dataclass
class ModelConfig:
    variant: str = "mcsa"
    width: float = 1.0
    input_size: int = 48
    in_channels: int = 1
    multiscale: int = -1  # -1 = the variant's default (on unless vgg16), 0 off, 1 on
    se_reduction: int = 16
    spatial_kernel: int = 7
    dropout: float = 0.5
    class_names: List[str] = field(default_factory=list)  # empty = the 7 FER2013 expressions
    norm_mean: float = 0.5
    norm_std: float = 0.5

    def uses_multiscale(self) -> bool:
        return has_fusion(self.variant) if self.multiscale < 0 else self.multiscale != 0

    def classes(self) -> List[str]:
        return self.class_names if self.class_names else list(EXPRESSION_NAMES)

    def num_classes(self) -> int:
        return len(self.classes())

    def block_channels(self) -> List[int]:
        return [scaled_channels(b, self.width) for b in BLOCK_BASE]

    def embedding_dim(self) -> int:
        return scaled_channels(512, self.width)

    def validate(self) -> None:
        def bad(name, value, expected):
            raise ValueError(f"model config: field '{name}' is {value}, expected {expected}")

        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant '{self.variant}' (expected one of: {', '.join(VARIANTS)})")
        if not (0.0 < self.width <= 4.0):
            bad("width", self.width, "in (0, 4]")
        if self.input_size < 32 or self.input_size % 16 != 0:
            bad("input_size", self.input_size, "a multiple of 16, at least 32")
        if self.input_size > 1024:
            bad("input_size", self.input_size, "at most 1024")
        if self.in_channels not in (1, 3):
            bad("in_channels", self.in_channels, "1 (gray) or 3")
        if self.se_reduction < 1:
            bad("se_reduction", self.se_reduction, ">= 1")
        if self.spatial_kernel < 1 or self.spatial_kernel % 2 == 0:
            bad("spatial_kernel", self.spatial_kernel, "an odd number >= 1")
        if not (0.0 <= self.dropout < 1.0):
            bad("dropout", self.dropout, "in [0, 1)")
        if not (self.norm_std > 0.0):
            bad("norm_std", self.norm_std, "> 0")
        if self.num_classes() < 2:
            bad("class_names", self.num_classes(), "at least 2")

    @staticmethod
    def from_json(j: dict) -> "ModelConfig":
        """As fervid::config_from_json: every field required, named when missing."""
        names = ("variant", "width", "input_size", "in_channels", "multiscale", "se_reduction",
                 "spatial_kernel", "dropout", "class_names", "norm_mean", "norm_std")
        for n in names:
            if n not in j:
                raise ValueError(f"config lacks field '{n}'")
        c = ModelConfig(variant=str(j["variant"]), width=float(j["width"]),
                        input_size=int(j["input_size"]), in_channels=int(j["in_channels"]),
                        multiscale=1 if j["multiscale"] else 0, se_reduction=int(j["se_reduction"]),
                        spatial_kernel=int(j["spatial_kernel"]), dropout=float(j["dropout"]),
                        class_names=list(j["class_names"]), norm_mean=float(j["norm_mean"]),
                        norm_std=float(j["norm_std"]))
        c.validate()
        return c


# ---- the network (model.h / network.cpp) ------------------------------------------------------

class NetOutput(NamedTuple):
    logits: torch.Tensor     # [N, K]
    embedding: torch.Tensor  # [N, D]


class ConvBnRelu(nn.Module):
    """KxK convolution (no bias) + BatchNorm + ReLU, "same" padding, stride 1."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        nn.init.kaiming_normal_(self.conv.weight, a=0.0, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class InceptionBlock(nn.Module):
    """Branches 1x1 | 1x1->3x3 | 1x1->3x3->3x3 | maxpool3x3->1x1 in the ratio 2:4:1:1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        if cout % 8 != 0:
            raise ValueError(f"InceptionBlock: out channels must be a multiple of 8, got {cout}")
        c1, c3, c5, cp = cout // 4, cout // 2, cout // 8, cout // 8
        self.branch1 = ConvBnRelu(cin, c1, 1)
        self.branch3_reduce = ConvBnRelu(cin, c3 // 2, 1)
        self.branch3 = ConvBnRelu(c3 // 2, c3, 3)
        self.branch5_reduce = ConvBnRelu(cin, c5, 1)
        self.branch5_a = ConvBnRelu(c5, c5, 3)
        self.branch5_b = ConvBnRelu(c5, c5, 3)
        self.pool_proj = ConvBnRelu(cin, cp, 1)

    def forward(self, x):
        b1 = self.branch1(x)
        b3 = self.branch3(self.branch3_reduce(x))
        b5 = self.branch5_b(self.branch5_a(self.branch5_reduce(x)))
        bp = self.pool_proj(F.max_pool2d(x, 3, 1, 1))
        return torch.cat([b1, b3, b5, bp], 1)


class ChannelAttention(nn.Module):
    """SE: GAP -> FC(C, C/r) -> ReLU -> FC(C/r, C) -> sigmoid, channels scaled by their weight."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def weights(self, x):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))

    def forward(self, x):
        return x * self.weights(x).unsqueeze(-1).unsqueeze(-1)


class SpatialAttention(nn.Module):
    """CBAM: channel mean and max -> KxK conv (no bias) -> sigmoid, positions scaled."""

    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def attention_map(self, x):
        pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True)[0]], 1)
        return torch.sigmoid(self.conv(pooled))

    def forward(self, x):
        return x * self.attention_map(x)


class FeatureFusion(nn.Module):
    """F2, F3 average-pooled to F5's size, concatenated with F5, 1x1 conv + BN + ReLU."""

    def __init__(self, c2: int, c3: int, c5: int, cout: int):
        super().__init__()
        self.reduce = ConvBnRelu(c2 + c3 + c5, cout, 1)

    def forward(self, f2, f3, f5):
        size = (f5.size(2), f5.size(3))
        cat = torch.cat([F.adaptive_avg_pool2d(f2, size), F.adaptive_avg_pool2d(f3, size), f5], 1)
        return self.reduce(cat)


class MCSANet(nn.Module):
    """The whole network; submodules a variant does not use are not created (as in C++)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        ch = config.block_channels()
        cin = config.in_channels
        self._layer_names = []
        for b in range(5):
            names = []
            for l in range(LAYERS_PER_BLOCK[b]):
                name = f"block{b + 1}_conv{l + 1}"
                inception = config.uses_multiscale() and b >= 2 and l == LAYERS_PER_BLOCK[b] - 1
                self.add_module(name, InceptionBlock(cin, ch[b]) if inception else ConvBnRelu(cin, ch[b], 3))
                names.append(name)
                cin = ch[b]
            self._layer_names.append(names)
        dim = config.embedding_dim()
        self.fusion = FeatureFusion(ch[1], ch[2], ch[4], dim) if has_fusion(config.variant) else None
        self.channel_attention = (ChannelAttention(dim, config.se_reduction)
                                  if has_channel_attention(config.variant) else None)
        self.spatial_attention = (SpatialAttention(config.spatial_kernel)
                                  if has_spatial_attention(config.variant) else None)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(dim, config.num_classes())
        nn.init.normal_(self.head.weight, 0.0, 0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, x) -> NetOutput:
        c = self.config
        if x.dim() != 4 or x.size(1) != c.in_channels or x.size(2) != c.input_size or x.size(3) != c.input_size:
            raise ValueError(f"MCSANet: expected input [N, {c.in_channels}, {c.input_size}, {c.input_size}], "
                             f"got {list(x.shape)}")
        h, f2, f3 = x, None, None
        for b, names in enumerate(self._layer_names):
            for name in names:
                h = getattr(self, name)(h)
            if b == 1:
                f2 = h  # paper 2.5: conv2 and conv3 maps before their pooling layers
            if b == 2:
                f3 = h
            if b < 4:
                h = F.max_pool2d(h, 2, 2)
        if self.fusion is not None:
            h = self.fusion(f2, f3, h)
        if self.channel_attention is not None:
            h = self.channel_attention(h)
        if self.spatial_attention is not None:
            h = self.spatial_attention(h)
        embedding = h.mean((2, 3))
        return NetOutput(self.head(self.dropout(embedding)), embedding)


def fervid_state(model: nn.Module) -> dict:
    """Parameters then buffers by dotted path: what a .fervid file's tensor table names."""
    out = dict(model.named_parameters())
    out.update(dict(model.named_buffers()))
    return out


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- losses and the training step (losses.cpp, train_step.cpp) --------------------------------

def cross_entropy(logits, labels, label_smoothing: float = 0.0):
    target = F.one_hot(labels, logits.size(1)).to(logits.dtype)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / logits.size(1)
    return -(target * torch.log_softmax(logits, 1)).sum(1).mean()


def center_loss(features, labels, centers):
    diff = features - centers.index_select(0, labels)
    return 0.5 * diff.pow(2).sum(1).mean()


class FerLoss(nn.Module):
    """CE + lambda_c * center loss (the separation term of losses.h is not reproduced: gamma 0).

    `centers` [K, D] is a parameter (as in C++) that the optimizer does not own; after
    backward(), update_centers() applies Wen et al.'s rule at rate alpha.
    """

    def __init__(self, num_classes: int, embedding_dim: int, lambda_c: float = 0.0,
                 center_alpha: float = 0.5, label_smoothing: float = 0.0):
        super().__init__()
        if lambda_c < 0 or not (0 <= center_alpha <= 1):
            raise ValueError(f"FerLoss: lambda_c must be >= 0 and center_alpha in [0, 1], "
                             f"got {lambda_c} and {center_alpha}")
        self.lambda_c, self.center_alpha, self.label_smoothing = lambda_c, center_alpha, label_smoothing
        self.centers = nn.Parameter(torch.zeros(num_classes, embedding_dim))

    def forward(self, logits, embedding, labels):
        ce = cross_entropy(logits, labels, self.label_smoothing)
        zero = torch.zeros((), dtype=logits.dtype)
        center = center_loss(embedding, labels, self.centers.detach()) if self.lambda_c > 0 else zero
        return ce + self.lambda_c * center, ce, center

    @torch.no_grad()
    def update_centers(self, embedding, labels):
        c = self.centers
        f = embedding.detach().to(c.dtype)
        k = c.size(0)
        counts = torch.bincount(labels, minlength=k).to(f.dtype)
        sum_f = torch.zeros_like(c).index_add_(0, labels, f)
        step = (c * counts.unsqueeze(1) - sum_f) / (1.0 + counts.unsqueeze(1))
        if c.grad is not None:
            step = step + c.grad
            c.grad.zero_()
        c.sub_(self.center_alpha * step)


def train_step(net: MCSANet, loss: FerLoss, optimizer, images, labels):
    """fervid::train_step: forward, loss, zero_grad, backward, optimizer step, center update."""
    out = net(images)
    total, ce, center = loss(out.logits, out.embedding, labels)
    optimizer.zero_grad(set_to_none=False)  # libtorch 1.13's zero_grad() zeroes in place
    if loss.centers.grad is not None:
        loss.centers.grad.zero_()
    total.backward()
    optimizer.step()
    loss.update_centers(out.embedding, labels)
    return total.detach(), out.logits.detach()


# ---- deterministic inputs, the same bits as bench/reference/dump_logits.cpp --------------------

def deterministic_input(shape, seed: int = 0) -> torch.Tensor:
    """Values in [-1, 1) from the splitmix64 sequence started at `seed` (element i is the
    (i+1)-th output), exact in float32, so C++ and Python build bit-identical tensors without
    sharing a random generator."""
    import numpy as np

    n = int(math.prod(shape))
    with np.errstate(over="ignore"):
        z = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) \
            + np.uint64(seed & ((1 << 64) - 1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    v = (z >> np.uint64(40)).astype(np.float64) / float(1 << 23) - 1.0
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


# ---- model files (model_io.cpp) ----------------------------------------------------------------

MAGIC = b"FERVIDMF"
FORMAT_VERSION = 2  # 2 adds the face recipe to the header; the weights are laid out as in 1
_PREAMBLE = len(MAGIC) + 4 + 8  # magic, u32 version, u64 header size
_MAX_HEADER = 64 << 20
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}


class ModelFileError(Exception):
    pass


def fnv1a64(data: bytes, h: int = 1469598103934665603) -> int:
    p, m = 1099511628211, (1 << 64) - 1
    for byte in data:
        h = ((h ^ byte) * p) & m
    return h


def read_fervid(path: str, verify_checksum: bool = True):
    """The verified header and the data section of a .fervid file: (header dict, memoryview)."""
    where = f"model file {path}: "
    try:
        with open(path, "rb") as f:
            b = f.read()
    except OSError as e:
        raise ModelFileError(where + f"cannot open ({e.strerror})") from None
    if len(b) < len(MAGIC) or b[:len(MAGIC)] != MAGIC:
        raise ModelFileError(where + "not a fervid model (bad magic tag)")
    if len(b) < _PREAMBLE:
        raise ModelFileError(where + f"truncated ({len(b)} bytes)")
    version, header_size = struct.unpack_from("<IQ", b, len(MAGIC))
    if version not in (1, FORMAT_VERSION):
        raise ModelFileError(where + f"unsupported format version {version} "
                                     f"(this reader reads version {FORMAT_VERSION})")
    if header_size > _MAX_HEADER:
        raise ModelFileError(where + f"corrupted header size {header_size}")
    if len(b) < _PREAMBLE + header_size + 8:
        raise ModelFileError(where + f"truncated ({len(b)} bytes, header alone needs "
                                     f"{_PREAMBLE + header_size + 8})")
    try:
        header = json.loads(b[_PREAMBLE:_PREAMBLE + header_size])
    except ValueError as e:
        raise ModelFileError(where + f"corrupted header: {e}") from None
    if "data_bytes" not in header:
        raise ModelFileError(where + "header lacks field 'data_bytes'")
    start = _PREAMBLE + header_size
    expected = start + int(header["data_bytes"]) + 8
    if len(b) < expected:
        raise ModelFileError(where + f"truncated ({len(b)} bytes, expected {expected})")
    if len(b) > expected:
        raise ModelFileError(where + "trailing bytes after the checksum")
    if verify_checksum:
        (stored,) = struct.unpack_from("<Q", b, len(b) - 8)
        if fnv1a64(memoryview(b)[:len(b) - 8]) != stored:
            raise ModelFileError(where + "checksum mismatch (corrupted file)")
    return header, memoryview(b)[start:start + int(header["data_bytes"])]


def load_fervid(path: str, verify_checksum: bool = True):
    """fervid::load_model: (MCSANet in eval mode, header dict). Every tensor of the file must
    match one of the network by name, shape and size, and the reverse; problems raise
    ModelFileError naming the file and the tensor."""
    where = f"model file {path}: "
    header, data = read_fervid(path, verify_checksum)
    try:
        config = ModelConfig.from_json(header["config"])
    except (KeyError, ValueError, TypeError) as e:
        raise ModelFileError(where + str(e)) from None
    model = MCSANet(config)
    table = {t["name"]: t for t in header.get("tensors", [])}
    state = fervid_state(model)
    if len(table) != len(state):
        raise ModelFileError(where + f"holds {len(table)} tensors, the network has {len(state)}")
    with torch.no_grad():
        for name, tensor in state.items():
            t = table.get(name)
            if t is None:
                raise ModelFileError(where + f"missing tensor '{name}'")
            shape = list(t["shape"])
            if shape != list(tensor.shape):
                raise ModelFileError(where + f"tensor '{name}' has shape {shape}, the network expects "
                                             f"{list(tensor.shape)}")
            if t["dtype"] not in _DTYPES:
                raise ModelFileError(where + f"tensor '{name}': unknown dtype '{t['dtype']}'")
            dtype = _DTYPES[t["dtype"]]
            offset, nbytes = int(t["offset"]), int(t["nbytes"])
            numel = math.prod(shape)
            if offset + nbytes > len(data) or nbytes != numel * torch.tensor([], dtype=dtype).element_size():
                raise ModelFileError(where + f"tensor '{name}' lies outside the data section")
            src = torch.frombuffer(bytearray(data[offset:offset + nbytes]), dtype=dtype) if nbytes else \
                torch.empty(0, dtype=dtype)
            tensor.copy_(src.reshape(shape))
    model.eval()
    return model, header
