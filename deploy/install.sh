#!/usr/bin/env bash
# Install edge-gate on a gateway (Debian 12 or similar with systemd). Idempotent: run it again
# to upgrade; it never overwrites the config, edited udev rules or existing keys.
#
#   sudo deploy/install.sh                      # from a source checkout
#   sudo deploy/install.sh --wheel dist/edge_gate-0.1.0-py3-none-any.whl
#   deploy/install.sh --root /tmp/img --no-venv # into a scratch root (image builds, tests)
#
# Layout:
#   /etc/edge-gate/                 0750 root:edge-gate   edge-gate.toml (0640), audit.pub, TLS certs
#   /etc/edge-gate/credentials/     0700 root:root        keys and camera/MQTT secrets, 0600 each
#   /var/lib/edge-gate/             0700 edge-gate        gallery.db, outbox.db, relay.counter
#   /opt/edge-gate/venv/                                  the Python environment
#   /usr/share/edge-gate/models/                          TFLite models + manifest.json
#   /etc/systemd/system/edge-gate.service, /etc/udev/rules.d/99-edge-gate.rules
set -euo pipefail

SERVICE_USER=edge-gate
SERVICE_GROUP=edge-gate

usage() {
	cat <<'EOF'
usage: install.sh [--root DIR] [--no-venv | --wheel PATH | --source DIR] [--wheelhouse DIR]
                  [--python PYTHON]

  --root DIR        install below DIR instead of / (no useradd, no systemctl/udevadm;
                    the account is written into DIR/etc/passwd and DIR/etc/group)
  --no-venv         do not create or update /opt/edge-gate/venv
  --wheel PATH      install this wheel into the venv (default: the source checkout)
  --source DIR      source checkout to install from (default: this script's repository)
  --wheelhouse DIR  install offline: pip --no-index --find-links DIR
  --python PYTHON   interpreter for the venv and key generation (default: python3)
EOF
}

log() { printf 'install: %s\n' "$*"; }
die() {
	printf 'install: error: %s\n' "$*" >&2
	exit 1
}

ROOT=""
MAKE_VENV=1
WHEEL=""
WHEELHOUSE=""
PYTHON=python3
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

while [ $# -gt 0 ]; do
	case "$1" in
	--root) ROOT="$(realpath -m "${2:?--root needs a directory}")"; shift 2 ;;
	--no-venv) MAKE_VENV=0; shift ;;
	--wheel) WHEEL="$(realpath "${2:?--wheel needs a path}")"; shift 2 ;;
	--source) SOURCE="$(realpath "${2:?--source needs a directory}")"; shift 2 ;;
	--wheelhouse) WHEELHOUSE="$(realpath "${2:?--wheelhouse needs a directory}")"; shift 2 ;;
	--python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done

if [ "$ROOT" = "/" ]; then ROOT=""; fi
IS_ROOT=0
if [ "$(id -u)" -eq 0 ]; then IS_ROOT=1; fi
if [ -z "$ROOT" ] && [ "$IS_ROOT" -eq 0 ]; then
	die "run as root (or use --root DIR for a scratch install)"
fi
for f in systemd/edge-gate.service udev/99-edge-gate.rules deploy/edge-gate.toml; do
	[ -f "$SOURCE/$f" ] || die "$SOURCE/$f missing: --source must be an edge-gate checkout"
