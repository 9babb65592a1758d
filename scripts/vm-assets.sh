#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds (once) and verifies the microvm guest assets, outside the work tree:
#
#   $cache/vm/<hash>/vmlinuz          Linux 6.1 bzImage from Debian's linux-source-6.1,
#                                     tinyconfig + tools/vm/kernel.config, no modules
#   $cache/vm/<hash>/kernel.config    the full .config it was built with
#   $cache/vm/<hash>/rootfs.squashfs  read-only root: debootstrap minbase bookworm
#                                     + busybox + python3-minimal + procps, zstd squashfs
#   $cache/vm/<hash>/recipe           the text <hash> is the SHA-256 of (16 hex digits)
#   $cache/vm/<hash>/manifest         "<sha256>  <file>" for every asset (sha256sum -c format)
#
# where $cache is $MIMOBOX_CACHE_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/mimobox.
# $MIMOBOX_VM_DIR (absolute), when set, is the directory instead of $cache/vm/<hash>:
# the library looks there too, so `mimobox setup vm` and the backend agree.
# <hash> covers everything that decides the assets' content (the pinned kernel
# source version, the config fragment, the root's suite and packages, this
# recipe's version), so changing any of them gives a new directory; an asset
# already in the manifest is never rebuilt, only verified.
#
#   scripts/vm-assets.sh [build] [kernel|rootfs|all]   build what is missing, verify, print the directory
#   scripts/vm-assets.sh verify  [kernel|rootfs|all]   verify only (an asset missing is an error)
#   scripts/vm-assets.sh dir                           print the directory only
#
# Progress goes to stderr; stdout carries only the directory. A failed build
# leaves nothing behind in the asset directory. Building needs root (apt-get for
# missing packages, debootstrap for the root file system). docs/microvm.md.
set -eu

# The pins. Another linux-source-6.1 version is refused: bump LINUX_SOURCE_VERSION
# (the hash follows) after checking that the new source still builds and boots.
LINUX_SOURCE_VERSION=6.1.192-3
ROOTFS_SUITE=bookworm
ROOTFS_INCLUDE=busybox,python3-minimal,procps
KERNEL_RECIPE_VERSION=2
ROOTFS_RECIPE_VERSION=1

# What building needs, installed with apt-get when missing (deliberately not in
# scripts/deps.sh: the default build and test never build a kernel).
VM_PACKAGES="linux-source-6.1 make gcc libc6-dev bc flex bison libelf-dev cpio xz-utils lz4
debootstrap squashfs-tools qemu-system-x86 qemu-system-common"

MIRROR=${MIMOBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NICE="nice -n 19 ionice -c3"

here=$(cd "$(dirname "$0")/.." && pwd)
fragment=$here/tools/vm/kernel.config
cache=${MIMOBOX_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mimobox}

say() { echo "vm-assets: $*" >&2; }
die() { echo "vm-assets: error: $*" >&2; exit 1; }

usage() {
	sed -n 's/^#   \(scripts\/vm-assets.sh.*\)/\1/p' "$0" >&2
	exit 2
}

mode=build
what=all
case ${1:-} in
	build|verify|dir) mode=$1; shift ;;
	-h|--help) usage ;;
esac
case ${1:-all} in
	kernel|rootfs|all) what=${1:-all} ;;
	*) echo "vm-assets: unknown argument '$1'" >&2; usage ;;
esac
[ $# -le 1 ] || { echo "vm-assets: too many arguments" >&2; usage; }

[ -r "$fragment" ] || die "kernel config fragment $fragment is missing (run from a mimobox checkout)"

# What decides each asset's content. A directory's <hash> covers both; each
# asset also keeps its own recipe (<asset>.recipe), so an asset whose recipe
# did not change is copied (verified) from a sibling directory, not rebuilt.
kernel_recipe() {
	printf 'kernel: linux-source-6.1 %s, x86_64, make tinyconfig + fragment, bzImage, recipe %s\n' \
		"$LINUX_SOURCE_VERSION" "$KERNEL_RECIPE_VERSION"
	cat "$fragment"
}
rootfs_recipe() {
	printf 'rootfs: debootstrap --variant=minbase --include=%s %s, no docs/man/apt caches, no host resolv.conf/hostname, squashfs zstd, recipe %s\n' \
		"$ROOTFS_INCLUDE" "$ROOTFS_SUITE" "$ROOTFS_RECIPE_VERSION"
}
recipe() {
	printf 'mimobox microvm guest assets\n'
	kernel_recipe
	rootfs_recipe
}
asset_recipe() {
	case $1 in
		vmlinuz) kernel_recipe ;;
		rootfs.squashfs) rootfs_recipe ;;
	esac
}

