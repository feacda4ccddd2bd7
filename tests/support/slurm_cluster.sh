#!/usr/bin/env bash
# cluster.sh - a throw-away one-node SLURM cluster (Debian 12, slurm-wlm 22.05) without systemd.
#
#   cluster.sh install            apt-get install the packages that are missing
#   cluster.sh up STATE_DIR       start munge, MariaDB, slurmdbd, slurmctld, slurmd (all in STATE_DIR)
#   cluster.sh down STATE_DIR     stop all of them, remove anything global; idempotent
#   cluster.sh status [STATE_DIR] sinfo + squeue
#   cluster.sh env STATE_DIR      print the export line for clients
#
# Config: STATE_DIR/etc/slurm.conf. `up` also symlinks /etc/slurm/slurm.conf to it (default
# CLUSTER_GLOBAL_CONF=1) because SLURM_CONF alone is not enough for Snakemake: the jobstep plugin
# (0.6.1) strips every SLURM_* variable but a few ids before it runs the inner `srun`, which then
# falls back to /etc/slurm/slurm.conf (or configless DNS SRV) and dies with
# "srun: fatal: Could not establish a configuration source". CLUSTER_GLOBAL_CONF=0 skips the
# link (then export SLURM_CONF, printed by `up`; enough for sbatch/squeue/sacct/scontrol).
# A pre-existing /etc/slurm/slurm.conf is moved into STATE_DIR and put back by `down`; `down`
# removes the link and /etc/slurm if `up` created it. A leftover slurm.conf without a
# controller makes every Snakemake start ~9 s slower, so always run `down`.
# CLUSTER_EXTRA_CONF (multi-line string) is appended to slurm.conf, e.g.
#   CLUSTER_EXTRA_CONF='EnforcePartLimits=ALL' cluster.sh up /tmp/sl
# Everything listens on 127.0.0.1 / unix sockets only: ports 6817 (slurmctld), 6818 (slurmd),
# 6819 (slurmdbd) must be free. CLUSTER_NAME (default sarchat-test), CLUSTER_ACCOUNT (sarchat).
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
CLUSTER_NAME=${CLUSTER_NAME:-sarchat-test}
CLUSTER_ACCOUNT=${CLUSTER_ACCOUNT:-sarchat}
MARKER=.sarchat-slurm-cluster
GLOBAL_CONF=/etc/slurm/slurm.conf

log() { printf '[cluster.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

state_dir() {
  [[ -n ${1:-} ]] || die "STATE_DIR argument missing"
  local d
  d=$(realpath -m -- "$1")
  case "$d" in /|/etc|/usr|/var|/root|/home|/tmp|/work) die "refusing STATE_DIR=$d";; esac
  printf '%s' "$d"
}

