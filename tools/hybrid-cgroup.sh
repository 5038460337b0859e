#!/bin/sh
# Makes crun usable on a cgroup v1 "hybrid" host.
#
#   tools/hybrid-cgroup.sh apply|undo|status
#
# Why: on a hybrid host systemd mounts v1 hierarchies for most controllers and
# a cgroup2 tree at /sys/fs/cgroup/unified. Controllers no v1 hierarchy
# claims (here: hugetlb) stay attached to that cgroup2 tree, and crun 1.8.1
# then refuses to run: "cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2". runc does not care.
#
# apply: mounts every controller the cgroup2 tree still holds as its own v1
# hierarchy (/sys/fs/cgroup/hugetlb), which takes it off cgroup2. Nothing
# else changes: existing groups, systemd and runc are unaffected. Idempotent.
# undo: unmounts those hierarchies again, but only when no group exists in
# them: unmounting while a container group is still being torn down can hang.
# The kernel hands an unmounted controller back to cgroup2 a moment later
# (asynchronously), so `status` right after `undo` may still say "works".
# On pure v1 and pure v2 hosts both are no-ops.
set -eu

cg=/sys/fs/cgroup
unified=$cg/unified
action=${1:-status}

is_cgroup2() { [ "$(stat -f -c %T "$1" 2>/dev/null)" = cgroup2fs ]; }

if is_cgroup2 "$cg"; then
	echo "pure cgroup v2: nothing to do"
	exit 0
fi
if ! is_cgroup2 "$unified"; then
	echo "pure cgroup v1: nothing to do"
	exit 0
fi

held=$(cat "$unified/cgroup.controllers")

case $action in
status)
	if [ -n "$held" ]; then
		echo "hybrid, cgroup2 holds: $held (crun refuses; run: $0 apply)"
		exit 1
	fi
	echo "hybrid, cgroup2 holds no controller (crun works)"
	;;
apply)
	for c in $held; do
		if ! mkdir -p "$cg/$c" 2>/dev/null; then
			# systemd may mount the /sys/fs/cgroup tmpfs read-only.
			mount -o remount,rw "$cg"
			mkdir -p "$cg/$c"
			mount -o remount,ro "$cg"
		fi
		mount -t cgroup -o "$c" cgroup "$cg/$c"
		echo "mounted $c as a v1 hierarchy on $cg/$c"
	done
	;;
undo)
	for c in hugetlb $held; do
		mountpoint -q "$cg/$c" || continue
		if [ -n "$(find "$cg/$c" -mindepth 1 -type d -print -quit)" ]; then
			echo "groups left in $cg/$c: not unmounting" >&2
			exit 1
		fi
		umount "$cg/$c"
		rmdir "$cg/$c"
		echo "unmounted $cg/$c"
	done
	;;
*)
	echo "usage: $0 apply|undo|status" >&2
	exit 2
	;;
esac