hash=$(recipe | sha256sum | cut -c1-16)
dir=${MIMOBOX_VM_DIR:-$cache/vm/$hash}
case $dir in
	/*) ;;
	*) die "MIMOBOX_VM_DIR must be an absolute path, not '$dir'" ;;
esac

if [ "$mode" = dir ]; then
	echo "$dir"
	exit 0
fi

case $what in
	kernel) assets=vmlinuz ;;
	rootfs) assets=rootfs.squashfs ;;
	all) assets="vmlinuz rootfs.squashfs" ;;
esac

# check_private PATH: owned by root or us, writable by nobody else, no
# symlink (the library refuses anything else: src/backend/microvm/assets.c).
check_private() {
	[ ! -L "$1" ] || die "$1 is a symbolic link (refused): use the directory it points to, or remove it and build again"
	owner=$(stat -c %u "$1")
	[ "$owner" = 0 ] || [ "$owner" = "$(id -u)" ] ||
		die "$1 is owned by uid $owner, neither root nor you: use assets that root or you own"
	[ -z "$(find "$1" -maxdepth 0 -perm /022)" ] ||
		die "$1 is writable by other users (mode $(stat -c %a "$1")): chmod go-w '$1'"
}

# check_manifest: every line "<64 lowercase hex>  <asset>", each asset at most
# once, nothing else (the library's rules: a manifest is untrusted input).
check_manifest() {
	[ -f "$dir/manifest" ] || return 0
	check_private "$dir/manifest"
	[ "$(stat -c %s "$dir/manifest")" -le 4096 ] || die "$dir/manifest is damaged (over 4096 bytes): remove $dir and run again"
	# (no {64}: mawk has no interval expressions)
	bad=$(awk '!/^[0-9a-f]+  (vmlinuz|rootfs\.squashfs)$/ || index($0, "  ") != 65 || seen[$2]++ { print NR; exit }' "$dir/manifest")
	[ -z "$bad" ] || die "$dir/manifest is damaged (line $bad is not '<sha256>  <asset>' or repeats an asset): remove $dir and run again"
}

# manifest_sum FILE: the SHA-256 the manifest records for FILE, or nothing.
manifest_sum() {
	[ -f "$dir/manifest" ] || return 0
	awk -v f="$1" '$2 == f { print $1 }' "$dir/manifest"
}

# lock_shared: the manifest's lock, shared, on fd 8; 1 when there is none
# to take (a directory this user cannot write, without the lock file: no
# build of ours changes it). A read-only open is enough for a shared lock,
# so another user verifies root's assets.
lock_shared() {
	if [ -w "$dir/.manifest.lock" ] || { [ ! -e "$dir/.manifest.lock" ] && [ -w "$dir" ]; }; then
		exec 8>"$dir/.manifest.lock"
	elif [ -r "$dir/.manifest.lock" ]; then
		exec 8<"$dir/.manifest.lock"
	else
		return 1
	fi
	flock -s 8
}

# verify_one FILE: 0 when verified, 1 when not built yet; dies when damaged.
verify_one() {
	locked=0
	if [ -d "$dir" ] && lock_shared; then
		locked=1
	fi
	check_manifest
	want=$(manifest_sum "$1")
	if [ -e "$dir/$1" ]; then there=1; else there=0; fi
	[ "$locked" = 0 ] || flock -u 8
	if [ -z "$want" ]; then
		[ "$there" = 0 ] || die "$dir/$1 exists but the manifest does not record it (an interrupted build?): remove $dir and run again"
		return 1
	fi
	[ -f "$dir/$1" ] || die "$dir/$1 is recorded in the manifest but missing: the cache is damaged; remove $dir and run again"
	check_private "$dir/$1"
	got=$(sha256sum "$dir/$1" | cut -d' ' -f1)
	[ "$got" = "$want" ] || die "$dir/$1 fails its SHA-256 check (manifest $want, file $got): the cache is damaged; remove $dir and run again"
	return 0
}

# install SRC FILE: moves SRC to $dir/FILE and records its SHA-256 in the
# manifest, both under the manifest's lock (a reader never sees one without
# the other).
install_asset() {
	sum=$(sha256sum "$1" | cut -d' ' -f1)
	exec 8>"$dir/.manifest.lock"
	flock 8
	asset_recipe "$2" >"$dir/.$2.recipe.tmp"
	mv -f "$dir/.$2.recipe.tmp" "$dir/$2.recipe"
	mv -f "$1" "$dir/$2"
	{
		[ ! -f "$dir/manifest" ] || awk -v f="$2" '$2 != f' "$dir/manifest"
		printf '%s  %s\n' "$sum" "$2"
	} >"$dir/.manifest.tmp"
	mv -f "$dir/.manifest.tmp" "$dir/manifest"
	flock -u 8
}

if [ "$mode" = verify ]; then
	[ -d "$dir" ] || die "no assets at $dir: build them with scripts/vm-assets.sh build (or: mimobox setup vm)"
	check_private "$dir"
	for a in $assets; do
		verify_one "$a" || die "$dir/$a is not built: build it with scripts/vm-assets.sh build"
		say "$a verified"
	done
	echo "$dir"
	exit 0
fi

# --- build mode ---

# Nothing here may be writable by others (the library refuses such assets).
umask 022
mkdir -p "$dir"
check_private "$dir"
if [ -f "$dir/recipe" ]; then
	# Only reachable through MIMOBOX_VM_DIR (else the name is the recipe's hash):
	# never add assets of this recipe to a directory of another.
	recipe | cmp -s - "$dir/recipe" ||
		die "$dir holds assets of another recipe (see $dir/recipe): point MIMOBOX_VM_DIR elsewhere, or remove $dir"
else
	recipe >"$dir/.recipe.tmp" && mv -f "$dir/.recipe.tmp" "$dir/recipe"
fi

[ "$(id -u)" = 0 ] || {
	missing=
	for a in $assets; do verify_one "$a" || missing="$missing $a"; done
	[ -z "$missing" ] || die "building$missing needs root (apt-get, debootstrap); run as root, or have root build the cache once"
}

install_missing() {
	need=
	for p in $VM_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
	done
	[ -n "$need" ] || return 0
	pkgs=
	for p in $need; do
		if [ "$p" = linux-source-6.1 ]; then
			pkgs="$pkgs $p=$LINUX_SOURCE_VERSION"
		else
			pkgs="$pkgs $p"
		fi
	done
	say "installing:$pkgs"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $NICE apt-get install -y --no-install-recommends $pkgs >&2 ||
		die "apt-get install$pkgs failed (apt-get update first? is linux-source-6.1 $LINUX_SOURCE_VERSION still in the archive?)"
}

tmp=
cleanup() {
	[ -n "$tmp" ] && [ -d "$tmp" ] || return 0
	# debootstrap mounts proc/sys in the target and unmounts them itself, but
	# not when it is killed: never let rm descend into a live mount.
	awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
		while IFS= read -r m; do umount -l "$m" || true; done
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

build_kernel() {
	got=$(dpkg-query -W -f='${Version}' linux-source-6.1)
	[ "$got" = "$LINUX_SOURCE_VERSION" ] ||
		die "linux-source-6.1 $got is installed, this recipe is pinned to $LINUX_SOURCE_VERSION: install that version (apt-get install linux-source-6.1=$LINUX_SOURCE_VERSION) or bump LINUX_SOURCE_VERSION in $0 after testing the new one"
	tarball=/usr/src/linux-source-6.1.tar.xz
	[ -r "$tarball" ] || die "$tarball is missing although linux-source-6.1 is installed: reinstall it"
	# dpkg's own checksums of the package's files: a modified tarball is refused.
	if dpkg --verify linux-source-6.1 2>&1 | grep -q .; then
		die "dpkg --verify linux-source-6.1 reports modified files: reinstall it (apt-get install --reinstall linux-source-6.1=$LINUX_SOURCE_VERSION)"
	fi
	start=$(date +%s)
	say "kernel: unpacking $tarball"
	$NICE tar -xJf "$tarball" -C "$tmp"
	src=$tmp/linux-source-6.1
	[ -f "$src/Makefile" ] || die "$tarball did not unpack to linux-source-6.1/"
	log=$tmp/kernel-build.log
	say "kernel: configuring (tinyconfig + $fragment)"
	(
		cd "$src"
		$NICE make ARCH=x86_64 tinyconfig
		$NICE ./scripts/kconfig/merge_config.sh -m .config "$fragment"
		$NICE make ARCH=x86_64 olddefconfig
	) >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "kernel configuration failed (log above)"; }
	# Every option the fragment asks for must have survived olddefconfig.
	bad=
	while IFS= read -r line; do
		case $line in
			CONFIG_*=*)
				grep -qxF "$line" "$src/.config" || bad="$bad ${line%%=*}"
				;;
			"# CONFIG_"*" is not set")
				opt=${line#\# }
				opt=${opt%% *}
				! grep -q "^$opt=" "$src/.config" || bad="$bad $opt(should be off)"
				;;
		esac
	done <"$fragment"
	[ -z "$bad" ] || die "the kernel config lost:$bad (a dependency is missing from $fragment)"
	# Nothing of the build host or the build time in the image: the same
	# source, fragment and compiler give the same bytes.
	export KBUILD_BUILD_USER=mimobox KBUILD_BUILD_HOST=mimobox KBUILD_BUILD_VERSION=1
	export KBUILD_BUILD_TIMESTAMP="$LINUX_SOURCE_VERSION"
	jobs=$(nproc 2>/dev/null || echo 2)
	say "kernel: building bzImage with $jobs jobs (minutes; log: $log)"
	(cd "$src" && $NICE make ARCH=x86_64 -j"$jobs" bzImage) >>"$log" 2>&1 ||
		{ tail -n 40 "$log" >&2; die "kernel build failed (log above)"; }
	cp "$src/arch/x86/boot/bzImage" "$tmp/vmlinuz"
	cp "$src/.config" "$tmp/kernel.config"
	rm -rf "$src"
	mv -f "$tmp/kernel.config" "$dir/kernel.config"
	install_asset "$tmp/vmlinuz" vmlinuz
	say "kernel: built in $(($(date +%s) - start)) s, $(stat -c %s "$dir/vmlinuz") bytes"
}

build_rootfs() {
	start=$(date +%s)
	root=$tmp/root
	log=$tmp/debootstrap.log
	say "rootfs: debootstrap --variant=minbase --include=$ROOTFS_INCLUDE $ROOTFS_SUITE from $MIRROR"
	$NICE debootstrap --variant=minbase --include="$ROOTFS_INCLUDE" "$ROOTFS_SUITE" "$root" "$MIRROR" >"$log" 2>&1 ||
		{ tail -n 30 "$log" >&2; die "debootstrap failed (log above; MIMOBOX_DEBIAN_MIRROR picks another mirror)"; }
	[ -x "$root/bin/busybox" ] && [ -x "$root/usr/bin/python3" ] ||
		die "debootstrap finished but busybox or python3 is missing from the root"
	t1=$(date +%s)
	say "rootfs: debootstrap took $((t1 - start)) s; trimming docs, man pages, apt caches"
	rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" \
		"$root/var/cache/apt" "$root/var/lib/apt/lists" "$root/var/cache/debconf"/*-old \
		"$root/var/log"/* "$root/debootstrap"
	# debootstrap copies the build host's resolv.conf and hostname: nothing of
	# the host goes into the image.
	rm -f "$root/etc/resolv.conf" "$root/etc/hostname" "$root/etc/hosts"
	: >"$root/etc/resolv.conf"
	echo mimobox >"$root/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost\n127.0.1.1\tmimobox\n' >"$root/etc/hosts"
	mkdir -p "$root/usr/share/doc" "$root/usr/share/man" "$root/var/cache/apt" "$root/var/lib/apt/lists"
	say "rootfs: mksquashfs (zstd)"
	$NICE mksquashfs "$root" "$tmp/rootfs.squashfs" -comp zstd -noappend -no-progress \
		-mkfs-time 0 -all-time 0 >"$tmp/mksquashfs.log" 2>&1 ||
		{ tail -n 30 "$tmp/mksquashfs.log" >&2; die "mksquashfs failed (log above)"; }
	t2=$(date +%s)
	rm -rf --one-file-system "$root"
	install_asset "$tmp/rootfs.squashfs" rootfs.squashfs
	say "rootfs: mksquashfs took $((t2 - t1)) s; $(stat -c %s "$dir/rootfs.squashfs") bytes"
}

# reuse ASSET: copies ASSET from a sibling directory built with the same
# recipe for it (verified against that directory's manifest); 1 when none.
reuse() {
	asset_recipe "$1" >"$tmp/want.recipe"
	for f in "$cache"/vm/*/"$1.recipe"; do
		[ -f "$f" ] || continue
		from=${f%/*}
		[ "$from" != "$dir" ] && cmp -s "$f" "$tmp/want.recipe" || continue
		want=$(awk -v f="$1" '$2 == f { print $1 }' "$from/manifest" 2>/dev/null)
		[ -n "$want" ] && [ -f "$from/$1" ] || continue
		cp "$from/$1" "$tmp/$1"
		[ "$(sha256sum "$tmp/$1" | cut -d' ' -f1)" = "$want" ] || { rm -f "$tmp/$1"; continue; }
		[ "$1" != vmlinuz ] || [ ! -f "$from/kernel.config" ] || cp "$from/kernel.config" "$dir/kernel.config"
		say "$1: same recipe as in $from; copied (SHA-256 verified)"
		install_asset "$tmp/$1" "$1"
		return 0
	done
	return 1
}

# Each asset has its own lock: a second builder of the same asset waits, then
# finds it built; the kernel and the root file system may build side by side.
for a in $assets; do
	exec 9>"$dir/.lock.$a"
	if ! flock -n 9; then
		say "another build holds $dir/.lock.$a; waiting"
		flock 9
	fi
	if verify_one "$a"; then
		say "$a present and verified"
	else
		tmp=$(mktemp -d "$dir/.build.XXXXXX")
		if ! reuse "$a"; then
			install_missing
			case $a in
				vmlinuz) build_kernel ;;
				rootfs.squashfs) build_rootfs ;;
			esac
		fi
		cleanup
		tmp=
		verify_one "$a" || die "$dir/$a was not recorded after its build"
	fi
	flock -u 9
done
echo "$dir"
