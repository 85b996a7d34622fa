#!/bin/sh
# slurm_e2e.sh - sharded verify under a real Slurm on this machine (CI; needs root).
#
#   sh tests/slurm_e2e.sh [BUILD_DIR]      (default: build; glmq must be built there)
#
# Installs Debian's slurm-wlm and munge when sbatch is missing, writes a one-node slurm.conf
# (localhost, this machine's CPUs, proctrack/linuxproc, task/none, no cgroups, no accounting,
# ports 16817/16818, every state and log file under a temporary directory), starts munged,
# slurmctld and slurmd, and then does what samples/slurm/README.md shows: an array job of N = 3
# shards of samples/slurm/verify-array.sbatch over samples/glm2-tiny (INT4 against the
# checkpoint) and samples/slurm/merge.sbatch as a job depending on it with afterok. It checks
# that the merge job completed with exit code 0 under passing thresholds, that a second merge
# job with a threshold that cannot hold ends with exit code 3, and that the merged report equals
# the report of a single `glmq verify` process apart from its timing and shard count. Everything
# it started is stopped by process id and the temporary directory removed on exit.
# Not root: prints a note and exits 0 (skipped). Not part of ctest (it needs daemons).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
glmq=$build/glmq
n=3

if [ "$(id -u)" != 0 ]; then
    echo "slurm_e2e: skipped (needs root to install and start slurm-wlm and munge)"
    exit 0
fi
[ -x "$glmq" ] || { echo "slurm_e2e: no $glmq; build first" >&2; exit 1; }

if ! command -v sbatch >/dev/null 2>&1 || ! command -v slurmctld >/dev/null 2>&1 ||
    ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    echo "slurm_e2e: installing slurm-wlm and munge (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

