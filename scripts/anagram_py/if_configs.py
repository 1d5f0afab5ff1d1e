"""DeepFloyd IF configurations: the UNets of both stages, the T5 encoder, the DDPM schedulers.

The IF-architecture UNets of the repository come from `stage1_unet` / `stage2_unet`: the
published-size stand-ins of scripts/export/export_if.py --random-init, the tiny test model and
the demo models (anagram_py.demo.diffusion; their T5 comes from `t5_encoder` and their
scheduler is STAGE1_SCHEDULER).
Pass the result to diffusers' UNet2DConditionModel(**config); diffusers fills every key not
given with its default.

Where the published configurations come from (looked up with the project's search tools; no
weights needed):
 * IF-I-XL: the diffusers unet/config.json of DeepFloyd/IF-I-XL-v1.0 as saved in a fine-tune
   of it (huggingface.co/lucostiguy11/dreambooth_if unet/config.json, "_name_or_path":
   "DeepFloyd/IF-I-XL-v1.0"), which agrees with DeepFloyd's original IF-I-XL config.yml
   (model_channels 704, channel_mult 1,2,3,4, num_res_blocks 3, attention_resolutions 32,16,8,
   num_head_channels 64, encoder_dim 4096, encoder_channels 2816, att_pool_heads 64;
   huggingface.co/ckpt/IF-I-XL-v1.0-16bit) under diffusers' scripts/convert_if.py
   create_unet_diffusers_config. up_block_types was cut off in the copy found and is that
   function's mirror of down_block_types.
 * IF-II-L: the diffusers unet/config.json of DeepFloyd/IF-II-L-v1.0 as saved in a fine-tune
   of it (huggingface.co/williamberman/dreambooth_me_upscale, "_name_or_path":
   "DeepFloyd/IF-II-L-v1.0"). The copy found was cut off after "resnet_time_scale_shift":
   "sc...; the remaining keys (resnet_time_scale_shift "scale_shift", sample_size 256,
   time_embedding_act_fn "gelu", time_embedding_dim = model_channels * channel_mult[-1] =
   1280, the mirrored up_block_types) follow convert_if.py get_super_res_unet /
   superres_create_unet_diffusers_config.
 * IF-I-M and IF-II-M: their config.json files were NOT found. The configurations below are
   INFERRED: the IF-I-XL / IF-II-L structure (block types, heads of 64, encoder_dim 4096,
   cross_attention_dim = the last block's width, as convert_if.py derives it) with the base
   width chosen so that the parameter count matches DeepFloyd's model table (github.com/
   deep-floyd/IF README: IF-I-M 400M, IF-I-L 900M, IF-I-XL 4.3B, IF-II-M 450M, IF-II-L 1.2B).
   Counted with diffusers 0.24: width 704 gives 4.31 B (XL, exact check of the method), 320
   gives 0.94 B (L), 192 gives 0.37 B (M); IF-II width 160 gives 1.24 B (L, check), 96 gives
   0.48 B (M). Treat IF-I-M / IF-II-M as "IF-M-sized", not as the published networks.
"""

# resnet_out_scale_factor and mid_block_scale_factor of IF stage II (1 / 0.7071...).
STAGE2_RESNET_SCALE = 1.4142271248762552


def stage1_unet(widths, layers_per_block, cross_attention_dim, text_dim, head_dim, text_heads,
                norm_groups, sample_size=64):
    """IF stage I UNet: 3 -> 6 channels (epsilon + learned-range variance), a ResnetDownsample
    block at full resolution, then added-KV cross-attention blocks at every lower one."""
    attention = len(widths) - 1
    return dict(
        sample_size=sample_size, in_channels=3, out_channels=6, layers_per_block=layers_per_block,
        block_out_channels=list(widths),
        down_block_types=["ResnetDownsampleBlock2D"] + ["SimpleCrossAttnDownBlock2D"] * attention,
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=["SimpleCrossAttnUpBlock2D"] * attention + ["ResnetUpsampleBlock2D"],
        cross_attention_dim=cross_attention_dim, encoder_hid_dim=text_dim,
        encoder_hid_dim_type="text_proj", attention_head_dim=head_dim,
        addition_embed_type="text", addition_embed_type_num_heads=text_heads,
        cross_attention_norm="group_norm", resnet_time_scale_shift="scale_shift",
        act_fn="gelu", norm_num_groups=norm_groups, only_cross_attention=False,
        mid_block_scale_factor=1, resnet_out_scale_factor=1.0, resnet_skip_time_act=False)