# ---------------------------------------------------------------------------------- install
cmd_install() {
  local t0 missing=() p policy_created=0
  t0=$(now)
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "install: all present (${PKGS[*]}); nothing done ($(elapsed "$t0") s)"
    return 0
  fi
  log "install: missing: ${missing[*]}"
  # never let the packages' postinst start daemons (no systemd here; we start our own)
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
    policy_created=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } || rc=$?
  ((policy_created)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get failed (rc=$rc)"
  log "install: installed ${missing[*]} in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------------------------- helpers
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# is PID part of the cluster in STATE_DIR sd? daemons carry the marker env set by `up`;
# slurmstepd wipes its environment, so it is known by its binary plus an fd/cwd in sd; job
# processes carry SLURM_JOB_ID and our SLURM_CLUSTER_NAME
is_ours() { # sd pid
  local sd=$1 p=$2 env exe
  env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || return 1
  grep -qxF "SARCHAT_SLURM_STATE=$sd" <<<"$env" && return 0
  if grep -qxF "SLURM_CLUSTER_NAME=$CLUSTER_NAME" <<<"$env" && grep -q '^SLURM_JOB_ID=' <<<"$env"; then
    return 0
  fi
  exe=$(readlink "/proc/$p/exe" 2>/dev/null) || return 1
  if [[ ${exe##*/} == slurmstepd* ]]; then
    [[ $(readlink "/proc/$p/cwd" 2>/dev/null) == "$sd"* ]] && return 0
    ls -l "/proc/$p/fd" 2>/dev/null | grep -qF -- "-> $sd/" && return 0
  fi
  return 1
}

# pids of everything that belongs to the cluster, never this script or its ancestors
marked_pids() {
  local sd=$1 p anc=" " q
  q=$$
  while [[ -n $q && $q != 0 && $q != 1 ]]; do
    anc+="$q "
    q=$(awk '/^PPid:/{print $2}' "/proc/$q/status" 2>/dev/null || true)
  done
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $anc == *" $p "* ]] && continue
    is_ours "$sd" "$p" && echo "$p"
  done
  return 0
}

# stop a group of daemons together: TERM all, wait up to 10 s, then KILL the rest
stop_group() { # sd name...
  local sd=$1 name pid f i left; shift
  local -A pids=()
  for name in "$@"; do
    f=$sd/pid/$name.pid
    [[ -f $f ]] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    # only touch it if it really is ours (carries the marker set by `up`)
    if pid_alive "$pid" && tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "SARCHAT_SLURM_STATE=$sd"; then
      pids[$name]=$pid
      kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  for i in $(seq 1 100); do
    left=0
    for name in "${!pids[@]}"; do pid_alive "${pids[$name]}" && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for name in "${!pids[@]}"; do
    if pid_alive "${pids[$name]}"; then
      kill -KILL "${pids[$name]}" 2>/dev/null || true; log "down: killed $name (${pids[$name]})"
    else
      log "down: stopped $name (${pids[$name]})"
    fi
  done
}

# start a daemon in the foreground of its own session, detached from us: stdin /dev/null,
# stdout/stderr to STATE_DIR/log/NAME.out,
# no inherited fds (so `cluster.sh up | tee` or a caller's pipe never hangs). Its pid goes to
# STATE_DIR/pid/NAME.pid, which lets `up` notice a daemon that dies at once.
launch() { # name dir cmd...
  local name=$1 dir=$2; shift 2
  (
    cd "$dir"
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null || true
    done
    exec setsid "$@" </dev/null >>"$SD/log/$name.out" 2>&1
  ) &
  echo $! >"$SD/pid/$name.pid"
  disown $! 2>/dev/null || true
}

# wait until "$@" succeeds; fail early if daemon NAME has died
wait_daemon() { # name seconds cmd...
  local name=$1 limit=$2 t0 pid; shift 2
  pid=$(cat "$SD/pid/$name.pid")
  t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    pid_alive "$pid" || die "$name died at start (see $SD/log/)"
    (( $(date +%s) - t0 >= limit )) && die "$name did not answer within $limit s"
    sleep 0.2
  done
  log "up: $name ready ($(elapsed "$T0") s)"
}

# ---------------------------------------------------------------------------------- down
cmd_down() {
  local sd t0 f pid name left
  sd=$(state_dir "${1:-}")
  t0=$(now)
  if [[ -f $sd/etc/slurm.conf ]] && [[ -f $sd/pid/slurmctld.pid ]] && pid_alive "$(cat "$sd/pid/slurmctld.pid")"; then
    # cancel all jobs first so that slurmstepd and job processes go away cleanly
    export SLURM_CONF=$sd/etc/slurm.conf
    timeout 10 scancel --full -u root 2>/dev/null || true
    for i in $(seq 1 75); do
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.2
    done
  fi
  # order: node + controller, then accounting, then database + munge
  stop_group "$sd" slurmd slurmctld
  stop_group "$sd" slurmdbd
  stop_group "$sd" mariadb munged
  # stragglers: slurmstepd, job processes, mariadb children ... (all carry the marker)
  for i in 1 2 3; do
    left=$(marked_pids "$sd")
    [[ -z $left ]] && break
    for pid in $left; do
      log "down: straggler $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-80)"
      kill -KILL "$pid" 2>/dev/null || true
    done
    sleep 0.5
  done
  left=$(marked_pids "$sd")
  # global config file: remove only if it is the symlink that we made; restore a backup
  if [[ -L $GLOBAL_CONF ]] && [[ $(readlink "$GLOBAL_CONF") == "$sd/etc/slurm.conf" ]]; then
    rm -f "$GLOBAL_CONF"; log "down: removed $GLOBAL_CONF"
  fi
  if [[ -f $sd/global-backup/slurm.conf ]] && [[ ! -e $GLOBAL_CONF && ! -L $GLOBAL_CONF ]]; then
    mv "$sd/global-backup/slurm.conf" "$GLOBAL_CONF"; log "down: restored the earlier $GLOBAL_CONF"
  fi
  if [[ -f $sd/global-dir-created ]]; then
    rmdir /etc/slurm 2>/dev/null && log "down: removed /etc/slurm" || true
    rm -f "$sd/global-dir-created"
  fi
  [[ -z $left ]] || die "processes left: $left"
  log "down: nothing left of $sd ($(elapsed "$t0") s)"
}

# ---------------------------------------------------------------------------------- up
write_configs() {
  local sd=$1 ncpu mem hw
  # node description from slurmd itself (CPUs, sockets, cores, threads, memory) so that the
  # node never gets drained for a mismatch and never claims more CPUs than the machine has
  hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')
  ncpu=$(nproc)
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  # leave a little memory headroom (slurmd's measurement wobbles by a few MB)
  mem=$((mem * 95 / 100))
  hw=$(sed -e "s/RealMemory=[0-9]*/RealMemory=$mem/" <<<"$hw")
  grep -q "CPUs=$ncpu" <<<"$hw" || die "slurmd -C ($hw) disagrees with nproc=$ncpu"

  cat >"$sd/etc/slurm.conf" <<EOF
# generated by cluster.sh for $sd
ClusterName=$CLUSTER_NAME
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
AuthInfo=socket=$sd/run/munge.socket
CredType=cred/munge
StateSaveLocation=$sd/state/ctld
SlurmdSpoolDir=$sd/state/d
SlurmctldPidFile=$sd/run/slurmctld.pid
SlurmdPidFile=$sd/run/slurmd.pid
SlurmctldLogFile=$sd/log/slurmctld.log
SlurmdLogFile=$sd/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$sd/etc/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# default batch_sched_delay=3 delays a job submitted soon after another by up to 3 s
SchedulerParameters=batch_sched_delay=0
# without it a job with no --mem gets the whole node's memory (CR_Core_Memory) and jobs
# run one at a time
DefMemPerCPU=1024
KillWait=2
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# the munge socket used towards slurmdbd is taken from here, not from AuthInfo
AccountingStoragePass=$sd/run/munge.socket
AccountingStorageTRES=gres/gpu,gres/gpu:a100
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost $hw Gres=gpu:a100:2 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost Default=NO MaxTime=INFINITE State=UP
${CLUSTER_EXTRA_CONF:-}
EOF
  : >"$sd/etc/plugstack.conf"
  cat >"$sd/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=localhost Name=gpu Type=a100 File=$sd/dev/nvidia[0-1]
EOF
  cat >"$sd/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$sd/run/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
CommunicationParameters=NoInAddrAny
SlurmUser=root
DebugLevel=info
LogFile=$sd/log/slurmdbd.log
PidFile=$sd/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$sd/etc/slurmdbd.conf"
}

wait_for() { # seconds description command...
  local limit=$1 what=$2 t0; shift 2
  t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) - t0 >= limit )) && return 1
    sleep 0.2
  done
  return 0
}

