#!/usr/bin/env bash
# A real single-node Slurm cluster for the tests, private to one directory: its own munge daemon (key, socket),
# slurmctld and slurmd (Debian's slurm-wlm), on free ports, with state, spool and logs under DIR. Nothing under
# /etc is read or written: every Slurm command finds the cluster through SLURM_CONF=DIR/slurm.conf (DIR/env.sh).
#
#   mini_cluster.sh start DIR [CPUS] [GPUS]
#                                      start the daemons, wait until the node is idle; CPUS (8) is declared to
#                                      Slurm whatever the machine has (SlurmdParameters=config_overrides), and so
#                                      are GPUS (8) GPU GRES without device files, so that the job scripts' GPU
#                                      requests (#SBATCH --gpus-per-node) are granted on a machine without GPUs
#   mini_cluster.sh stop DIR           stop them (also what `start` does to a cluster left running in DIR)
#   . DIR/env.sh                       then sbatch / srun / squeue / scontrol talk to this cluster
#
# Needs root (slurmd runs jobs as their user) and the packages slurm-wlm and munge.
set -euo pipefail
cmd=${1:?usage: mini_cluster.sh start|stop DIR [CPUS] [GPUS]}
dir=${2:?usage: mini_cluster.sh start|stop DIR [CPUS] [GPUS]}
cpus=${3:-8}
gpus=${4:-8}

stop_cluster() {
  for daemon in slurmd slurmctld munged; do
    local pidfile="$dir/$daemon.pid"
    [ -f "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

free_port() {  # a TCP port nobody listens on, in a range away from Slurm's defaults
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 40000)
    ok = True
    for q in (p, p + 1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        s.close()
    if ok:
        print(p)
        break
PY
}

case "$cmd" in
  stop) stop_cluster; exit 0 ;;
  start) ;;
  *) echo "mini_cluster.sh: unknown command $cmd (start or stop)" >&2; exit 2 ;;
esac

for tool in munged mungekey slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null || { echo "mini_cluster.sh: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "mini_cluster.sh: needs root (slurmd)" >&2; exit 2; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
stop_cluster
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir/munge"

# munge: a fresh key, the daemon on a private socket.
[ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null
chmod 600 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

host=$(hostname -s)
port=$(free_port)
mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
cat > "$dir/slurm.conf" <<CONF
# Written by regression/slurm/mini_cluster.sh: one node, no accounting, no cgroups.
ClusterName=slimetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=20
JobRequeue=1
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# Stand-in GPU device files: character devices like /dev/null (1, 3), since Slurm wants device nodes; nothing opens
# them, and with task/none Slurm only puts their indices in CUDA_VISIBLE_DEVICES.
mkdir -p "$dir/dev"
for ((g = 0; g < gpus; g++)); do [ -c "$dir/dev/gpu$g" ] || mknod "$dir/dev/gpu$g" c 1 3; done
cat > "$dir/gres.conf" <<CONF
AutoDetect=off
NodeName=$host Name=gpu File=$dir/dev/gpu[0-$((gpus - 1))]
CONF
cat > "$dir/env.sh" <<ENV
export SLURM_CONF=$dir/slurm.conf
ENV
export SLURM_CONF=$dir/slurm.conf

slurmctld -f "$SLURM_CONF" -c  # -c: a clean start (no jobs or node states of an earlier run in DIR)
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 150); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1)
  [ "$state" = idle ] && { echo "mini_cluster: node $host idle ($cpus CPUs, $gpus GPU GRES), SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.2
done
echo "mini_cluster.sh: the node did not become idle (state: ${state:-none}); logs:" >&2
for f in slurmctld slurmd munged; do tail -n 20 "$dir/log/$f.log" >&2; done
exit 1
