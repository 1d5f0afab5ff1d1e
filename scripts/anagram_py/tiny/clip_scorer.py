"""The tiny CLIP scorer of models/tiny-clip-scorer: a transformers CLIPModel with the real
interface and tiny widths, fixed random weights (scripts/tiny/make_tiny_clip_scorer.py exports
it)."""
import math
import os

import torch

from ..paths import ROOT

OUT = os.path.join(ROOT, "models", "tiny-clip-scorer")
SEED = 20250611
NAME = "tiny-clip-random"
DESCRIPTION = ("Tiny CLIP with random weights (seed %d) for tests only: its scores mean "
               "nothing" % SEED)


def tiny_config():
    from transformers import CLIPConfig
    # Text width 8: the 49408-token table is nearly all of the file (1.6 MB; 6.3 MB at width
    # 32), and the repository travels to the GPU machine within 64 MiB.
    text = dict(vocab_size=49408, max_position_embeddings=77, hidden_size=8,
                intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                hidden_act="quick_gelu")
    vision = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                  intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  hidden_act="quick_gelu")
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16,
                      logit_scale_init_value=math.log(100.0))


def make_tiny_model(seed=SEED):
    """The tiny CLIPModel (eval mode, float32) with its fixed random weights."""
    from transformers import CLIPModel
    torch.manual_seed(seed)
    model = CLIPModel(tiny_config()).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=g))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=g))
            elif isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=g))
    return model
