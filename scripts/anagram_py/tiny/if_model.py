"""The tiny DeepFloyd-IF-architecture model of models/tiny-if: a SentencePiece tokenizer trained
on a corpus composed here, a 2-layer T5 encoder, stage I and stage II UNets with IF's block
layout, all with random weights from fixed seeds, written as diffusers pipeline folders
(scripts/tiny/make_tiny_model.py; scripts/make_default_bundle.sh exports them)."""
import io
import os
import random
import tempfile

import sentencepiece as spm
import torch

from .. import if_configs
from ..diffusers_folder import write_pipeline

# ---------------------------------------------------------------------------------------
# Fixed parameters of the tiny model.
SEED_UNET = 1234
SEED_T5 = 4321
SEED_CORPUS = 2024
SEED_UNET2 = 5678
SP_VOCAB_SIZE = 1000        # SentencePiece pieces; the T5 vocabulary adds 100 extra ids
EXTRA_IDS = 100
MAX_LENGTH = 77
T5_D_MODEL = 32

# The tiny IF stage I UNet: 3 resolutions (64, 32, 16), cross-attention at 32x32 and 16x16.
UNET_CONFIG = if_configs.stage1_unet([16, 32, 64], 1, cross_attention_dim=32, text_dim=T5_D_MODEL,
                                     head_dim=8, text_heads=2, norm_groups=8)

# T5 v1.1 style with d_model 32 and 2 layers.
T5_CONFIG = if_configs.t5_encoder(SP_VOCAB_SIZE + EXTRA_IDS, d_model=T5_D_MODEL, d_kv=8, d_ff=64,
                                  num_layers=2, num_heads=4)

# The tiny IF stage II UNet: 6 resolutions 256..8 with few, narrow blocks, cross-attention at
# 16x16 and 8x8, the noise level through a "timestep" class embedding. One eager forward at
# batch 4, 256x256, float32 takes 0.16-0.17 s at best, 0.22-0.25 s median, with 1 or 2
# threads on the 2-core development machine (lightly loaded). Most of it is the 256x256
# convolutions (conv_in 6 -> 2 and conv_out 2 -> 6 alone ~25 ms: oneDNN is slow for
# 6-channel tensors); the attention at 16x16 and 8x8 is ~10 ms. Widths 4 at the top or
# attention at 32x32 cost 1.5-3x more.
UNET2_CONFIG = if_configs.stage2_unet([2, 4, 8, 8, 16, 32], 1, text_dim=T5_D_MODEL, head_dim=8,
                                      text_heads=2, norm_groups=2)