def stage2_unet(widths, layers_per_block, text_dim, head_dim, text_heads, norm_groups,
                attention_blocks=2, sample_size=256):
    """IF stage II (super-resolution) UNet: 6 -> 6 channels ([noisy picture, upscaled stage I
    picture] -> [epsilon, variance]), the noise level as class labels ("timestep" class
    embedding), ResnetDownsample blocks, then `attention_blocks` cross-attention blocks at the
    lowest resolutions; gelu time embedding of the last block's width, skip-time-act resnets
    scaled by 1/0.7071."""
    plain = len(widths) - attention_blocks
    return dict(
        sample_size=sample_size, in_channels=6, out_channels=6, layers_per_block=layers_per_block,
        block_out_channels=list(widths),
        down_block_types=(["ResnetDownsampleBlock2D"] * plain
                          + ["SimpleCrossAttnDownBlock2D"] * attention_blocks),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=(["SimpleCrossAttnUpBlock2D"] * attention_blocks
                        + ["ResnetUpsampleBlock2D"] * plain),
        cross_attention_dim=widths[-1], encoder_hid_dim=text_dim,
        encoder_hid_dim_type="text_proj", attention_head_dim=head_dim,
        addition_embed_type="text", addition_embed_type_num_heads=text_heads,
        class_embed_type="timestep", cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift", act_fn="gelu", norm_num_groups=norm_groups,
        only_cross_attention=False, time_embedding_act_fn="gelu", time_embedding_dim=widths[-1],
        resnet_skip_time_act=True, resnet_out_scale_factor=STAGE2_RESNET_SCALE,
        mid_block_scale_factor=STAGE2_RESNET_SCALE)


def published_stage1(width):
    """IF-I-* at base width `width`: widths (1, 2, 3, 4) x width, 3 layers per block."""
    return stage1_unet([width, 2 * width, 3 * width, 4 * width], 3, cross_attention_dim=4 * width,
                       text_dim=4096, head_dim=64, text_heads=64, norm_groups=32)


def published_stage2(width):
    """IF-II-* at base width `width`: widths (1, 2, 4, 6, 8) x width."""
    return stage2_unet([width * m for m in (1, 2, 4, 6, 8)], [2, 2, 3, 5, 5], text_dim=4096,
                       head_dim=64, text_heads=64, norm_groups=32)


RANDOM_INIT_STAGE1 = {
    "IF-I-XL": published_stage1(704),   # published (see above)
    "IF-I-L": published_stage1(320),    # inferred from the parameter count
    "IF-I-M": published_stage1(192),    # inferred from the parameter count
}
RANDOM_INIT_STAGE2 = {
    "IF-II-L": published_stage2(160),   # published (see above)
    "IF-II-M": published_stage2(96),    # inferred from the parameter count
}
RANDOM_INIT_SOURCE = {
    "IF-I-XL": "published IF-I-XL-v1.0 unet config", "IF-II-L": "published IF-II-L-v1.0 unet config",
    "IF-I-L": "IF-I-L-sized config inferred from the parameter count",
    "IF-I-M": "IF-I-M-sized config inferred from the parameter count",
    "IF-II-M": "IF-II-M-sized config inferred from the parameter count",
}


def t5_encoder(vocab_size, d_model, d_kv, d_ff, num_layers, num_heads, dropout_rate=0.1):
    """A T5 v1.1 configuration (gated-gelu, untied embeddings, pad 0, eos 1) for
    transformers' T5Config(**config); IF uses only the encoder."""
    return dict(
        vocab_size=vocab_size, d_model=d_model, d_kv=d_kv, d_ff=d_ff, num_layers=num_layers,
        num_decoder_layers=num_layers, num_heads=num_heads, relative_attention_num_buckets=32,
        relative_attention_max_distance=128, dropout_rate=dropout_rate, layer_norm_epsilon=1e-6,
        initializer_factor=1.0, feed_forward_proj="gated-gelu", is_encoder_decoder=True,
        tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)


# T5 v1.1 XXL (google/t5-v1_1-xxl config.json), the text encoder of every IF stage; the
# --random-init stand-in keeps its widths and reduces num_layers.
T5_XXL = t5_encoder(32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64)

# IF's DDPMScheduler settings. Stage I: DeepFloyd/IF-I-*-v1.0 scheduler/scheduler_config.json
# (also convert_if.py convert_stage_1_pipeline). Stage II: convert_if.py
# convert_super_res_pipeline (the IF-II scheduler_config.json files were not found; that
# script wrote them): "scheduler" with sample_max_value 1.0, and "image_noising_scheduler"
# = DDPMScheduler(beta_schedule="squaredcos_cap_v2"), everything else diffusers' defaults.
STAGE1_SCHEDULER = dict(
    num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
    beta_end=0.02, variance_type="learned_range", prediction_type="epsilon",
    thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.5,
    clip_sample=True, clip_sample_range=1.0, timestep_spacing="leading", steps_offset=0)
STAGE2_SCHEDULER = dict(STAGE1_SCHEDULER, sample_max_value=1.0)
STAGE2_NOISING_SCHEDULER = dict(
    num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
    beta_end=0.02, variance_type="fixed_small", prediction_type="epsilon",
    thresholding=False, dynamic_thresholding_ratio=0.995, sample_max_value=1.0,
    clip_sample=True, clip_sample_range=1.0, timestep_spacing="leading", steps_offset=0)
