#!/bin/sh
# Does a vCPU run as fast in guest time while the other vCPUs are busy?
# The same work (a shell loop pinned to vCPU 0) timed alone, then with a
# busy loop pinned to each other vCPU in turn. On hardware the times agree;
# where the vCPUs share one instruction clock (qemu's icount), k busy vCPUs
# take about k times as long (docs/guest.md, "Virtual time").
#   cargo xtask guest --qemu bounded --cpus 4 --no-rseq-debug -- sh benches/experiments/vcpu_speed.sh
set -eu
N=$(nproc)
work() { taskset -c 0 sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; }
ns() { date +%s%N; }
t0=$(ns); work; t1=$(ns)
echo "== $N vCPUs: the work alone on vCPU 0: $(( (t1 - t0) / 1000 )) µs"
c=1
while [ "$c" -lt "$N" ]; do
  taskset -c "$c" sh -c 'while :; do :; done' &
  t0=$(ns); work; t1=$(ns)
  echo "== with $c other vCPU(s) busy: $(( (t1 - t0) / 1000 )) µs"
  c=$((c + 1))
done
kill $(jobs -p) 2>/dev/null || true