# ---------------------------------------------------------------------------------------
# Tokenizer corpus: composed here, deterministic, offline.
ANIMALS = """dog cat horse rabbit fox wolf bear lion tiger elephant giraffe zebra monkey
gorilla panda koala kangaroo penguin owl eagle parrot duck goose swan chicken rooster
cow pig sheep goat deer moose squirrel mouse rat hamster turtle frog snake lizard
crocodile dolphin whale shark octopus jellyfish crab lobster butterfly bee ant spider
snail hedgehog raccoon otter beaver camel llama flamingo peacock hummingbird bat""".split()
OBJECTS = """house castle tower bridge boat ship car bicycle train airplane rocket lamp
chair table bed window door clock book pencil cup teapot bottle vase umbrella hat shoe
guitar piano violin drum trumpet kite balloon candle lantern mirror key lock crown
sword shield helmet map compass telescope camera computer phone robot skull flower
rose tulip sunflower tree forest mountain river lake ocean island desert volcano cloud
rainbow moon sun star planet galaxy waterfall garden village city street market
library kitchen bakery cake bread apple banana orange lemon strawberry cherry pear
grape pumpkin mushroom carrot tomato cheese pizza sandwich coffee tea wine""".split()
ADJECTIVES = """red blue green yellow orange purple pink black white gray brown golden
silver bright dark tiny huge small large old young ancient modern happy sad angry calm
sleepy curious fluffy furry shiny wooden metal glass stone paper frozen burning wet dry
soft hard heavy light quiet loud beautiful ugly strange magical mysterious cute scary
friendly lonely colorful pale vivid detailed simple elegant rusty dusty foggy snowy
sunny rainy windy stormy peaceful busy empty crowded broken hidden floating flying""".split()
STYLES = """an oil painting|a watercolor painting|a pencil sketch|a charcoal drawing|a
photograph|a photo|a digital illustration|a cartoon|an anime drawing|a lithograph|a
woodcut print|a pixel art image|a mosaic|a stained glass window|a marble sculpture|a
clay model|a poster|a children's book illustration|an engraving|a pop art print|a
3d render|a line drawing|an ink wash painting|a fresco|a tapestry|a collage""".replace("\n", " ").split("|")
ARTISTS = """van gogh|monet|rembrandt|picasso|hokusai|klimt|vermeer|turner|da vinci|
dali|matisse|cezanne|escher|magritte|kandinsky|botticelli|caravaggio|hopper""".replace("\n", "").split("|")
VERBS = """sitting on|standing next to|running through|sleeping under|looking at|jumping
over|flying above|swimming in|hiding behind|playing with|walking along|dancing around|
reading|eating|holding|carrying|painting|climbing|riding|chasing""".replace("\n", " ").split("|")
PLACES = """in a forest|on a beach|in the snow|under the sea|in space|on the moon|in a
city at night|in a field of flowers|on a mountain top|in a kitchen|in a library|at
sunset|at dawn|in the rain|in a desert|by a river|in a garden|on a rooftop|in a cave|
inside a castle|on a farm|at the market|in a museum|on a train""".replace("\n", " ").split("|")
ACCENTED = """café|naïve|résumé|über|façade|jalapeño|piñata|Zürich|São Paulo|Ångström|
crème brûlée|déjà vu|señor|Málaga|Köln|Straße|smörgåsbord|fiancée|coöperate|Ærø|
garçon|Dvořák|Łódź|mañana|Orléans|Genève""".replace("\n", "").split("|")
MORE_WORDS = """astronaut baker carpenter doctor farmer firefighter gardener knight
musician nurse painter pilot pirate poet queen king princess prince sailor scientist
soldier teacher wizard witch dragon unicorn mermaid ghost vampire giant dwarf elf fairy
monster alien skeleton zombie angel demon statue portrait landscape skyline harbor
lighthouse windmill cathedral temple pyramid palace cottage cabin tent igloo barn
stable fountain statue staircase hallway balcony attic basement chimney fireplace
spoon fork knife plate bowl basket bucket ladder hammer saw shovel rope chain needle
thread button ribbon scarf glove jacket coat dress skirt shirt sweater boots sandals
necklace ring bracelet earring feather leaf branch root seed acorn pinecone blossom
petal thorn cactus fern moss grass wheat corn rice beans noodles soup salad burger
cookie chocolate candy honey butter milk yogurt pancake waffle donut pie muffin bagel
pretzel popcorn peanut almond walnut coconut pineapple mango peach plum melon kiwi
potato onion garlic pepper cucumber lettuce cabbage broccoli spinach celery radish
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday morning afternoon evening night
spring summer autumn winter weather thunder lightning hurricane tornado earthquake
one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty
hundred thousand million first second third last next previous
quickly slowly gently loudly quietly happily sadly carefully suddenly finally always
never often sometimes usually rarely almost nearly very extremely really quite rather
football basketball tennis baseball soccer hockey golf swimming skiing surfing chess
cards dice puzzle game toy doll teddy marble ball bat racket net goal score winner
london paris tokyo berlin rome madrid moscow cairo delhi beijing sydney toronto chicago
boston seattle amsterdam vienna prague dublin lisbon athens istanbul bangkok seoul
africa europe asia america australia antarctica arctic pacific atlantic mediterranean
happiness sadness anger fear surprise joy love hate hope dream memory silence music
story history science nature energy light shadow reflection texture pattern shape
circle square triangle spiral line dot stripe grid wave curve angle corner edge
center middle top bottom left right front back inside outside above below between
through across around beyond without within during before after until since while
because although however therefore meanwhile instead otherwise perhaps maybe indeed
computer keyboard screen monitor printer speaker microphone headphones battery cable
engine wheel wing tail fin horn hoof claw paw fur scale shell beak nest egg cocoon
""".split()
GENERAL = """The weather was cold in the morning, but by the afternoon it had become warm.
People often say that the early bird catches the worm, although cats might disagree.
She opened the window and listened to the quiet sound of the rain on the roof.
After dinner, the children played chess while their grandparents told old stories.
The museum displays paintings, sculptures and photographs from many different centuries.
If you turn this picture upside down, you will see something completely different.
Scientists measured the temperature of the ocean every day for twenty years.
The train left the station at exactly seven o'clock and arrived before noon.
A good recipe needs fresh ingredients, a little patience and a hot oven.
Every language has its own rules for spelling, grammar and pronunciation.
They walked through the forest until they reached a small wooden cabin.
The musician tuned her violin carefully before the concert began.
Mountains covered with snow rose high above the green valley.
My neighbor's dog barks whenever the mail carrier walks past the gate.
The library was silent except for the turning of pages and an occasional cough.
Building a bridge requires engineers, workers, steel, concrete and careful planning.
In autumn the leaves turn red, orange and yellow before they fall to the ground.
The astronaut looked back at the blue planet from the window of the space station.
Please write your name, address and telephone number on the form below.
Optical illusions trick the brain into seeing shapes that are not really there.""".split("\n")
SENTENCES = """A photo of a dog.
An oil painting of a cat sitting on a chair.
The quick brown fox jumps over the lazy dog.
A painting of a snowy mountain village, in the style of Hokusai.
Two people walking along the beach at sunset; the sky is orange and pink.
What is the meaning of this? Nobody knows!
She bought 3 apples, 12 eggs and 1.5 kg of flour for $4.99.
He said: "Let's meet at 10:30 tomorrow," and left.
The year 2023 was warm; 1999 was cold; 1850 was long ago.
Numbers like 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 1000 and 42 appear everywhere.
E-mail me at someone@example.com or visit www.example.org/page?id=7.
Hello, world! Hello again... and again?!
It's a dog's life (or is it a cat's?).
Use the key-value store: {"key": "value", "count": 3}.
A #hashtag, an @mention, 50% off & free shipping *today* only.
THE GIANT ROBOT WALKED INTO THE CITY AND EVERYONE STARED.
Mixed Case Words Look Like Titles In Old Newspapers.
A café in Paris serves crème brûlée and strong coffee.
The naïve student wrote a résumé about the façade of the old building.
Über den Wolken muss die Freiheit wohl grenzenlos sein.
La niña comió una piña en la mañana.
Der Hund läuft schnell über die Straße.
Le garçon mange une pomme à Orléans.
Some tokens are rare; others, like "the" and "a", are very common.
In 1969, humans walked on the moon for the first time.
A 64x64 image is small, a 256x256 image is larger, and 1024x1024 is large.
Look at the watercolor: blue, green, and yellow paint mixed together.
Rotate the picture by 90 degrees, flip it upside down, or turn it 180 degrees.
An optical illusion that looks like a rabbit and a duck.
A visual anagram: one picture, two meanings.
Turn the image upside down and see a different animal.
A jigsaw puzzle of an old map with missing pieces.
Line one.
Tab separated words and new lines are whitespace too.
Ünïcödé text with diacritics: ä ö ü ß é è ê ë à â ç ñ ø å æ œ.
Greek letters α β γ δ and symbols like ° ± × ÷ € £ ¥ © ® ™ also exist.""".split("\n")


