#!/usr/bin/env bash
# fusecpath's checks on a CUDA machine, run from the repository root:
#
#   step 1  the GPU, torch and CUDA versions;
#   step 2  the CUDA-relevant tests (tests/test_fusion_model.py's CUDA test must pass, not skip; the reader pool;
#           the per-FM preprocessing against the authors' pipeline, its CUDA path included);
#   step 3  benchmarks/extract.py --device cuda on synthetic slides: raw read + decode by the reader
#           processes, trivial-encoder extraction, one pass vs three passes, and a ViT-L/16 (random weights,
#           bf16): raw model patches/s, extraction patches/s and extraction / min(read, model) (goal >= 0.9);
#           its JSON goes to $OUT/extract.json;
#   step 4  `fusecpath extract --device cuda` of the built-in encoders and `fusecpath fuse --device cuda` on a
#           synthetic cohort: the fusion trains and predicts on CUDA end to end (table, wall times,
#           peak CUDA memory; metrics.json is copied to $OUT).
#
# Each step runs even when an earlier one failed; the exit status is the number of failed steps. Everything
# printed goes to $OUT/log too ($OUT defaults to /tmp/gpu-check).
# Packages the machine lacks come as wheels in .whl/ (openslide-python, openslide-bin, imagecodecs, and this
# repo's own, built here with `pip wheel --no-deps -w .whl . plugins/*/`: their dist-info gives pluggy the
# entry points). They are installed into /tmp/site; the checkout itself comes first on PYTHONPATH, so the
# code under test is the working tree's.
# GPU_CHECK_DEVICE=cpu GPU_CHECK_SMALL=1 runs the same steps tiny (checks the script on a CPU);
# PYTHON picks the interpreter (default python3).
set -uo pipefail

DEVICE=${GPU_CHECK_DEVICE:-cuda}
SMALL=${GPU_CHECK_SMALL:-0}
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu-check}
WORK=${GPU_CHECK_WORK:-/tmp/gpu-check-work}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1  # the machine has no network
if [ "$SMALL" = 1 ]; then
    FM_ARGS="--slides 2 --width-um 2300 --height-um 1800 --workers 1 --batch-size 32 --repeat 1"
    FUSE_SLIDES=12 EPOCHS=2 WORKERS=1
else
    FM_ARGS="--slides 4 --width-um 9200 --height-um 7200 --workers 12 --batch-size 256 --repeat 1"
    FUSE_SLIDES=20 EPOCHS=10 WORKERS=8
fi
BUILTIN=hed-stain,gabor-texture,random-cnn,mean-hed-stain
# `fusecpath ...` that prints the process's peak CUDA memory at exit (shows the work ran on the GPU)
PEAK='import atexit, sys, torch
atexit.register(lambda: torch.cuda.is_available() and print(
    f"peak CUDA memory of this process: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"))
from fusecpath.cli import main
main(sys.argv[1:])'

step() {  # step N TITLE COMMAND...: run COMMAND, report ok/FAILED with its wall time
    local n=$1 title=$2 start=$SECONDS
    shift 2
    echo
    echo "== step $n: $title =="
    if "$@"; then
        echo "== step $n: ok ($((SECONDS - start)) s) =="
    else
        echo "== step $n: FAILED, rc $? ($((SECONDS - start)) s) =="
        FAILED=$((FAILED + 1))
    fi
}

versions() {
    nvidia-smi -L || true
    $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
        "available", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
    $PY -c 'import fusecpath, openslide; print("fusecpath", fusecpath.__version__, fusecpath.__file__,
        "openslide", openslide.__library_version__)'
}

tests() {
    $PY -m pytest -v -rs -p no:cacheprovider tests/test_fusion_model.py tests/test_fuse.py tests/test_extract.py \
        tests/test_readers.py tests/test_preprocessing.py \
        | tee "$WORK/pytest.txt"
    local rc=${PIPESTATUS[0]}
    if [ "$DEVICE" != cpu ] && ! grep -q 'test_fusion_model.py::test_runs_on_cuda PASSED' "$WORK/pytest.txt"; then
        echo "test_runs_on_cuda did not pass"
        return 1
    fi
    return "$rc"
}

fm_throughput() {
    local results=benchmarks/results/extract.json rc
    [ -f "$results" ] && cp "$results" "$WORK/extract.json.before"
    # shellcheck disable=SC2086
    $PY benchmarks/extract.py --device "$DEVICE" --out "$WORK/extract" --no-preprocessing --write $FM_ARGS
    rc=$?
    [ -f "$results" ] && cp "$results" "$OUT/extract.json"
    [ -f "$WORK/extract.json.before" ] && cp "$WORK/extract.json.before" "$results"  # the checkout stays as it was
    return "$rc"
}

fuse_end_to_end() {
    local cohort=$WORK/cohort features=$WORK/features run=$WORK/run t
    $PY -m fusecpath synth --out "$cohort" --slides "$FUSE_SLIDES" || return
    t=$SECONDS
    $PY -c "$PEAK" extract "$cohort" --fms "$BUILTIN" --out "$features" --device "$DEVICE" \
        --workers "$WORKERS" --batch-size 256 || return
    echo "extract wall time: $((SECONDS - t)) s"
    t=$SECONDS
    $PY -c "$PEAK" fuse --fms "$BUILTIN" --features "$features" --labels "$cohort/labels.csv" \
        --task classification --out "$run" --device "$DEVICE" --folds 3 --epochs "$EPOCHS" --clusters 16 \
        --per-cluster 4 --bags 8 --hidden 128 --optimizer adamw --lr 1e-3 --batch-size 32 || return
    echo "fuse wall time: $((SECONDS - t)) s"
    cp "$run/metrics.json" "$OUT/metrics.json"
}

main() {
    FAILED=0
    rm -rf "$WORK" && mkdir -p "$WORK"
    if compgen -G ".whl/*.whl" >/dev/null; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl || return 99
        PYTHONPATH=$PWD:$(printf '%s:' "$PWD"/plugins/*/)/tmp/site
        export PYTHONPATH
    fi
    step 1 "GPU, torch, CUDA" versions
    step 2 "CUDA-relevant tests" tests
    step 3 "extraction throughput: reads, trivial encoders, ViT-L bf16 model vs extraction" fm_throughput
    step 4 "extract + fuse --device $DEVICE on a synthetic cohort" fuse_end_to_end
    echo
    echo "== done: $FAILED step(s) failed, $SECONDS s =="
    return "$FAILED"
}

mkdir -p "$OUT"
main 2>&1 | tee "$OUT/log"
