"""The tiny random test models: the IF pipeline folders of models/tiny-if (if_model), its
noise-aware CLIP (glide_clip) and the CLIP scorer of models/tiny-clip-scorer (clip_scorer)."""
