#!/usr/bin/env bash
# Builds kerbgate's Debian package with dpkg-deb:
#   /usr/bin/kerbgate                      static (CGO off), version/commit/date in `kerbgate version`
#   /lib/systemd/system/kerbgate.service   the sandboxed unit (packaging/kerbgate.service)
#   /etc/kerbgate/kerbgate.yaml            `kerbgate example-config`, store in /var/lib/kerbgate (a conffile)
#   /usr/share/doc/kerbgate/operations.md
# and the maintainer scripts in packaging/debian (the kerbgate system user, /var/lib/kerbgate).
#
# Usage: scripts/package-deb.sh [OUTDIR]     (default: dist/)
# VERSION overrides the version (default: from git, 0.0.0+gitYYYYMMDD.SHA without a tag).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

out=$(realpath -m "${1:-dist}")
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit-dirty"; fi
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [ -z "${VERSION:-}" ]; then
	if tag=$(git describe --tags --abbrev=0 2>/dev/null); then
		VERSION=${tag#v}
	else
		VERSION="0.0.0+git$(date -u +%Y%m%d).${commit%-dirty}"
	fi
fi
arch=$(dpkg --print-architecture)
case "$arch" in
amd64 | arm64 | riscv64 | s390x | ppc64el) goarch=${arch/ppc64el/ppc64le} ;;
armhf) goarch=arm ;;
i386) goarch=386 ;;
*) echo "package-deb: no Go architecture for $arch" >&2; exit 1 ;;
esac

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/kerbgate" "$root/usr/share/doc/kerbgate"

CGO_ENABLED=0 GOOS=linux GOARCH=$goarch go build -trimpath \
	-ldflags "-s -w -X main.version=$VERSION -X main.commit=$commit -X main.buildDate=$date" \
	-o "$root/usr/bin/kerbgate" ./cmd/kerbgate

install -m 0644 packaging/kerbgate.service "$root/lib/systemd/system/kerbgate.service"
install -m 0644 docs/operations.md "$root/usr/share/doc/kerbgate/operations.md"

# The example's store is relative to the configuration's directory; /etc is
# read-only to the unit (ProtectSystem=strict), so the package points it at the
# store directory.
"$root/usr/bin/kerbgate" example-config >"$root/etc/kerbgate/kerbgate.yaml"
n=$(grep -c '^  path: kerbgate.db$' "$root/etc/kerbgate/kerbgate.yaml" || true)
if [ "$n" != 1 ]; then
	echo "package-deb: the example names its store $n times as '  path: kerbgate.db'; update this script" >&2
	exit 1
fi
sed -i 's|^  path: kerbgate.db$|  path: /var/lib/kerbgate/kerbgate.db|' "$root/etc/kerbgate/kerbgate.yaml"
chmod 0640 "$root/etc/kerbgate/kerbgate.yaml"

install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
echo /etc/kerbgate/kerbgate.yaml >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: kerbgate
Version: $VERSION
Architecture: $arch
Maintainer: kerbgate maintainers <kerbgate@example.test>
Depends: adduser
Section: net
Priority: optional
Installed-Size: $size
Homepage: https://github.com/kerbgate/kerbgate
Description: Windows single sign-on gateway (Kerberos/Negotiate) for web applications
 kerbgate brings Integrated Windows Authentication (HTTP Negotiate, SPNEGO,
 Kerberos) to any web application on Linux: sign-in, a one-time token handoff,
 an application proxy with constrained delegation, an OpenID Provider and
 forward-auth. Commit $commit, built $date.
CONTROL

mkdir -p "$out"
deb="$out/kerbgate_${VERSION}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
