#!/bin/sh
# ikhub agent installer (POSIX sh). Everything runs inside main, which the last line calls: a truncated
# download defines nothing it runs.
#   curl -sfL HUB/install.sh | IK_TOKEN=ik_join_... sh -
# Environment: IK_TOKEN (required, a join token), IK_AGENT_NAME (default: the hostname), IK_INSTALL_ROOT (install
# into this directory instead of /: no root needed, systemd left alone), IK_HUB_URL (default: the hub that served
# this script), IK_HUB_CA (a CA file for a hub whose certificate is not publicly trusted; also used here).
# Agent settings copied into the env file when set: IK_NVIDIA_SMI, IK_NVIDIA_SMI_TIMEOUT_MS, IK_RUNTIME,
# IK_DOCKER_GPU_MODE, IK_HUB_CA, IK_LOG_LEVEL, IK_IMAGE_MAP, IK_PROCESS_MAP, IK_FAKE_SMI (the test nvidia-smi's scenario).

main() {
  set -eu
  served_by=@HUB_URL@
  hub_url="${IK_HUB_URL:-$served_by}"
  hub_url="${hub_url%/}"
  hub_os=@HUB_OS@
  hub_arch=@HUB_ARCH@
  token="${IK_TOKEN:-}"
  root="${IK_INSTALL_ROOT:-}"
  root="${root%/}"

  [ -n "$token" ] || die "IK_TOKEN is not set: run curl -sfL $hub_url/install.sh | IK_TOKEN=ik_join_... sh - (the hub prints a join token; 'ik join-token create' makes another)"
  case "$token" in
    ik_join_*[!A-Za-z0-9]*) die "IK_TOKEN is not a valid join token (ik_join_ then letters and digits): copy it again from the hub" ;;
    ik_join_?*) ;;
    ik_sdk_*) die "IK_TOKEN must be a join token (ik_join_...), not a control token (ik_sdk_...): create one on the hub with 'ik join-token create'" ;;
    ik_agent_*) die "IK_TOKEN must be a join token (ik_join_...), not a worker credential (ik_agent_...): create one on the hub with 'ik join-token create'" ;;
    ik_live_*) die "IK_TOKEN must be a join token (ik_join_...), not a data key (ik_live_...): create one on the hub with 'ik join-token create'" ;;
    *) die "IK_TOKEN must be a join token (ik_join_...): create one on the hub with 'ik join-token create'" ;;
  esac
  if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (curl -sfL $hub_url/install.sh | sudo IK_TOKEN=... sh -), or set IK_INSTALL_ROOT to install into a directory"
  fi
  case "$root" in
    '' | /*) ;;
    *) root="$(pwd)/$root" ;;
  esac

  prefix="$root/opt/ikhub"
  etc="$root/etc/ikhub"
  data="$root/var/lib/ikhub"
  systemd=0
  if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemd=1
  fi
  say "installing the ikhub agent from $hub_url into ${root:-/}"

  # Everything is downloaded and checked before anything is written, so a failed download leaves the box as it was.
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ikhub-install.XXXXXX") || die "could not create a temporary directory"
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  pick_node
  fetch "$hub_url/agent/bundle" "$tmp/agent.cjs"
  fetch "$hub_url/agent/bundle.sha256" "$tmp/agent.cjs.sha256"
  want=$(cut -d ' ' -f 1 < "$tmp/agent.cjs.sha256")
  got=$(sha256_of "$tmp/agent.cjs")
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    die "sha256 mismatch: the agent bundle from $hub_url/agent/bundle hashes to $got, but the hub says ${want:-nothing}: the download was damaged or altered; nothing was installed, run the installer again"
  fi
  if [ "$node_from_hub" = 1 ]; then
    say "no node >= 20 on this box: downloading the hub's own Node.js runtime"
    fetch "$hub_url/agent/node" "$tmp/node"
  fi

  mkdir -p "$prefix" "$etc" "$data"
  chmod 755 "$prefix"
  chmod 700 "$etc" "$data"
  if [ "$node_from_hub" = 1 ]; then
    install_file "$tmp/node" "$prefix/node" 755
    if [ "$(node_major "$prefix/node")" -lt 20 ]; then
      rm -f "$prefix/node"
      die "the Node.js runtime from the hub does not run on this box: install Node.js 20 or newer and run this again"
    fi
    node_bin="$prefix/node"
  fi
  say "using node $("$node_bin" --version </dev/null) at $node_bin"
  install_file "$tmp/agent.cjs" "$prefix/agent.cjs" 644
  say "agent bundle verified (sha256 $got)"

  write_env "$etc/agent.env"
  write_launcher "$prefix/ik-agent"
  write_uninstaller "$prefix/uninstall.sh"

  if [ "$systemd" = 1 ]; then
    write_unit /etc/systemd/system/ik-agent.service
    systemctl daemon-reload || die "systemctl daemon-reload failed"
    systemctl enable ik-agent.service >/dev/null 2>&1 || die "could not enable ik-agent.service: run systemctl enable ik-agent.service to see why"
    systemctl restart ik-agent.service || die "could not start ik-agent.service: see journalctl -u ik-agent"
    say "installed and started: systemctl status ik-agent, logs: journalctl -u ik-agent -f"
  else
    if [ -n "$root" ]; then
      write_unit "$etc/ik-agent.service"
      say "installed into $root; a systemd unit for it is in $etc/ik-agent.service (not enabled)"
    else
      say "installed; systemd is not running on this box, so nothing starts the agent for you"
    fi
    say "start the agent with (restart it if one is already running):"
    say "  $prefix/ik-agent"
  fi
  say "uninstall with: $prefix/uninstall.sh (add --purge to delete the worker's data and credential too)"
}

say() { printf 'ikhub: %s\n' "$*"; }
die() {
  printf 'ikhub: error: %s\n' "$*" >&2
  exit 1
}

# Single-quotes a value for sh (the env file is read with ".").
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

fetch() {
  if command -v curl >/dev/null 2>&1; then
    if [ -n "${IK_HUB_CA:-}" ]; then
      curl -fsSL --retry 3 --cacert "$IK_HUB_CA" -o "$2" "$1" || die "could not download $1"
    else
      curl -fsSL --retry 3 -o "$2" "$1" || die "could not download $1"
    fi
  elif command -v wget >/dev/null 2>&1; then
    if [ -n "${IK_HUB_CA:-}" ]; then
      wget -q --ca-certificate="$IK_HUB_CA" -O "$2" "$1" || die "could not download $1"
    else
      wget -q -O "$2" "$1" || die "could not download $1"
    fi
  else
    die "neither curl nor wget is installed"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
  else
    die "no sha256 tool found (sha256sum, shasum or openssl)"
  fi
}

# Copies into place through a temporary name beside the target, so a running agent or node never sees half a file.
install_file() {
  cp "$1" "$2.part"
  chmod "$3" "$2.part"
  mv -f "$2.part" "$2"
}

# The major version of a node binary, 0 when it does not run.
node_major() {
  major=$("$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' </dev/null 2>/dev/null) || major=0
  case "$major" in
    '' | *[!0-9]*) major=0 ;;
  esac
  echo "$major"
}

# Sets node_bin to a node >= 20 (from PATH, else one an earlier run installed), or node_from_hub=1 when this box
# has the hub's OS and architecture so the hub can lend its own runtime; otherwise says which Node to install.
pick_node() {
  node_bin=
  node_from_hub=0
  if node_bin=$(command -v node) && [ "$(node_major "$node_bin")" -ge 20 ]; then
    return 0
  fi
  if [ -x "$prefix/node" ] && [ "$(node_major "$prefix/node")" -ge 20 ]; then
    node_bin="$prefix/node"
    return 0
  fi
  os=$(uname -s | tr '[:upper:]' '[:lower:]')
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  if [ "$os" = "$hub_os" ] && [ "$arch" = "$hub_arch" ]; then
    node_from_hub=1
    return 0
  fi
  found=$(node --version 2>/dev/null </dev/null || echo none)
  die "this box needs Node.js 20 or newer (found: $found); the hub runs on $hub_os-$hub_arch and this box is $os-$arch, so the hub cannot lend its own: install Node.js 20+ and run this again"
}

write_env() {
  (
    umask 077
    echo "IK_HUB_URL=$(sq "$hub_url")"
    echo "IK_TOKEN=$(sq "$token")"
    echo "IK_DATA_DIR=$(sq "$data")"
    if [ -n "${IK_AGENT_NAME:-}" ]; then
      echo "IK_AGENT_NAME=$(sq "$IK_AGENT_NAME")"
    fi
    for var in IK_NVIDIA_SMI IK_NVIDIA_SMI_TIMEOUT_MS IK_RUNTIME IK_DOCKER_GPU_MODE IK_HUB_CA IK_LOG_LEVEL \
      IK_IMAGE_MAP IK_PROCESS_MAP IK_FAKE_SMI; do
      eval "val=\${$var:-}"
      if [ -n "$val" ]; then
        echo "$var=$(sq "$val")"
      fi
    done
  ) > "$1.part"
  chmod 600 "$1.part"
  mv -f "$1.part" "$1"
}

write_launcher() {
  {
    echo '#!/bin/sh'
    echo '# Starts the ikhub agent with the settings install.sh wrote (run it again to update them).'
    echo 'set -a'
    echo ". $(sq "$etc/agent.env")"
    echo 'set +a'
    echo "exec $(sq "$node_bin") $(sq "$prefix/agent.cjs") \"\$@\""
  } > "$1.part"
  chmod 755 "$1.part"
  mv -f "$1.part" "$1"
}

write_unit() {
  cat > "$1.part" <<UNIT
[Unit]
Description=ikhub agent
After=network-online.target docker.service
Wants=network-online.target

[Service]
ExecStart=$prefix/ik-agent
Restart=always
RestartSec=5
# Exit status 3: the hub refused this agent (revoked token or credential); restarting cannot help.
RestartPreventExitStatus=3
# Replicas run by the process runtime outlive the agent and are adopted by its next start.
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
  chmod 644 "$1.part"
  mv -f "$1.part" "$1"
}

write_uninstaller() {
  q_prefix=$(sq "$prefix")
  q_etc=$(sq "$etc")
  q_data=$(sq "$data")
  {
    echo '#!/bin/sh'
    echo '# Removes the ikhub agent that install.sh installed; --purge also deletes its data and worker credential.'
    echo 'set -eu'
    if [ "$systemd" = 1 ]; then
      echo 'if command -v systemctl >/dev/null 2>&1; then'
      echo '  systemctl disable --now ik-agent.service >/dev/null 2>&1 || true'
      echo '  rm -f /etc/systemd/system/ik-agent.service'
      echo '  systemctl daemon-reload || true'
      echo 'fi'
    fi
    echo "rm -rf $q_prefix $q_etc"
    # shellcheck disable=SC2016 # written for the uninstaller to expand
    echo 'if [ "${1:-}" = --purge ]; then'
    echo "  rm -rf $q_data"
    echo "  echo 'ikhub: agent removed, with its data'"
    echo 'else'
    echo "  echo 'ikhub: agent removed; its data and worker credential stay in '$q_data' (--purge deletes them)'"
    echo 'fi'
  } > "$1.part"
  chmod 755 "$1.part"
  mv -f "$1.part" "$1"
}

main "$@"
