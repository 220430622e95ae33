"""MoCo v3 (Chen, Xie, He 2021, "An Empirical Study of Training Self-Supervised ViTs").

Base encoder = timm ViT + projection MLP + prediction MLP; momentum encoder = a copy of ViT +
projection MLP updated by EMA after every optimiser step with a cosine momentum schedule from
``model.mocov3.momentum`` (0.99) to 1 (through the engine's ``on_step(progress)`` hook). Loss:
symmetric InfoNCE, ``ctr(q1, k2) + ctr(q2, k1)``, each ``2 * T * CE(q @ k.T / T, labels)`` as in the
official code, with the keys of every DDP worker as negatives (``all_gather``; the positive of
local query ``i`` on rank ``r`` is global key ``r * N + i``).

Simplifications vs the paper, stated plainly: the patch projection is trained (the paper's
frozen random patch projection is a stability trick for large batches, left out); the encoder
uses the class token through timm's ``forward_head(pre_logits=True)``. Every number of the two
augmentation pipelines is a field of :class:`MoCoV3Config` (``model.mocov3``); the crop range and
flip are the shared ``aug`` section's (the paper crops 0.08-1).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torchvision.transforms import InterpolationMode, v2

from activessf.config import check
from activessf.models.encoder import build_encoder
from activessf.models.pos_embed import fix_sincos_pos_embed
from activessf.models.registry import register_method
from activessf.models.views import ImageViews, to_nchw_uint8


def _probability_pair(values: list[float]) -> bool:
    return len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)


@dataclass
class MoCoV3Config:
    """``model.mocov3``: loss, momentum, heads and the BYOL-style views (one value per view where two)."""

    # InfoNCE temperature; base momentum of the EMA (cosine schedule to 1).
    temperature: float = 0.2
    momentum: float = 0.99
    # Projector/predictor output and hidden widths.
    proj_dim: int = 256
    proj_hidden_dim: int = 4096
    # Fixed 2-D sin-cos position embeddings, frozen (as MoCo v3 and MAE use for ViT).
    sincos_pos_embed: bool = True
    # Colour jitter strengths (brightness, contrast, saturation, hue) and the chance it applies.
    color_jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.2, 0.1])
    color_jitter_p: float = 0.8
    grayscale_p: float = 0.2
    # Gaussian blur chance of view 1 and view 2, its sigma range, kernel side as a fraction of the image.
    blur_p: list[float] = field(default_factory=lambda: [1.0, 0.1])
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])
    blur_kernel_frac: float = 0.1
    # Solarisation chance of view 1 and view 2, and its threshold on the 0-255 scale.
    solarize_p: list[float] = field(default_factory=lambda: [0.0, 0.2])
    solarize_threshold: int = 128
    # Features are the class token.
    pool: ClassVar[str] = "token"

    def __post_init__(self) -> None:
        check(self.temperature > 0, "temperature", "must be > 0")
        check(0.0 <= self.momentum <= 1.0, "momentum", "must be in [0, 1]")
        check(self.proj_dim >= 1, "proj_dim", "must be >= 1")
        check(self.proj_hidden_dim >= 1, "proj_hidden_dim", "must be >= 1")
        check(len(self.color_jitter) == 4 and all(v >= 0 for v in self.color_jitter) and self.color_jitter[3] <= 0.5,
              "color_jitter", "need 4 values >= 0 (brightness, contrast, saturation, hue <= 0.5)")
        for name in ("color_jitter_p", "grayscale_p"):
            check(0.0 <= getattr(self, name) <= 1.0, name, "must be in [0, 1]")
        check(_probability_pair(self.blur_p), "blur_p", "need two probabilities (view 1, view 2)")
        check(_probability_pair(self.solarize_p), "solarize_p", "need two probabilities (view 1, view 2)")
        check(len(self.blur_sigma) == 2 and 0 < self.blur_sigma[0] <= self.blur_sigma[-1], "blur_sigma",
              "need [min, max] with 0 < min <= max")
        check(0.0 < self.blur_kernel_frac <= 1.0, "blur_kernel_frac", "must be in (0, 1]")
        check(0 <= self.solarize_threshold <= 255, "solarize_threshold", "must be in [0, 255]")


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int, last_bn: bool = True) -> nn.Sequential:
    """MoCo v3 MLP head: (Linear, BN, ReLU) x (layers-1), Linear, optional affine-free BN."""
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        dim = hidden
    mods.append(nn.Linear(dim, out_dim, bias=False))
    if last_bn:
        # The paper follows SimCLR: the output BN has no affine parameters.
        mods.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*mods)


def gather_keys(k: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Keys of all workers ``[W*N, D]`` (no gradient through others') and this worker's rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return k, 0
    parts = [torch.zeros_like(k) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, k.contiguous())
    return torch.cat(parts, dim=0), dist.get_rank()


def info_nce(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo v3 contrastive loss of queries against gathered keys.

    Args:
        q: ``[N, D]`` local queries (predictor output).
        k: ``[N, D]`` local keys (momentum encoder output, no gradient).
        temperature: Softmax temperature ``T``.

    Returns:
        Scalar ``2 * T * CE(q_n @ k_n_all.T / T, rank * N + arange(N))`` (q, k L2-normalised).
    """
    q = F.normalize(q.float(), dim=1)
    k_all, rank = gather_keys(F.normalize(k.float(), dim=1))
    logits = q @ k_all.t() / temperature
    labels = torch.arange(q.shape[0], device=q.device) + rank * q.shape[0]
    return F.cross_entropy(logits, labels) * (2 * temperature)


