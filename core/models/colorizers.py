"""Colorizers: BT.601 luma in (N x 1 x H x W, [0, 1]), RGB out (N x 3 x H x W, [0, 1]).

A colorizer built with ``hints`` also takes colour hints (``core.hints``): three more input
channels after the luma (hint Cb, Cr and a mask). Given the luma alone, it sees no hints.

Both predict only the chroma (Cb, Cr) and recombine it with the input's own luma,
so brightness and detail are never damaged. Their head either regresses the chroma
(the least-squares estimate) or classifies it into bins on a grid and decodes the
distribution with an annealed mean (see ``core.color``): the shipped faithful U-Net is
binned with plain cross-entropy, the vivid one binned with rare colours weighted up.
In training, a binned colorizer also returns its bin logits after the three RGB
channels, for the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core import color
from core.hints import CHANNELS as HINT_CHANNELS
from core.hints import EDGE_SIGMA, SETTLE_EDGE_SIGMA, spread_residuals
from core.models._registry import Option, register_model
from core.models.resnet import BasicBlock
from core.models.unet import UNet, conv_block

PRETRAINED_URL_HINT = "torchvision's ImageNet ResNet-18 weights (IMAGENET1K_V1)"


class Colorizer(nn.Module):
    """The chroma head and the recombination; subclasses supply ``body`` (luma -> 2 or Q channels)."""

    body: nn.Module
    # A binned model in training appends its bin logits to the RGB for the chroma losses; a loss on the RGB
    # alone switches this off, which spares copying 441 channels per pixel (1.5x faster on a CPU).
    emit_logits = True
    # Whether a loss reads the RGB beside the logits (a teacher does). If none does, the RGB is decoded for
    # the training metrics only, outside autograd: no backward pass through the 441-bin decoding.
    rgb_trains = True
    # How sharply the last spread of each hint's leftover stops at luma edges (``core.hints.spread_residuals``).
    settle_edge_sigma = EDGE_SIGMA
    # Whether training sees that last spread too (its loss backpropagated through the spread's solver).
    settles_in_training = False

    def __init__(self, binned: bool, temperature: float, takes_hints: bool = False) -> None:
        super().__init__()
        self.binned, self.temperature, self.takes_hints = binned, temperature, takes_hints
        self.register_buffer("centres", color.chroma_bin_centres(), persistent=False)

    @property
    def out_channels(self) -> int:
        return len(self.centres) if self.binned else 2

    @property
    def in_channels(self) -> int:
        return 1 + HINT_CHANNELS if self.takes_hints else 1

    def _raw(self, given: torch.Tensor) -> torch.Tensor:
        luma = (given[:, :1] - 0.5) * 4  # roughly standardised: natural images' luma has std ~0.25
        if not self.takes_hints:
            return self.body(luma)
        if given.shape[1] == 1:
            extra = luma.new_zeros(luma.shape[0], HINT_CHANNELS, *luma.shape[2:])
        else:  # chroma offsets have a std of about 0.1: scaled to the luma's range
            extra = given[:, 1:] * given.new_tensor([5.0, 5.0, 1.0]).view(1, 3, 1, 1)
        return self.body(torch.cat([luma, extra], dim=1))

    def _decode(self, raw: torch.Tensor) -> torch.Tensor:
        if not self.binned:
            return 0.5 * torch.tanh(raw.float())
        return color.decode_bins(raw, self.centres, self.temperature)

    def predict_chroma(self, given: torch.Tensor) -> torch.Tensor:
        """The Cb and Cr offsets (N x 2 x H x W) this model gives luma (and, for a hint model, hints)."""
        return self._chroma(given, self._raw(given))

    def _chroma(self, given: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        chroma = self._decode(raw)
        if self.takes_hints and given.shape[1] > 1 and (self.settles_in_training or not self.training):
            chroma = spread_residuals(chroma, given[:, 1:], given[:, :1], self.settle_edge_sigma)
        return chroma

    def forward(self, given: torch.Tensor) -> torch.Tensor:
        raw = self._raw(given)
        if not (self.training and self.binned and self.emit_logits):
            return color.combine(given[:, :1], self._chroma(given, raw))
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.rgb_trains):
            rgb = color.combine(given[:, :1], self._chroma(given, raw))
        # In the logits' dtype (bf16 under autocast), so the copy and the loss move half the bytes.
        return torch.cat([rgb.to(raw.dtype), raw], dim=1)


class UNetColorizer(Colorizer):
    def __init__(self, width: int, depth: int, attention: bool, binned: bool, temperature: float,
                 takes_hints: bool = False) -> None:
        super().__init__(binned, temperature, takes_hints)
        self.body = UNet(self.in_channels, self.out_channels, width, depth, attention)


class ResNetEncoderDecoder(nn.Module):
    """A ResNet-18 encoder (CIFAR form: 3x3 stem, no max-pool) and a U-Net-style decoder
    that upsamples and concatenates each encoder stage's features."""

    def __init__(self, out_channels: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        self.stages = nn.ModuleList()
        channels = width
        for index in range(4):
            out = width * 2**index
            stride = 1 if index == 0 else 2
            self.stages.append(nn.Sequential(BasicBlock(channels, out, stride), BasicBlock(out, out, 1)))
            channels = out
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for index in reversed(range(3)):
            skip = width * 2**index
            self.ups.append(nn.ConvTranspose2d(channels, skip, 2, stride=2))
            self.decoders.append(conv_block(2 * skip, skip))
            channels = skip
        self.head = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % 8, -width % 8
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips[:-1]), strict=True):
            x = decoder(torch.cat([skip, up(x)], dim=1))
        return self.head(x)[..., :height, :width]

    def load_imagenet_stages(self) -> None:
        """Start the four stages from torchvision's ImageNet weights (needs internet once).

        The stem stays random: ImageNet's is a 7x7 colour convolution, ours a 3x3 one on luma.
        """
        from torchvision.models import ResNet18_Weights

        try:
            state = ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as error:  # URLError, OSError, HTTPError...: all mean "not downloadable here"
            raise RuntimeError(
                f"Starting from ImageNet weights needs {PRETRAINED_URL_HINT}, which could not be downloaded "
                f"({type(error).__name__}: {error}). Train from scratch (pretrained off), or run once online "
                "so torchvision caches them.") from error
        mapped = {}
        for key, value in state.items():
            if key.startswith("layer"):
                layer, block, rest = key[5], key.split(".")[1], key.split(".", 2)[2]
                rest = rest.replace("downsample", "shortcut")
                mapped[f"{int(layer) - 1}.{block}.{rest}"] = value
        self.stages.load_state_dict(mapped)