def make_corpus(num_generated=6000):
    """Return a deterministic list of English, prompt-like sentences."""
    rng = random.Random(SEED_CORPUS)
    lines = list(SENTENCES) + list(GENERAL)
    lines += [" ".join(rng.sample(MORE_WORDS, 8)) for _ in range(1500)]
    lines += [f"a {w} and a {rng.choice(MORE_WORDS)} in {rng.choice(PLACES)[3:]}" for w in MORE_WORDS]
    lines += [f"a photo of a {a}" for a in ANIMALS]
    lines += [f"an oil painting of a {o}" for o in OBJECTS]
    lines += [f"{s} of a {a}" for s in STYLES for a in ("dog", "cat", "house", "tree")]
    lines += [f"the {w} is here" for w in ACCENTED]
    lines += [f"a {w} {a}" for w in ADJECTIVES for a in rng.sample(ANIMALS + OBJECTS, 3)]
    for _ in range(num_generated):
        kind = rng.randrange(6)
        adj = rng.choice(ADJECTIVES)
        a = rng.choice(ANIMALS)
        o = rng.choice(OBJECTS + MORE_WORDS)
        if kind == 0:
            line = f"{rng.choice(STYLES)} of a {adj} {a}"
        elif kind == 1:
            line = f"a {adj} {a} {rng.choice(VERBS)} a {rng.choice(OBJECTS)} {rng.choice(PLACES)}"
        elif kind == 2:
            line = f"{rng.choice(STYLES)} of a {o}, by {rng.choice(ARTISTS)}"
        elif kind == 3:
            line = f"{rng.randrange(2, 100)} {a}s and a {adj} {o} {rng.choice(PLACES)}."
        elif kind == 4:
            line = f"The {adj} {o} and the {rng.choice(ADJECTIVES)} {a} are friends!"
        else:
            line = f"{rng.choice(ACCENTED)}: a {adj} {o} near the {rng.choice(OBJECTS)}"
        if rng.random() < 0.3:
            line = line.capitalize()
        lines.append(line)
    return lines


