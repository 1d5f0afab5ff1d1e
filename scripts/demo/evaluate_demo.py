#!/usr/bin/env python3
"""Judge demo anagrams: how often each view shows its prompt, per method and ablation.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/demo/evaluate_demo.py \
        [--data glyphs|objects] \
        [--anagram build/anagram] [--bundle models/demo-glyphs] [--judge models/demo-judge/judge.pt] \
        [--pairs nz,69,mw] [--views V1,V2] [--calibrate N] [--seeds 20] [--configs baseline,full,no-antiseg,no-balance,no-rectify] \
        [--steps 30] [--out build-py/demo-eval] [--markdown FILE] [--grid FILE] \
        [--min-share 0.8] [--jobs 2] [--segregation]

--data objects: the object model (defaults --bundle models/demo-objects, --judge
models/demo-objects-judge/judge.pt, --pairs dogcat,rabbitduck,horsebird,housetree, --out
build-py/demo-objects-eval; the judge names 16 objects + "other",
scripts/anagram_py/demo/objects.py) and --segregation on. A pair may name another view than its own: dogcat@flip,
dogcat@rotate_cw.

Factorized views (docs/factorized_views.md): "nz@low_pass+high_pass" gives each prompt its
own view (`anagram gen --view low_pass --view high_pass`: "the letter n" from afar, "the
letter z" up close), and --views low_pass,high_pass does so for every pair of --pairs
without an @view (grayscale,color likewise). The judge sees what a viewer sees, the view
picture the program wrote: for low_pass the low-pass rendering, for grayscale the channel
mean, for high_pass and color the picture itself (the evaluation checks that its own
filters give the program's view pictures). A further column judges the component alone,
for high_pass the picture minus its low pass and for color the picture minus its
grayscale, each stretched to [-1, 1]; two more give the judge's mean probability of each
view's glyph and the mean absolute difference (of 255) from the baseline's picture of the
same seed. With factorized views the run ends with a judge
calibration (--calibrate N pictures, default 320; 0 for none): the judge on glyphs of the
diffusion model's training fonts as drawn, rendered and filtered, and on made-up hybrids
(low pass of glyph A + high pass of glyph B), which says what the judge can tell at all.

--segregation: also measures how often the two concepts are drawn in separate halves of
the picture (the failure anti-segregation exists for). For each split of the anagram into
two halves (top/bottom and left/right), each half alone is kept (the other filled with the
picture's mean border colour), each view is applied, and the judge gives the probability
of that view's concept, r_k(half). The sample's segregation score is the largest, over
splits and the two ways of assigning halves, of min(r_1(A) - r_1(B), r_2(B) - r_2(A)),
or 0 if that is negative: concept 1 seen in half A and not in B while concept 2 is seen in B
and not in A. A sample
counts as segregated when the score is at least 0.5; the table gives the share of
segregated samples (Wilson interval) and the mean score.

For every pair and configuration it runs `anagram gen` once with --num-samples SEEDS
(seeds 0 .. SEEDS-1, --threads 1), then shows each view picture the program wrote
(view_K_<view>_<prompt>.png: the anagram with view K applied) to the judge
(scripts/demo/train_judge.py; trained on held-out fonts only, never used by sampling). A
view counts as recognised when the judge's most likely class (16 glyphs + "other") is the glyph
its prompt names. Reports, per view and for "both views at once", the share of seeds with
a 95% Wilson score interval. Samples already in OUT are reused; an incomplete set is refused (delete it to redo it).

--jobs J: J `anagram gen` runs at once (the bytes do not change: each runs on one thread).

--min-share: exit 1 unless every view of every configuration run reaches that share (the
CI quality check, tests/demo_quality.sh).

Configurations: baseline (--method baseline: the mean of the views' noise estimates),
full (the multi-task method: anti-segregation + balancing + rectification), and the full
method with one technique off (no-antiseg, no-balance, no-rectify).
"""
import sys

from anagram_py.demo.evaluate import main

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))