class ResNetColorizer(Colorizer):
    def __init__(self, width: int, binned: bool, temperature: float, pretrained: bool) -> None:
        super().__init__(binned, temperature)
        self.body = ResNetEncoderDecoder(self.out_channels, width)
        if pretrained:
            if width != 64:
                raise ValueError("ImageNet weights exist for width 64 only.")
            self.body.load_imagenet_stages()


COLOR_HEAD_OPTIONS = (
    Option("binned", False, "classify chroma into bins instead of regressing it",
           choices=(False, True)),
    Option("temperature", 1.0, "binned only: the annealed mean's temperature (lower is more vivid)",
           minimum=0.05, maximum=3.0),
)
HOW_IT_WORKS = (
    "The image's lightness is known; only its colour is missing. The network therefore predicts just the two "
    "chroma channels (Cb and Cr) from the grey input and recombines them with the input's own lightness, so "
    "brightness and detail are never damaged. Regressing the chroma with a squared error lands on the average "
    "of all plausible colours: safe, but muted. Classifying each pixel's chroma into one of 441 bins instead "
    "keeps the whole distribution: decoded by its mean it is the most faithful (the shipped faithful U-Net); "
    "with rare (saturated) colours weighted up in the loss and an annealed mean that leans towards the "
    "likeliest colours, it is vivid. A fine-tune may add a frozen classifier as a teacher, so colours that "
    "change what the image shows cost more. "
    "Chroma varies smoothly, so it is predicted at the model's working size and upsampled onto a large photo's "
    "full-resolution lightness."
)


@register_model(
    "unet_colorizer", task="colorization", title="U-Net chroma colorizer", summary=HOW_IT_WORKS,
    options=(
        Option("width", 32, "channels of the first stage (doubled at each stage)", minimum=8, maximum=128),
        Option("depth", 3, "number of down-sampling stages", minimum=1, maximum=5),
        Option("attention", False, "attention gates on the skip connections", choices=(False, True)),
        *COLOR_HEAD_OPTIONS,
        Option("hints", False, "also take colour hints (points a person colours in), trained on randomly "
                               "revealed true colours", choices=(False, True)),
    ),
)
def unet_colorizer(*, width: int = 32, depth: int = 3, attention: bool = False, binned: bool = False,
                   temperature: float = 1.0, hints: bool = False) -> UNetColorizer:
    """A U-Net that predicts chroma from BT.601 luma (and, with ``hints``, from colour hints)."""
    return UNetColorizer(width, depth, attention, binned, temperature, hints)


