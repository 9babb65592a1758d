#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs the README's two commands on a brand-new Debian 12 root, as a new
# user's machine would have them: nothing installed beyond debootstrap's
# minimal base, nothing cached, a clean clone of the committed HEAD.
#
#   scripts/fresh-root.sh [run|test|both]     default: both
#
# Each command gets its own new root ("each works alone"): debootstrap
# --variant=minbase bookworm once into a temporary directory, then a copy of
# it per command. The command runs as root inside a private mount namespace
# after pivot_root into the new root (a chroot would not do: the kernel
# refuses user namespaces to a chrooted process), with /proc, /sys (cgroups
# included), /dev and a tmpfs /run. The network is the host's: apt-get,
# pip and the crates.io fetch of scripts/wasmtime.sh reach their registries
# as on any machine; the host's local CA certificates and /etc/pip.conf are
# copied in (a site's own trust setup, not something the project installs).
# Everything is removed afterwards.
#
# Needs root and about 1 minute for debootstrap, then the commands' own time
# (the test command: about 15 minutes on 2 cores). Logs are kept in
# $MBX_FRESH_LOGS (default /var/tmp/mimobox-fresh-logs).
# Commits only: uncommitted changes in the work tree are not part of the run.
set -euo pipefail

what=${1:-both}
case $what in run | test | both) ;; *)
	echo "usage: scripts/fresh-root.sh [run|test|both]" >&2
	exit 2
	;;
esac
[ "$(id -u)" -eq 0 ] || { echo "fresh-root: must run as root (debootstrap, mounts)" >&2; exit 2; }

top=$(cd "$(dirname "$0")/.." && pwd)
mirror=${MBX_FRESH_MIRROR:-http://deb.debian.org/debian}
logs=${MBX_FRESH_LOGS:-/var/tmp/mimobox-fresh-logs}
mkdir -p "$logs"

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

work=$(mktemp -d /var/tmp/mimobox-fresh.XXXXXX)
cleanup() { rm -rf --one-file-system "$work"; }
trap cleanup EXIT INT TERM

echo "fresh-root: debootstrap --variant=minbase bookworm into $work/base" >&2
start=$(date +%s)
debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$logs/debootstrap.log" 2>&1 ||
	{ tail -n 30 "$logs/debootstrap.log" >&2; exit 1; }
echo "fresh-root: base made in $(($(date +%s) - start)) s" >&2
# The same suites a Debian 12 machine has: the release, its updates, security.
cat >"$work/base/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp -L /etc/resolv.conf "$work/base/etc/resolv.conf"
# What a machine's installer writes and debootstrap does not.
[ -e "$work/base/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$work/base/etc/hosts"
# The site's trust setup, as every machine of the site has it: local CA
# certificates (a TLS-inspecting egress proxy signs with one) and pip's
# configuration. The CA bundle itself is rebuilt from them when
# scripts/deps.sh installs ca-certificates.
if [ -d /usr/local/share/ca-certificates ]; then
	mkdir -p "$work/base/usr/local/share/ca-certificates"
	cp -a /usr/local/share/ca-certificates/. "$work/base/usr/local/share/ca-certificates/"
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$work/base/etc/pip.conf"

# runs NAME COMMAND: a new root for one command; returns its status.
runs() {
	local name=$1 cmd=$2 root=$work/$1 rc
	cp -a "$work/base" "$root"
	git clone -q --no-local "$top" "$root/root/mimobox"
	echo "fresh-root: [$name] $cmd (log: $logs/$name.log)" >&2
	start=$(date +%s)
	set +e
	unshare --mount --propagation private --fork --kill-child -- /bin/sh -eu -c '
		root=$1 cmd=$2
		mount --rbind "$root" "$root"
		cd "$root"
		mount -t proc proc proc
		mount --rbind /sys sys
		mount --rbind /dev dev
		mount -t tmpfs -o mode=0755 tmpfs run
		mkdir -p .oldroot
		pivot_root . .oldroot
		cd /
		umount -l /.oldroot
		rmdir /.oldroot
		exec /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			/bin/sh -c "cd /root/mimobox && $cmd"
	' fresh-root "$root" "$cmd" </dev/null >"$logs/$name.log" 2>&1
	rc=$?
	set -e
	echo "fresh-root: [$name] exit $rc after $(($(date +%s) - start)) s; last lines:" >&2
	tail -n 8 "$logs/$name.log" | sed 's/^/    /' >&2
	rm -rf --one-file-system "$root"
	return $rc
}

status=0
if [ "$what" != test ]; then runs run ./scripts/run.sh || status=1; fi
if [ "$what" != run ]; then runs test ./scripts/test.sh || status=1; fi
[ $status -eq 0 ] && echo "fresh-root: passed ($what)" >&2 || echo "fresh-root: FAILED ($what)" >&2
exit $status
