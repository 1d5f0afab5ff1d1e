"""Stable Diffusion x4 upscaler (stabilityai/stable-diffusion-x4-upscaler) configurations: the
UNet, the VAE, the OpenCLIP ViT-H text encoder, both schedulers, and a tiny variant for tests.

The published config.json files are not in this repository and no weights are needed here; the
values below are RECONSTRUCTED (docs/stage3.md says how each was checked):
 * UNet and VAE: diffusers 0.24.0, pipelines/stable_diffusion/convert_from_ckpt.py
   (create_unet_diffusers_config / create_vae_diffusers_config) applied to Stability's original
   LDM config x4-upscaling.yaml, whose URL that module names (model_channels 256, channel_mult
   1,2,2,4, attention at ds 2,4,8, num_res_blocks 2, num_heads 8, context_dim 1024,
   use_linear_in_transformer, disable_self_attentions [T,T,T,F], num_classes 1000, in 7 / out 4
   channels, image_size 128; first stage ch 128, ch_mult 1,2,4, z_channels 4, scale_factor
   0.08333; parameterization "v"; linear_start 0.0001, linear_end 0.02 for both the diffusion and
   the low-res noise augmentation, max_noise_level 350). upcast_attention is left False
   (convert_from_ckpt's default); it only matters in float16.
 * Text encoder: SD 2's OpenCLIP ViT-H/14 text tower as diffusers stores it (a transformers
   CLIPTextModel with 23 of OpenCLIP's 24 layers: convert_from_ckpt.py drops resblocks.23 so that
   last_hidden_state is the "penultimate" layer followed by the final layer norm).
 * Schedulers: convert_from_ckpt.py loads both from the upscaler's hub folder; their values are
   those its own DDIMScheduler(...) call gives for the yaml (scaled_linear is LDM's "linear":
   linspace(sqrt(start), sqrt(end))^2), with prediction_type v_prediction, steps_offset 1,
   clip_sample False, set_alpha_to_one False; the low-res scheduler is a DDPMScheduler with the
   same betas (its other keys are DDPMScheduler defaults; only add_noise is used).
"""

# UNet2DConditionModel(**UNET_X4): 7 = 4 latent + 3 low-res picture channels in, 4 (v) out.
UNET_X4 = dict(
    sample_size=128, in_channels=7, out_channels=4, layers_per_block=2,
    block_out_channels=[256, 512, 512, 1024],
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                    "UpBlock2D"],
    cross_attention_dim=1024, attention_head_dim=8, use_linear_projection=True,
    only_cross_attention=[True, True, True, False], num_class_embeds=1000,
    transformer_layers_per_block=1, upcast_attention=False)

# AutoencoderKL(**VAE_X4): 4x down/up (three blocks), 4 latent channels.
VAE_X4 = dict(
    sample_size=128, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
    block_out_channels=[128, 256, 512],
    down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
    scaling_factor=0.08333)

# transformers CLIPTextConfig(**TEXT_X4): OpenCLIP ViT-H/14's text tower less its last layer.
TEXT_X4 = dict(
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
    num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
    layer_norm_eps=1e-5, projection_dim=512)

# diffusers DDIMScheduler(**SCHEDULER_X4), the denoising scheduler.
SCHEDULER_X4 = dict(
    num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="scaled_linear",
    clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction",
    thresholding=False, dynamic_thresholding_ratio=0.995, clip_sample_range=1.0,
    sample_max_value=1.0, timestep_spacing="leading", rescale_betas_zero_snr=False)

# diffusers DDPMScheduler(**LOW_RES_SCHEDULER_X4): noise augmentation of the low-res picture.
LOW_RES_SCHEDULER_X4 = dict(
    num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="scaled_linear",
    variance_type="fixed_small", clip_sample=False, prediction_type="epsilon")

MAX_NOISE_LEVEL = 350       # StableDiffusionUpscalePipeline(max_noise_level=350)
DEFAULT_NOISE_LEVEL = 20    # its __call__ default
DEFAULT_STEPS = 75          # its __call__ default
DEFAULT_GUIDANCE = 9.0      # its __call__ default
UPSCALE = 4                 # 2 ** (len(VAE block_out_channels) - 1)

# The tiny variant (tests; exported into models/tiny-if, whose size is budgeted): the same
# block types, flags and heads, a few channels. The text encoder keeps the 49408-token
# vocabulary (any BPE id can occur), so its width sets most of its size (49408 x 8 floats).
UNET_TINY = dict(
    UNET_X4, sample_size=16, block_out_channels=[8, 16, 16, 16], cross_attention_dim=8,
    norm_num_groups=8)
VAE_TINY = dict(VAE_X4, sample_size=64, block_out_channels=[16, 16, 32], norm_num_groups=8,
                layers_per_block=1)
TEXT_TINY = dict(TEXT_X4, hidden_size=8, intermediate_size=37, num_hidden_layers=2,
                 num_attention_heads=2, projection_dim=8)

VARIANTS = {
    "x4": dict(unet=UNET_X4, vae=VAE_X4, text=TEXT_X4,
               source="stabilityai/stable-diffusion-x4-upscaler configuration (reconstructed, "
                      "see scripts/anagram_py/sd_upscaler_configs.py)"),
    "tiny": dict(unet=UNET_TINY, vae=VAE_TINY, text=TEXT_TINY,
                 source="tiny test variant of the x4 upscaler's architecture"),
}
