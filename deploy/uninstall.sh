#!/usr/bin/env bash
# Remove edge-gate: the service, udev rules, venv and models. The config, the keys
# (/etc/edge-gate) and the state (/var/lib/edge-gate: gallery, outbox, relay counter) stay,
# so a reinstall picks up where it left off; --purge removes them and the account too.
#
#   sudo deploy/uninstall.sh [--purge]
#   deploy/uninstall.sh --root /tmp/img [--purge]
set -euo pipefail

SERVICE_USER=edge-gate
SERVICE_GROUP=edge-gate

usage() {
	cat <<'EOF'
usage: uninstall.sh [--root DIR] [--purge]

  --root DIR  uninstall from a scratch root made by install.sh --root DIR
  --purge     also delete /etc/edge-gate (config, keys), /var/lib/edge-gate (gallery,
              outbox, relay counter) and the edge-gate account. The gallery cannot be
              recovered without its key, and the relay will refuse a reset counter.
EOF
}

log() { printf 'uninstall: %s\n' "$*"; }
die() {
	printf 'uninstall: error: %s\n' "$*" >&2
	exit 1
}

ROOT=""
PURGE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--root) ROOT="$(realpath -m "${2:?--root needs a directory}")"; shift 2 ;;
	--purge) PURGE=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
if [ "$ROOT" = "/" ]; then ROOT=""; fi
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
	die "run as root (or use --root DIR)"
fi

live_systemd=0
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then live_systemd=1; fi

if [ "$live_systemd" -eq 1 ]; then
	# Stopping the service leaves the door locked (edge-gate's SIGTERM path).
	systemctl disable --now edge-gate.service 2>/dev/null || true
fi

for f in /etc/systemd/system/edge-gate.service \
	/etc/udev/rules.d/99-edge-gate.rules /etc/udev/rules.d/99-edge-gate.rules.dist; do
	if [ -e "$ROOT$f" ]; then
		rm -f "$ROOT$f"
		log "removed $f"
	fi
done
for d in /etc/systemd/system/edge-gate.service.d /opt/edge-gate /usr/share/edge-gate; do
	if [ -e "$ROOT$d" ]; then
		rm -rf "$ROOT$d"
		log "removed $d"
	fi
done

if [ "$PURGE" -eq 1 ]; then
	for d in /etc/edge-gate /var/lib/edge-gate; do
		if [ -e "$ROOT$d" ]; then
			rm -rf "$ROOT$d"
			log "purged $d"
		fi
	done
	if [ -n "$ROOT" ]; then
		for f in passwd group shadow gshadow; do
			if [ -f "$ROOT/etc/$f" ]; then
				tmp="$(mktemp "$ROOT/etc/$f.XXXXXX")"
				grep -v -e "^$SERVICE_USER:" -e "^$SERVICE_GROUP:" "$ROOT/etc/$f" >"$tmp" || true
				chmod --reference="$ROOT/etc/$f" "$tmp"
				mv -f "$tmp" "$ROOT/etc/$f"
			fi
		done
	else
		if getent passwd "$SERVICE_USER" >/dev/null; then userdel "$SERVICE_USER"; fi
		if getent group "$SERVICE_GROUP" >/dev/null; then groupdel "$SERVICE_GROUP"; fi
	fi
	log "removed the $SERVICE_USER account"
else
	log "kept /etc/edge-gate (config, keys) and /var/lib/edge-gate (gallery, outbox); --purge removes them"
fi

if [ "$live_systemd" -eq 1 ]; then
	systemctl daemon-reload
	systemctl reset-failed edge-gate.service 2>/dev/null || true
fi
if [ -z "$ROOT" ] && command -v udevadm >/dev/null && [ -S /run/udev/control ]; then
	udevadm control --reload
fi
log "done"
