"""torch.compile for `compile = true`: the model's forward and backward as
generated code (C++ on the CPU, Triton on a GPU), in place of one PyTorch call
per operation.

- One shape: training and evaluation both run batches of batch_size x
  block_size (minigpt.evaluate), and dynamic=False compiles for exactly that,
  so the model is compiled twice per run (training, and evaluation without
  gradients) and never again.
- Cached: inductor keeps the generated code in its cache folder,
  $TORCHINDUCTOR_CACHE_DIR, by default /tmp/torchinductor_$USER (so it lasts
  until the machine cleans /tmp: set the variable to keep it elsewhere), and a
  second run of the same shape loads it in seconds instead of compiling for a
  minute.
- On the CPU the code is built with a C++ compiler (g++ or clang++, or $CXX).
  Without one the model runs uncompiled, and the run says why in one line.
"""

from __future__ import annotations

import torch

NO_CXX = ("compile = true needs a C++ compiler on the CPU (g++ or clang++, or one named by $CXX) and none was "
          "found; training runs uncompiled")


def compile_model(model: torch.nn.Module, device: torch.device) -> tuple[torch.nn.Module, str | None]:
    """The compiled model, or model itself and one line saying why it could not be compiled."""
    if device.type == "cpu" and not has_cpp_compiler():
        return model, NO_CXX
    return torch.compile(model, dynamic=False), None


def has_cpp_compiler() -> bool:
    """Whether inductor finds the C++ compiler it builds CPU kernels with (it runs `CXX --version`)."""
    from torch._inductor import cpp_builder, exc

    try:
        cpp_builder.get_cpp_compiler()
    except exc.InvalidCxxCompiler:
        return False
    return True
