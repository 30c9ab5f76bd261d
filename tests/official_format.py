"""Official-format (NVlabs ``torch_utils.persistence``) pickles written from our modules at any
size, for the tests: fake NVIDIA modules exist only while a file is written (removed from
``sys.modules`` before anything loads it, so only the restricted unpickler can read it), and a
marker file records any attempt to run code stored in it.

    fakes = Fakes(tmp_path / "EXECUTED")
    meta = fake_from_module(fakes, generator, "Generator")   # + _init_kwargs in its state
    write(path, fakes.dumps({"G_ema": meta, "D": d_meta}))
"""
from __future__ import annotations

import collections
import contextlib
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

FAKE_MODULES = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util", "dnnlib.tflib", "dnnlib.tflib.network",
                "training", "training.triplane",
                "training.volumetric_rendering", "training.volumetric_rendering.renderer",
                "training.volumetric_rendering.ray_sampler", "training.volumetric_rendering.ray_marcher")


# ---------------------------------------------------------------------------------------------
# Fake NVIDIA modules, used only to WRITE official-format pickles.

class Fakes:
    """Registers fake modules that mimic the official pickling; ``marker`` records any execution."""

    def __init__(self, marker: Path):
        self.marker = marker
        self.mods = {name: types.ModuleType(name) for name in FAKE_MODULES}
        marker_text = str(marker)

        def _reconstruct_persistent_obj(meta):  # the official one would exec meta['module_src']
            Path(marker_text).write_text("reconstruct called")
            raise RuntimeError("fake _reconstruct_persistent_obj was called")

        _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
        _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
        self.mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
        self.module_src = (f"import pathlib\npathlib.Path({marker_text!r}).write_text('module_src executed')\n"
                           "raise RuntimeError('module_src was executed')\n")

        class EasyDict(dict):
            pass

        self.EasyDict = self._place(EasyDict, "dnnlib.util")
        self.plain = {}
        for mod, name in [("training.triplane", "OSGDecoder"),
                          ("training.volumetric_rendering.renderer", "ImportanceRenderer"),
                          ("training.volumetric_rendering.ray_sampler", "RaySampler"),
                          ("training.volumetric_rendering.ray_marcher", "MipRayMarcher2")]:
            self.plain[name] = self._place(type(name, (), {}), mod)

    def _place(self, cls, module):
        cls.__module__, cls.__qualname__ = module, cls.__name__
        setattr(self.mods[module], cls.__name__, cls)
        return cls

    def persistent(self, class_name: str, state: dict):
        """An object that pickles exactly like an official persistent-class instance."""
        meta = dict(type="class", version=6, module_src=self.module_src, class_name=class_name, state=state)
        fn = self.mods["torch_utils.persistence"]._reconstruct_persistent_obj

        class Persistent:
            def __reduce__(self):
                return fn, (meta,)
        return Persistent()

    def plain_module(self, name: str, state: dict):
        obj = self.plain[name].__new__(self.plain[name])
        obj.__dict__.update(state)
        return obj

    @contextlib.contextmanager
    def installed(self):
        saved = {k: sys.modules.get(k) for k in FAKE_MODULES}
        sys.modules.update(self.mods)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v

    def dumps(self, obj, protocol=4) -> bytes:
        with self.installed():
            data = pickle.dumps(obj, protocol=protocol)
        assert not any(k in sys.modules for k in FAKE_MODULES)  # loading cannot import them back
        return data


def module_state(params=None, buffers=None, modules=None, non_persistent=(), **attrs) -> dict:
    """A torch.nn.Module-like __dict__."""
    return dict(training=False, _parameters=collections.OrderedDict(params or {}),
                _buffers=collections.OrderedDict(buffers or {}), _non_persistent_buffers_set=set(non_persistent),
                _modules=collections.OrderedDict(modules or {}), _forward_hooks=collections.OrderedDict(), **attrs)


def fake_from_module(fakes: Fakes, module: nn.Module, class_name: str):
    """Mirror a real module tree as official persistent objects."""
    children = {n: fake_from_module(fakes, m, type(m).__name__) for n, m in module.named_children()}
    return fakes.persistent(class_name, module_state(
        params={n: nn.Parameter(p.detach().clone()) for n, p in module.named_parameters(recurse=False)},
        buffers={n: b.detach().clone() for n, b in module.named_buffers(recurse=False)}, modules=children,
        weight_gain=np.float64(0.125)))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def official_stylegan2(fakes: Fakes, config, generator: nn.Module, discriminator: nn.Module) -> bytes:
    """An NVlabs StyleGAN2 pickle (G, G_ema, D) of our networks built by ``build_2d(config)`` (a
    ``GAN2DConfig``): the unconditional 'skip' G and 'resnet' D that stylegan2-ada-pytorch writes,
    with the constructor arguments it records."""
    g_meta = fake_from_module(fakes, generator, "training.networks.Generator")
    g_meta.__reduce__()[1][0]["state"].update(
        _init_args=(config.z_dim, 0, config.w_dim, config.resolution, 3),
        _init_kwargs=fakes.EasyDict(mapping_kwargs=fakes.EasyDict(num_layers=config.mapping_layers),
                                    synthesis_kwargs=fakes.EasyDict(channel_base=config.channel_base,
                                                                    channel_max=config.channel_max, num_fp16_res=4,
                                                                    conv_clamp=config.conv_clamp)))
    d_meta = fake_from_module(fakes, discriminator, "training.networks.Discriminator")
    d_meta.__reduce__()[1][0]["state"].update(
        _init_args=(0, config.resolution, 3),
        _init_kwargs=fakes.EasyDict(architecture="resnet", channel_base=config.channel_base,
                                    channel_max=config.channel_max, conv_clamp=config.conv_clamp,
                                    epilogue_kwargs=fakes.EasyDict(mbstd_group_size=config.mbstd_group_size)))
    return fakes.dumps({"G": g_meta, "G_ema": g_meta, "D": d_meta})
