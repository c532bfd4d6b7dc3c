#!/usr/bin/python3
"""A real RTSP(S) camera stand-in: GStreamer's RTSP server streaming a looped video file.

Run by the SYSTEM python (``/usr/bin/python3``) with python3-gi and gir1.2-gst-rtsp-server-1.0;
the edge-gate venv does not need GStreamer. Used by the capture tests (``tests/rtsp_server.py``)
and by ``make demo``.

    /usr/bin/python3 deploy/rtsp_test_server.py --clip clip.mp4 --port 8554 \
        --user cam --password-file pw.txt [--tls-cert c.pem --tls-key k.pem] \
        [--width 640 --height 480 --fps 15]

The clip is decoded in its own pipeline (paced at real time, looped by seeking back on EOS) into
an ``intervideosink``; each RTSP client gets a media that re-encodes that live picture with x264,
so every client sees "now", like a real camera. With a user, clients must authenticate (HTTP basic
over RTSP); with a certificate the server speaks RTSP over TLS only (``rtsps://``). The password is
read from a file so that it never appears in a process list. Prints ``READY <port>`` on stdout
once the port is listening.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402

ROLE = "camera-user"


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", type=Path, required=True, help="video file to loop")
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--mount", default="/cam")
    p.add_argument("--user", default=None, help="require this user (basic auth)")
    p.add_argument("--password-file", type=Path, default=None)
    p.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate: serve rtsps://")
    p.add_argument("--tls-key", type=Path, default=None, help="PEM private key for --tls-cert")
    p.add_argument("--width", type=int, default=0, help="scale to this width (0: keep)")
    p.add_argument("--height", type=int, default=0, help="scale to this height (0: keep)")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--bitrate-kbps", type=int, default=1500)
    p.add_argument("--key-int", type=int, default=0, help="frames between key frames (0: fps)")
    return p.parse_args(argv)


def _decoder(args: argparse.Namespace, channel: str) -> Gst.Pipeline:
    caps = f"video/x-raw,framerate={args.fps}/1"
    if args.width and args.height:
        caps = f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1"
    desc = (
        f'filesrc location="{args.clip}" ! decodebin ! videoconvert ! videoscale ! '
        f"videorate ! {caps} ! intervideosink name=out channel={channel} sync=true"
    )
    pipeline = Gst.parse_launch(desc)
    if not isinstance(pipeline, Gst.Pipeline):
        raise SystemExit("decoder description did not make a pipeline")

    def on_message(_bus: Gst.Bus, msg: Gst.Message) -> bool:
        if msg.type == Gst.MessageType.EOS:
            # loop: back to the start; running time keeps increasing, intervideosrc does not care
            pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print(f"decoder error: {err.message} ({dbg})", file=sys.stderr, flush=True)
            GLib.idle_add(lambda: sys.exit(2))
        return True

    bus = pipeline.get_bus()
    bus.add_watch(GLib.PRIORITY_DEFAULT, on_message)
    return pipeline


def _decoded_size(decoder: Gst.Pipeline) -> tuple[int, int]:
    """Wait for the decoder to preroll and return the picture size it produces."""
    decoder.set_state(Gst.State.PLAYING)
    ret, _, _ = decoder.get_state(20 * Gst.SECOND)
    if ret == Gst.StateChangeReturn.FAILURE:
        raise SystemExit("decoder pipeline failed to start")
    sink = decoder.get_by_name("out")
    caps = sink.get_static_pad("sink").get_current_caps()
    if caps is None:
        raise SystemExit("decoder produced no picture")
    st = caps.get_structure(0)
    return st.get_value("width"), st.get_value("height")


def _factory(
    args: argparse.Namespace, channel: str, size: tuple[int, int]
) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    # default one key frame per second: a client joining mid-stream decodes within 1 s
    key_int = args.key_int or max(1, args.fps)
    factory.set_launch(
        # fixed caps: intervideosrc would otherwise start at its 320x240 default when a client
        # connects before it has seen a picture
        f"( intervideosrc channel={channel} timeout=1000000000000 ! "
        f"video/x-raw,width={size[0]},height={size[1]},framerate={args.fps}/1 ! videoconvert ! "
        f"video/x-raw,format=I420 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={args.bitrate_kbps} "
        f"key-int-max={key_int} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    if args.user:
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(ROLE, "media.factory.access", True)
        perms.add_permission_for_role(ROLE, "media.factory.construct", True)
        factory.set_permissions(perms)
    return factory


def _auth(args: argparse.Namespace) -> GstRtspServer.RTSPAuth | None:
    if not args.user and not args.tls_cert:
        return None
    auth = GstRtspServer.RTSPAuth()
    if args.user:
        if args.password_file is None:
            raise SystemExit("--user needs --password-file")
        password = args.password_file.read_text(encoding="utf-8").rstrip("\n")
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", ROLE)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, password), token)
    else:
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", ROLE)
        auth.set_default_token(token)
    if args.tls_cert:
        key = args.tls_key or args.tls_cert
        cert = Gio.TlsCertificate.new_from_files(str(args.tls_cert), str(key))
        auth.set_tls_certificate(cert)
    return auth


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if not args.clip.is_file():
        print(f"no such clip: {args.clip}", file=sys.stderr)
        return 2
    Gst.init(None)
    channel = f"eg{args.port}"
    decoder = _decoder(args, channel)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    auth = _auth(args)
    factory = _factory(args, channel, _decoded_size(decoder))
    if auth is None:
        factory.set_permissions(None)
    else:
        server.set_auth(auth)
        if not args.user:
            factory.set_permissions(None)
    server.get_mount_points().add_factory(args.mount, factory)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr, flush=True)
        return 3
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    decoder.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
