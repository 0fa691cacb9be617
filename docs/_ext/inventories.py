"""Local intersphinx inventories, so cross-references work offline.

The docs build must not touch the network (CI has none, and a failed download is a warning that
``-W`` turns into an error). So :mod:`conf` points intersphinx at small ``objects.inv`` files
written here at build time:

* **pytorch-metric-learning** documents itself with MkDocs and publishes no ``objects.inv``
  at all; this file is the only way to link to it. The entries are read off the installed PML
  (every public class of its loss, miner, distance, reducer, regularizer, sampler, trainer,
  tester and utility modules) and point at the anchors of its MkDocs pages.
* **Python**, **PyTorch** and **NumPy**: the handful of names the docs mention. Set
  ``SM_DOCS_INTERSPHINX=1`` (with network) to use their full upstream inventories instead.
"""

from __future__ import annotations

import inspect
import zlib
from pathlib import Path

__all__ = ["NUMPY_URL", "PML_URL", "PYTHON_URL", "TORCH_URL", "write_inventories"]

PML_URL = "https://kevinmusgrave.github.io/pytorch-metric-learning/"
TORCH_URL = "https://docs.pytorch.org/docs/stable/"
PYTHON_URL = "https://docs.python.org/3/"

_PML_PAGES = {
    "losses": "losses/",
    "miners": "miners/",
    "distances": "distances/",
    "reducers": "reducers/",
    "regularizers": "regularizers/",
    "samplers": "samplers/",
    "trainers": "trainers/",
    "testers": "testers/",
}

_TORCH = [
    ("torch.Tensor", "py:class", "tensors.html#$"),
    ("torch.dtype", "py:class", "tensor_attributes.html#$"),
    ("torch.device", "py:class", "tensor_attributes.html#$"),
    ("torch.Generator", "py:class", "generated/$.html#$"),
    ("torch._C.Generator", "py:class", "generated/torch.Generator.html#torch.Generator"),
    ("torch.nn.Module", "py:class", "generated/$.html#$"),
    (
        "torch.nn.modules.module.Module",
        "py:class",
        "generated/torch.nn.Module.html#torch.nn.Module",
    ),
    ("torch.nn.Linear", "py:class", "generated/$.html#$"),
    ("torch.nn.Conv2d", "py:class", "generated/$.html#$"),
    ("torch.nn.ReLU", "py:class", "generated/$.html#$"),
    ("torch.nn.Identity", "py:class", "generated/$.html#$"),
    ("torch.nn.Sequential", "py:class", "generated/$.html#$"),
    (
        "torch.nn.modules.container.Sequential",
        "py:class",
        "generated/torch.nn.Sequential.html#torch.nn.Sequential",
    ),
    ("torch.nn.CrossEntropyLoss", "py:class", "generated/$.html#$"),
    ("torch.nn.TripletMarginLoss", "py:class", "generated/$.html#$"),
    ("torch.nn.parallel.DistributedDataParallel", "py:class", "generated/$.html#$"),
    ("torch.nn.functional.cross_entropy", "py:function", "generated/$.html#$"),
    ("torch.nn.functional.normalize", "py:function", "generated/$.html#$"),
    ("torch.optim.SGD", "py:class", "generated/$.html#$"),
    ("torch.optim.sgd.SGD", "py:class", "generated/torch.optim.SGD.html#torch.optim.SGD"),
    ("torch.optim.lr_scheduler.StepLR", "py:class", "generated/$.html#$"),
    ("torch.utils.data.Dataset", "py:class", "data.html#$"),
    ("torch.utils.data.dataset.Dataset", "py:class", "data.html#torch.utils.data.Dataset"),
    ("torch.utils.data.DataLoader", "py:class", "data.html#$"),
    ("torch.utils.data.Sampler", "py:class", "data.html#$"),
    ("torch.utils.data.distributed.DistributedSampler", "py:class", "data.html#$"),
    ("torch.autocast", "py:class", "amp.html#$"),
    ("torch.autocast", "py:function", "amp.html#$"),
    ("torch.compile", "py:function", "generated/$.html#$"),
    ("torch.manual_seed", "py:function", "generated/$.html#$"),
    ("torch.bmm", "py:function", "generated/$.html#$"),
    ("torch.einsum", "py:function", "generated/$.html#$"),
    ("torch.autograd.gradcheck", "py:function", "generated/$.html#$"),
]

