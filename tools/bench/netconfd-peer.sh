#!/usr/bin/env bash
# Starts (or stops) Debian's netconfd (yuma123) behind a private sshd on a
# loopback port, as the second NETCONF server for the benchmark and as a
# reference peer for the interop suite.
#
#   tools/bench/netconfd-peer.sh start DIR [PORT] [MODULE...]
#   tools/bench/netconfd-peer.sh stop DIR
#
# DIR (created) holds everything: host key, sshd_config, logs, pid files,
# the netconfd socket and startup file. PORT defaults to 18831. MODULEs
# default to "bench" (tools/bench/yang); "app-hosting" (yang/) also loads.
#
# Login: user admin, password admin (and reader/reader), exactly like the
# apphostd test config.
#
# Nothing of the system's ssh setup is touched:
# - sshd comes from /usr/sbin/sshd when openssh-server is installed, else
#   from the openssh-server .deb unpacked into a cache directory
#   (apt-get download; no install, no service started).
# - As root, sshd insists on a privilege-separation user "sshd", on
#   /run/sshd, and reads users from /etc/passwd and /etc/shadow. It runs in
#   a private mount namespace (unshare --mount) where DIR's own passwd and
#   shadow files (the system's plus sshd/admin/reader) are bind-mounted
#   over /etc/passwd and /etc/shadow and /run is a fresh tmpfs. Outside
#   that namespace nothing changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

die() { echo "netconfd-peer: $*" >&2; exit 1; }

