#!/usr/bin/env bash
# Throwaway loopback servers for the DVC remote tests: S3 (moto server) and SSH (sshd).
#
#   .ci/remotes.sh install            # apt-get openssh-server/-client if missing (root; no-op when present)
#   .ci/remotes.sh start  [STATE_DIR] # start both, write STATE_DIR/remotes.env, print its path
#   .ci/remotes.sh stop   [STATE_DIR] # stop both (idempotent), remove remotes.env
#   .ci/remotes.sh status [STATE_DIR] # exit 0 if both are up
#
# STATE_DIR defaults to $TICKETBENCH_REMOTES_DIR, else ${TMPDIR:-/tmp}/ticketbench-remotes.
# Everything secret (host key, client key, S3 access key) is generated at start into STATE_DIR
# (mode 700) and is wiped by the next start; nothing goes into the repository, /etc/ssh or ~/.ssh.
#
# Knobs (environment):
#   TICKETBENCH_S3_PORT   (5555)         moto server port on 127.0.0.1
#   TICKETBENCH_S3_BUCKET (ticketbench)  bucket created at start
#   TICKETBENCH_S3_AUTH   (1)            1: moto enforces IAM (a generated access key is the only
#                                        valid one, wrong keys get 403); 0: any credentials accepted
#   TICKETBENCH_SSH_PORT  (2222)         sshd port on 127.0.0.1
#   TICKETBENCH_PYTHON    (.venv/bin/python of this repo)
#
# The SSH login user is the user running `start` (root in CI: PermitRootLogin prohibit-password,
# key-only). No system user is created. The remote storage directory lives in STATE_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${TICKETBENCH_PYTHON:-$ROOT/.venv/bin/python}"
S3_PORT="${TICKETBENCH_S3_PORT:-5555}"
SSH_PORT="${TICKETBENCH_SSH_PORT:-2222}"
BUCKET="${TICKETBENCH_S3_BUCKET:-ticketbench}"
S3_AUTH="${TICKETBENCH_S3_AUTH:-1}"
REGION="us-east-1"
SSHD=/usr/sbin/sshd
MARKER=.ticketbench-remotes

die() { echo "remotes.sh: error: $*" >&2; exit 1; }
log() { echo "remotes.sh: $*" >&2; }

state_dir() {
    local d="${1:-${TICKETBENCH_REMOTES_DIR:-${TMPDIR:-/tmp}/ticketbench-remotes}}"
    realpath -m -- "$d"
}

