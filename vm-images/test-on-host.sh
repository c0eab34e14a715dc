#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# test-on-host.sh - build larval's guest programs and run them for real on
# this host, in two network namespaces joined by a veth pair.
#
#   lvtest-a-PID (192.0.2.1, 2001:db8::1)   policies only, larval-km answers
#   lvtest-b-PID (192.0.2.2, 2001:db8::2)   policies and all SAs, larval-echo
#
# Transport-mode ESP, rfc4106(gcm(aes)).  Every probe case starts from an
# empty SAD in A and a fresh key manager, so no ACQUIRE from an earlier case
# can install SAs early and fake a fast result.
#
# Output is one TAP 14 stream: a tap.h self-check, plaintext baseline cases
# (no policy; they must see every echo), then one subtest per case through
# the policy, each followed by the key manager's log as comments.  A case
# through the policy passes when the probe ran and the key manager saw the
# ACQUIRE (and, where the kernel has ESP, installed both SAs cleanly): what
# the kernel did with the packets is reported, not judged.
#
# If this kernel cannot do ESP (no esp4/esp6 or no gcm), B carries no IPsec
# and A's SAs fail to install: the cases then show the ACQUIRE path and the
# blackhole only.  That is said in a comment, and the run still passes.
#
# Needs root, gcc, iproute2.  Uses node + tap-parser from ../node_modules to
# check the stream parses, when they are there.  Bounded: every program gets
# a max runtime or timeout, and each is also run under timeout(1).
#
# The far side is re-keyed for every case too: A's new outbound SA starts
# again at sequence number 1, and B's inbound SA would otherwise drop those
# packets as replays (XfrmInStateSeqError) once an earlier case got through.
#
# usage: vm-images/test-on-host.sh [--keep-logs] [--km-delay-ms N]
#   --km-delay-ms N  larval-km answers N ms after each ACQUIRE (default 0).
#                    With 0 a fast key manager can win the race against the
#                    first packet; 100 shows the stock blackhole every time.

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CFLAGS=(-static -O2 -Wall -Wextra -Werror -std=gnu11 -I "$HERE/lib")
NS_A=lvtest-a-$$
NS_B=lvtest-b-$$
A4=192.0.2.1 B4=192.0.2.2
A6=2001:db8::1 B6=2001:db8::2
PORT_TCP=7000 PORT_UDP=7001 RAW_PROTO=253
TIMEOUT_MS=2000
KEEP_LOGS=0

declare -a PIDS=()
TMP=
OUT=
ESP=1
FAILED=0
POINT=0

KM_DELAY_MS=0

usage() {
	echo "usage: $0 [--keep-logs] [--km-delay-ms N]" >&2
	exit 2
}

while (($#)); do
	case $1 in
	--keep-logs) KEEP_LOGS=1 ;;
	--km-delay-ms)
		[[ "${2:-}" =~ ^[0-9]+$ ]] || usage
		KM_DELAY_MS=$2
		shift
		;;
	*) usage ;;
	esac
	shift
done

die() {
	echo "test-on-host: $*" >&2
	exit 1
}