def cosine_momentum(progress: float, base: float) -> float:
    """``1 - (1 - base) * (1 + cos(pi * progress)) / 2``: ``base`` at 0, 1 at the end."""
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - base)


class TwoViews:
    """BYOL-style asymmetric augmentations of MoCo v3 (defaults: blur 1.0/0.1, solarise 0/0.2).

    Each view draws its parameters per sample. Output ``[N, 2, 3, S, S]`` keeps the batch first so
    the engine's image count (``x.shape[0]``) stays the number of images.
    """

    def __init__(self, img_size: int, scale: Sequence[float], hflip: float, mean, std,
                 o: MoCoV3Config | None = None) -> None:
        o = o or MoCoV3Config()
        self.base = ImageViews(img_size, scale, hflip, mean, std)  # plain() / denormalize()
        self.img_size = img_size
        kernel = max(3, int(o.blur_kernel_frac * img_size) // 2 * 2 + 1)  # odd (BYOL: ~10% of the side)

        def view(blur_p: float, solarize_p: float) -> v2.Compose:
            return v2.Compose([
                v2.RandomResizedCrop(img_size, scale=tuple(scale), interpolation=InterpolationMode.BICUBIC, antialias=True),
                v2.RandomApply([v2.ColorJitter(*o.color_jitter)], p=o.color_jitter_p),
                v2.RandomGrayscale(p=o.grayscale_p),
                v2.RandomApply([v2.GaussianBlur(kernel, sigma=tuple(o.blur_sigma))], p=blur_p),
                v2.RandomSolarize(threshold=o.solarize_threshold, p=solarize_p),
                v2.RandomHorizontalFlip(hflip),
            ])

        self.views = tuple(view(b, s) for b, s in zip(o.blur_p, o.solarize_p))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` -> float ``[N, 2, 3, S, S]``."""
        x = to_nchw_uint8(images)
        pair = [torch.stack([aug(img) for img in x]) for aug in self.views]
        return torch.stack([self.base.finish(p) for p in pair], dim=1)

    def plain(self, images: torch.Tensor) -> torch.Tensor:
        return self.base.plain(images)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.denormalize(x)


class MoCoV3(nn.Module):
    """ViT + projector + predictor, momentum ViT + projector, symmetric InfoNCE.

    Args:
        encoder: timm ``VisionTransformer`` (``num_classes=0``).
        views: :class:`TwoViews`.
        dim: Output dimension of projector and predictor.
        hidden: Hidden width of the MLPs.
        temperature: InfoNCE temperature.
        momentum: Base EMA momentum (start of the cosine schedule).
    """

    def __init__(self, encoder: VisionTransformer, views, dim: int = 256, hidden: int = 4096,
                 temperature: float = 0.2, momentum: float = 0.99) -> None:
        super().__init__()
        self.encoder, self.views = encoder, views
        self.temperature, self.base_momentum, self.momentum = temperature, momentum, momentum
        self.projector = mlp(encoder.num_features, hidden, dim, 3)
        self.predictor = mlp(dim, hidden, dim, 2)
        self.momentum_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.momentum_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def no_weight_decay(self) -> set[str]:
        return {f"encoder.{n}" for n in self.encoder.no_weight_decay()}

    @staticmethod
    def _embed(encoder: VisionTransformer, x: torch.Tensor) -> torch.Tensor:
        return encoder.forward_head(encoder.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Symmetric loss of two views.

        Args:
            x: ``[N, 2, 3, S, S]`` from :class:`TwoViews`.

        Returns:
            ``loss`` (scalar), ``q`` ``[2, N, dim]`` and ``k`` ``[2, N, dim]``.
        """
        x1, x2 = x[:, 0], x[:, 1]
        n = x1.shape[0]
        # One batched pass per network (BN statistics over both views, as one forward call would).
        q = self.predictor(self.projector(self._embed(self.encoder, torch.cat([x1, x2])))).view(2, n, -1)
        with torch.no_grad():
            k = self.momentum_projector(self._embed(self.momentum_encoder, torch.cat([x1, x2]))).view(2, n, -1)
        loss = info_nce(q[0], k[1], self.temperature) + info_nce(q[1], k[0], self.temperature)
        return {"loss": loss, "q": q, "k": k}

    @torch.no_grad()
    def on_step(self, progress: float) -> None:
        """After each optimiser step: set the momentum for ``progress`` and update the EMA copies."""
        self.momentum = cosine_momentum(progress, self.base_momentum)
        pairs = [(self.encoder, self.momentum_encoder), (self.projector, self.momentum_projector)]
        for online, target in pairs:
            for p, t in zip(online.parameters(), target.parameters()):
                t.mul_(self.momentum).add_(p.detach(), alpha=1.0 - self.momentum)


@register_method("mocov3", MoCoV3Config)
def build_mocov3(cfg) -> MoCoV3:
    """Build MoCo v3 from a ``PretrainConfig`` (``aug.crop_scale`` is the crop range; paper 0.08-1)."""
    m, a = cfg.model, cfg.aug
    o: MoCoV3Config = m.params
    encoder = build_encoder(m.encoder, m.img_size, m.patch_size, m.encoder_kwargs)
    if o.sincos_pos_embed:
        fix_sincos_pos_embed(encoder)  # fixed 2-D sin-cos positions, as MoCo v3 / MAE use for ViT
    views = TwoViews(m.img_size, a.crop_scale, a.hflip, a.mean, a.std, o)
    return MoCoV3(encoder, views, o.proj_dim, o.proj_hidden_dim, o.temperature, o.momentum)