done
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
if [ "$MAKE_VENV" -eq 1 ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
	die "$PYTHON cannot create a venv (apt-get install python3-venv)"
fi

# Everything this script creates is private unless it says otherwise.
umask 077

# --- account ---------------------------------------------------------------------------
SVC_UID=""
SVC_GID=""

# Pick the highest id in 100..999 unused in both files, as useradd --system does.
free_system_id() {
	local used
	used="$(cut -d: -f3 "$ROOT/etc/passwd" "$ROOT/etc/group" 2>/dev/null | sort -n | uniq)"
	for ((id = 999; id >= 100; id--)); do
		grep -qx "$id" <<<"$used" || { echo "$id"; return 0; }
	done
	die "no free system id in $ROOT/etc/passwd"
}

ensure_account_in_root() {
	(umask 022 && mkdir -p "$ROOT/etc")
	[ -e "$ROOT/etc/passwd" ] || install -m 0644 /dev/null "$ROOT/etc/passwd"
	[ -e "$ROOT/etc/group" ] || install -m 0644 /dev/null "$ROOT/etc/group"
	if ! grep -q "^$SERVICE_GROUP:" "$ROOT/etc/group"; then
		printf '%s:x:%s:\n' "$SERVICE_GROUP" "$(free_system_id)" >>"$ROOT/etc/group"
		log "group $SERVICE_GROUP added to $ROOT/etc/group"
	fi
	SVC_GID="$(awk -F: -v g="$SERVICE_GROUP" '$1 == g { print $3 }' "$ROOT/etc/group")"
	if ! grep -q "^$SERVICE_USER:" "$ROOT/etc/passwd"; then
		local uid="$SVC_GID"
		cut -d: -f3 "$ROOT/etc/passwd" | grep -qx "$uid" && uid="$(free_system_id)"
		printf '%s:x:%s:%s:edge-gate door access daemon:/var/lib/edge-gate:/usr/sbin/nologin\n' \
			"$SERVICE_USER" "$uid" "$SVC_GID" >>"$ROOT/etc/passwd"
		log "user $SERVICE_USER added to $ROOT/etc/passwd"
	fi
	SVC_UID="$(awk -F: -v u="$SERVICE_USER" '$1 == u { print $3 }' "$ROOT/etc/passwd")"
}

ensure_account() {
	if [ -n "$ROOT" ]; then
		ensure_account_in_root
		return
	fi
	getent group "$SERVICE_GROUP" >/dev/null || groupadd --system "$SERVICE_GROUP"
	if ! getent passwd "$SERVICE_USER" >/dev/null; then
		useradd --system --gid "$SERVICE_GROUP" --no-create-home --home-dir /var/lib/edge-gate \
			--shell /usr/sbin/nologin --comment "edge-gate door access daemon" "$SERVICE_USER"
		log "user $SERVICE_USER created"
	fi
	SVC_UID="$(id -u "$SERVICE_USER")"
	SVC_GID="$(getent group "$SERVICE_GROUP" | cut -d: -f3)"
}

# --- files -----------------------------------------------------------------------------
# own PATH UID GID: chown when we can (a non-root scratch install cannot; modes still apply).
own() {
	if [ "$IS_ROOT" -eq 1 ]; then chown "$2:$3" "$1"; fi
}

# dir PATH MODE UID GID: create if missing and (re)apply owner and mode.
dir() {
	# Parents (e.g. /var/lib in a scratch root) must stay traversable: umask 022 for them.
	(umask 022 && mkdir -p "$ROOT$1")
	chmod "$2" "$ROOT$1"
	own "$ROOT$1" "$3" "$4"
}

# put SRC DEST MODE: copy atomically (temp file + rename) with the given mode, root-owned.
put() {
	local tmp
	tmp="$(mktemp "$ROOT$2.XXXXXX")"
	cat "$1" >"$tmp"
	chmod "$3" "$tmp"
	own "$tmp" 0 0
	mv -f "$tmp" "$ROOT$2"
}

# put_keep SRC DEST MODE: like put, but an existing, locally edited DEST is kept and the
# shipped version lands next to it as DEST.dist for the operator to merge.
put_keep() {
	if [ -e "$ROOT$2" ] && ! cmp -s "$1" "$ROOT$2"; then
		put "$1" "$2.dist" "$3"
		log "kept your $2; the shipped version is $2.dist"
	else
		put "$1" "$2" "$3"
	fi
}

# secret NAME GENERATOR...: create credentials/NAME with GENERATOR's output if it is missing.
secret() {
	local name="$1" dest="$ROOT/etc/edge-gate/credentials/$1" tmp
	shift
	if [ -e "$dest" ]; then
		chmod 0600 "$dest"
		return
	fi
	tmp="$(mktemp "$dest.XXXXXX")"
	if ! "$@" >"$tmp"; then
		rm -f "$tmp"
		die "could not generate $name"
	fi
	chmod 0600 "$tmp"
	own "$tmp" 0 0
	mv "$tmp" "$dest"
	log "generated credentials/$name"
}

gen_gallery_key() {
	# The JSON key ring of edge_gate/gallery/keyfile.py; the test suite parses it with that module.
	"$PYTHON" - <<'PY'
import base64, json, secrets, sys
ring = {"format": "edge-gate-gallery-key", "version": 1,
        "keys": [{"id": "k_" + secrets.token_hex(4),
                  "key": base64.b64encode(secrets.token_bytes(32)).decode("ascii")}]}
sys.stdout.write(json.dumps(ring, indent=1) + "\n")
PY
}

gen_relay_key() {
	"$PYTHON" -c 'import secrets, sys; sys.stdout.buffer.write(secrets.token_bytes(32))'
}

gen_audit_key() {
	openssl genpkey -algorithm ed25519 -outform PEM
}

empty() { :; }

# --- steps -----------------------------------------------------------------------------
ensure_account

dir /etc/edge-gate 0750 0 "$SVC_GID"
dir /etc/edge-gate/credentials 0700 0 0
dir /var/lib/edge-gate 0700 "$SVC_UID" "$SVC_GID"
dir /opt/edge-gate 0755 0 0
dir /usr/share/edge-gate 0755 0 0
dir /usr/share/edge-gate/models 0755 0 0
dir /etc/systemd/system 0755 0 0
dir /etc/udev/rules.d 0755 0 0

secret gallery.key gen_gallery_key
secret relay.key gen_relay_key
secret audit.key gen_audit_key
# Optional secrets start empty so that LoadCredential= finds them; edge-gate reads them only
# when the config names them (and refuses an empty one then).
for name in mqtt.key mqtt.password camera.username camera.password; do
	secret "$name" empty
done

# The public half of the event signing key, for security desks to verify events.
pub_tmp="$(mktemp "$ROOT/etc/edge-gate/audit.pub.XXXXXX")"
openssl pkey -in "$ROOT/etc/edge-gate/credentials/audit.key" -pubout >"$pub_tmp"
chmod 0644 "$pub_tmp"
own "$pub_tmp" 0 0
mv -f "$pub_tmp" "$ROOT/etc/edge-gate/audit.pub"

if [ -e "$ROOT/etc/edge-gate/edge-gate.toml" ]; then
	log "kept existing /etc/edge-gate/edge-gate.toml"
	put "$SOURCE/deploy/edge-gate.toml" /etc/edge-gate/edge-gate.toml.example 0640
	own "$ROOT/etc/edge-gate/edge-gate.toml.example" 0 "$SVC_GID"
else
	put "$SOURCE/deploy/edge-gate.toml" /etc/edge-gate/edge-gate.toml 0640
	own "$ROOT/etc/edge-gate/edge-gate.toml" 0 "$SVC_GID"
	log "wrote /etc/edge-gate/edge-gate.toml: edit it before starting the service"
fi

models_src="$SOURCE/models"
if compgen -G "$models_src/*.tflite" >/dev/null; then
	for f in "$models_src"/*.tflite "$models_src"/manifest.json "$models_src"/README* \
		"$models_src"/LICENSE*; do
		if [ -f "$f" ]; then put "$f" "/usr/share/edge-gate/models/$(basename "$f")" 0644; fi
	done
	if [ ! -f "$models_src/manifest.json" ]; then
		log "warning: $models_src has no manifest.json; edge-gate will refuse these models"
	fi
else
	log "warning: no models in $models_src; the package's own models will be used"
fi

put "$SOURCE/systemd/edge-gate.service" /etc/systemd/system/edge-gate.service 0644
put_keep "$SOURCE/udev/99-edge-gate.rules" /etc/udev/rules.d/99-edge-gate.rules 0644
if [ -f "$SOURCE/README.md" ]; then put "$SOURCE/README.md" /opt/edge-gate/README.md 0644; fi

if [ "$MAKE_VENV" -eq 1 ]; then
	venv="$ROOT/opt/edge-gate/venv"
	# The venv is world-readable (code, no secrets) so the service user can run it.
	(
		umask 022
		[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
		pip=("$venv/bin/python" -m pip install --quiet --upgrade)
		if [ -n "$WHEELHOUSE" ]; then pip+=(--no-index --find-links "$WHEELHOUSE"); fi
		target="${WHEEL:-$SOURCE}"
		"${pip[@]}" "$target"
		# journald fields need systemd-python (builds against libsystemd-dev); without it
		# edge-gate logs plain lines to stderr, which journald stores as well.
		"${pip[@]}" "systemd-python>=235" ||
			log "warning: systemd-python not installed; logging falls back to stderr"
	)
	log "venv ready: /opt/edge-gate/venv"
fi

if [ -z "$ROOT" ]; then
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
	fi
	if command -v udevadm >/dev/null && [ -S /run/udev/control ]; then
		udevadm control --reload
		udevadm trigger --subsystem-match=tty --subsystem-match=video4linux
	fi
fi

cat <<EOF
install: done. Next steps:
  1. fill in the device ids in /etc/udev/rules.d/99-edge-gate.rules (udevadm info -a -n /dev/ttyUSB0)
  2. edit /etc/edge-gate/edge-gate.toml, then: /opt/edge-gate/venv/bin/edge-gate check-config
  3. put the camera / MQTT secrets into /etc/edge-gate/credentials/ (0600, root)
  4. provision the relay with credentials/relay.key; give desks /etc/edge-gate/audit.pub
  5. systemctl enable --now edge-gate && systemctl status edge-gate
EOF
