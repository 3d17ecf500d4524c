#!/bin/sh
# ikhub agent installer (POSIX sh; everything runs inside main, so a truncated download runs nothing).
#   curl -sfL HUB/install.sh | IK_TOKEN=ik_join_... sh -
# Environment: IK_TOKEN (required), IK_AGENT_NAME (default: hostname), IK_INSTALL_ROOT (install into a
# directory instead of /, no root needed, systemd left alone), IK_HUB_URL (default: the hub that served this).
# Optional agent settings copied into the env file when set: IK_NVIDIA_SMI, IK_RUNTIME, IK_DOCKER_GPU_MODE,
# IK_HUB_CA, IK_LOG_LEVEL, IK_IMAGE_MAP, IK_PROCESS_MAP.

main() {
  set -eu
  served_by=@HUB_URL@
  hub_url="${IK_HUB_URL:-$served_by}"
  hub_os=@HUB_OS@
  hub_arch=@HUB_ARCH@
  token="${IK_TOKEN:-}"
  root="${IK_INSTALL_ROOT:-}"

  [ -n "$token" ] || die "IK_TOKEN is not set. Run: curl -sfL $hub_url/install.sh | IK_TOKEN=ik_join_... sh -"
  case "$token" in
    ik_join_*) ;;
    *) die "IK_TOKEN must be a join token (ik_join_...): create one on the hub with 'ik join-token create'" ;;
  esac
  if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (curl ... | sudo IK_TOKEN=... sh -), or set IK_INSTALL_ROOT to install into a directory"
  fi

  prefix="$root/opt/ikhub"
  etc="$root/etc/ikhub"
  data="$root/var/lib/ikhub"
  mkdir -p "$prefix" "$etc" "$data"
  chmod 700 "$etc" "$data"

  node_bin=$(find_node)
  say "using node $("$node_bin" --version) at $node_bin"

  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT INT TERM
  fetch "$hub_url/agent/bundle" "$tmp/agent.cjs"
  fetch "$hub_url/agent/bundle.sha256" "$tmp/agent.cjs.sha256"
  want=$(cut -d ' ' -f 1 < "$tmp/agent.cjs.sha256")
  got=$(sha256_of "$tmp/agent.cjs")
  [ -n "$want" ] && [ "$want" = "$got" ] || die "the agent bundle's sha256 is $got, the hub says $want: the download is damaged, run the installer again"
  mv -f "$tmp/agent.cjs" "$prefix/agent.cjs"
  say "agent bundle verified (sha256 $got)"

  write_env "$etc/agent.env" "$data"
  write_launcher "$prefix/ik-agent" "$node_bin" "$prefix/agent.cjs" "$etc/agent.env"
  write_uninstaller "$prefix/uninstall.sh"

  if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    write_unit /etc/systemd/system/ik-agent.service "$prefix/ik-agent"
    systemctl daemon-reload
    systemctl enable ik-agent.service >/dev/null 2>&1
    systemctl restart ik-agent.service
    say "installed and started: systemctl status ik-agent · journalctl -u ik-agent -f"
  else
    [ -n "$root" ] && write_unit "$etc/ik-agent.service" "$prefix/ik-agent"
    say "installed into ${root:-/}. systemd is not managing it here; start the agent with:"
    say "  $prefix/ik-agent"
  fi
  say "uninstall with: $prefix/uninstall.sh"
}

say() { printf 'ikhub: %s\n' "$*"; }
die() { printf 'ikhub: error: %s\n' "$*" >&2; exit 1; }

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -sfL "$1" -o "$2" || die "could not download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1" || die "could not download $1"
  else
    die "neither curl nor wget is installed"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
  else die "no sha256 tool found (sha256sum, shasum or openssl)"
  fi
}

node_major() {
  "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0
}

# node >= 20 from PATH; else the hub's own runtime when this box has the hub's OS and architecture.
find_node() {
  if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 20 ]; then
    command -v node
    return
  fi
  if [ -x "$prefix/node" ] && [ "$(node_major "$prefix/node")" -ge 20 ]; then
    echo "$prefix/node"
    return
  fi
  os=$(uname -s | tr 'A-Z' 'a-z')
  case "$(uname -m)" in
    x86_64|amd64) arch=x64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  if [ "$os" = "$hub_os" ] && [ "$arch" = "$hub_arch" ]; then
    fetch "$hub_url/agent/node" "$prefix/node.part"
    chmod 755 "$prefix/node.part"
    mv -f "$prefix/node.part" "$prefix/node"
    [ "$(node_major "$prefix/node")" -ge 20 ] || die "the node runtime from the hub does not run here: install Node.js 20 or newer"
    echo "$prefix/node"
    return
  fi
  die "this box needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none)); the hub runs on $hub_os-$hub_arch, this box is $os-$arch, so the hub cannot lend its own: install Node.js 20+ and run this again"
}

write_env() {
  umask 077
  {
    echo "IK_HUB_URL=$hub_url"
    echo "IK_TOKEN=$token"
    echo "IK_DATA_DIR=$2"
    [ -n "${IK_AGENT_NAME:-}" ] && echo "IK_AGENT_NAME=$IK_AGENT_NAME"
    for var in IK_NVIDIA_SMI IK_RUNTIME IK_DOCKER_GPU_MODE IK_HUB_CA IK_LOG_LEVEL IK_IMAGE_MAP IK_PROCESS_MAP; do
      eval "val=\${$var:-}"
      [ -n "$val" ] && printf "%s='%s'\n" "$var" "$val"
    done
    true
  } > "$1.part"
  chmod 600 "$1.part"
  mv -f "$1.part" "$1"
  umask 022
}

write_launcher() {
  cat > "$1.part" <<LAUNCHER
#!/bin/sh
# Starts the ikhub agent with its settings ($4).
set -a
. "$4"
set +a
exec "$2" "$3" "\$@"
LAUNCHER
  chmod 755 "$1.part"
  mv -f "$1.part" "$1"
}

write_unit() {
  cat > "$1" <<UNIT
[Unit]
Description=ikhub agent
After=network-online.target docker.service
Wants=network-online.target

[Service]
ExecStart=$2
Restart=always
RestartSec=5
# Exit code 3: the hub refused this agent (revoked token or credential): restarting cannot help.
RestartPreventExitStatus=3
# Replicas run by the process runtime outlive the agent and are adopted by its next start.
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
}

write_uninstaller() {
  cat > "$1" <<UNINSTALL
#!/bin/sh
# Removes the ikhub agent installed by install.sh (add --purge to delete its data and credential too).
set -eu
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now ik-agent.service >/dev/null 2>&1 || true
  rm -f /etc/systemd/system/ik-agent.service
  systemctl daemon-reload
fi
rm -rf "$prefix" "$etc"
[ "\${1:-}" = "--purge" ] && rm -rf "$data"
echo "ikhub: agent removed"
UNINSTALL
  chmod 755 "$1"
}

main "$@"
