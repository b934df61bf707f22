#!/usr/bin/env bash
# capture_postfix_logs.sh - capture Postfix log fixtures from real Postfix instances.
#
# Strategy: start throwaway Postfix instances (each with its own config, queue and data directory,
# listening on 127.0.0.1 only, on unusual ports, never touching the system Postfix in /etc/postfix
# and never binding port 25), send mail through them with swaks so that every status of the
# vocabulary in DESIGN.md occurs, and save the logs Postfix itself wrote (maillog_file, or rsyslog
# for the syslog captures) under tests/fixtures/postfix/<capture>/. Nothing in the saved logs is
# edited. Then scripts/postfix_fixture_scenarios.py checks every scenario of
# scripts/postfix_fixture_scenarios.toml (addresses, expected per-recipient status, the lines that
# prove it) against the saved logs and writes tests/fixtures/postfix/scenarios.yaml with the
# queue IDs observed in this run. Change a scenario here and in the .toml together.
#
# Captures (see scenarios.yaml for every scenario and its expected per-recipient status):
#   two-hosts/mx-a/mail.log, two-hosts/mx-b/mail.log
#       two instances; mx-a relays example.org to mx-b; mx-b uses long queue IDs. Every status,
#       alias expansion, a content-filter hop, bounce and delay notices, a cut-off delivery.
#   rotated/mail.log, mail.log.1, mail.log.2.gz
#       one deferred message whose lines are split over three rotated files.
#   new-year/mail.log
#       Postfix under libfaketime around 2025-12-31 23:59:30 UTC; lines cross into Jan 01.
#   rfc3339/mail.log, syslog-traditional/mail.log
#       Postfix logging to syslog, received by an rsyslogd started here (RSYSLOG_FileFormat and
#       RSYSLOG_TraditionalFileFormat), also under libfaketime, crossing New Year in Europe/Berlin.
#   next-hops/mx1/mail.log, next-hops/mx2/mail.log, next-hops/mx3/mail.log
#       three instances under libfaketime on 2026-11-30: mx1 relays example.org to mx2 and
#       example.com to mx3 (long queue IDs). mx2 answers 450 at RCPT once (greylisting-like),
#       then accepts the flushed retry; one mail to two recipients goes to both next hops.
#       Redo only this capture with --only next-hops: the other captures stay as they are.
#
# Requires root on Debian/Ubuntu. Takes about three minutes (it waits for a queue lifetime to run
# out and for the fake clocks to pass midnight); --only next-hops takes about twenty seconds.
set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
OUT_DIR="$REPO_ROOT/tests/fixtures/postfix"
WORK=/tmp/mailtrace-capture
PORT_BASE=12525
INSTALL=0
KEEP_WORK=0
VERIFY_ONLY=0
CAPTURES=(two-hosts rotated new-year syslog next-hops)

# Timing of the two-hosts capture: a message deferred at the start is flushed once after
# DELAY_WARNING seconds (and gets a delay notice), and expires when flushed after LIFETIME seconds.
LIFETIME=60
DELAY_WARNING=15

# Fake clocks (libfaketime, as an offset so every process of an instance agrees on the time).
NEW_YEAR_START='2025-12-31 23:59:30'
NEW_YEAR_TZ=UTC
NEW_YEAR_MTIME='2026-01-02 06:25:00 UTC'
SYSLOG_START='2025-12-31 23:59:35'
SYSLOG_TZ=Europe/Berlin
SYSLOG_MTIME='2026-01-01 00:30:00 +01:00'
NEXT_HOPS_START='2026-11-30 09:00:00'
NEXT_HOPS_TZ=UTC
NEXT_HOPS_MTIME='2026-11-30 09:30:00 UTC'

usage() {
    cat <<EOF
Usage: ${0##*/} [options]

Start real Postfix instances on 127.0.0.1, send mail that ends in every status (sent, bounced,
deferred, expired, rejected, discarded, held, deleted), save the logs Postfix wrote under
tests/fixtures/postfix/<capture>/ and write tests/fixtures/postfix/scenarios.yaml.
Must run as root. The captures done are replaced, the others kept; nothing outside the output
directory and the work directory is changed (rsyslog owns /dev/log for a minute if no syslog daemon does).

Options:
  --install          apt-get install -y the packages that are missing (postfix is preseeded
                     with "No configuration", so the system Postfix stays unconfigured)
  --out DIR          output directory (default: tests/fixtures/postfix in this repository)
  --workdir DIR      scratch directory for the instances (default: $WORK); removed at the end
  --port-base N      first of the loopback ports to use, N..N+14 (default: $PORT_BASE)
  --only LIST        comma-separated captures to redo: ${CAPTURES[*]} (default: all)
  --keep-work        keep the scratch directory (instance configs, swaks transcripts)
  --verify-only      do not run Postfix; re-check the saved logs and rewrite scenarios.yaml
  -h, --help         this text
EOF
}

log() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

while (($#)); do
    case $1 in
    --install) INSTALL=1 ;;
    --out) OUT_DIR=${2:?--out needs a directory}; shift ;;
    --workdir) WORK=${2:?--workdir needs a directory}; shift ;;
    --port-base) PORT_BASE=${2:?--port-base needs a number}; shift ;;
    --only) IFS=, read -r -a CAPTURES <<<"${2:?--only needs a list}"; shift ;;
    --keep-work) KEEP_WORK=1 ;;
    --verify-only) VERIFY_ONLY=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done
