"""The sentiment vector as a layer, and a backbone with its layers tapped.

:class:`GramSentimentVector` holds the 1×1 convolutions and calls
:func:`sentiment_metric.functional.sentiment_vector`; :class:`SentimentModel` puts it on a
torchvision backbone (GoogLeNet by default) or on any :class:`torch.nn.Module`, and returns
``(embedding, logits)``. torchvision is imported lazily, only by :class:`SentimentModel` with a
named backbone.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from ._checks import SentimentMetricError, check_choice, check_positive_int, check_shape
from .functional.gram import sentiment_vector, sentiment_vector_size

__all__ = ["GramSentimentVector", "SentimentModel"]

ActivationArg = type[nn.Module] | Callable[[], nn.Module] | nn.Module | None


def _make_activation(activation: ActivationArg) -> nn.Module:
    if activation is None:
        return nn.Identity()
    if isinstance(activation, nn.Module):
        return copy.deepcopy(activation)
    if callable(activation):
        made = activation()
        if not isinstance(made, nn.Module):
            raise SentimentMetricError(
                "activation must be an nn.Module class (e.g. nn.ReLU), a factory returning an "
                f"nn.Module, an nn.Module or None; calling it returned {type(made).__name__}"
            )
        return made
    raise SentimentMetricError(
        "activation must be an nn.Module class (e.g. nn.ReLU), a factory returning an "
        f"nn.Module, an nn.Module or None; got {activation!r}"
    )


def _activation_name(activation: ActivationArg) -> str:
    if activation is None:
        return "None"
    if isinstance(activation, nn.Module):
        return type(activation).__name__
    return getattr(activation, "__name__", repr(activation))


class GramSentimentVector(nn.Module):
    r"""The sentiment vector of several conv layers (the paper's texture representation).

    For each tapped layer :math:`l` with maps :math:`X_l` of shape ``(B, C_l, H_l, W_l)``:
    a 1×1 convolution to :math:`N'` = ``reduced_channels`` channels and a non-linearity
    :math:`\sigma`, then the Gram matrix, its upper triangle with the diagonal, the layers
    concatenated and L2-normalised (:func:`sentiment_metric.functional.sentiment_vector`):

    .. math::

        F_l = \sigma(W_l * X_l + b_l), \qquad
        \Phi_l = F_l F_l^\top, \qquad
        v = \frac{[\operatorname{triu}\Phi_1; \dots; \operatorname{triu}\Phi_L]}
                 {\lVert [\operatorname{triu}\Phi_1; \dots; \operatorname{triu}\Phi_L] \rVert_2}.

    ``out_features`` is :math:`L \cdot N'(N'+1)/2` (408 for three layers and :math:`N' = 16`).
    Almost all of its cost is the 1×1 convolutions; channels-last maps
    (``model.to(memory_format=torch.channels_last)`` and the images likewise) made them about
    2× faster on CPU in ``benchmarks/bench_sentiment_vector.py``, and the Gram step reads
    them without a copy.

    Args:
        in_channels: the channel count of each tapped layer, e.g. ``[480, 832, 1024]`` (an
            ``int`` for a single layer).
        reduced_channels: :math:`N'`, the channels after the 1×1 convolution (>= 1).
        activation: the non-linearity after each 1×1 convolution: an ``nn.Module`` class or a
            factory (called once per layer), an ``nn.Module`` (copied per layer), or ``None``
            for none. Default :class:`torch.nn.ReLU`.
        normalize_size: divide each Gram matrix by ``H_l * W_l`` (scale independent of the
            input size). Off by default, as in the paper.
        layer_norm: L2-normalise each layer's part before the concatenation.
        power_norm: signed square root of every entry before the normalisations.
        device: where the 1×1 convolutions are created, like ``torch.nn`` layers.
        dtype: their dtype.

    Shape:
        - Input: a list of ``L`` tensors ``(B, C_l, H_l, W_l)``, in the order of
          ``in_channels``; ``H_l``, ``W_l`` are free.
        - Output: ``(B, out_features)``, rows of unit norm (an all-zero row where every
          reduced map is zero, e.g. all below the ReLU's threshold).

    Raises:
        SentimentMetricError: bad constructor arguments; in ``forward``, a list of the wrong
            length, a map that is not 4-D, or wrong channel counts (the message shows expected
            and got per layer).

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> _ = torch.manual_seed(0)
        >>> head = sm.GramSentimentVector(in_channels=[8, 12], reduced_channels=4)
        >>> head
        GramSentimentVector(
          in_channels=(8, 12), reduced_channels=4, activation=ReLU, out_features=20,
          normalize_size=False, layer_norm=False, power_norm=False
          (reducers): ModuleList(
            (0): Conv2d(8, 4, kernel_size=(1, 1), stride=(1, 1))
            (1): Conv2d(12, 4, kernel_size=(1, 1), stride=(1, 1))
          )
          (activations): ModuleList(
            (0-1): 2 x ReLU()
          )
        )
        >>> v = head([torch.randn(2, 8, 14, 14), torch.randn(2, 12, 7, 7)])
        >>> v.shape, round(v[0].norm().item(), 4)
        (torch.Size([2, 20]), 1.0)
    """

    def __init__(
        self,
        in_channels: Sequence[int] | int,
        reduced_channels: int = 16,
        activation: ActivationArg = nn.ReLU,
        normalize_size: bool = False,
        layer_norm: bool = False,
        power_norm: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, int) and not isinstance(in_channels, bool):
            in_channels = [in_channels]
        if isinstance(in_channels, (str, bytes)) or not isinstance(in_channels, Sequence):
            raise SentimentMetricError(
                "in_channels must be a list of channel counts, one per tapped layer, got "
                f"{in_channels!r}"
            )
        if len(in_channels) == 0:
            raise SentimentMetricError("in_channels must name at least one layer, got []")
        self.in_channels: tuple[int, ...] = tuple(
            check_positive_int(c, f"in_channels[{i}]") for i, c in enumerate(in_channels)
        )
        self.reduced_channels = check_positive_int(reduced_channels, "reduced_channels")
        self.normalize_size = bool(normalize_size)
        self.layer_norm = bool(layer_norm)
        self.power_norm = bool(power_norm)
        self._activation_name = _activation_name(activation)
        self.reducers = nn.ModuleList(
            nn.Conv2d(c, self.reduced_channels, kernel_size=1, device=device, dtype=dtype)
            for c in self.in_channels
        )
        self.activations = nn.ModuleList(_make_activation(activation) for _ in self.in_channels)
        self.out_features = sentiment_vector_size([self.reduced_channels] * len(self.in_channels))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, reduced_channels={self.reduced_channels}, "
            f"activation={self._activation_name}, out_features={self.out_features}, "
            f"normalize_size={self.normalize_size}, layer_norm={self.layer_norm}, "
            f"power_norm={self.power_norm}"
        )

    def _check_features(self, features: Any) -> None:
        n = len(self.in_channels)
        if isinstance(features, torch.Tensor) or not isinstance(features, Sequence):
            raise SentimentMetricError(
                f"features must be a list of {n} tensors (B, C_l, H_l, W_l) with channels "
                f"{self.in_channels}, got {type(features).__name__}"
            )
        if len(features) != n:
            raise SentimentMetricError(
                f"features must hold {n} feature map(s) (in_channels={self.in_channels}), "
                f"got {len(features)}"
            )
        for i, x in enumerate(features):
            check_shape(x, ("B", "C", "H", "W"), f"features[{i}]")
            if not x.is_floating_point():
                raise SentimentMetricError(
                    f"features[{i}] must be a floating-point tensor, got dtype {x.dtype}"
                )
        got = tuple(int(x.shape[1]) for x in features)
        if got != self.in_channels:
            bad = "; ".join(
                f"layer {i}: expected {e}, got {g}"
                for i, (e, g) in enumerate(zip(self.in_channels, got))
                if e != g
            )
            raise SentimentMetricError(
                f"features have the wrong channel counts: expected {self.in_channels}, got "
                f"{got} ({bad})"
            )

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Map the tapped layers' features to the sentiment vector.

        Args:
            features: ``L`` maps ``(B, C_l, H_l, W_l)``, in the order of ``in_channels``.

        Returns:
            ``(B, out_features)``.
        """
        self._check_features(features)
        reduced = [act(conv(x)) for x, conv, act in zip(features, self.reducers, self.activations)]
        return sentiment_vector(
            reduced,
            normalize_size=self.normalize_size,
            layer_norm=self.layer_norm,
            power_norm=self.power_norm,
        )


# Named torchvision backbones: default taps, and the attribute holding the ImageNet classifier
# (replaced by nn.Identity, so that the backbone returns its pooled features).
_DEFAULT_LAYERS: dict[str, tuple[str, ...]] = {
    "googlenet": ("inception3b", "inception4e", "inception5b"),
    "resnet18": ("layer2", "layer3", "layer4"),
    "resnet34": ("layer2", "layer3", "layer4"),
    "resnet50": ("layer2", "layer3", "layer4"),
    "resnet101": ("layer2", "layer3", "layer4"),
    "resnet152": ("layer2", "layer3", "layer4"),
}
BACKBONES: tuple[str, ...] = tuple(_DEFAULT_LAYERS)
"""The backbone names :class:`SentimentModel` builds with torchvision."""


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


def _import_torchvision_models() -> Any:
    try:
        import torchvision.models as tvm
    except ImportError as err:  # pragma: no cover - torchvision is installed in the test env
        raise SentimentMetricError(
            "a named backbone (e.g. backbone='googlenet') needs torchvision, which could not "
            f"be imported ({err}); install the training extra: pip install "
            "'sentiment-metric[train]', or pass your own nn.Module as backbone="
        ) from None
    return tvm


def _build_torchvision(name: str, weights: Any, progress: bool) -> nn.Module:
    tvm = _import_torchvision_models()
    resolved = None
    if weights is not None:
        enum = tvm.get_model_weights(name)
        try:
            resolved = enum.verify(weights)
        except (KeyError, TypeError, ValueError):
            names = ", ".join(repr(w) for w in ["DEFAULT", *enum.__members__])
            raise SentimentMetricError(
                f"weights for backbone {name!r} must be None, one of {names} or a "
                f"torchvision {enum.__name__} member; got {weights!r}"
            ) from None
    kwargs: dict[str, Any] = {}
    if name == "googlenet" and resolved is None:
        # No auxiliary heads; torchvision's own initialisation (truncated normal), asked for
        # explicitly (it warns otherwise). With weights, torchvision drops the aux heads itself.
        kwargs = {"aux_logits": False, "init_weights": True}
    try:
        model = getattr(tvm, name)(weights=resolved, progress=progress, **kwargs)
    except OSError as err:  # urllib.error.URLError, HTTPError, timeouts, a full disk ...
        import torch.hub

        raise SentimentMetricError(
            f"could not download the pretrained weights {resolved} for backbone {name!r} "
            f"from {resolved.url if resolved is not None else '?'} "
            f"({type(err).__name__}: {err}). Without internet, fetch the file elsewhere and "
            f"put it in {torch.hub.get_dir()}/checkpoints/, or pass weights=None to start "
            "from a random initialisation"
        ) from None
    model.fc = nn.Identity()  # the pooled features come out; the new classifier is ours
    return model


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
        backbone: a name in :data:`BACKBONES` or an ``nn.Module``.
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

    Attributes:
        backbone: the backbone module. ``head``: the :class:`GramSentimentVector` (``None``
            with ``embedding="fc"``). ``classifier``: the new ``nn.Linear``.
        layers: the tapped names. ``layer_channels``: their channel counts.
        embedding_size: ``D``, the embedding's width. ``pooled_features``: the pooled size.

    Shape:
        - Input: ``(B, C, H, W)`` images (``C = 3`` for torchvision backbones; any size the
          backbone accepts, e.g. 64 px for GoogLeNet and ResNets).
        - Output: ``embedding`` ``(B, embedding_size)``, ``logits`` ``(B, num_classes)``.

    Raises:
        SentimentMetricError: an unknown backbone or layer name (the message lists valid
            names), bad arguments, a failed weight download, missing torchvision, or a
            ``forward`` input that is not 4-D.

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
    ) -> None:
        super().__init__()
        self.embedding = check_choice(embedding, ("sentiment", "fc"), "embedding")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.reduced_channels = check_positive_int(reduced_channels, "reduced_channels")
        if isinstance(layers, str):
            layers = [layers]
        if layers is not None:
            if not isinstance(layers, Sequence) or not all(isinstance(n, str) for n in layers):
                raise SentimentMetricError(
                    f"layers must be a list of module names (str), got {layers!r}"
                )
            if len(layers) == 0:
                raise SentimentMetricError("layers must name at least one layer, got []")
        if pooled_layer is not None and not isinstance(pooled_layer, str):
            raise SentimentMetricError(
                f"pooled_layer must be a module name (str) or None, got {pooled_layer!r}"
            )
        shape = tuple(dry_run_shape)
        if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise SentimentMetricError(
                "dry_run_shape must be (C, H, W) of one image, positive ints, got "
                f"{dry_run_shape!r}"
            )

        if isinstance(backbone, str):
            if backbone not in _DEFAULT_LAYERS:
                raise SentimentMetricError(
                    f"backbone must be one of {', '.join(repr(b) for b in BACKBONES)} or an "
                    f"nn.Module; got {backbone!r}"
                )
            self.backbone_name = backbone
            self._named = True
            net = _build_torchvision(backbone, weights, progress)
            if layers is None:
                layers = _DEFAULT_LAYERS[backbone]
        elif isinstance(backbone, nn.Module):
            if weights is not None:
                raise SentimentMetricError(
                    "weights= applies only to a named torchvision backbone; load the weights "
                    f"of your {type(backbone).__name__} into it before passing it"
                )
            self.backbone_name = type(backbone).__name__
            self._named = False
            net = backbone
            if layers is None and (self.embedding == "sentiment" or pooled_layer is None):
                some = [n for n, _ in net.named_modules() if n][:12]
                raise SentimentMetricError(
                    f"layers= (the names of the submodules to tap) is required for a custom "
                    f"backbone ({self.backbone_name}); some of its module names: "
                    f"{', '.join(repr(n) for n in some)}"
                )
        else:
            raise SentimentMetricError(
                f"backbone must be one of {', '.join(repr(b) for b in BACKBONES)} or an "
                f"nn.Module; got {type(backbone).__name__}"
            )
        self.backbone = net
        self.layers: tuple[str, ...] = tuple(layers) if layers is not None else ()
        self.pooled_layer = pooled_layer

        # Which outputs to tap: the head's layers (for the sentiment vector) and the pooled one.
        self._head_layers = self.layers if self.embedding == "sentiment" else ()
        if pooled_layer is not None:
            self._pooled_from: str | None = pooled_layer
        elif self._named:
            self._pooled_from = None  # the backbone's own output (its fc is an Identity)
        else:
            self._pooled_from = self.layers[-1]
        wanted = list(
            dict.fromkeys([*self._head_layers, *([self._pooled_from] if self._pooled_from else [])])
        )
        modules = dict(net.named_modules())
        for name in wanted:
            if name not in modules or name == "":
                raise SentimentMetricError(
                    _unknown_layer_message(name, modules, self.backbone_name)
                )
        # Outputs of the tapped modules during one forward; emptied before and after it.
        self._tapped: dict[str, Any] = {}
        self._hook_handles = [
            modules[name].register_forward_hook(_TapHook(self._tapped, name)) for name in wanted
        ]

        param = next(net.parameters(), None)
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
            )
            self.embedding_size = self.head.out_features
        else:
            self.embedding_size = pooled_size
        self.classifier = nn.Linear(pooled_size, self.num_classes, device=device, dtype=dtype)

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
            f"pooled_features={self.pooled_features}"
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the backbone once; return ``(embedding, logits)``.

        Args:
            images: ``(B, C, H, W)``.

        Returns:
            ``embedding`` ``(B, embedding_size)`` and ``logits`` ``(B, num_classes)``.
        """
        check_shape(images, ("B", "C", "H", "W"), "images")
        store = self._tapped
        store.clear()
        try:
            out = self.backbone(images)
            feats = [store[n] for n in self._head_layers]
            pooled = self._pooled(out)
        finally:
            store.clear()
        logits = self.classifier(pooled)
        if self.head is not None:
            return self.head(feats), logits
        return pooled, logits
