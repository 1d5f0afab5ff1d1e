#!/usr/bin/env python3
"""Export DeepFloyd IF (stage I, optionally stage II) to an `anagram` model bundle (docs/bundle.md).

Usage:
    .venv/bin/python scripts/export/export_if.py STAGE1_SOURCE OUTDIR [--stage2 STAGE2_SOURCE]
        [--name NAME] [--dtype float32|float16|bfloat16] [--device cpu|cuda]
        [--variant fp16] [--attention-resolution 32] [--no-stage2]
    .venv/bin/python scripts/export/export_if.py --random-init IF-I-M OUTDIR
        [--random-init-stage2 IF-II-M] [--t5-layers 2] [--tokenizer SPIECE] ...

STAGE1_SOURCE is a local diffusers IF stage I pipeline folder (the layout `save_pretrained`
writes: unet/, text_encoder/, tokenizer/, scheduler/) or a Hugging Face hub id such as
DeepFloyd/IF-I-XL-v1.0 (needs network access and an accepted licence; --variant fp16 fetches
the half-precision weights). IF-I-M, IF-I-L and IF-I-XL all export the same way.
STAGE2_SOURCE is an IF stage II (IFSuperResolutionPipeline) folder or hub id
(DeepFloyd/IF-II-M-v1.0, DeepFloyd/IF-II-L-v1.0): only its unet/, scheduler/ and
image_noising_scheduler/ are read; its text encoder is not needed (the stages share stage
I's T5, as IF's pipelines do).

--random-init NAME / --random-init-stage2 NAME build the UNet(s) with NAME's configuration
(scripts/anagram_py/if_configs.py, with where each came from) and random
weights from fixed seeds, so the real-size compute path can be exported, run and timed
without weights. The text encoder is then a stand-in: T5 v1.1 XXL's widths (d_model 4096,
d_ff 10240, 64 heads x 64, vocabulary 32128) with only --t5-layers layers (default 2; the
real one has 24, ~4.7 B parameters, 19 GB in float32), and the tokenizer is --tokenizer
(default: the tiny bundle's models/tiny-if/spiece.model). The pictures are noise; the
manifest description says so.

OUTDIR receives (schema version 2, docs/bundle.md):
    unet.pt           stage I UNet: `forward` and `forward_with_attention`
    unet_stage2.pt    stage II UNet (with --stage2 / --random-init-stage2):
                      forward(sample (B,6,S,S), timestep, text (B,77,D), class_labels (B,))
    text_encoder.pt   T5 encoder: (input_ids, attention_mask) -> last hidden state
    spiece.model      the SentencePiece model, copied from the tokenizer
    manifest.json     everything the C++ program needs, with the sha256 of every file
If OUTDIR already is a bundle (schema 1 or 2), the parts other tools added to it (files,
and manifest entries such as the optional "clip" object) are kept; so is its stage II when
this run exports none (unless --no-stage2), if its text width and dtype still fit.

Phases: load the sources, install a capturing attention processor, trace the UNets (batch 2)
and the text encoder, verify the traces against eager diffusers/transformers (batches 1, 2
and 4, several timesteps and, for stage II, several noise levels; stage I attention maps
against an explicit recomputation and their gradients), make the traced graphs
device-independent, write everything into a temporary folder next to OUTDIR, check the
written files, and rename it into place.

Notes:
  * The traces are made in --dtype on --device and stay in that dtype: the graphs contain
    dtype-dependent constants and branches (T5 layer norm casts, finfo(dtype).min masks),
    so run a bundle in the dtype it was exported in. The device, however, is not baked in:
    every device constant is replaced by the device of the graph's first tensor input, so
    a bundle traced on the CPU should run on CUDA after torch::jit::load(path, device)
    (no device constant is left in the saved code; not yet run on a GPU).
  * float16 needs --device cuda: torch 1.13 has no float16 kernels for most CPU ops.
  * Verification (scripts/anagram_py/tolerance.py): on the CPU in float32 the traces must
    reproduce eager diffusers/transformers exactly where they run the same code, and the
    saved files the traces exactly; on CUDA and in half precision the differences may be
    rounding, bounded relative to the output's scale. On CUDA, TF32 is off while tracing and
    checking: a trace records cuDNN's allow_tf32 in each convolution, so a float32 bundle
    exported there runs its convolutions in full float32 (CPU exports keep PyTorch's default).

Check of the real-size path on a CPU (docs/bundle.md "Real-size stand-ins"):
    OMP_NUM_THREADS=2 /usr/bin/time -v .venv/bin/python scripts/export/export_if.py \\
        --random-init IF-I-M build-py/if-i-m-standin --threads 2
exports the IF-I-M-configured UNet and the 2-layer XXL-width T5 in float32 and checks both
against eager diffusers/transformers on random inputs. Measured on the 2-core development
machine (torch 1.13.1, float32, 2 threads, sharing the
CPU with a C++ build: 97 % CPU on average): 10 min 28 s wall (build 17 s, trace 52 s,
verification 468 s, write + reload check 74 s), peak RSS 8.0 GiB; unet.pt 1.49 GB
(372 M parameters), text_encoder.pt 2.07 GB (517 M); every |traced - eager| was 0.
"""
import sys

from anagram_py.export.if_cli import main

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))