def train_sentencepiece(workdir):
    """Train a T5-convention unigram SentencePiece model; return the .model path.

    The corpus goes in through an iterator and the model comes out through a writer, so
    no temporary path ends up in the model's trainer spec: the bytes are reproducible.
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(make_corpus()),
        model_writer=model,
        model_type="unigram",
        vocab_size=SP_VOCAB_SIZE,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        num_threads=1,
        minloglevel=2,
    )
    path = os.path.join(workdir, "spiece.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


# ---------------------------------------------------------------------------------------
def make_tokenizer(sp_model_path):
    from transformers import T5Tokenizer
    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    assert sp.get_piece_size() == SP_VOCAB_SIZE, sp.get_piece_size()
    assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
    # legacy=True is what DeepFloyd's published tokenizer (no "legacy" key) resolves to.
    return T5Tokenizer(vocab_file=sp_model_path, extra_ids=EXTRA_IDS,
                       model_max_length=MAX_LENGTH, legacy=True)


def make_text_encoder():
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(SEED_T5)
    model = T5EncoderModel(T5Config(**T5_CONFIG))
    return model.eval()


def make_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(SEED_UNET)
    return UNet2DConditionModel(**UNET_CONFIG).eval()


def make_scheduler():
    from diffusers import DDPMScheduler
    return DDPMScheduler(**if_configs.STAGE1_SCHEDULER)


def make_unet2():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(SEED_UNET2)
    return UNet2DConditionModel(**UNET2_CONFIG).eval()


def make_schedulers2():
    """IF stage II's scheduler and image-noising scheduler."""
    from diffusers import DDPMScheduler
    return (DDPMScheduler(**if_configs.STAGE2_SCHEDULER),
            DDPMScheduler(**if_configs.STAGE2_NOISING_SCHEDULER))


