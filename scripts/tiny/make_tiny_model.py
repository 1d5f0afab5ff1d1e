#!/usr/bin/env python3
"""Build a tiny, randomly initialised DeepFloyd-IF-architecture pipeline folder.

Usage:
    .venv/bin/python scripts/tiny/make_tiny_model.py OUTDIR [--stage2 OUTDIR2]

What it writes (the layout `DiffusionPipeline.save_pretrained` produces for IFPipeline):
    OUTDIR/model_index.json        IFPipeline, without safety checker/feature extractor/watermarker
    OUTDIR/unet/                   UNet2DConditionModel, IF stage I layout, 3 resolutions
                                   (64, 32, 16), cross-attention at 32x32 and 16x16
    OUTDIR/text_encoder/           transformers T5EncoderModel (T5 v1.1 style, d_model 32)
    OUTDIR/tokenizer/              transformers T5Tokenizer around a SentencePiece unigram
                                   model trained here (T5 conventions, 100 extra ids)
    OUTDIR/scheduler/              DDPMScheduler configured as IF stage I
With --stage2, also a tiny IF stage II (64 -> 256 super-resolution) pipeline folder, the
layout IFSuperResolutionPipeline.save_pretrained writes (without its own text encoder and
tokenizer: the stages share stage I's T5):
    OUTDIR2/model_index.json       IFSuperResolutionPipeline
    OUTDIR2/unet/                  UNet2DConditionModel, IF stage II layout: 6 input channels
                                   (noisy picture + upscaled stage I picture), 6 output
                                   channels, the noise level as class labels (class_embed_type
                                   "timestep"), 6 resolutions 256..8, cross-attention at 16x16
                                   and 8x8, text states of the tiny T5 (encoder_hid_dim 32)
    OUTDIR2/scheduler/             DDPMScheduler configured as IF stage II (sample_max_value 1)
    OUTDIR2/image_noising_scheduler/  the DDPMScheduler that noises the upscaled picture

Nothing is downloaded: the tokenizer is trained on a corpus composed in
scripts/anagram_py/tiny/if_model.py (with the configurations and seeds), and
the networks get random weights from fixed seeds, so two runs give the same tokenizer
model and the same weights (on the same torch/sentencepiece versions). The weights are
meaningless; the model exists so that the C++ program and its tests have a real IF-shaped
network to run. Rerun with scripts/make_default_bundle.sh, which also exports the bundle.
"""
import argparse
import sys

from anagram_py.tiny.if_model import write_stage1, write_stage2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("outdir", help="folder to create (replaced if it exists)")
    parser.add_argument("--stage2", default=None, metavar="OUTDIR2",
                        help="also write the tiny IF stage II pipeline folder there")
    args = parser.parse_args(argv)

    from transformers import PretrainedConfig  # noqa: F401  (fail early if missing)

    text_encoder, tokenizer = write_stage1(args.outdir)
    if args.stage2:
        # Built after stage I, from its own seed: stage I's weights do not depend on it.
        write_stage2(args.stage2, text_encoder, tokenizer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
