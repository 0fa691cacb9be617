#!/usr/bin/env bash
# Run every benchmark on CUDA in one go (a lent GPU machine has torch but not PML or faiss:
# wheels for them may be carried in .whl/). Results land in benchmarks/results/*-cuda.{json,md};
# with $OUT set (the device tool) they are also packed into $OUT/results-cuda.tar.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1 SM_BENCH_CUDA=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c "import torch, pytorch_metric_learning as p; print('torch', torch.__version__, 'PML', p.__version__, torch.cuda.get_device_name())"
status=0
for b in ${BENCHES:-bench_ops bench_loss bench_miner bench_sentiment_vector bench_metrics bench_train_step}; do
  echo "=== $b"
  start=$(date +%s)
  timeout "${BENCH_TIMEOUT:-150}" python3 "benchmarks/$b.py" --device cuda ${BENCH_ARGS:-} || { echo "!!! $b failed ($?)"; status=1; }
  echo "=== $b: $(( $(date +%s) - start )) s"
  # pack after each benchmark, so a run cut short still returns what it finished
  if [ -n "${OUT:-}" ]; then
    tar -cf "$OUT/results-cuda.tar" benchmarks/results/*-cuda.* 2>/dev/null || true
  fi
done
exit $status