cleanup() {
	local pid

	set +e
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	if [[ -n "$TMP" ]]; then
		if ((KEEP_LOGS)); then
			echo "# logs kept in $TMP" >&2
		else
			rm -rf "$TMP"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Everything the TAP stream says goes through here, and into $OUT for the
# parser check at the end.
say() {
	printf '%s\n' "$*" | tee -a "$OUT"
}

point() {
	local ok=$1
	shift
	POINT=$((POINT + 1))
	if ((ok)); then
		say "ok $POINT - $*"
	else
		say "not ok $POINT - $*"
		FAILED=1
	fi
}

# ---- build ------------------------------------------------------------

build() {
	local src name

	mkdir -p "$TMP/bin"
	for src in "$HERE"/km/*.c "$HERE"/probes/*.c; do
		name=$(basename "$src" .c)
		gcc "${CFLAGS[@]}" -o "$TMP/bin/$name" "$src" ||
			die "build of $src failed"
	done
}

# tap.h corners the probe does not reach: SKIP, escaping, NaN, bail out.
tap_selfcheck() {
	local src=$TMP/tap-selfcheck.c out=$TMP/tap-selfcheck.tap ok=1

	cat >"$src" <<'EOF'
#include "tap.h"
int main(void)
{
	static const double d[] = { 1.0, 2.5, NAN };
	static const long long n[] = { -1, 0, 7 };

	tap_init();
	tap_ok("plain");
	tap_skip("not here", "skipped %d", 2);
	tap_not_ok("failing #1");
	tap_yaml_begin();
	tap_yaml_str("quote", "a \"b\" \\ c\n\td\x01");
	tap_yaml_str("nothing", NULL);
	tap_yaml_bool("flag", true);
	tap_yaml_double("pi", 3.14159);
	tap_yaml_double_seq("ds", d, 3);
	tap_yaml_int_seq("ns", n, 3);
	tap_yaml_int_seq("empty", n, 0);
	tap_yaml_str("eagain", errno_name(EAGAIN));
	tap_yaml_str("zero", errno_name(0));
	tap_yaml_str("unknown", errno_name(4095));
	tap_yaml_end();
	tap_diag("ms %.3f", tap_ms_since_start());
	tap_plan_end();
	tap_bail_out("on purpose");
}
EOF
	gcc "${CFLAGS[@]}" -o "$TMP/bin/tap-selfcheck" "$src" || ok=0
	if ((ok)); then
		"$TMP/bin/tap-selfcheck" >"$out" && ok=0
		grep -q '^Bail out! on purpose$' "$out" || ok=0
		grep -q '^ok 2 - skipped 2 # SKIP not here$' "$out" || ok=0
		grep -qF '  quote: "a \"b\" \\ c\n\td\x01"' "$out" || ok=0
		grep -qF '  ds: [1.000, 2.500, .nan]' "$out" || ok=0
		grep -qF 'not ok 3 - failing \#1' "$out" || ok=0
	fi
	point "$ok" "tap.h self-check"
	sed 's/^/# tap.h: /' "$out" | tee -a "$OUT"
}

# ---- topology -----------------------------------------------------------

nsa() { ip netns exec "$NS_A" "$@"; }
nsb() { ip netns exec "$NS_B" "$@"; }

make_namespaces() {
	local ns

	for ns in "$NS_A" "$NS_B"; do
		ip netns add "$ns"
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0 \
			net.ipv4.ping_group_range="0 2147483647"
		ip -n "$ns" link set lo up
	done
	ip link add lvtest-va netns "$NS_A" type veth \
		peer name lvtest-vb netns "$NS_B"
	ip -n "$NS_A" addr add "$A4/24" dev lvtest-va
	ip -n "$NS_B" addr add "$B4/24" dev lvtest-vb
	ip -n "$NS_A" addr add "$A6/64" dev lvtest-va nodad
	ip -n "$NS_B" addr add "$B6/64" dev lvtest-vb nodad
	ip -n "$NS_A" link set lvtest-va up
	ip -n "$NS_B" link set lvtest-vb up
}

write_keys() {
	cat >"$TMP/keys" <<EOF
# SRC DST proto SPI mode REQID KEY (rfc4106(gcm(aes)), 128-bit ICV)
$A4 $B4 esp 0x00001001 transport 1 0x0102030405060708090a0b0c0d0e0f1011121314
$B4 $A4 esp 0x00001002 transport 1 0x2122232425262728292a2b2c2d2e2f3031323334
$A6 $B6 esp 0x00002001 transport 2 0x4142434445464748494a4b4c4d4e4f5051525354
$B6 $A6 esp 0x00002002 transport 2 0x6162636465666768696a6b6c6d6e6f7071727374
EOF
}

# The states the far side gets, straight from the keying table.
add_states() {
	local ns=$1 src dst proto spi mode reqid key

	while read -r src dst proto spi mode reqid key; do
		[[ -z "$src" || "$src" == \#* ]] && continue
		ip -n "$ns" xfrm state add src "$src" dst "$dst" \
			proto "$proto" spi "$spi" mode "$mode" reqid "$reqid" \
			replay-window 32 aead 'rfc4106(gcm(aes))' "$key" 128 ||
			return 1
	done <"$TMP/keys"
}

# Policies for one side; "level required" so nothing leaves in clear.
add_policies() {
	local ns=$1 me4=$2 peer4=$3 me6=$4 peer6=$5 dir

	for dir in out in; do
		local s4=$me4 d4=$peer4 s6=$me6 d6=$peer6
		if [[ $dir == in ]]; then
			s4=$peer4 d4=$me4 s6=$peer6 d6=$me6
		fi
		ip -n "$ns" xfrm policy add src "$s4" dst "$d4" dir "$dir" \
			priority 100 tmpl src "$s4" dst "$d4" proto esp \
			reqid 1 mode transport level required
		ip -n "$ns" xfrm policy add src "$s6" dst "$d6" dir "$dir" \
			priority 100 tmpl src "$s6" dst "$d6" proto esp \
			reqid 2 mode transport level required
		# Neighbour discovery must work before any SA exists.
		ip -n "$ns" xfrm policy add src ::/0 dst ::/0 proto ipv6-icmp \
			type 135 dir "$dir" priority 10
		ip -n "$ns" xfrm policy add src ::/0 dst ::/0 proto ipv6-icmp \
			type 136 dir "$dir" priority 10
	done
}

# ESP needs esp4/esp6 and gcm in the kernel; find out on a scratch state.
probe_esp() {
	local err

	if err=$(add_states "$NS_B" 2>&1); then
		ESP=1
	else
		ESP=0
		ip -n "$NS_B" xfrm state flush
		say "# ESP unavailable on this kernel ($(uname -r)):" \
			"${err//$'\n'/ }"
		say "# cases show the ACQUIRE path and the blackhole only"
	fi
}

setup_ipsec() {
	probe_esp
	add_policies "$NS_A" "$A4" "$B4" "$A6" "$B6"
	if ((ESP)); then
		add_policies "$NS_B" "$B4" "$A4" "$B6" "$A6"
	fi
	say "# xfrm_larval_drop in A:" \
		"$(nsa cat /proc/sys/net/core/xfrm_larval_drop)"
}

# ---- processes ----------------------------------------------------------

# wait_ready FILE: the programs print "READY <ns>" once they listen.
wait_ready() {
	local i

	for i in $(seq 100); do
		grep -q '^READY ' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

start_echo() {
	local fam=$1 proto=$2 log=$TMP/echo-$1-$2.log
	local args=(--family "$fam" --proto "$proto" --log "$log"
		    --max-runtime-s 300)

	case $proto in
	tcp) args+=(--port "$PORT_TCP") ;;
	udp) args+=(--port "$PORT_UDP") ;;
	raw) args+=(--raw-proto "$RAW_PROTO") ;;
	esac
	# Not through nsb(): $! must be the program (ip netns exec execs it).
	ip netns exec "$NS_B" "$TMP/bin/larval-echo" "${args[@]}" >/dev/null &
	PIDS+=($!)
	wait_ready "$log" || die "larval-echo $fam $proto did not get ready"
}

KM_PID=
start_km() {
	local log=$1

	ip netns exec "$NS_A" "$TMP/bin/larval-km" --keys "$TMP/keys" \
		--log "$log" --max-runtime-s 60 --delay-ms "$KM_DELAY_MS" \
		>/dev/null &
	KM_PID=$!
	PIDS+=("$KM_PID")
	wait_ready "$log" || die "larval-km did not get ready"
}

stop_km() {
	kill "$KM_PID" 2>/dev/null || true
	wait "$KM_PID" 2>/dev/null || true
	KM_PID=
}

# Nothing of the previous case may survive: no SA, no larval state in A,
# fresh replay windows in B.
reset_sad() {
	local i

	if ((ESP)); then
		ip -n "$NS_B" xfrm state flush
		add_states "$NS_B" || die "cannot re-key $NS_B"
	fi
	for i in 1 2 3; do
		ip -n "$NS_A" xfrm state flush
		sleep 0.05
		[[ -z "$(ip -n "$NS_A" xfrm state)" ]] && return 0
	done
	die "SAD of $NS_A does not stay empty"
}

# ---- cases --------------------------------------------------------------

peer_of() { [[ $1 == 4 ]] && echo "$B4" || echo "$B6"; }

probe_args() {
	local fam=$1 proto=$2 mode=$3

	echo --family "$fam" --proto "$proto" --mode "$mode" \
		--peer "$(peer_of "$fam")" --timeout-ms "$TIMEOUT_MS"
	case $proto in
	tcp) echo --port "$PORT_TCP" ;;
	udp) echo --port "$PORT_UDP" ;;
	raw) echo --raw-proto "$RAW_PROTO" ;;
	esac
	[[ $mode == nonblock ]] && echo --poll-before-send
	return 0
}

# yaml_get TAPFILE POINT KEY: a value from a test point's YAML block.
yaml_get() {
	awk -v point="$2" -v key="$3" '
		/^(not )?ok [0-9]+ - / {
			sub(/^(not )?ok [0-9]+ - /, "");
			cur = $0; next
		}
		cur == point && $1 == key ":" {
			$1 = ""; sub(/^ /, ""); gsub(/"/, ""); print; exit
		}' "$1"
}

# Run one probe; its TAP becomes an indented subtest of ours.
run_probe() {
	local name=$1 tap=$2 rc=0
	shift 2

	say "# Subtest: $name"
	timeout 30 ip netns exec "$NS_A" "$TMP/bin/larval-probe" "$@" \
		>"$tap" 2>"$tap.err" || rc=$?
	sed 's/^/    /' "$tap" | tee -a "$OUT"
	if [[ -s "$tap.err" ]]; then
		sed 's/^/# stderr: /' "$tap.err" | tee -a "$OUT"
	fi
	return "$rc"
}

# The probe ran to the end: exit 0, a plan, no "not ok", no bail out.
probe_complete() {
	local tap=$1

	grep -q '^1\.\.[0-9]' "$tap" && ! grep -q '^not ok' "$tap" &&
		! grep -q '^Bail out!' "$tap"
}

observed() {
	local tap=$1 line rev

	line="connect=$(yaml_get "$tap" connect errno_name)"
	line+="/$(yaml_get "$tap" connect duration_ms)ms"
	if grep -q ' - poll_connect$' "$tap"; then
		rev=$(yaml_get "$tap" poll_connect revents)
		line+=" poll_connect=${rev:-none}"
		line+="/$(yaml_get "$tap" poll_connect waited_ms)ms"
	fi
	line+=" send1=$(yaml_get "$tap" "send 1" errno_name)"
	line+=" sent=$(yaml_get "$tap" recv sent)"
	line+=" received=$(yaml_get "$tap" recv received)"
	line+=" first_reply_ms=$(yaml_get "$tap" recv first_reply_ms)"
	echo "${line//=\//=OK/}"
}

# Just after link-up the first neighbour solicitation can go unanswered
# (the peer has not joined its solicited-node group yet), which costs a
# 1 s retransmit and would pass for an IPsec effect.  Ping until both
# families answer.
warm_up() {
	local fam i ok tap=$TMP/warm-up.tap

	for fam in 4 6; do
		ok=0
		for i in 1 2 3 4 5; do
			nsa "$TMP/bin/larval-probe" --family "$fam" \
				--proto ping --peer "$(peer_of "$fam")" \
				--count 1 --timeout-ms 1000 >"$tap" 2>&1 || true
			if [[ "$(yaml_get "$tap" recv received)" == 1 ]]; then
				ok=1
				break
			fi
		done
		point "$ok" "warm-up v$fam ping answered (attempt $i)"
	done
}

baseline_case() {
	local fam=$1 proto=$2 name="baseline v$1 $2 (no policy)"
	local tap=$TMP/baseline-$fam-$proto.tap ok=1 count

	run_probe "$name" "$tap" $(probe_args "$fam" "$proto" block) || ok=0
	probe_complete "$tap" || ok=0
	count=$(yaml_get "$tap" recv received)
	[[ "$count" == 3 ]] || ok=0
	point "$ok" "$name"
	say "# $name: $(observed "$tap")"
}

policy_case() {
	local fam=$1 proto=$2 mode=$3 name="v$1 $2 $3 via policy"
	local tap=$TMP/case-$fam-$proto-$mode.tap
	local km=$TMP/km-$fam-$proto-$mode.log ok=1 summary

	reset_sad
	start_km "$km"
	run_probe "$name" "$tap" $(probe_args "$fam" "$proto" "$mode") || ok=0
	stop_km
	probe_complete "$tap" || ok=0
	summary=$(grep ' SUMMARY ' "$km" || true)
	[[ -n "$summary" ]] || ok=0
	[[ "$summary" =~ acquires=[1-9] ]] || ok=0
	if ((ESP)); then
		[[ "$summary" =~ installs=[2-9] && "$summary" =~ errors=0 ]] ||
			ok=0
	fi
	point "$ok" "$name"
	say "# $name: $(observed "$tap")"
	sed 's/^/# km: /' "$km" | tee -a "$OUT"
}

check_parse() {
	local js

	if ! command -v node >/dev/null ||
	   [[ ! -d "$ROOT/node_modules/tap-parser" ]]; then
		echo "# tap-parser missing: stream not machine-checked" >&2
		return 0
	fi
	# Parse the stream the way the harness will; insist on YAML objects.
	js='
const { Parser } = require(process.argv[1]);
const src = require("fs").readFileSync(process.argv[2], "utf8");
let asserts = 0, yaml = 0, bad = [];
function watch(p, depth) {
	p.on("assert", (a) => {
		asserts++;
		if (a.diag && typeof a.diag === "object") yaml++;
		if (depth > 0 && a.diag && a.name === "recv" &&
		    !Array.isArray(a.diag.rtt_ms))
			bad.push("rtt_ms not a list in " + a.name);
	});
	p.on("child", (c) => watch(c, depth + 1));
}
const p = new Parser((r) => {
	console.error(`# tap-parser: ok=${r.ok} count=${r.count} ` +
		`pass=${r.pass} fail=${r.fail} all_asserts=${asserts} ` +
		`with_yaml=${yaml} bad=${bad.length}`);
	bad.forEach((b) => console.error("# tap-parser: " + b));
	process.exitCode = r.ok && bad.length === 0 &&
		r.count === Number(process.argv[3]) ? 0 : 1;
});
watch(p, 0);
p.end(src);
'
	node -e "$js" "$ROOT/node_modules/tap-parser" "$OUT" "$POINT"
}

main() {
	local fam proto mode

	[[ $(id -u) == 0 ]] || die "must run as root (network namespaces)"
	TMP=$(mktemp -d /tmp/lvtest-host.XXXXXX)
	OUT=$TMP/all.tap
	: >"$OUT"
	build

	say "TAP version 14"
	say "# kernel $(uname -r), programs built in $TMP/bin," \
		"km delay $KM_DELAY_MS ms"
	tap_selfcheck
	make_namespaces
	write_keys
	for fam in 4 6; do
		for proto in tcp udp raw; do
			start_echo "$fam" "$proto"
		done
	done
	warm_up
	for fam in 4 6; do
		for proto in tcp udp raw ping; do
			baseline_case "$fam" "$proto"
		done
	done

	setup_ipsec
	for fam in 4 6; do
		for proto in tcp udp raw ping; do
			for mode in block nonblock; do
				policy_case "$fam" "$proto" "$mode"
			done
		done
	done
	say "1..$POINT"

	check_parse || FAILED=1
	return "$FAILED"
}

main
