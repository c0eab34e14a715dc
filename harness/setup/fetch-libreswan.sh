#!/usr/bin/env bash
# --km libreswan: Debian's libreswan package, extracted into the harness
# cache (never installed: it conflicts with strongswan-charon and
# strongswan-starter, which --km strongswan needs on the host), plus an
# empty NSS database for pluto made with certutil.  install-deps.sh
# installs the libraries pluto links and runs this.  Idempotent: once a
# version is fetched it stays (remove the directory for apt's newer
# candidate); no root needed but for apt-get update on a machine without
# package lists.
#
#   ~/.cache/larval/libreswan/VERSION/root   the package's files (dpkg-deb -x)
#   ~/.cache/larval/libreswan/VERSION/nss    cert9.db, key4.db, pkcs11.txt
#   ~/.cache/larval/libreswan/current        -> VERSION (harness/image/ike-overlay.ts)
set -euo pipefail

cache="${LARVAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/larval}/libreswan"
complete() { [ -x "$1/root/usr/libexec/ipsec/pluto" ] && [ -s "$1/nss/cert9.db" ]; }
complete "$cache/current" && exit 0
# The candidate apt would install (bookworm: 4.10-2+deb12u1); recorded as the directory name.
version=$(apt-cache policy libreswan 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q >/dev/null
	version=$(apt-cache policy libreswan | awk '/Candidate:/ {print $2}')
fi
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	echo "fetch-libreswan: apt knows no libreswan package" >&2
	exit 1
fi
dir="$cache/$version"
if ! complete "$dir"; then
	echo "fetch-libreswan: fetching libreswan $version into $dir" >&2
	tmp=$(mktemp -d "$cache.XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$cache")" && mktemp -d "$cache.XXXXXX"; })
	trap 'rm -rf "$tmp"' EXIT
	# As root apt warns that its sandbox user cannot write here: said only if the download fails.
	if ! out=$(cd "$tmp" && apt-get download -q "libreswan=$version" 2>&1); then
		echo "fetch-libreswan: apt-get download libreswan=$version failed:" >&2
		echo "$out" >&2
		exit 1
	fi
	dpkg-deb -x "$tmp"/libreswan_*.deb "$tmp/root"
	mkdir -p "$tmp/nss"
	certutil -N -d "sql:$tmp/nss" --empty-password
	mkdir -p "$cache"
	rm -rf "$dir"
	mkdir -p "$dir"
	mv "$tmp/root" "$tmp/nss" "$dir/"
fi
ln -sfn "$version" "$cache/current.tmp"
mv -T "$cache/current.tmp" "$cache/current"