[[ $PORT_BASE =~ ^[0-9]+$ ]] && ((PORT_BASE > 1024 && PORT_BASE < 65000)) ||
    die "--port-base must be a number between 1025 and 64999"
for c in "${CAPTURES[@]}"; do
    case $c in two-hosts | rotated | new-year | syslog | next-hops) ;;
    *) die "unknown capture: $c" ;;
    esac
done
[[ $WORK == /* && $WORK != / ]] || die "--workdir must be an absolute path"
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

describe() {
    log "checking the saved logs and writing $OUT_DIR/scenarios.yaml"
    python3 "$SCRIPT_DIR/postfix_fixture_scenarios.py" "$OUT_DIR"
}

if ((VERIFY_ONLY)); then
    describe
    exit
fi

((EUID == 0)) || die "run as root (Postfix instances need root to start)"

# --------------------------------------------------------------------------------------------
# Packages

ensure_packages() {
    local -a missing=()
    local pkg
    local -a wanted=(postfix swaks faketime libfaketime python3 gzip iproute2 findutils)
    [[ " ${CAPTURES[*]} " == *" syslog "* ]] && wanted+=(rsyslog)
    for pkg in "${wanted[@]}"; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    if ((!INSTALL)); then
        die "missing packages: ${missing[*]} (re-run with --install, or apt-get install them)"
    fi
    log "installing ${missing[*]}"
    # Keep the system Postfix unconfigured: this script never uses /etc/postfix.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
ensure_packages

FAKETIME_LIB=""
for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
    [[ -e $f ]] && { FAKETIME_LIB=$f; break; }
done
[[ -n $FAKETIME_LIB ]] || die "libfaketime.so.1 not found (package libfaketime)"
POSTFIX_VERSION=$(postconf -d -h mail_version)
log "Postfix $POSTFIX_VERSION, swaks $(swaks --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1)"

# --------------------------------------------------------------------------------------------
# Cleanup: stop every instance and the rsyslogd started here, remove the work directory.

declare -a RUNNING=()    # instance names whose master we started
RSYSLOG_PID=""
DEVLOG_OURS=0
TARPIT_PID=""

stop_rsyslog() {
    [[ -n $RSYSLOG_PID ]] || return 0
    kill -TERM "$RSYSLOG_PID" 2>/dev/null || true
    wait "$RSYSLOG_PID" 2>/dev/null || true
    note "stopped rsyslogd (pid $RSYSLOG_PID)"
    RSYSLOG_PID=""
    if ((DEVLOG_OURS)) && [[ -S /dev/log ]]; then rm -f /dev/log; fi
    DEVLOG_OURS=0
}

# A TCP server that accepts and never says a word: a delivery to it is still in progress when
# the instance stops, so its message has no final line ("unknown").
start_tarpit() {
    python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
held = []
while True:
    held.append(s.accept()[0])
' "$1" &
    TARPIT_PID=$!
    wait_listening "$1"
    note "started a silent TCP listener on 127.0.0.1:$1 (pid $TARPIT_PID)"
}

stop_tarpit() {
    [[ -n $TARPIT_PID ]] || return 0
    kill -TERM "$TARPIT_PID" 2>/dev/null || true
    wait "$TARPIT_PID" 2>/dev/null || true
    note "stopped the silent TCP listener (pid $TARPIT_PID)"
    TARPIT_PID=""
}

cleanup() {
    local rc=$?
    set +e
    local name
    for name in "${RUNNING[@]}"; do inst_stop "$name"; done
    stop_rsyslog
    stop_tarpit
    if ((KEEP_WORK)); then
        note "work directory kept: $WORK"
    elif [[ -f $WORK/.mailtrace-capture ]]; then
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was interrupted may have left its instances running: stop them with
# "postfix stop" (they are this script's own), then start from an empty work directory.
if [[ -e $WORK ]]; then
    [[ -f $WORK/.mailtrace-capture ]] || die "$WORK exists and was not made by this script"
    for etc in "$WORK"/*/etc; do
        [[ -f $etc/main.cf ]] || continue
        if postfix -c "$etc" status >/dev/null 2>&1; then
            note "stopping instance left over from an earlier run: $etc"
            postfix -c "$etc" stop >/dev/null 2>&1 || true
        fi
    done
    rm -rf -- "$WORK"
fi
mkdir -m 0755 -- "$WORK"
touch "$WORK/.mailtrace-capture"
mkdir -p "$WORK/swaks" "$WORK/out"

# Ports: instances listen on a few; some must stay closed (connection refused is the deferral).
P_A=$PORT_BASE                 # mx-a smtpd
P_B=$((PORT_BASE + 1))         # mx-b smtpd
P_FILTER_IN=$((PORT_BASE + 2)) # mx-a smtpd whose mail goes through the content filter
P_REINJECT=$((PORT_BASE + 3))  # mx-a smtpd receiving filtered mail back (XFORWARD)
P_ROT=$((PORT_BASE + 4))       # mx-rot smtpd
P_PEER=$((PORT_BASE + 5))      # peer smtpd, started late in the rotated capture
P_NY=$((PORT_BASE + 6))        # mx-ny smtpd
P_SYS=$((PORT_BASE + 7))       # mx-s smtpd
P_CLOSED=$((PORT_BASE + 8))    # nothing listens here
P_TARPIT=$((PORT_BASE + 9))    # accepts connections and never answers
P_N1=$((PORT_BASE + 12))       # next-hops: mx1 smtpd
P_N2=$((PORT_BASE + 13))       # next-hops: mx2 smtpd (example.org)
P_N3=$((PORT_BASE + 14))       # next-hops: mx3 smtpd (example.com)
for p in $(seq "$PORT_BASE" $((PORT_BASE + 14))); do
    if [[ -n $(ss -Hltn "sport = :$p") ]]; then
        die "port 127.0.0.1:$p is in use; choose another --port-base"
    fi
done

# --------------------------------------------------------------------------------------------
# Instances

FT_ENV=()     # environment for the fake clock of the current capture; empty = real time
FAKE_OFFSET=0 # seconds the fake clock is ahead of the real one

ft() {
    if ((${#FT_ENV[@]})); then env "${FT_ENV[@]}" "$@"; else "$@"; fi
}

# use_fake_clock START TZ: from now on, instances and postsuper see a clock starting at START
# (in zone TZ). An offset (not "@start") keeps all processes of an instance on one clock.
use_fake_clock() {
    local start=$1 tz=$2 target now
    target=$(TZ=$tz date -d "$start" +%s)
    now=$(date +%s)
    FAKE_OFFSET=$((target - now))
    FT_ENV=(LD_PRELOAD="$FAKETIME_LIB" FAKETIME="$FAKE_OFFSET" FAKETIME_DONT_FAKE_MONOTONIC=1
        TZ="$tz")
}

use_real_clock() {
    FT_ENV=()
    FAKE_OFFSET=0
}

# Seconds to wait until the fake clock shows the wall time WHEN (in zone TZ).
fake_seconds_until() {
    local when=$1 tz=$2
    echo $(($(TZ=$tz date -d "$when" +%s) - FAKE_OFFSET - $(date +%s)))
}

# inst_new NAME MYHOSTNAME SYSLOG_NAME PORT: write main.cf and master.cf of a fresh instance.
# Append instance-specific main.cf lines with `inst_cf NAME <<EOF`.
inst_new() {
    local name=$1 host=$2 syslog_name=$3 port=$4 d=$WORK/$1
    mkdir -p "$d"/{etc,spool,lib,log,mail}
    chown postfix "$d/lib"
    chown nobody:nogroup "$d/mail"
    cat >"$d/etc/main.cf" <<EOF
# Throwaway instance made by capture_postfix_logs.sh.
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/lib
syslog_name = $syslog_name
maillog_file = $d/log/mail.log
maillog_file_prefixes = $WORK
myhostname = $host
mydomain = ${host#*.}
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
readme_directory = no
# No DNS: every next hop is [127.0.0.1]:port from transport_maps.
smtp_host_lookup = native
smtp_dns_support_level = disabled
smtpd_banner = \$myhostname ESMTP \$mail_name
virtual_mailbox_base = $d/mail
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
EOF
    # chroot off everywhere: the instance needs no copies of /etc files in its queue directory.
    cat >"$d/etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
}

# inst_cf NAME: set the "name = value" lines read from stdin with postconf -e. A parameter
# given twice in main.cf makes every daemon warn, and postlogd logging its own warning to
# itself deadlocks the instance, so never append blindly.
inst_cf() {
    local -a settings=()
    local line
    while IFS= read -r line; do
        [[ $line =~ ^[[:space:]]*(#|$) ]] || settings+=("$line")
    done
    postconf -c "$WORK/$1/etc" -e "${settings[@]}"
}
inst_master() { cat >>"$WORK/$1/etc/master.cf"; }

# inst_map NAME FILE TYPE: write a lookup table from stdin and index it (hash/regexp/alias).
inst_map() {
    local etc=$WORK/$1/etc
    cat >"$etc/$2"
    case $3 in
    hash) postmap -c "$etc" "hash:$etc/$2" ;;
    alias) postalias -c "$etc" "hash:$etc/$2" ;;
    esac
}

inst_etc() { echo "$WORK/$1/etc"; }
inst_log() { echo "$WORK/$1/log/mail.log"; }

wait_listening() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        [[ -n $(ss -Hltn "sport = :$port") ]] && return 0
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$port"
}

# inst_start NAME PORT...: start the instance (under the current clock) and wait for its ports.
inst_start() {
    local name=$1 etc
    shift
    etc=$(inst_etc "$name")
    if ((${#FT_ENV[@]})); then
        # Postfix daemons keep only import_environment: pass the fake clock through it.
        printf 'import_environment = %s %s\n' "$(postconf -d -h import_environment)" \
            "${FT_ENV[*]}" | inst_cf "$name"
    fi
    local warnings
    warnings=$( { postconf -c "$etc" -n >/dev/null; postfix -c "$etc" check; } 2>&1)
    [[ -z $warnings ]] || die "instance $name is misconfigured: $warnings"
    ft postfix -c "$etc" start >/dev/null
    RUNNING+=("$name")
    local port
    for port; do wait_listening "$port"; done
    note "started $name ($(postconf -c "$etc" -h myhostname), ports $*)"
}

inst_stop() {
    local name=$1 etc i pid
    etc=$(inst_etc "$name")
    pid=$(sed 1q "$WORK/$name/spool/pid/master.pid" 2>/dev/null | tr -d ' ') || true
    ft timeout 30 postfix -c "$etc" stop >/dev/null 2>&1 || true
    for ((i = 0; i < 100; i++)); do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        # A wedged instance of ours: kill its master and the master's children by PID.
        warn "$name did not stop; killing its master (pid $pid) and children"
        kill -KILL $(pgrep -P "$pid") "$pid" 2>/dev/null || true
    fi
    local -a keep=()
    local n
    for n in "${RUNNING[@]}"; do [[ $n == "$name" ]] || keep+=("$n"); done
    RUNNING=("${keep[@]}")
    note "stopped $name"
}

# settle NAME...: wait until the instances have nothing in incoming/active/maildrop.
settle() {
    local i n quiet=0 name
    for ((i = 0; i < 300; i++)); do
        n=0
        for name; do
            n=$((n + $(find "$WORK/$name/spool/incoming" "$WORK/$name/spool/active" \
                "$WORK/$name/spool/maildrop" -type f 2>/dev/null | wc -l)))
        done
        if ((n == 0)); then
            ((++quiet >= 3)) && break
        else
            quiet=0
        fi
        sleep 0.2
    done
    sleep 0.5
}

# wait_queue NAME QID QUEUE: wait until the message sits in that queue (hold, deferred).
wait_queue() {
    local spool=$WORK/$1/spool i
    for ((i = 0; i < 150; i++)); do
        [[ -n $(find "$spool/$3" -type f -name "$2" 2>/dev/null) ]] && return 0
        sleep 0.2
    done
    warn "$1: $2 did not reach the $3 queue"
}

# send SCENARIO PORT SENDER RECIPIENTS SUBJECT: one SMTP transaction with swaks. Sets QID to
# the queue ID the server announced ("" when it refused). The Message-Id names the scenario.
QID=""
send() {
    local scenario=$1 port=$2 from=$3 to=$4 subject=$5
    local out=$WORK/swaks/$scenario.txt
    swaks --server 127.0.0.1 --port "$port" --helo client.example \
        --from "$from" --to "$to" \
        --header "Subject: $subject" --header "Message-Id: <$scenario@client.example>" \
        --body "Scenario $scenario of the mailtrace fixture capture." \
        --timeout 30 >"$out" 2>&1 || true
    QID=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$out" | tail -n 1)
    local refused
    refused=$(sed -n 's/^<\*\* *//p' "$out" | head -n 1)
    note "$scenario: <$from> -> <$to>${QID:+  queued as $QID}${refused:+  refused: $refused}"
}

postsuper_do() { # NAME ARGS...
    local etc
    etc=$(inst_etc "$1")
    shift
    ft postsuper -c "$etc" "$@"
}

flush_one() { postqueue -c "$(inst_etc "$1")" -i "$2"; }

# rotate_log NAME SAVED: what logrotate does for Postfix's own log file: rename it, then make
# Postfix reopen it (postfix logrotate does the same, but adds a date suffix and compresses).
rotate_log() {
    local name=$1 saved=$2
    mv "$(inst_log "$name")" "$saved"
    ft postfix -c "$(inst_etc "$name")" reload >/dev/null
    sleep 1.5
    note "rotated the log of $name"
}

save_log() { # SRC DEST
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2"
    chmod 0644 "$2"
}

# --------------------------------------------------------------------------------------------
# Capture: two-hosts (mx-a relays example.org to mx-b; mx-b uses long queue IDs)

capture_two_hosts() {
    log "capture two-hosts: mx-a (127.0.0.1:$P_A) relays to mx-b (127.0.0.1:$P_B)"
    use_real_clock
    local A=mx-a B=mx-b ea eb
    inst_new $A mx-a.test postfix-a "$P_A"
    inst_new $B mx-b.test postfix-b "$P_B"
    ea=$(inst_etc $A)
    eb=$(inst_etc $B)
    mkdir -p "$WORK/$A/aliasmail"
    chown nobody:nogroup "$WORK/$A/aliasmail"

    inst_cf $A <<EOF
# Local domain with aliases (local(8)), a virtual mailbox domain, a relay domain behind mx-b.
mydestination = mx-a.test
alias_maps = hash:$ea/aliases
alias_database = hash:$ea/aliases
local_recipient_maps = \$alias_maps
virtual_mailbox_domains = example.net
virtual_mailbox_maps = hash:$ea/vmailbox
virtual_alias_maps = hash:$ea/virtual
relay_domains = example.org, blackhole.example.net, tarpit.example.org
transport_maps = hash:$ea/transport
# 127.0.0.1 is not a trusted network here, so relaying elsewhere is refused.
mynetworks = 192.0.2.0/24
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access hash:$ea/recipient_access
header_checks = regexp:$ea/header_checks
maximal_queue_lifetime = ${LIFETIME}s
bounce_queue_lifetime = ${LIFETIME}s
delay_warning_time = ${DELAY_WARNING}s
EOF
    # After-queue content filter without a filter program: mail received on P_FILTER_IN goes
    # to the "scan" transport, which hands it straight to the re-injection smtpd with XFORWARD,
    # so the second queue ID's smtpd line carries orig_queue_id=. The re-injection smtpd needs
    # another myhostname, or the smtp client sees its own name in EHLO ("loops back to
    # myself"); log lines show only the first label, so it still logs as "mx-a".
    inst_master $A <<EOF
127.0.0.1:$P_FILTER_IN inet n - n - - smtpd
  -o syslog_name=postfix-a/filter-in
  -o content_filter=scan:[127.0.0.1]:$P_REINJECT
scan       unix  - - n - 4 smtp
  -o syslog_name=postfix-a/scan
  -o smtp_send_xforward_command=yes
  -o smtp_helo_name=scan.mx-a.test
127.0.0.1:$P_REINJECT inet n - n - 4 smtpd
  -o syslog_name=postfix-a/reinject
  -o myhostname=mx-a.reinject.test
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
EOF
    local m
    {
        for m in sent release hold delheld discard discard-rcpt reject dave filtered \
            from-sent from-relay from-bounce from-mixed from-expired from-forceexp \
            from-deferred from-relaydenied from-unknown from-reject from-discard \
            from-discardrcpt from-blackhole from-release from-hold from-delheld \
            from-deldefer from-adminhold from-alias from-list from-filter from-inflight; do
            echo "$m@example.net $m/"
        done
    } | inst_map $A vmailbox hash
    inst_map $A virtual hash <<EOF
list@example.net dave@example.net, erin@example.org
EOF
    inst_map $A transport hash <<EOF
example.org            smtp:[127.0.0.1]:$P_B
blackhole.example.net  discard:blackholed by transport map
tarpit.example.org     smtp:[127.0.0.1]:$P_TARPIT
EOF
    inst_map $A recipient_access hash <<EOF
discard-rcpt@example.net DISCARD dropped by recipient policy
EOF
    inst_map $A header_checks regexp <<'EOF'
/^Subject:.*\[reject-me\]/   REJECT 5.7.1 Message content rejected by policy
/^Subject:.*\[discard-me\]/  DISCARD dropped by content policy
/^Subject:.*\[hold-me\]/     HOLD held for review
EOF
    inst_map $A aliases alias <<EOF
team: alice, bob, carol@example.org
alice: $WORK/$A/aliasmail/alice/
bob: $WORK/$A/aliasmail/bob/
postmaster: $WORK/$A/aliasmail/postmaster/
EOF

    inst_cf $B <<EOF
enable_long_queue_ids = yes
virtual_mailbox_domains = example.org
virtual_mailbox_maps = hash:$eb/vmailbox
smtpd_recipient_restrictions = check_recipient_access hash:$eb/recipient_access
EOF
    {
        for m in relay mixed-ok carol erin deferred expired forceexp deldefer adminhold; do
            echo "$m@example.org $m/"
        done
    } | inst_map $B vmailbox hash
    inst_map $B recipient_access hash <<'EOF'
deferred@example.org   450 4.2.0 Mailbox temporarily unavailable, try again later
expired@example.org    450 4.2.0 Mailbox temporarily unavailable, try again later
forceexp@example.org   450 4.2.0 Mailbox temporarily unavailable, try again later
deldefer@example.org   450 4.2.0 Mailbox temporarily unavailable, try again later
adminhold@example.org  450 4.2.0 Mailbox temporarily unavailable, try again later
EOF

    inst_start $B "$P_B"
    inst_start $A "$P_A" "$P_FILTER_IN" "$P_REINJECT"
    local t0 q_expired q_forceexp q
    t0=$(date +%s)

    send expired "$P_A" from-expired@example.net expired@example.org "will expire"
    q_expired=$QID
    send force-expired "$P_A" from-forceexp@example.net forceexp@example.org "will be force-expired"
    q_forceexp=$QID
    settle $A $B
    send sent-local "$P_A" from-sent@example.net sent@example.net "delivered to a mailbox"
    send relay-hop "$P_A" from-relay@example.net relay@example.org "relayed to mx-b"
    send bounced "$P_A" from-bounce@example.net bounce@example.org "unknown at mx-b"
    send mixed "$P_A" from-mixed@example.net mixed-ok@example.org,mixed-bad@example.org \
        "one good, one unknown recipient"
    send rejected-relay "$P_A" from-relaydenied@example.net someone@example.com "relay denied"
    send rejected-unknown "$P_A" from-unknown@example.net unknown@example.net "unknown user"
    send rejected-header "$P_A" from-reject@example.net reject@example.net "[reject-me] spam"
    send discarded-header "$P_A" from-discard@example.net discard@example.net "[discard-me] junk"
    send discarded-rcpt "$P_A" from-discardrcpt@example.net discard-rcpt@example.net "dropped at RCPT"
    send discarded-transport "$P_A" from-blackhole@example.net nobody@blackhole.example.net \
        "to a discard transport"
    settle $A $B

    send held-released "$P_A" from-release@example.net release@example.net "[hold-me] release me"
    q=$QID
    wait_queue $A "$q" hold
    postsuper_do $A -H "$q"
    flush_one $A "$q"
    send held "$P_A" from-hold@example.net hold@example.net "[hold-me] stays on hold"
    wait_queue $A "$QID" hold
    send deleted-held "$P_A" from-delheld@example.net delheld@example.net "[hold-me] delete me"
    q=$QID
    wait_queue $A "$q" hold
    postsuper_do $A -d "$q"
    send deleted-deferred "$P_A" from-deldefer@example.net deldefer@example.org \
        "deferred, then deleted"
    q=$QID
    wait_queue $A "$q" deferred
    postsuper_do $A -d "$q"
    send held-admin "$P_A" from-adminhold@example.net adminhold@example.org \
        "deferred, then put on hold"
    q=$QID
    wait_queue $A "$q" deferred
    postsuper_do $A -h "$q"
    send alias-local "$P_A" from-alias@example.net team@mx-a.test "to the team alias"
    send alias-virtual "$P_A" from-list@example.net list@example.net "to the list alias"
    send content-filter "$P_FILTER_IN" from-filter@example.net filtered@example.net \
        "through the content filter"
    settle $A $B

    local now wait_for
    now=$(date +%s)
    if ((now - t0 >= LIFETIME - 5)); then
        warn "sending took $((now - t0))s, close to the ${LIFETIME}s queue lifetime"
    fi
    wait_for=$((t0 + DELAY_WARNING + 2 - now))
    if ((wait_for > 0)); then
        note "waiting ${wait_for}s for the delay warning time"
        sleep "$wait_for"
    fi
    note "second attempt for 'expired' (delay notice), forced expiry for 'force-expired'"
    wait_queue $A "$q_expired" deferred
    wait_queue $A "$q_forceexp" deferred
    flush_one $A "$q_expired"
    postsuper_do $A -e "$q_forceexp"
    flush_one $A "$q_forceexp"
    settle $A $B

    now=$(date +%s)
    wait_for=$((t0 + LIFETIME + 3 - now))
    if ((wait_for > 0)); then
        note "waiting ${wait_for}s for the ${LIFETIME}s queue lifetime to run out"
        sleep "$wait_for"
    fi
    send deferred "$P_A" from-deferred@example.net deferred@example.org "try again later"
    q=$QID
    settle $A $B
    wait_queue $A "$q" deferred
    note "last attempt for 'expired', second attempt for 'deferred'"
    wait_queue $A "$q_expired" deferred
    flush_one $A "$q_expired"
    flush_one $A "$q"
    settle $A $B
    start_tarpit "$P_TARPIT"
    send in-flight "$P_A" from-inflight@example.net stuck@tarpit.example.org \
        "still being delivered when the log ends"
    sleep 2
    inst_stop $A
    inst_stop $B
    stop_tarpit

    rm -rf "$OUT_DIR/two-hosts"
    save_log "$(inst_log $A)" "$OUT_DIR/two-hosts/mx-a/mail.log"
    save_log "$(inst_log $B)" "$OUT_DIR/two-hosts/mx-b/mail.log"
}

# --------------------------------------------------------------------------------------------
# Capture: rotated (one message's lines in mail.log.2.gz, mail.log.1 and mail.log)

capture_rotated() {
    log "capture rotated: mx-rot (127.0.0.1:$P_ROT), peer (127.0.0.1:$P_PEER) started late"
    use_real_clock
    local R=mx-rot P=peer er ep q
    inst_new $R mx-rot.test postfix "$P_ROT"
    inst_new $P peer.test postfix-peer "$P_PEER"
    er=$(inst_etc $R)
    ep=$(inst_etc $P)
    inst_cf $R <<EOF
virtual_mailbox_domains = example.net
virtual_mailbox_maps = hash:$er/vmailbox
relay_domains = example.org
transport_maps = hash:$er/transport
EOF
    printf '%s@example.net %s/\n' rot1 rot1 rot2 rot2 rot3 rot3 from-rotspan from-rotspan \
        from-rotbounce from-rotbounce | inst_map $R vmailbox hash
    echo "example.org smtp:[127.0.0.1]:$P_PEER" | inst_map $R transport hash
    inst_cf $P <<EOF
virtual_mailbox_domains = example.org
virtual_mailbox_maps = hash:$ep/vmailbox
EOF
    echo "span@example.org span/" | inst_map $P vmailbox hash

    inst_start $R "$P_ROT"
    send rot-first "$P_ROT" from-rot1@example.net rot1@example.net "before the first rotation"
    send rot-spanning "$P_ROT" from-rotspan@example.net span@example.org \
        "deferred until the peer comes up"
    q=$QID
    settle $R
    rotate_log $R "$WORK/out/rot.2"

    send rot-middle "$P_ROT" from-rot2@example.net rot2@example.net "between the rotations"
    wait_queue $R "$q" deferred
    flush_one $R "$q"
    settle $R
    rotate_log $R "$WORK/out/rot.1"

    inst_start $P "$P_PEER"
    wait_queue $R "$q" deferred
    flush_one $R "$q"
    send rot-last "$P_ROT" from-rot3@example.net rot3@example.net "after the last rotation"
    send rot-bounced "$P_ROT" from-rotbounce@example.net unknown@example.org "unknown at the peer"
    settle $R $P
    inst_stop $R
    inst_stop $P

    rm -rf "$OUT_DIR/rotated"
    save_log "$(inst_log $R)" "$OUT_DIR/rotated/mail.log"
    save_log "$WORK/out/rot.1" "$OUT_DIR/rotated/mail.log.1"
    save_log "$WORK/out/rot.2" "$OUT_DIR/rotated/mail.log.2"
    gzip -n -9 "$OUT_DIR/rotated/mail.log.2"
}

# --------------------------------------------------------------------------------------------
# Capture: new-year (maillog_file under a fake clock that passes midnight on Dec 31)

capture_new_year() {
    log "capture new-year: mx-ny (127.0.0.1:$P_NY) with the clock at $NEW_YEAR_START $NEW_YEAR_TZ"
    use_fake_clock "$NEW_YEAR_START" "$NEW_YEAR_TZ"
    local N=mx-ny en q_held q_def wait_for
    inst_new $N mx-ny.test postfix "$P_NY"
    en=$(inst_etc $N)
    inst_cf $N <<EOF
virtual_mailbox_domains = example.net
virtual_mailbox_maps = hash:$en/vmailbox
relay_domains = example.org
transport_maps = hash:$en/transport
header_checks = regexp:$en/header_checks
EOF
    printf '%s@example.net %s/\n' before before held held after after from-nydefer from-nydefer |
        inst_map $N vmailbox hash
    echo "example.org smtp:[127.0.0.1]:$P_CLOSED" | inst_map $N transport hash
    echo '/^Subject:.*\[hold-me\]/ HOLD held over New Year' | inst_map $N header_checks regexp

    inst_start $N "$P_NY"
    send ny-before "$P_NY" from-nybefore@example.net before@example.net "sent on Dec 31"
    send ny-held "$P_NY" from-nyheld@example.net held@example.net "[hold-me] released on Jan 01"
    q_held=$QID
    send ny-deferred "$P_NY" from-nydefer@example.net later@example.org "deferred over New Year"
    q_def=$QID
    settle $N
    wait_for=$(fake_seconds_until "$(date -d "${NEW_YEAR_START% *} + 1 day" +%F) 00:00:03" \
        "$NEW_YEAR_TZ")
    if ((wait_for > 0)); then
        note "waiting ${wait_for}s for the fake clock to pass midnight"
        sleep "$wait_for"
    fi
    wait_queue $N "$q_held" hold
    postsuper_do $N -H "$q_held"
    flush_one $N "$q_held"
    wait_queue $N "$q_def" deferred
    flush_one $N "$q_def"
    send ny-after "$P_NY" from-nyafter@example.net after@example.net "sent on Jan 01"
    settle $N
    inst_stop $N
    use_real_clock

    rm -rf "$OUT_DIR/new-year"
    save_log "$(inst_log $N)" "$OUT_DIR/new-year/mail.log"
    touch -d "$NEW_YEAR_MTIME" "$OUT_DIR/new-year/mail.log"
}

# --------------------------------------------------------------------------------------------
# Capture: syslog (Postfix -> /dev/log -> our rsyslogd, RFC 3339 and traditional formats)

capture_syslog() {
    log "capture syslog: mx-s (127.0.0.1:$P_SYS) logging through rsyslogd," \
        "clock at $SYSLOG_START $SYSLOG_TZ"
    if [[ -e /dev/log ]]; then
        warn "/dev/log exists (another syslog daemon owns it): skipping the syslog captures"
        return 0
    fi
    use_fake_clock "$SYSLOG_START" "$SYSLOG_TZ"
    local S=mx-s es rs=$WORK/rsyslog q_held q_def wait_for
    mkdir -p "$rs"
    # Only local6 is kept: the instance logs there, so nothing else that happens to write to
    # /dev/log meanwhile ends up in the fixtures. Neither output format shows the facility.
    # UseSysTimeStamp=off: by default imuxsock stamps messages with the kernel's receive time,
    # which libfaketime cannot shift; off, rsyslogd reads its own (fake) clock.
    cat >"$rs/rsyslog.conf" <<EOF
global(workDirectory="$rs" localHostname="mx-s")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.Unlink="on"
       SysSock.UseSysTimeStamp="off")
if \$syslogfacility-text == "local6" then {
    action(type="omfile" file="$rs/rfc3339.log" template="RSYSLOG_FileFormat")
    action(type="omfile" file="$rs/traditional.log" template="RSYSLOG_TraditionalFileFormat")
}
EOF
    rsyslogd -N1 -f "$rs/rsyslog.conf" >/dev/null 2>&1 || die "rsyslogd rejects $rs/rsyslog.conf"
    # Not through ft(): a function in the background is a subshell, and $! must be rsyslogd.
    env "${FT_ENV[@]}" rsyslogd -n -f "$rs/rsyslog.conf" -i "$rs/rsyslogd.pid" &
    RSYSLOG_PID=$!
    DEVLOG_OURS=1
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -S /dev/log ]] && break
        sleep 0.1
    done
    [[ -S /dev/log ]] || die "rsyslogd did not create /dev/log"
    note "started rsyslogd (pid $RSYSLOG_PID) on /dev/log"

    inst_new $S mx-s.test postfix "$P_SYS"
    es=$(inst_etc $S)
    inst_cf $S <<EOF
maillog_file =
syslog_facility = local6
virtual_mailbox_domains = example.net
virtual_mailbox_maps = hash:$es/vmailbox
virtual_alias_maps = hash:$es/virtual
relay_domains = example.org
transport_maps = hash:$es/transport
header_checks = regexp:$es/header_checks
EOF
    printf '%s@example.net %s/\n' early early held held grace grace hope hope \
        from-sysdefer from-sysdefer | inst_map $S vmailbox hash
    echo "friends@example.net grace@example.net, hope@example.net" | inst_map $S virtual hash
    echo "example.org smtp:[127.0.0.1]:$P_CLOSED" | inst_map $S transport hash
    inst_map $S header_checks regexp <<'EOF'
/^Subject:.*\[reject-me\]/ REJECT 5.7.1 Message content rejected by policy
/^Subject:.*\[hold-me\]/   HOLD held over New Year
EOF

    inst_start $S "$P_SYS"
    send sys-sent "$P_SYS" from-syssent@example.net early@example.net "sent before midnight"
    send sys-held "$P_SYS" from-sysheld@example.net held@example.net "[hold-me] until next year"
    q_held=$QID
    send sys-deferred "$P_SYS" from-sysdefer@example.net far@example.org "nobody listens"
    q_def=$QID
    send sys-rejected "$P_SYS" from-sysunknown@example.net nobody@example.net "unknown user"
    settle $S
    wait_for=$(fake_seconds_until "$(date -d "${SYSLOG_START% *} + 1 day" +%F) 00:00:03" \
        "$SYSLOG_TZ")
    if ((wait_for > 0)); then
        note "waiting ${wait_for}s for the fake clock to pass midnight"
        sleep "$wait_for"
    fi
    wait_queue $S "$q_held" hold
    postsuper_do $S -H "$q_held"
    flush_one $S "$q_held"
    wait_queue $S "$q_def" deferred
    flush_one $S "$q_def"
    send sys-alias "$P_SYS" from-syslist@example.net friends@example.net "to the friends alias"
    send sys-header-reject "$P_SYS" from-sysreject@example.net early@example.net \
        "[reject-me] new year spam"
    settle $S
    inst_stop $S
    sleep 1
    stop_rsyslog
    use_real_clock

    rm -rf "$OUT_DIR/rfc3339" "$OUT_DIR/syslog-traditional"
    save_log "$rs/rfc3339.log" "$OUT_DIR/rfc3339/mail.log"
    save_log "$rs/traditional.log" "$OUT_DIR/syslog-traditional/mail.log"
    touch -d "$SYSLOG_MTIME" "$OUT_DIR/rfc3339/mail.log" "$OUT_DIR/syslog-traditional/mail.log"
}

# --------------------------------------------------------------------------------------------
# Capture: next-hops (a next hop that answers 4xx first, 2xx later; two recipients, two next hops)

capture_next_hops() {
    log "capture next-hops: mx1 (127.0.0.1:$P_N1) relays example.org to mx2 (127.0.0.1:$P_N2)" \
        "and example.com to mx3 (127.0.0.1:$P_N3), clock at $NEXT_HOPS_START $NEXT_HOPS_TZ"
    use_fake_clock "$NEXT_HOPS_START" "$NEXT_HOPS_TZ"
    local M1=mx1 M2=mx2 M3=mx3 e1 e2 e3 q
    inst_new $M1 mx1.test postfix "$P_N1"
    inst_new $M2 mx2.test postfix "$P_N2"
    inst_new $M3 mx3.test postfix "$P_N3"
    e1=$(inst_etc $M1)
    e2=$(inst_etc $M2)
    e3=$(inst_etc $M3)
    # No automatic retry: the default backoff (300s and more) keeps the deferred message still
    # until the flush below, so the log has exactly one refused attempt and one accepted retry.
    inst_cf $M1 <<EOF
relay_domains = example.org, example.com
transport_maps = hash:$e1/transport
EOF
    inst_map $M1 transport hash <<EOF
example.org  smtp:[127.0.0.1]:$P_N2
example.com  smtp:[127.0.0.1]:$P_N3
EOF
    inst_cf $M2 <<EOF
virtual_mailbox_domains = example.org
virtual_mailbox_maps = hash:$e2/vmailbox
smtpd_recipient_restrictions = check_recipient_access hash:$e2/recipient_access
EOF
    printf '%s@example.org %s/\n' greylisted greylisted split-org split-org |
        inst_map $M2 vmailbox hash
    # What a greylisting policy answers to a first attempt; emptied later (the retry passes).
    inst_map $M2 recipient_access hash <<'EOF'
greylisted@example.org  450 4.7.1 Greylisted, please try again later
EOF
    inst_cf $M3 <<EOF
enable_long_queue_ids = yes
virtual_mailbox_domains = example.com
virtual_mailbox_maps = hash:$e3/vmailbox
EOF
    echo "split-com@example.com split-com/" | inst_map $M3 vmailbox hash

    inst_start $M2 "$P_N2"
    inst_start $M3 "$P_N3"
    inst_start $M1 "$P_N1"
    send greylisted "$P_N1" from-greylist@example.net greylisted@example.org \
        "refused for now by the next hop, accepted on retry"
    q=$QID
    settle $M1 $M2
    wait_queue $M1 "$q" deferred
    send two-next-hops "$P_N1" from-split@example.net split-org@example.org,split-com@example.com \
        "one mail, two recipients behind two next hops"
    settle $M1 $M2 $M3
    # The "greylisting" period ends: mx2 accepts the recipient from now on. smtpd notices the
    # rebuilt table before its next connection (the map file's time must differ: wait a second).
    sleep 2
    inst_map $M2 recipient_access hash <<'EOF'
# greylisting period over for greylisted@example.org
EOF
    sleep 2
    note "greylisting over on mx2; flushing 'greylisted' on mx1"
    flush_one $M1 "$q"
    settle $M1 $M2
    inst_stop $M1
    inst_stop $M2
    inst_stop $M3
    use_real_clock

    rm -rf "$OUT_DIR/next-hops"
    local h
    for h in $M1 $M2 $M3; do
        save_log "$(inst_log $h)" "$OUT_DIR/next-hops/$h/mail.log"
        touch -d "$NEXT_HOPS_MTIME" "$OUT_DIR/next-hops/$h/mail.log"
    done
}

# --------------------------------------------------------------------------------------------

for c in "${CAPTURES[@]}"; do
    case $c in
    two-hosts) capture_two_hosts ;;
    rotated) capture_rotated ;;
    new-year) capture_new_year ;;
    syslog) capture_syslog ;;
    next-hops) capture_next_hops ;;
    esac
done

log "saved logs:"
(cd "$OUT_DIR" && find . -type f \( -name 'mail.log*' \) | sort | while read -r f; do
    if [[ $f == *.gz ]]; then n=$(gzip -dc "$f" | wc -l); else n=$(wc -l <"$f"); fi
    printf '    %-40s %4d lines\n' "${f#./}" "$n"
done)
if grep -rqF -e "$WORK/" "$OUT_DIR" --include='mail.log*'; then
    note "(Postfix's start and reload lines name the instances' config directories in $WORK)"
fi
describe
