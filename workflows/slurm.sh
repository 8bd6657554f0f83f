#!/usr/bin/env bash
# hybridmd as one MPI job on a SLURM cluster (no modules: the project's .venv brings MPI along,
# mpi4py and the mpich wheel, `pip install -e ".[mpi]" mpich`).
#
#   sbatch workflows/slurm.sh run INPUT.yaml                           # the hybrid driver
#   sbatch workflows/slurm.sh simulate inputs/ethanol-replicas.yaml    # 4 replicas, 1 a rank
#
# What the ranks do:
# - `simulate` with `replicas: N`: rank r runs replica r (and r + P, r + 2P, ... when the P
#   ranks are fewer than N; P must divide N), with seed dynamics.seed + k, writing to
#   <output.directory>/replica-<k>. The ranks never talk to each other.
# - `run`: the adaptive hybrid loop. Rank 0 drives it (simulates segments, forecasts, decides),
#   rank 1 is the interpolator worker (writes the fine trajectory as committed frames arrive),
#   ranks 2 .. N-1 are monitors that re-simulate sampled ML segments (mpi4py.futures). With the
#   4 tasks below: 1 driver, 1 interpolator, 2 monitors.
# - Any rank that raises logs its error with its rank number and aborts the whole job
#   (hybridmd.parallel.abort_on_error), so a failure never idles the allocation until --time.
#SBATCH --job-name=hybridmd
#SBATCH --nodes=1
#SBATCH --ntasks=4
#SBATCH --cpus-per-task=1
#SBATCH --time=02:00:00
#SBATCH --output=slurm-%j.out
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: sbatch workflows/slurm.sh run|simulate INPUT.yaml" >&2
    exit 2
fi
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"   # inputs and outputs relative to the project
source .venv/bin/activate
export OMP_NUM_THREADS=1   # one core per rank: numpy/torch threads would oversubscribe them

# Inside an allocation MPICH's mpiexec starts the ranks through SLURM itself; with a cluster
# MPI that mpi4py was built against, `srun hybridmd "$1" "$2"` does the same.
mpiexec -n "${SLURM_NTASKS:-1}" hybridmd -q "$1" "$2"
