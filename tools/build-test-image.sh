#!/bin/sh
# Builds a tiny SquashFS app image for tests from Debian's busybox-static.
#
#   tools/build-test-image.sh OUT.img [VARIANT]
#
# /sbin/init prints "apphost-test-image variant=VARIANT", then its
# environment (`env`), then a heartbeat line every second; SIGTERM makes it
# print "apphost-test-image stopping" and exit 0. VARIANT (default "A") lets
# tests tell one image from another.
set -eu

out=${1:?usage: build-test-image.sh OUT.img [VARIANT]}
variant=${2:-A}
case $variant in
*[!A-Za-z0-9_.-]*) echo "variant must be [A-Za-z0-9_.-]" >&2; exit 2 ;;
esac
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "$busybox missing: apt-get install busybox-static" >&2; exit 1; }
command -v mksquashfs >/dev/null || { echo "mksquashfs missing: apt-get install squashfs-tools" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

for d in bin sbin usr/bin usr/sbin proc sys dev tmp etc mnt media run var root; do
	mkdir -p "$root/$d"
done
cp "$busybox" "$root/bin/busybox"
# --list-full prints paths such as "bin/ls", "usr/sbin/chroot".
for app in $("$busybox" --list-full); do
	[ "$app" = bin/busybox ] && continue
	ln -sf /bin/busybox "$root/$app"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "$variant" >"$root/etc/variant"

# sbin/init is a busybox applet link to /bin/busybox: writing through it
# would overwrite the HOST's busybox. Replace the link with a file.
rm -f "$root/sbin/init"
cat >"$root/sbin/init" <<INIT
#!/bin/sh
# PID 1 of the test container: without a handler the kernel drops SIGTERM
# for a namespace's init, so install one.
trap 'echo "apphost-test-image stopping"; exit 0' TERM INT
echo "apphost-test-image variant=$variant"
env
n=0
while true; do
	n=\$((n + 1))
	echo "heartbeat \$n"
	# sleep in the background so the trap runs at once.
	sleep 1 &
	wait \$!
done
INIT
chmod 755 "$root/sbin/init"

mkdir -p "$(dirname "$out")"
mksquashfs "$root" "$out" -noappend -all-root -quiet -comp gzip >/dev/null
echo "$out"
