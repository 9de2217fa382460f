#!/bin/sh
# Build the image the demo topologies use, statushub/busybox, from the
# static busybox (Debian: busybox-static), without pulling anything:
#   etc/build-demo-image.sh            # on the engine DOCKER_HOST names
# The test suite builds the same image in its private engine
# (tests/fixtures/docker.py).
set -eu
BUSYBOX=${BUSYBOX:-/usr/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "$BUSYBOX missing: apt-get install busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
tar -C "$root" -cf - . | docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - statushub/busybox
