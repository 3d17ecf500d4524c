#!/usr/bin/env bash
# Builds the backend simulator image (default tag ik-sim:dev) without any registry: FROM scratch with the host's node
# binary and the libraries ldd lists for it, the sim bundle, and entry executables vllm / vllm-omni / python3 / ollama /
# ik-sim (node scripts; the image has no shell). Idempotent; prints the image id on stdout, progress on stderr.
# Usage: scripts/build-sim-image.sh [TAG]
set -euo pipefail

tag=${1:-ik-sim:dev}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'build-sim-image: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed"
docker info >/dev/null 2>&1 || die "Docker is not running (docker info failed): start the Docker daemon (dockerd), then retry"
command -v ldd >/dev/null 2>&1 || die "ldd is not installed (it lists the libraries node needs)"
node_bin=$(readlink -f "$(command -v node)") || die "node is not on PATH"

bundle=$(node "$root/scripts/ik-sim" --build) || die "could not build the simulator bundle"

ctx=$(mktemp -d "${TMPDIR:-/tmp}/ik-sim-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
rootfs="$ctx/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/opt/ik-sim" "$rootfs/tmp"
cp "$node_bin" "$rootfs/usr/local/bin/node"
cp "$bundle" "$rootfs/opt/ik-sim/ik-sim.cjs"

# Every absolute path ldd prints (libraries and the dynamic loader) goes to the same path in the image.
libs=$(ldd "$node_bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }')
[ -n "$libs" ] || die "ldd listed no libraries for $node_bin (a static node needs none, but this script expects a dynamic one)"
for lib in $libs; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done

# Entry executables: each runs the bundle's main with its flavour as argv[0].
entry() {
  printf '#!/usr/local/bin/node\n' >"$rootfs/usr/local/bin/$1"
  printf "require('/opt/ik-sim/ik-sim.cjs').main([%s...process.argv.slice(2)], process.env).catch((e) => { process.stderr.write(String((e && e.stack) || e) + '\\\\n'); process.exit(1); });\n" "$2" >>"$rootfs/usr/local/bin/$1"
  chmod 0755 "$rootfs/usr/local/bin/$1"
}
entry vllm "'vllm', "
entry vllm-omni "'vllm-omni', "
entry python3 "'python3', "
entry ollama "'ollama', "
entry ik-sim ""

# Fixed timestamps, so an unchanged input gives the same layer and the same image id.
find "$rootfs" -exec touch -h -d '2000-01-01T00:00:00Z' {} +

bundle_sha=$(sha256sum "$bundle" | cut -d' ' -f1)
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin
LABEL ik.sim=1 ik.sim.bundle_sha256=$bundle_sha
CMD ["vllm", "serve", "ik-sim/model", "--host", "127.0.0.1"]
DOCKERFILE

say "building $tag from $node_bin ($(node --version)) and $bundle"
DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >/dev/null 2>"$ctx/build.log" || { cat "$ctx/build.log" >&2; die "docker build failed"; }
docker image inspect -f '{{.Id}}' "$tag"
