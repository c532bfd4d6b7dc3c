"""Camera capture: sources (RTSP/RTSPS, V4L2, files), the capture thread and the frame slot.

- ``url``: classify configured URLs, add credentials, redact them (pure core)
- ``failure``/``backoff``/``frame``: outcomes, reconnect delays, the Frame type (pure core)
- ``rtsp_check``: one authenticated DESCRIBE to classify failures, TLS host name check
- ``v4l2``: device node checks (no such device / permission denied / not a video device)
- ``sources``: open a camera, read downscaled BGR pictures
- ``latest``: the size-1 LatestFrame slot (newest wins, drops counted)
- ``thread``: CaptureThread (stall detection, reconnect with backoff, lost/restored callbacks)
- ``annotate``: draw faces, landmarks and quality on a frame (snapshot, demo)
- ``bench``: capture-thread CPU benchmark
"""