_PYTHON = [
    ("ValueError", "py:exception", "library/exceptions.html#$"),
    ("TypeError", "py:exception", "library/exceptions.html#$"),
    ("ImportError", "py:exception", "library/exceptions.html#$"),
    ("Exception", "py:exception", "library/exceptions.html#$"),
    ("int", "py:class", "library/functions.html#$"),
    ("float", "py:class", "library/functions.html#$"),
    ("str", "py:class", "library/stdtypes.html#$"),
    ("bool", "py:class", "library/functions.html#$"),
    ("list", "py:class", "library/stdtypes.html#$"),
    ("dict", "py:class", "library/stdtypes.html#$"),
    ("tuple", "py:class", "library/stdtypes.html#$"),
    ("None", "py:data", "library/constants.html#$"),
    ("typing.Any", "py:data", "library/typing.html#$"),
    ("typing.Literal", "py:data", "library/typing.html#$"),
    ("collections.abc.Sequence", "py:class", "library/collections.abc.html#$"),
    ("collections.abc.Mapping", "py:class", "library/collections.abc.html#$"),
    ("collections.abc.Iterable", "py:class", "library/collections.abc.html#$"),
    ("collections.abc.Callable", "py:class", "library/collections.abc.html#$"),
    ("pathlib.Path", "py:class", "library/pathlib.html#$"),
    ("os.PathLike", "py:class", "library/os.html#$"),
    ("os.replace", "py:function", "library/os.html#$"),
    ("warnings.warn", "py:function", "library/warnings.html#$"),
    ("argparse.ArgumentParser", "py:class", "library/argparse.html#$"),
]

NUMPY_URL = "https://numpy.org/doc/stable/"
_NUMPY = [
    ("numpy.ndarray", "py:class", "reference/generated/$.html#$"),
    ("numpy.random.Generator", "py:class", "reference/random/generator.html#$"),
]


def _pml_entries() -> list[tuple[str, str, str]]:
    import importlib

    entries: dict[str, tuple[str, str, str]] = {}

    def add(names: list[str], uri: str) -> None:
        for n in names:
            entries.setdefault(n, (n, "py:class", uri))

    for sub, page in _PML_PAGES.items():
        try:
            mod = importlib.import_module(f"pytorch_metric_learning.{sub}")
        except Exception:  # pragma: no cover - PML always installed with the library
            continue
        for name, obj in vars(mod).items():
            if name.startswith("_") or not inspect.isclass(obj):
                continue
            if not getattr(obj, "__module__", "").startswith("pytorch_metric_learning"):
                continue
            uri = f"{page}#{name.lower()}"
            add([f"pytorch_metric_learning.{sub}.{name}", f"{obj.__module__}.{name}"], uri)
    extra = [
        ("utils.accuracy_calculator", "AccuracyCalculator", "accuracy_calculation/"),
        ("utils.distributed", "DistributedLossWrapper", "distributed/#distributedlosswrapper"),
        ("utils.distributed", "DistributedMinerWrapper", "distributed/#distributedminerwrapper"),
        ("utils.inference", "InferenceModel", "inference_models/#inferencemodel"),
        ("utils.inference", "FaissKNN", "inference_models/#faissknn"),
        ("utils.inference", "CustomKNN", "inference_models/#customknn"),
        ("utils.logging_presets", "HookContainer", "logging_presets/"),
    ]
    for mod_name, name, uri in extra:
        add([f"pytorch_metric_learning.{mod_name}.{name}"], uri)
    return sorted(entries.values())


def _write(path: Path, project: str, version: str, entries: list[tuple[str, str, str]]) -> None:
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    # "$" stands for the name (Sphinx only expands a trailing one, so expand them all here)
    body = "".join(
        f"{name} {role} 1 {uri.replace('$', name)} -\n" for name, role, uri in entries
    ).encode()
    data = header + zlib.compress(body)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def write_inventories(out_dir: Path) -> dict[str, Path]:
    """Write ``pml.inv``, ``torch.inv`` and ``python.inv`` into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        import pytorch_metric_learning

        pml_version = str(pytorch_metric_learning.__version__)
    except Exception:  # pragma: no cover
        pml_version = "unknown"
    paths = {
        "pml": out_dir / "pml.inv",
        "torch": out_dir / "torch.inv",
        "python": out_dir / "python.inv",
        "numpy": out_dir / "numpy.inv",
    }
    _write(paths["pml"], "pytorch-metric-learning", pml_version, _pml_entries())
    _write(paths["torch"], "PyTorch", "stable", _TORCH)
    _write(paths["python"], "Python", "3", _PYTHON)
    _write(paths["numpy"], "NumPy", "stable", _NUMPY)
    return paths