show_logs() {
  local sd=$1 f
  for f in "$sd"/log/*; do
    if [[ -s $f ]]; then echo "--- $f" >&2; tail -n 15 "$f" >&2; fi
  done
  return 0
}

node_idle() { [[ $(sinfo -h -n localhost -p cpu -o %t 2>/dev/null) == idle ]]; }

cmd_up() {
  local sd t0 p
  sd=$(state_dir "${1:-}")
  t0=$(now); T0=$t0; SD=$sd
  for p in slurmctld slurmd slurmdbd munged mariadbd sacctmgr mariadb-install-db; do
    command -v "$p" >/dev/null || [[ -x /usr/sbin/$p ]] || die "$p missing: run '$0 install' first"
  done
  # from scratch: stop whatever an earlier `up` left in this dir, then wipe it
  if [[ -e $sd ]]; then
    if [[ -f $sd/$MARKER ]]; then
      cmd_down "$sd"
      find "$sd" -mindepth 1 -delete
    elif [[ -n $(ls -A "$sd") ]]; then
      die "$sd exists, is not empty and was not made by cluster.sh"
    fi
  fi
  for p in 6817 6818 6819; do port_busy $p && die "port $p already in use (another cluster running?)"; done
  mkdir -p "$sd"/{etc,run,pid,log,state/ctld,state/d,munge,mysql/data,dev}
  chmod 755 "$sd"
  : >"$sd/$MARKER"
  export SARCHAT_SLURM_STATE=$sd        # marks every process we start (see `down`)
  export SLURM_CONF=$sd/etc/slurm.conf  # daemons and clients read this, not /etc/slurm
  export MYSQL_UNIX_PORT=$sd/run/mysqld.sock
  UP_OK=0
  trap 'set +e; if [[ $UP_OK == 0 ]]; then log "up failed; logs:"; show_logs "$sd"; cmd_down "$sd" || true; fi' EXIT

  # fake GPUs: real character devices, otherwise slurmd ignores them
  mknod "$sd/dev/nvidia0" c 195 0
  mknod "$sd/dev/nvidia1" c 195 1
  write_configs "$sd"

  # munge (as root: every file it touches stays in STATE_DIR and root-owned)
  chmod 700 "$sd/munge"
  if [[ -r /etc/munge/munge.key ]]; then cp /etc/munge/munge.key "$sd/munge/munge.key"
  else dd if=/dev/urandom of="$sd/munge/munge.key" bs=1 count=1024 status=none; fi
  chmod 400 "$sd/munge/munge.key"
  launch munged "$sd" /usr/sbin/munged --foreground --key-file="$sd/munge/munge.key" \
    --socket="$sd/run/munge.socket" --pid-file="$sd/run/munged.pid" \
    --seed-file="$sd/munge/munged.seed" --num-threads=4
  wait_daemon munged 10 munge -S "$sd/run/munge.socket" -n

  # MariaDB on a unix socket only
  mariadb-install-db --no-defaults --datadir="$sd/mysql/data" --user=root \
    --auth-root-authentication-method=socket --skip-test-db >"$sd/log/mariadb-install.log" 2>&1 \
    || { cat "$sd/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
  launch mariadb "$sd/mysql" /usr/sbin/mariadbd --no-defaults --user=root --datadir="$sd/mysql/data" \
    --socket="$MYSQL_UNIX_PORT" --skip-networking --pid-file="$sd/mysql/mariadbd.pid" \
    --log-error="$sd/log/mariadb.log" --innodb-buffer-pool-size=64M \
    --innodb-lock-wait-timeout=900 --innodb-log-file-size=32M
  wait_daemon mariadb 30 mariadb-admin --no-defaults --socket="$MYSQL_UNIX_PORT" ping

  # slurmdbd (reads slurmdbd.conf next to SLURM_CONF; MYSQL_UNIX_PORT picks the socket)
  launch slurmdbd "$sd" /usr/sbin/slurmdbd -D
  wait_daemon slurmdbd 30 sacctmgr -n -P list cluster
  sacctmgr -i -Q add cluster "$CLUSTER_NAME" >/dev/null 2>&1 || true
  sacctmgr -i -Q add account "$CLUSTER_ACCOUNT" Cluster="$CLUSTER_NAME" Description=sarchat Organization=sarchat >/dev/null
  sacctmgr -i -Q add user root Account="$CLUSTER_ACCOUNT" Cluster="$CLUSTER_NAME" >/dev/null

  # controller, then the node
  launch slurmctld "$sd" /usr/sbin/slurmctld -D
  wait_daemon slurmctld 30 scontrol ping
  launch slurmd "$sd" /usr/sbin/slurmd -D -N localhost
  wait_daemon slurmd 60 node_idle
  wait_for 30 sacct sacct -n -X -S now || die "sacct does not answer"

  if [[ ${CLUSTER_GLOBAL_CONF:-1} == 1 ]]; then
    [[ -d /etc/slurm ]] || { mkdir -p /etc/slurm; : >"$sd/global-dir-created"; }
    if [[ -e $GLOBAL_CONF || -L $GLOBAL_CONF ]]; then
      mkdir -p "$sd/global-backup"
      mv "$GLOBAL_CONF" "$sd/global-backup/slurm.conf"
      log "up: moved the existing $GLOBAL_CONF to $sd/global-backup/ (down puts it back)"
    fi
    ln -s "$SLURM_CONF" "$GLOBAL_CONF"; log "up: linked $GLOBAL_CONF -> $SLURM_CONF"
  fi
  UP_OK=1
  log "up: cluster $CLUSTER_NAME ready in $(elapsed "$t0") s"
  echo "export SLURM_CONF=$SLURM_CONF"
}

cmd_status() {
  if [[ -n ${1:-} ]]; then export SLURM_CONF; SLURM_CONF=$(state_dir "$1")/etc/slurm.conf; fi
  echo "SLURM_CONF=${SLURM_CONF:-<unset: /etc/slurm/slurm.conf>}"
  timeout 10 sinfo -N -o '%N %P %t %c %m %G' || echo "sinfo failed"
  timeout 10 squeue -o '%.8i %.9P %.20j %.8T %.10M %.10l %R' || echo "squeue failed"
}

case ${1:-} in
  install) cmd_install ;;
  up) cmd_up "${2:-}" ;;
  down) cmd_down "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  env) echo "export SLURM_CONF=$(state_dir "${2:-}")/etc/slurm.conf" ;;
  *) echo "usage: $0 install | up STATE_DIR | down STATE_DIR | status [STATE_DIR] | env STATE_DIR" >&2; exit 2 ;;
esac
