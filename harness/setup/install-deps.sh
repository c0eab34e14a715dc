#!/usr/bin/env bash
# Installs the Debian packages the harness needs on a bare Debian 12 machine.
# Idempotent: packages already present are not touched, so a warm machine
# spends no time here.  Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
	# booting guests
	qemu-system-x86
	# building kernels
	linux-source-6.12 build-essential flex bison bc libelf-dev libssl-dev
	ccache cpio xz-utils lz4 kmod
	# guest image
	busybox-static dropbear-bin iproute2 gzip
	# --firewall stateful: nft in the guest
	nftables
	# kernel-patches/ checks
	git patch perl quilt
	# `larval exec --with ping` in tests/vm/boot.test.ts
	iputils-ping
	# pgrep: the tests and .ci/run check that no QEMU outlived them
	procps
	# setpriv --pdeathsig: a killed harness takes its QEMUs with it (util-linux is essential; named for clarity)
	util-linux
	# xmllint: tests/unit/report.test.ts parses larval run's JUnit with a strict XML parser
	libxml2-utils
	# guest programs are linked statically against glibc
	libc6-dev
	# --km strongswan: charon, swanctl and the plugins copied into the guest
	# (gcm is in the standard plugins; the rest come with libstrongswan)
	strongswan-charon strongswan-swanctl libstrongswan-standard-plugins
	# --km libreswan: the libraries pluto links (and certutil for its NSS
	# database); the package itself is fetched, not installed (fetch-libreswan.sh)
	libnss3 libnspr4 libnss3-tools libunbound8 libldns3 libevent-core-2.1-7
	libevent-pthreads-2.1-7 libcurl3-nss libcap-ng0 libaudit1 libldap-2.5-0 libpam0g
	# tests/vm/programs.test.ts: unmodified programs copied into the guest
	# (getent is libc-bin's, curl is here already for most; dnsmasq serves the names)
	bind9-dnsutils curl socat dnsmasq-base
)

missing=()
for p in "${packages[@]}"; do
	[[ $p == \#* ]] && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Stale or absent package lists make apt-get install fail on a fresh machine.
	$SUDO apt-get update -q >/dev/null
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# --km libreswan: Debian's package, extracted into the harness cache.
bash "$(dirname "$0")/fetch-libreswan.sh"
