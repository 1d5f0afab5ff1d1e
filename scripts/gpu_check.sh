#!/usr/bin/env bash
# The one-call GPU check: builds anagram against the machine's PyTorch (CUDA), exports the
# IF-I-M + IF-II-M stand-ins in float16 on CUDA, runs gen (method and baseline, 2 and 3
# views), a small batch, the benchmark and the CUDA end-to-end tests, compares CPU and CUDA on
# the tiny bundle, times diffusers' own IF pipelines on the same weights, and prints one table.
#
# Usage:
#   scripts/gpu_check.sh --prepare          on a Debian machine with the package registry:
#                                           packs into .gpu-check/ (git-ignored) the headers and
#                                           zlib of scripts/make_devdeps.sh and the pinned Python
#                                           packages (cp312), both xz-compressed, and prints
#                                           what would travel
#   scripts/gpu_check.sh                    on the GPU machine (CUDA, PyTorch 2.x, nvcc, CMake;
#                                           no registry), carrying .gpu-check; writes logs and
#                                           gpu_check.md to $OUT (default /tmp/anagram-gpu-check)
#   scripts/gpu_check.sh --dry-run [BUILD]  anywhere: every phase on the tiny bundle, float32,
#                                           on the CPU, with BUILD's binaries (default build/)
#                                           and .venv's Python; ctest runs it
#
# Each phase has its own time limit, so a failing or slow phase leaves the others' figures;
# the table says which phases failed. The whole check aims at under 6 minutes on an H200
# (about half of it the build, which runs while the stand-ins are exported).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode=device
case "${1:-}" in
  --prepare) mode=prepare ;;
  --dry-run) mode=dry; build=${2:-build} ;;
  "") ;;
  *) echo "usage: scripts/gpu_check.sh [--prepare | --dry-run [BUILD_DIR]]" >&2; exit 2 ;;
esac
pinned=(diffusers==0.24.0 transformers==4.35.2 huggingface-hub==0.19.4 tokenizers==0.15.0
        sentencepiece==0.2.0 accelerate==0.25.0 peft==0.7.1 requests urllib3 idna certifi
        charset-normalizer)

if [ "$mode" = prepare ]; then
  set -e
  bash scripts/make_devdeps.sh --no-gtest
  mkdir -p .gpu-check
  tar -cf - .devdeps | xz -9 -T0 >.gpu-check/devdeps.tar.xz
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  # The GPU machine's Python is 3.12; its own huggingface-hub 1.x and transformers 5 do not
  # run diffusers 0.24, so the pinned set travels, unpacked and xz-compressed: a device call
  # carries at most 64 MiB with the tracked files, and the wheels alone are 16 MB.
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$wheels/whl" "${pinned[@]}"
  mkdir -p "$wheels/site"
  for w in "$wheels"/whl/*.whl; do python3 -m zipfile -e "$w" "$wheels/site"; done
  # transformers' 200-odd model folders are 30 of its 35 MB; the exporters and diffusers' IF and
  # x4 upscaler pipelines use CLIP, T5 and the auto classes. The others keep their lazy
  # __init__.py only (transformers imports every folder's __init__, nothing else until used).
  # Checked by running make_tiny_model, export_if, export_sd_upscaler --tiny and
  # time_diffusers_if.py with a copy pruned this way.
  for model in "$wheels"/site/transformers/models/*/; do
    case "$(basename "$model")" in clip | t5 | auto) continue ;; esac
    find "$model" -type f ! -name __init__.py -delete
  done
  tar -C "$wheels" -cf - site | xz -9 -T0 >.gpu-check/python-site.tar.xz
  tracked=$(git ls-files -z | xargs -0 cat | wc -c)
  untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r cat | wc -c)
  carried=$(du -sb .gpu-check | cut -f1)
  total=$((tracked + untracked + carried))
  echo "travels: tracked $((tracked >> 20)) MiB + untracked $((untracked >> 20)) MiB +" \
    ".gpu-check $((carried >> 20)) MiB = $((total >> 20)) MiB of the 64 MiB a device call carries"
  [ "$total" -lt $((64 << 20)) ] || { echo "error: too large to travel" >&2; exit 1; }
  echo "then, on the device machine: scripts/gpu_check.sh, with carry [\".gpu-check\"]"
  exit 0
fi

out=${OUT:-/tmp/anagram-gpu-check}
[ "$mode" = dry ] && out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$out/phases.tsv"

# phase NAME SECONDS COMMAND...: runs with a time limit, output in $out/NAME.log.
phase() {
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  echo "=== $name (limit ${limit} s, $(date +%T))"
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - start))" >>"$out/phases.tsv"
  [ "$rc" -eq 0 ] || { echo "phase $name failed (exit $rc); last lines:"; tail -5 "$out/$name.log"; }
  return 0
}

if [ "$mode" = device ]; then
  device=cuda dtype=float16 steps=30 views3=rot180 bench_steps=10
  py=python3
  export PYTHONPATH="/tmp/anagram-site:$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
  bin=build-cuda/anagram
  bench=build-cuda/anagram_bench
  phase machine 30 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader; python3 -c "import torch; print(\"torch\", torch.__version__, \
    \"cuda\", torch.version.cuda)"; nproc'
  [ -d .devdeps ] || tar -xJf .gpu-check/devdeps.tar.xz
  # The build runs while the stand-ins are exported (it needs the CPU, the export the GPU).
  (phase build 330 bash -c "scripts/configure_pip_torch.sh build-cuda \
     -DTORCH_CUDA_ARCH_LIST=9.0 -DANAGRAM_BUILD_TESTS=OFF && \
     cmake --build build-cuda --target anagram anagram_bench -j$(nproc)") &
  build_job=$!
  phase python_site 60 bash -c 'mkdir -p /tmp/anagram-site && \
    tar -C /tmp/anagram-site --strip-components=1 -xJf .gpu-check/python-site.tar.xz'
  phase export 300 $py scripts/export/export_if.py --random-init IF-I-M \
    --random-init-stage2 IF-II-M --device cuda --dtype float16 "$work/if-m"
  big="$work/if-m"
  wait "$build_job"