tmp=$(mktemp -d /tmp/glmq-slurm.XXXXXX)
chmod 755 "$tmp"
pids=""
munge_pid=""
cleanup() {
    rc=$?
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    done
    if [ -n "$munge_pid" ]; then kill "$munge_pid" 2>/dev/null || true; fi
    if [ $rc -ne 0 ]; then
        for f in "$tmp"/*.log "$tmp"/run/*.out; do
            [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }
        done
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT INT TERM

# munge: a key of our own and a daemon on a socket of our own (a system munged is left alone)
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool" "$tmp/run"
chmod 700 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$tmp/munge/munge.key"
sock=$tmp/munge/munge.socket
munged --force --key-file="$tmp/munge/munge.key" --socket="$sock" \
    --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munged.log" \
    --seed-file="$tmp/munge/munged.seed"
i=0
while [ ! -s "$tmp/munge/munged.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
munge_pid=$(cat "$tmp/munge/munged.pid")

cpus=$(nproc)
cat >"$tmp/slurm.conf" <<EOF
ClusterName=glmqci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=30 State=UP
EOF
export SLURM_CONF="$tmp/slurm.conf"

slurmctld -D -i -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
pids="$pids $!"
slurmd -D -N localhost -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
pids="$pids $!"
i=0
until sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; do
    i=$((i + 1))
    if [ $i -gt 60 ]; then
        echo "slurm_e2e: the node did not come up" >&2
        sinfo 2>&1 || true
        exit 1
    fi
    sleep 1
done
echo "slurm_e2e: slurmctld and slurmd up ($(sinfo -h -o '%P %D %T %c'))"

# the inputs: an INT4 pack of the sample against its checkpoint (absolute paths: the report
# names them, and the single-process run below uses the same strings)
quant=$tmp/run/glm2-tiny-int4.glmq
ref=$root/samples/glm2-tiny/st
text=$root/samples/text/eval_en.txt
"$glmq" convert "$ref" -o "$quant" --type int4 --quiet >/dev/null
out=$tmp/run/out
gate="--max-ppl-ratio 1.05 --max-kld 0.05 --max-kld-p99 0.5 --min-top1 0.8"
export GLMQ="$glmq"

jid=$(sbatch --parsable --chdir="$tmp/run" --array=0-$((n - 1)) --cpus-per-task=1 \
    samples/slurm/verify-array.sbatch "$quant" "$ref" "$text" "$out" --ctx 64)
# shellcheck disable=SC2086
mid=$(sbatch --parsable --chdir="$tmp/run" --dependency=afterok:"$jid" \
    samples/slurm/merge.sbatch "$out" $n $gate)
# the same merge with a threshold that cannot hold: the job must end with exit code 3
fid=$(sbatch --parsable --chdir="$tmp/run" --dependency=afterok:"$mid" \
    --export=ALL,GLMQ_REPORT="$tmp/run/fail" --output="$tmp/run/fail-%j.out" \
    samples/slurm/merge.sbatch "$out" $n --max-kld 1e-12)
echo "slurm_e2e: array job $jid ($n shards), merge job $mid, failing-gate merge job $fid"

state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
exitcode() { scontrol show job "$1" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' | head -n 1; }
i=0
while :; do
    s=$(state "$fid")
    case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
    if squeue -h -j "$fid" -o '%r' 2>/dev/null | grep -q DependencyNeverSatisfied; then
        echo "slurm_e2e: a dependency failed" >&2
        squeue 2>&1
        scontrol show job "$jid" 2>&1 | grep -E 'JobState|ExitCode' || true
        exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 240 ]; then
        echo "slurm_e2e: timed out waiting for the jobs" >&2
        squeue 2>&1
        exit 1
    fi
    sleep 1
done

ok=1
for t in $(seq 0 $((n - 1))); do
    st=$(state "${jid}_$t")
    echo "slurm_e2e: shard task ${jid}_$t: $st exit $(exitcode "${jid}_$t")"
    [ "$st" = COMPLETED ] || ok=0
done
echo "slurm_e2e: merge job $mid: $(state "$mid") exit $(exitcode "$mid")"
echo "slurm_e2e: failing-gate merge job $fid: $(state "$fid") exit $(exitcode "$fid")"
[ "$(state "$mid")" = COMPLETED ] && [ "$(exitcode "$mid")" = 0:0 ] || ok=0
[ "$(state "$fid")" = FAILED ] && [ "$(exitcode "$fid")" = 3:0 ] || ok=0
grep -q PASS "$tmp/run/glmq-merge-$mid.out" || ok=0
grep -q FAIL "$tmp/run/fail-$fid.out" || ok=0
grep -q '"verdict":.*"fail"' "$tmp/run/fail.json" || ok=0
[ $ok = 1 ] || { echo "slurm_e2e: FAILED: unexpected job states or gate verdicts" >&2; exit 1; }

# the merged report against one process (timing and shard count aside)
set +e
# shellcheck disable=SC2086
"$glmq" verify "$quant" --ref "$ref" --text "$text" --ctx 64 --quiet $gate \
    --report "$tmp/run/single.json"
rc=$?
set -e
[ $rc = 0 ] || { echo "slurm_e2e: the single-process verify exited $rc" >&2; exit 1; }
strip() { grep -v -e '"seconds":' -e '"shards":' "$1"; }
strip "$tmp/run/single.json" >"$tmp/run/single.cmp"
strip "$out/report.json" >"$tmp/run/merged.cmp"
if ! cmp -s "$tmp/run/single.cmp" "$tmp/run/merged.cmp"; then
    echo "slurm_e2e: FAILED: the merged report differs from the single-process report" >&2
    diff "$tmp/run/single.cmp" "$tmp/run/merged.cmp" >&2 || true
    exit 1
fi
grep -q '"shards":.*3' "$out/report.json" || { echo "slurm_e2e: no shard count" >&2; exit 1; }
echo "slurm_e2e: ok: $n shards under Slurm, gate passed (exit 0) and failed (exit 3) as set," \
    "merged report equals the single-process report"