# ---------------------------------------------------------------- install
cmd_install() {
    local missing=()
    dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | grep -q "ok installed" || missing+=(openssh-server)
    dpkg-query -W -f='${Status}' openssh-client 2>/dev/null | grep -q "ok installed" || missing+=(openssh-client)
    if [ ${#missing[@]} -eq 0 ] && [ -x "$SSHD" ] && command -v ssh-keygen >/dev/null && command -v ssh >/dev/null; then
        log "openssh-server and openssh-client already installed"
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${missing[*]}"
        sudo="sudo"
    fi
    [ ${#missing[@]} -gt 0 ] || missing=(openssh-server openssh-client)
    local had_system_sshd=0
    [ -s /run/sshd.pid ] && had_system_sshd=1
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600)
    # Refresh the package lists only when apt does not know the package yet.
    if ! apt-cache policy openssh-server 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $sudo "${apt[@]}" update
    fi
    log "apt-get install ${missing[*]} (also pulls openssh-sftp-server)"
    $sudo "${apt[@]}" install --no-install-recommends openssh-server openssh-client
    # Without a policy-rc.d the maintainer script starts a system sshd on port 22; we do not want it.
    if [ "$had_system_sshd" = 0 ] && [ -s /run/sshd.pid ]; then
        log "stopping the system sshd the package started (port 22)"
        $sudo kill "$(cat /run/sshd.pid)" 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------- helpers
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A zombie (killed, not yet reaped by init) counts as dead.
pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

read_pid() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }

# True if pid $1's command line contains $2 (guards against a recycled pid).
pid_matches() { pid_alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }

descendants() {  # all descendants of pid $1, deepest last
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$c"; descendants "$c"
    done
}

kill_tree() {  # kill_tree PID : TERM the pid and its descendants, wait up to 5 s, then KILL
    local pids=("$1") p i
    mapfile -t -O 1 pids < <(descendants "$1")
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for i in $(seq 50); do
        local alive=0
        for p in "${pids[@]}"; do pid_alive "$p" && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

ssh_probe() {  # ssh_probe STATE : one real key-based login through the server
    ssh -F /dev/null -i "$1/id_ed25519" -p "$SSH_PORT" -o BatchMode=yes -o IdentitiesOnly=yes \
        -o UserKnownHostsFile="$1/known_hosts" -o StrictHostKeyChecking=yes -o ConnectTimeout=3 \
        "$(id -un)@127.0.0.1" true </dev/null 2>>"$1/ssh-probe.log"
}

env_get() {  # env_get FILE VAR : value of `export VAR='...'` in FILE
    sed -n "s/^export $2='\\(.*\\)'\$/\\1/p" "$1" 2>/dev/null
}

both_up() {  # both_up STATE : pids alive and ports (as recorded in remotes.env) answering
    local s="$1" s3p sshp
    s3p="$(env_get "$s/remotes.env" TICKETBENCH_S3_ENDPOINT)"; s3p="${s3p##*:}"
    sshp="$(env_get "$s/remotes.env" TICKETBENCH_SSH_PORT)"
    [ -n "$s3p" ] && [ -n "$sshp" ] || return 1
    pid_matches "$(read_pid "$s/moto.pid")" moto.server && port_open "$s3p" &&
        pid_matches "$(read_pid "$s/sshd.pid")" "$s/sshd_config" && port_open "$sshp"
}

# ---------------------------------------------------------------- start
start_s3() {
    local s="$1" pid i
    [ -x "$PY" ] || die "python not found: $PY (create the venv first)"
    port_open "$S3_PORT" && die "127.0.0.1:$S3_PORT is already in use (set TICKETBENCH_S3_PORT)"
    # setsid: own session, so the server outlives this script and a Ctrl-C in the caller's terminal.
    setsid "$PY" -m moto.server -H 127.0.0.1 -p "$S3_PORT" >"$s/moto.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$s/moto.pid"
    for i in $(seq 300); do
        port_open "$S3_PORT" && break
        pid_alive "$pid" || { tail -n 20 "$s/moto.log" >&2; die "moto server exited (log: $s/moto.log)"; }
        sleep 0.1
    done
    port_open "$S3_PORT" || { tail -n 20 "$s/moto.log" >&2; die "moto server not listening after 30 s"; }
    # Bucket + (optionally) an IAM user whose key is then the only one moto accepts.
    "$PY" - "http://127.0.0.1:$S3_PORT" "$BUCKET" "$S3_AUTH" "$REGION" >"$s/s3-creds" <<'EOF'
import json, sys, time, urllib.request
import boto3, botocore.config, botocore.exceptions
ep, bucket, auth, region = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
def client(svc, key="testing", secret="testing"):
    return boto3.client(svc, endpoint_url=ep, region_name=region, aws_access_key_id=key,
                        aws_secret_access_key=secret,
                        config=botocore.config.Config(retries={"max_attempts": 1}))
for i in range(100):  # answers HTTP, not just TCP
    try:
        client("s3").list_buckets(); break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.1)
client("s3").create_bucket(Bucket=bucket)
key, secret = "testing", "testing"
if auth:
    iam = client("iam")
    iam.create_user(UserName="ticketbench-ci")
    iam.put_user_policy(UserName="ticketbench-ci", PolicyName="s3-all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    ak = iam.create_access_key(UserName="ticketbench-ci")["AccessKey"]
    key, secret = ak["AccessKeyId"], ak["SecretAccessKey"]
    # From now on every request must be signed by a known IAM key and allowed by its policy.
    # (text/plain: with urllib's default form content type Flask swallows the body)
    urllib.request.urlopen(urllib.request.Request(
        ep + "/moto-api/reset-auth", data=b"0", method="POST",
        headers={"Content-Type": "text/plain"}), timeout=10).read()
    try:
        client("s3").head_bucket(Bucket=bucket)
        sys.exit("moto did not start enforcing credentials")
    except botocore.exceptions.ClientError:
        pass
client("s3", key, secret).head_bucket(Bucket=bucket)
print(key); print(secret)
EOF
}

start_ssh() {
    local s="$1" user i
    [ -x "$SSHD" ] || die "$SSHD not found: run '.ci/remotes.sh install' first"
    command -v ssh-keygen >/dev/null && command -v ssh >/dev/null || die "ssh client missing: run '.ci/remotes.sh install'"
    port_open "$SSH_PORT" && die "127.0.0.1:$SSH_PORT is already in use (set TICKETBENCH_SSH_PORT)"
    user="$(id -un)"
    # sshd running as root insists on its privilege-separation directory.
    if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi
    ssh-keygen -q -t ed25519 -N '' -C ticketbench-host -f "$s/ssh_host_ed25519_key"
    ssh-keygen -q -t ed25519 -N '' -C ticketbench-client -f "$s/id_ed25519"
    echo "restrict $(cat "$s/id_ed25519.pub")" >"$s/authorized_keys"
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$s/ssh_host_ed25519_key.pub")" >"$s/known_hosts"
    mkdir -p "$s/ssh-storage"
    cat >"$s/sshd_config" <<EOF
# Generated by .ci/remotes.sh; loopback-only, key-only test server.
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $s/ssh_host_ed25519_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
AllowUsers $user
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# STATE_DIR usually sits under world-writable /tmp, which StrictModes rejects.
StrictModes no
UseDNS no
PrintMotd no
AllowTcpForwarding no
X11Forwarding no
MaxSessions 32
MaxStartups 64:30:128
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
    "$SSHD" -t -f "$s/sshd_config" || die "sshd rejected $s/sshd_config"
    # Daemon mode: forks, setsid()s and writes PidFile; -E sends its log to a file.
    "$SSHD" -f "$s/sshd_config" -E "$s/sshd.log" </dev/null
    for i in $(seq 100); do
        ssh_probe "$s" && return 0
        sleep 0.1
    done
    tail -n 20 "$s/sshd.log" "$s/ssh-probe.log" >&2 || true
    die "sshd did not accept the generated key on 127.0.0.1:$SSH_PORT"
}

cmd_start() {
    local s; s="$(state_dir "${1:-}")"
    if [ -f "$s/remotes.env" ] && both_up "$s"; then
        log "already running"
        echo "$s/remotes.env"
        return 0
    fi
    if [ -e "$s" ]; then
        # Only wipe a directory this script made (or an empty one).
        [ -f "$s/$MARKER" ] || [ -z "$(ls -A "$s")" ] || die "$s exists and was not made by remotes.sh"
        cmd_stop "$s" >/dev/null
        rm -rf -- "$s"
    fi
    mkdir -p -- "$s" && chmod 700 "$s" && touch "$s/$MARKER"
    # If anything below fails, do not leave half a setup running.
    CLEANUP_DIR="$s"
    trap 'cmd_stop "$CLEANUP_DIR" >/dev/null 2>&1 || true' EXIT
    start_s3 "$s"
    start_ssh "$s"
    trap - EXIT
    local key secret user
    { read -r key; read -r secret; } <"$s/s3-creds"
    user="$(id -un)"
    cat >"$s/remotes.env.tmp" <<EOF
# Generated by .ci/remotes.sh start; throwaway values, regenerated on every start.
export TICKETBENCH_REMOTES_DIR='$s'
export TICKETBENCH_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export TICKETBENCH_S3_BUCKET='$BUCKET'
export TICKETBENCH_S3_URL='s3://$BUCKET'
export AWS_ACCESS_KEY_ID='$key'
export AWS_SECRET_ACCESS_KEY='$secret'
export AWS_DEFAULT_REGION='$REGION'
export TICKETBENCH_SSH_HOST='127.0.0.1'
export TICKETBENCH_SSH_PORT='$SSH_PORT'
export TICKETBENCH_SSH_USER='$user'
export TICKETBENCH_SSH_PATH='$s/ssh-storage'
export TICKETBENCH_SSH_URL='ssh://$user@127.0.0.1:$SSH_PORT$s/ssh-storage'
export TICKETBENCH_SSH_KEY='$s/id_ed25519'
export TICKETBENCH_SSH_KNOWN_HOSTS='$s/known_hosts'
EOF
    chmod 600 "$s/remotes.env.tmp" "$s/s3-creds"
    mv "$s/remotes.env.tmp" "$s/remotes.env"
    log "S3 (moto) on http://127.0.0.1:$S3_PORT bucket '$BUCKET' (auth enforced: $S3_AUTH); SSH on 127.0.0.1:$SSH_PORT as $user"
    echo "$s/remotes.env"
}

# ---------------------------------------------------------------- stop / status
cmd_stop() {
    local s pid p; s="$(state_dir "${1:-}")"
    rm -f -- "$s/remotes.env"
    pid="$(read_pid "$s/moto.pid")"
    if pid_matches "$pid" moto.server; then kill_tree "$pid"; log "stopped moto server (pid $pid)"; fi
    pid="$(read_pid "$s/sshd.pid")"
    if pid_matches "$pid" "$s/sshd_config"; then kill_tree "$pid"; log "stopped sshd (pid $pid)"; fi
    # A listener whose pid file went missing: found by its config path, not by a generic name.
    for p in $(pgrep -f -- "-f $s/sshd_config" || true); do kill_tree "$p"; done
    rm -f -- "$s/moto.pid" "$s/sshd.pid"
    return 0
}

cmd_status() {
    local s; s="$(state_dir "${1:-}")"
    if [ -f "$s/remotes.env" ] && both_up "$s"; then echo "running: $s/remotes.env"; else echo "not running ($s)"; return 1; fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status "${2:-}" ;;
    *) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac
