"""The evaluation of factorized-view demo anagrams (scripts/anagram_py/demo/factor_views.py and
evaluate.py's pair parsing): the filters are torchvision's and the program's (kernel 17, sigma
1 at 32x32), a pair's components sum to the picture, the components are normalised to
[-1, 1], and "name@view1+view2" and --views give one --view per prompt."""
import importlib.util
import unittest

import torch

from anagram_py.demo import evaluate, factor_views as fv

HAVE_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def pictures(n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


class Filters(unittest.TestCase):
    def test_kernel_sizes_follow_the_program(self):
        # src/views/filters.h: 33 -> 33, 133 and 529 at 64, 256 and 1024; 17 at the demo's 32
        self.assertEqual([fv.odd_kernel_at(33, s) for s in (32, 64, 256, 1024)],
                         [17, 33, 133, 529])

    @unittest.skipUnless(HAVE_TORCHVISION, "needs torchvision")
    def test_blur_is_torchvisions(self):
        from torchvision.transforms.functional import gaussian_blur
        x = pictures()
        for size, sigma in ((17, 1.0), (33, 2.0), (5, 0.7)):
            ref = gaussian_blur(x, [size, size], [sigma, sigma])
            self.assertTrue(torch.allclose(fv.gaussian_blur(x, size, sigma), ref, atol=1e-6))

    def test_low_pass_at_32_is_sigma_1_kernel_17(self):
        x = pictures()
        self.assertTrue(torch.equal(fv.low_pass(x), fv.gaussian_blur(x, 17, 1.0)))

    def test_components_sum_to_the_picture(self):
        x = pictures()
        for v1, v2 in (("low_pass", "high_pass"), ("grayscale", "color")):
            self.assertTrue(torch.allclose(fv.component(v1, x) + fv.component(v2, x), x,
                                           atol=1e-6), v1 + "+" + v2)

    def test_a_plain_picture_has_no_high_pass_or_colour(self):
        x = torch.full((1, 3, 32, 32), 0.3)
        self.assertTrue(torch.allclose(fv.low_pass(x), x, atol=1e-6))
        self.assertLess(fv.component("high_pass", x).abs().max().item(), 1e-6)
        grey = torch.full((1, 3, 8, 8), -0.2)
        self.assertEqual(fv.component("color", grey).abs().max().item(), 0.0)

    def test_renderings(self):
        x = pictures()
        self.assertIs(fv.render("high_pass", x), x)       # up close: the picture itself
        self.assertIs(fv.render("colour", x), x)          # aliases as the program's
        self.assertTrue(torch.equal(fv.render("far", x), fv.low_pass(x)))
        g = fv.render("grayscale", x)
        self.assertTrue(torch.allclose(g[:, 0], x.mean(1)) and torch.equal(g[:, 0], g[:, 2]))
        with self.assertRaises(ValueError):
            fv.render("rot90", x)
        self.assertTrue(fv.has_own_component("high_pass") and fv.has_own_component("color"))
        self.assertFalse(fv.has_own_component("low_pass") or fv.is_factor("flip"))


class Normalise(unittest.TestCase):
    def test_each_picture_spans_minus_one_to_one(self):
        c = torch.stack([pictures(1)[0] * 0.05, pictures(1, seed=1)[0] * 0.3 + 0.2])
        out = fv.normalise(c)
        for k in range(2):
            self.assertAlmostEqual(out[k].min().item(), -1.0, places=5)
            self.assertAlmostEqual(out[k].max().item(), 1.0, places=5)
        # an affine stretch: order kept
        self.assertTrue(torch.equal(out[0].flatten().argsort(), c[0].flatten().argsort()))

    def test_constant_becomes_zero(self):
        self.assertEqual(fv.normalise(torch.full((2, 3, 4, 4), 0.7)).abs().max().item(), 0.0)


class PairSpecs(unittest.TestCase):
    pairs = evaluate.GLYPH_PAIRS

    def test_one_view_as_before(self):
        self.assertEqual(evaluate.pair_views(self.pairs, "nz"),
                         ("the letter n", "the letter z", ["rot90"]))
        self.assertEqual(evaluate.pair_views(self.pairs, "nz@flip")[2], ["flip"])

    def test_a_view_per_prompt(self):
        self.assertEqual(evaluate.pair_views(self.pairs, "hs@low_pass+high_pass"),
                         ("the letter h", "the letter s", ["low_pass", "high_pass"]))
        self.assertEqual(evaluate.pair_spec(self.pairs, "hs@low_pass+high_pass")[2],
                         "low_pass+high_pass")
        for bad in ("hs@a+b+c", "hs@low_pass+", "xx@low_pass+high_pass"):
            with self.assertRaises(SystemExit):
                evaluate.pair_views(self.pairs, bad)

    def test_views_option(self):
        self.assertEqual(evaluate.with_views("nz,hs,69@grayscale+color", "low_pass, high_pass"),
                         "nz@low_pass+high_pass,hs@low_pass+high_pass,69@grayscale+color")
        self.assertEqual(evaluate.with_views("nz,69", None), "nz,69")
        args = evaluate.parse_args(["--pairs", "nz", "--views", "grayscale,color"])
        self.assertEqual(args.pairs, "nz@grayscale+color")


class Share(unittest.TestCase):
    def test_cell(self):
        self.assertEqual(evaluate.share(20, 20), "20/20 = 1.00 [0.84, 1.00]")
        self.assertEqual(evaluate.share(0, 20), "0/20 = 0.00 [0.00, 0.16]")


if __name__ == "__main__":
    unittest.main()