class HintRefiner(Colorizer):
    """A frozen colorizer's chroma with the hints spread along the luma, corrected by a U-Net that reads the
    luma, that chroma and the hints.

    The correction's last layer starts at zero, so training starts from the base colorizer and the
    classical spread exactly, and the base never forgets how to colour an image without hints: only the
    correction learns.
    """

    settle_edge_sigma = SETTLE_EDGE_SIGMA  # the correction already follows the edges; what it leaves is smooth
    # The correction learns what the last spread will not do for it: +0.04 to +0.11 dB with 1 to 20 hints (README).
    settles_in_training = True
    # Evaluation averages the corrected colours of the image and of its mirror image (hints mirrored with it):
    # +0.05 dB with 0 and 10 hints on 500 test images, at twice the time (README, "Colour hints").
    mirror_average = True

    def __init__(self, width: int, depth: int, base_width: int, base_depth: int) -> None:
        super().__init__(binned=False, temperature=1.0, takes_hints=True)
        self.base = UNetColorizer(base_width, base_depth, False, binned=True, temperature=1.0)
        self.base.requires_grad_(False)
        self.body = UNet(1 + 2 + HINT_CHANNELS, 2, width, depth, False)
        nn.init.zeros_(self.body.head.weight)
        nn.init.zeros_(self.body.head.bias)

    def train(self, mode: bool = True) -> HintRefiner:
        super().train(mode)
        self.base.eval()  # frozen: its batch norms keep the statistics it was trained with
        return self

    def adopt(self, base: nn.Module) -> None:
        """Take ``base``'s weights (a binned U-Net colorizer without hints, of this model's base shape)."""
        if not isinstance(base, UNetColorizer) or base.takes_hints or not base.binned:
            raise ValueError("A hint refiner builds on a binned U-Net colorizer that takes no hints.")
        self.base.load_state_dict(base.state_dict())

    def _raw(self, given: torch.Tensor) -> torch.Tensor:
        if self.training or not self.mirror_average:
            return self._corrected(given)
        # Averaged before the last spread, which is linear in the colours it settles: one spread, not two.
        return 0.5 * (self._corrected(given) + self._corrected(given.flip(-1)).flip(-1))

    def _corrected(self, given: torch.Tensor) -> torch.Tensor:
        luma = given[:, :1]
        hint_channels = given[:, 1:] if given.shape[1] > 1 else luma.new_zeros(luma.shape[0], HINT_CHANNELS,
                                                                                 *luma.shape[2:])
        with torch.no_grad():
            # The base's colours with the hints already spread along the luma: the network corrects the classical
            # answer instead of learning to propagate (a U-Net left to propagate hints itself did worse than that).
            guided = spread_residuals(self.base.predict_chroma(luma).float(), hint_channels, luma).to(luma.dtype)
        # Chroma offsets have a std of about 0.1: scaled, like the luma, to a std of about one.
        inputs = torch.cat([(luma - 0.5) * 4, guided * 5, hint_channels * given.new_tensor([5.0, 5.0, 1.0]).view(
            1, 3, 1, 1)], dim=1)
        return guided + self.body(inputs).to(guided.dtype)

    def _decode(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.float().clamp(-0.5, 0.5)


@register_model(
    "hint_refiner", task="colorization", title="Hint refiner: a colorizer corrected by colour hints",
    summary="The faithful U-Net colorizer, frozen, gives every pixel its colour, and each hint's colour is spread "
            "over those colours along the grey image's edges (Levin et al. 2004). A second U-Net reads the grey "
            "image, that result and the hints (each hint's chroma at its pixel and a mask) and predicts a "
            "correction. The hints' leftovers are spread once more so each hint holds exactly, and the squared "
            "error it trains with is taken after that, on images that reveal their true colour at 0 to 64 random "
            "pixels. The correction starts at zero, so the model starts as that classical answer, and without "
            "hints as the faithful colorizer, which it never forgets. When it colours an image, it averages its "
            "corrections of the image and of its mirror image (hints mirrored with it). " + HOW_IT_WORKS,
    options=(
        Option("width", 32, "channels of the correcting U-Net's first stage (doubled at each stage)",
               minimum=8, maximum=128),
        Option("depth", 3, "down-sampling stages of the correcting U-Net", minimum=1, maximum=5),
    ),
    base_checkpoint="unet-colorizer-faithful", takes_hints=True,
)
def hint_refiner(*, width: int = 32, depth: int = 3, base_width: int = 32, base_depth: int = 3) -> HintRefiner:
    """A frozen binned U-Net colorizer (the faithful one's shape) plus a U-Net correcting its chroma from hints."""
    return HintRefiner(width, depth, base_width, base_depth)


@register_model(
    "resnet_colorizer", task="colorization", title="ResNet-18 encoder-decoder colorizer",
    summary="A ResNet-18 encoder (residual blocks, CIFAR form) reads the grey image; a decoder upsamples its "
            "features back, joining each encoder stage's output on the way, as the seed project named. "
            + HOW_IT_WORKS,
    options=(
        Option("width", 32, "channels of the first stage (doubled at each stage; 64 is ResNet-18's own)",
               minimum=8, maximum=64),
        *COLOR_HEAD_OPTIONS,
        Option("pretrained", False, "start the encoder from ImageNet weights (needs internet once; width 64)",
               choices=(False, True)),
    ),
)
def resnet_colorizer(*, width: int = 32, binned: bool = False, temperature: float = 1.0,
                     pretrained: bool = False) -> ResNetColorizer:
    """A ResNet-18-style encoder with a U-Net-style decoder, predicting chroma from luma."""
    return ResNetColorizer(width, binned, temperature, pretrained)