def sanity_check2(unet2, text_encoder, tokenizer):
    """The stage II UNet's output must depend on the picture, the condition and the level."""
    ids = tokenizer(["a photo of a dog", ""], padding="max_length", max_length=MAX_LENGTH,
                    truncation=True, return_tensors="pt")
    with torch.no_grad():
        states = text_encoder(ids.input_ids, attention_mask=ids.attention_mask)[0]
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 6, 256, 256, generator=g)
        t = torch.tensor(500)
        out = unet2(x, t, encoder_hidden_states=states, class_labels=torch.tensor([50, 50])).sample
        other_level = unet2(x, t, encoder_hidden_states=states,
                            class_labels=torch.tensor([250, 250])).sample
        x2 = x.clone()
        x2[:, 3:] = torch.randn(2, 3, 256, 256, generator=g)
        other_cond = unet2(x2, t, encoder_hidden_states=states,
                           class_labels=torch.tensor([50, 50])).sample
    eps, var = out[:, :3], out[:, 3:]
    print(f"stage II unet eps: mean {eps.mean():.3f} std {eps.std():.3f}; var channels: "
          f"min {var.min():.3f} max {var.max():.3f}; |d/level| {(out - other_level).abs().max():.3f} "
          f"|d/condition| {(out - other_cond).abs().max():.3f}")
    assert eps.std() > 0.05 and torch.isfinite(out).all()
    assert (out[0] - out[1]).abs().max() > 1e-3, "output ignores its text input"
    assert (out - other_level).abs().max() > 1e-4, "output ignores the noise level"
    assert (out - other_cond).abs().max() > 1e-3, "output ignores the upscaled condition"


def sanity_check(unet, text_encoder, tokenizer):
    """Print output statistics so degenerate random models are noticed."""
    ids = tokenizer(["a photo of a dog", ""], padding="max_length", max_length=MAX_LENGTH,
                    truncation=True, return_tensors="pt")
    with torch.no_grad():
        states = text_encoder(ids.input_ids, attention_mask=ids.attention_mask)[0]
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 3, 64, 64, generator=g)
        out = unet(x, torch.tensor(500), encoder_hidden_states=states).sample
    eps, var = out[:, :3], out[:, 3:]
    print(f"text states: std {states.std():.3f}")
    print(f"unet eps: mean {eps.mean():.3f} std {eps.std():.3f}; "
          f"var channels: min {var.min():.3f} max {var.max():.3f} std {var.std():.3f}")
    assert eps.std() > 0.05 and torch.isfinite(out).all()
    assert (out[0] - out[1]).abs().max() > 1e-3, "output ignores its inputs"


def write_stage1(outdir):
    """Build, check and write the tiny IF stage I pipeline folder.

    Returns (text_encoder, tokenizer), which stage II's check uses."""
    with tempfile.TemporaryDirectory() as work:
        tokenizer = make_tokenizer(train_sentencepiece(work))
        text_encoder = make_text_encoder()
        unet = make_unet()
        scheduler = make_scheduler()
        sanity_check(unet, text_encoder, tokenizer)
        write_pipeline(outdir, "IFPipeline", tokenizer=tokenizer, text_encoder=text_encoder,
                       unet=unet, scheduler=scheduler)
    print(f"wrote {os.path.abspath(outdir)}")
    return text_encoder, tokenizer


def write_stage2(outdir, text_encoder, tokenizer):
    """Build, check and write the tiny IF stage II pipeline folder (no text encoder of its
    own: the stages share stage I's T5)."""
    unet2 = make_unet2()
    scheduler2, noising2 = make_schedulers2()
    sanity_check2(unet2, text_encoder, tokenizer)
    write_pipeline(outdir, "IFSuperResolutionPipeline", unet=unet2, scheduler=scheduler2,
                   image_noising_scheduler=noising2)
    print(f"wrote {os.path.abspath(outdir)}")
