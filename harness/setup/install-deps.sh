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
	# kernel-patches/ checks (codespell: the dictionary of checkpatch --codespell)
	git patch perl quilt codespell
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

# The mainline line (`--mainline`, `make deps-mainline`): Debian's
# linux-source-7.3 is in trixie-backports, which Debian 12 does not list.
# The suite is added with a pin of priority 1, so that apt takes from it
# only what is named here and never upgrades anything else of the host
# from it.
mainline=0
[ "${1:-}" = --mainline ] && mainline=1
backports_list=/etc/apt/sources.list.d/larval-trixie-backports.sources
backports_pin=/etc/apt/preferences.d/larval-trixie-backports
if [ "$mainline" -eq 1 ]; then
	packages+=(linux-source-7.3)
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

add_trixie_backports() {
	[ -f "$backports_list" ] && [ -f "$backports_pin" ] && return 0
	echo "install-deps: adding trixie-backports to apt ($backports_list, pinned to 1 in $backports_pin)" >&2
	# The same mirror as the host's own Debian suites.
	local uri
	uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[ -n "$uri" ] || uri=http://deb.debian.org/debian
	printf 'Types: deb\nURIs: %s\nSuites: trixie-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" |
		$SUDO tee "$backports_list" >/dev/null
	printf 'Package: *\nPin: release n=trixie-backports\nPin-Priority: 1\n' | $SUDO tee "$backports_pin" >/dev/null
}

missing=()
for p in "${packages[@]}"; do
	[[ $p == \#* ]] && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	if [ "$mainline" -eq 1 ]; then
		add_trixie_backports
	fi
	# Stale or absent package lists make apt-get install fail on a fresh machine.
	$SUDO apt-get update -q >/dev/null
	# Named packages from trixie-backports come with their own suite's
	# dependencies; with the pin at 1 apt picks that suite only for them.
	targets=()
	for p in "${missing[@]}"; do
		case $p in linux-source-7.3) targets+=("$p/trixie-backports") ;; *) targets+=("$p") ;; esac
	done
	$SUDO apt-get install -y -q --no-install-recommends "${targets[@]}" >/dev/null
fi
# Debian's 7.3 cloud kernel (distro-7.3) is fetched with apt-get download
# when first booted, like 6.12's: it needs the suite's package lists only.
if [ "$mainline" -eq 1 ] && ! apt-cache pkgnames linux-image-7.3 | grep -q cloud-amd64; then
	add_trixie_backports
	$SUDO apt-get update -q >/dev/null
fi

# --km libreswan: Debian's package, extracted into the harness cache.
bash "$(dirname "$0")/fetch-libreswan.sh"
