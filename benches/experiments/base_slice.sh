#!/bin/sh
# Does the service's tail beside SCHED_IDLE hogs follow the kernel's base
# slice (EEVDF) or the platform? The fidelity checks with the base slice at
# 0.3 ms, then at 1.4 ms without RUN_TO_PARITY (docs/guest.md, "Verdict").
# Run in a guest from the workspace root, after
# `cargo build --release -p rseq-slice-benches --bin fidelity`:
#   cargo xtask guest --qemu bounded --cpus 2 --no-rseq-debug -- sh benches/experiments/base_slice.sh
set -eu
F=target/release/fidelity
S=/sys/kernel/debug/sched
echo 300000 > $S/base_slice_ns
echo "== base_slice_ns $(cat $S/base_slice_ns)"
$F --secs 1 --mode 'base slice 0.3 ms' || true
echo 1400000 > $S/base_slice_ns
echo NO_RUN_TO_PARITY > $S/features
echo "== NO_RUN_TO_PARITY, base_slice_ns $(cat $S/base_slice_ns)"
$F --secs 1 --mode 'NO_RUN_TO_PARITY' || true
