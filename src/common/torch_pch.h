// Precompiled header: the libtorch includes every translation unit of rlhf_core pays for.
#pragma once
#include <torch/torch.h>
