"""What several golden generators (scripts/golden/) and scripts/tools/check_bundle.py share:
eager models rebuilt from a bundle (eager), the published views they need (views), and the
sampling loops of the stage II golden run (sampling_loops)."""