else
  device=cpu dtype=float32 steps=2 views3=rot180 bench_steps=2
  py="$root/.venv/bin/python"
  "$py" -c "import diffusers" 2>/dev/null || { echo "skipped: .venv with diffusers is missing"; exit 77; }
  export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  bin="$build/anagram"
  bench="$build/anagram_bench"
  phase machine 30 bash -c 'uname -m; nproc; '"$py"' -c "import torch; print(\"torch\", torch.__version__)"'
  phase export 300 bash -c "$py scripts/tiny/make_tiny_model.py $work/src --stage2 $work/src2 && \
    $py scripts/export/export_if.py $work/src $work/tiny --stage2 $work/src2 --threads 1"
  big="$work/tiny"
fi
tiny="$root/models/tiny-if"

# The method and the baseline on the large bundle: two samples each, so that the first
# sample's seconds per step (one-off costs included) and a later one's are both recorded.
phase gen_method 240 "$bin" --quiet gen --bundle "$big" --device "$device" -p "a dog" -p "a cat" \
  --view rot180 --steps "$steps" --num-samples 2 --out "$out/gen_method"
phase gen_baseline 180 "$bin" --quiet gen --bundle "$big" --device "$device" --method baseline \
  -p "a dog" -p "a cat" -p "a horse" --view "$views3" --view flip --steps "$steps" \
  --num-samples 2 --out "$out/gen_baseline"
printf '%s\n' \
  '{"prompts": ["a dog", "a cat"], "views": ["rot180"], "seeds": [0, 1], "out": "method"}' \
  '{"prompts": ["a dog", "a cat", "a horse"], "views": ["rot180", "flip"], "seeds": [0], "method": "baseline", "out": "baseline"}' \
  >"$work/jobs.jsonl"
phase batch 180 "$bin" --quiet batch "$work/jobs.jsonl" --bundle "$big" --device "$device" \
  --set steps=$((steps < 10 ? steps : 10)) --out "$out/batch"
phase bench 240 "$bench" --bundle "$big" --device "$device" --steps "$bench_steps" --repeat 1
# The tiny bundle: the end-to-end CUDA tests, the same seed on the CPU and on the device, and
# the first sample with and without TorchScript's optimising executor.
if [ "$mode" = device ]; then
  phase cuda_tests 240 env ANAGRAM_TEST_HAS_CUDA=1 bash tests/cuda_test.sh "$bin" "$tiny" \
    "$root/models/tiny-clip-scorer"
fi
phase tiny_cpu 180 "$bin" --quiet gen --bundle "$tiny" --device cpu -p dog -p cat --view rot180 \
  --steps 10 --stages 2 --out "$out/tiny_cpu"
phase tiny_device 120 "$bin" --quiet gen --bundle "$tiny" --device "$device" -p dog -p cat \
  --view rot180 --steps 10 --stages 2 --out "$out/tiny_device"
for optimize in 0 1; do
  phase "latency_jit$optimize" 180 env ANAGRAM_JIT_OPTIMIZE=$optimize "$bin" --quiet gen \
    --bundle "$tiny" --device "$device" -p dog -p cat --view rot180 --steps "$steps" \
    --stages 2 --num-samples 2 --out "$out/latency_jit$optimize"
done
# Stage III (the x4 upscaler on 256x256 latents, decoded to 1024) on the tiny bundle.
phase stage3_tiny 180 "$bin" --quiet gen --bundle "$tiny" --device "$device" -p dog -p cat \
  --view rot180 --steps "$steps" --stages 3 --stage2-steps "$steps" --stage3-steps "$steps" \
  --out "$out/stage3_tiny"
if [ "$mode" = device ]; then
  # The real-size x4 upscaler (random weights) after the tiny stages I and II, float32 as the
  # tiny bundle (a bundle runs in one dtype): seconds per stage III step and peak memory are in
  # its metadata.json. Not in the dry run: one step takes minutes on a CPU (docs/benchmarks.md).
  phase stage3_x4 300 bash -c "cp -r '$tiny' '$work/x4' && rm -rf '$work/x4/stage3' && \
    $py scripts/export/export_sd_upscaler.py --random-init x4 '$work/x4' --device cuda && \
    $bin --quiet gen --bundle '$work/x4' --device cuda -p dog -p cat --view rot180 \
      --steps 10 --stages 3 --stage3-steps 10 --out '$out/stage3_x4'"
fi
if [ "$mode" = device ]; then
  phase diffusers 240 $py scripts/tools/time_diffusers_if.py --random-init IF-I-M \
    --random-init-stage2 IF-II-M --device cuda --dtype float16 --steps "$steps" \
    --json "$out/diffusers.json"
else
  phase diffusers 240 "$py" scripts/tools/time_diffusers_if.py --source "$work/src" \
    --stage2 "$work/src2" --device cpu --steps "$steps" --json "$out/diffusers.json"
fi
"$py" scripts/tools/gpu_check_report.py "$out" | tee "$out/gpu_check.md"
# The dry run checks that every phase still runs; on the device, a failed phase is in the table.
if [ "$mode" = dry ]; then
  ! awk -F'\t' '$2 != 0 {found = 1} END {exit !found}' "$out/phases.tsv" || exit 1
fi