# Prints the path of an sshd binary, fetching the Debian package if needed.
find_sshd() {
  if [ -x /usr/sbin/sshd ]; then
    echo /usr/sbin/sshd
    return
  fi
  local cache="${APPHOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/apphost}/sshd"
  if [ ! -x "$cache/root/usr/sbin/sshd" ]; then
    mkdir -p "$cache/deb"
    chmod 777 "$cache/deb" # apt-get download drops privileges to _apt
    (cd "$cache/deb" && apt-get download -q openssh-server libwrap0 >/dev/null 2>&1) ||
      { apt-get update -qq >/dev/null 2>&1 && (cd "$cache/deb" && apt-get download -q openssh-server libwrap0 >/dev/null); } ||
      die "cannot fetch openssh-server with apt-get download"
    for deb in "$cache"/deb/*.deb; do dpkg-deb -x "$deb" "$cache/root"; done
  fi
  echo "$cache/root/usr/sbin/sshd"
}

wait_port() {
  local port="$1" i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

start() {
  local dir="$1" port="${2:-18831}"
  shift 2 || shift $#
  local modules=("$@")
  [ ${#modules[@]} -gt 0 ] || modules=(bench)
  [ "$(id -u)" -eq 0 ] || die "must run as root (sshd password login and netconfd)"
  command -v netconfd >/dev/null || [ -x /usr/sbin/netconfd ] || die "netconfd missing: apt-get install netconfd"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  chmod 755 "$dir"
  # netconf-subsystem runs as the login user and must reach the socket.
  local p="$dir"
  while [ "$p" != / ]; do
    p="$(dirname "$p")"
    case "$(stat -c %A "$p" | cut -c10)" in x | t) ;; *) die "$p is not world-searchable: netconf-subsystem cannot reach $dir" ;; esac
  done
  local sshd
  sshd="$(find_sshd)"
  local libdir
  libdir="$(cd "$(dirname "$sshd")/../.." && pwd)/usr/lib/x86_64-linux-gnu"

  [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key"

  # Private account files: the system's, plus the privsep user and the two
  # NETCONF users. uid 0 for admin keeps netconfd's socket reachable and
  # matches --superuser.
  local hash_admin hash_reader
  hash_admin="$(openssl passwd -6 admin)"
  hash_reader="$(openssl passwd -6 reader)"
  {
    grep -vE '^(sshd|admin|reader):' /etc/passwd
    echo "sshd:x:64999:65534::/run/sshd:/usr/sbin/nologin"
    echo "admin:x:64998:65534:netconf admin:$dir:/bin/sh"
    echo "reader:x:64997:65534:netconf reader:$dir:/bin/sh"
  } >"$dir/passwd"
  {
    grep -vE '^(sshd|admin|reader):' /etc/shadow
    echo "sshd:*:20000:0:99999:7:::"
    echo "admin:$hash_admin:20000:0:99999:7:::"
    echo "reader:$hash_reader:20000:0:99999:7:::"
  } >"$dir/shadow"
  chmod 644 "$dir/passwd"
  chmod 600 "$dir/shadow"

  cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
PermitRootLogin no
UsePAM no
UseDNS no
StrictModes no
MaxSessions 100
MaxStartups 100
LogLevel INFO
Subsystem netconf "/usr/sbin/netconf-subsystem --ncxserver-sockname=$port@$dir/ncxserver.sock"
EOF

  # Only our own modules from yang/: its IETF copies (notifications, ...)
  # would shadow yuma123's own versions and break netconfd's start.
  mkdir -p "$dir/yang"
  cp "$repo"/yang/app-hosting@*.yang "$dir/yang/"
  local modpath="$repo/tools/bench/yang:$dir/yang:/usr/share/yuma/modules"
  local modargs=()
  local m
  for m in "${modules[@]}"; do modargs+=("--module=$m"); done
  [ -f "$dir/startup-cfg.xml" ] ||
    echo '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>' >"$dir/startup-cfg.xml"
  rm -f "$dir/ncxserver.sock"
  (cd "$dir" && exec setsid /usr/sbin/netconfd \
    --ncxserver-sockname="$dir/ncxserver.sock" \
    --modpath="$modpath" "${modargs[@]}" \
    --with-startup=true --startup="$dir/startup-cfg.xml" \
    --port="$port" --superuser=admin --access-control=permissive \
    --log="$dir/netconfd.log" --log-level=warn \
    </dev/null >"$dir/netconfd.out" 2>&1) &
  echo $! >"$dir/netconfd.pid"
  local i
  for i in $(seq 1 100); do
    [ -S "$dir/ncxserver.sock" ] && break
    kill -0 "$(cat "$dir/netconfd.pid")" 2>/dev/null || { cat "$dir/netconfd.log" >&2 || true; die "netconfd exited"; }
    sleep 0.1
  done
  [ -S "$dir/ncxserver.sock" ] || die "netconfd did not create its socket"

  # sshd -D stays in the foreground so $! is sshd itself (unshare execs).
  setsid env LD_LIBRARY_PATH="$libdir" unshare --mount --propagation private \
    sh -c 'mount --bind "$1/passwd" /etc/passwd &&
           mount --bind "$1/shadow" /etc/shadow &&
           mount -t tmpfs -o size=1m tmpfs /run &&
           mkdir -m 755 /run/sshd &&
           exec "$2" -D -f "$1/sshd_config" -E "$1/sshd.log"' sh "$dir" "$sshd" \
    </dev/null >"$dir/sshd.out" 2>&1 &
  echo $! >"$dir/sshd-main.pid"
  wait_port "$port" || { cat "$dir/sshd.log" "$dir/sshd.out" >&2 || true; die "sshd not listening on $port"; }
  echo "netconfd peer: 127.0.0.1:$port (admin/admin), modules: ${modules[*]}, dir $dir"
}

stop() {
  local dir="$1" f pid i pids=()
  for f in sshd-main.pid netconfd.pid; do
    [ -f "$dir/$f" ] || continue
    pid="$(cat "$dir/$f")"
    pids+=("$pid")
    # Signal the whole session (setsid above): sshd's per-connection
    # children and the netconf-subsystem processes go too.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    rm -f "$dir/$f"
  done
  for pid in "${pids[@]}"; do
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}

case "${1:-}" in
  start) shift; [ $# -ge 1 ] || die "usage: $0 start DIR [PORT] [MODULE...]"; start "$@" ;;
  stop) shift; [ $# -eq 1 ] || die "usage: $0 stop DIR"; stop "$1" ;;
  *) die "usage: $0 start DIR [PORT] [MODULE...] | stop DIR" ;;
esac
