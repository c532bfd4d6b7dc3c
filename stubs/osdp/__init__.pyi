# Minimal typing for the parts of libosdp's Python bindings (PyPI ``libosdp`` 3.x) edge-gate uses.
from collections.abc import Callable
from typing import Any

class Channel:
    id: int
    def __init__(self) -> None: ...
    def read(self, max_bytes: int) -> bytes: ...
    def write(self, buf: bytes) -> int: ...
    def flush(self) -> None: ...

class PdId:
    def __init__(
        self, version: int, model: int, vendor_code: int, serial_number: int, firmware_version: int
    ) -> None: ...
    version: int
    model: int
    vendor_code: int
    serial_number: int
    firmware_version: int

class PDInfo:
    address: int
    def __init__(
        self,
        address: int,
        channel: Channel,
        scbk: bytes | None = ...,
        name: str | None = ...,
        flags: list[int] = ...,
        id: PdId | None = ...,
    ) -> None: ...

class PDCapabilities:
    def __init__(self, cap_list: list[tuple[int, int, int]] = ...) -> None: ...

class ControlPanel:
    def __init__(
        self,
        pd_info_list: list[PDInfo],
        log_level: int = ...,
        event_handler: Callable[[int, dict[str, Any]], int] | None = ...,
        command_completion_handler: Callable[[int, dict[str, Any], int], None] | None = ...,
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def teardown(self) -> None: ...
    def status(self) -> int: ...
    def sc_status(self) -> int: ...
    def is_online(self, address: int) -> bool: ...
    def is_sc_active(self, address: int) -> bool: ...
    def submit_command(self, address: int, cmd: dict[str, Any]) -> bool: ...
    def flush_commands(self, address: int) -> int: ...
    def get_pd_id(self, address: int) -> PdId: ...
    def disable_pd(self, address: int) -> bool: ...
    def enable_pd(self, address: int) -> bool: ...
    def check_capability(self, address: int, cap: int) -> tuple[int, int]: ...
    def set_event_handler(self, handler: Callable[[int, dict[str, Any]], int] | None) -> None: ...
    def get_event(self, address: int, timeout: int = ...) -> dict[str, Any] | None: ...

class PeripheralDevice:
    address: int
    def __init__(
        self,
        pd_info: PDInfo,
        pd_cap: PDCapabilities,
        log_level: int = ...,
        command_handler: Callable[[dict[str, Any]], tuple[int, dict[str, Any] | None]]
        | None = ...,
        event_completion_handler: Callable[[dict[str, Any], int], None] | None = ...,
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def teardown(self) -> None: ...
    def submit_event(self, event: dict[str, Any]) -> bool: ...
    def is_sc_active(self) -> bool: ...
    def is_online(self) -> bool: ...
    def get_command(self, timeout: int = ...) -> dict[str, Any] | None: ...

class KeyStore: ...

class LibFlag:
    EnforceSecure: int
    InstallMode: int
    IgnoreUnsolicited: int
    EnableNotification: int

class LogLevel:
    Emergency: int
    Error: int
    Warning: int
    Info: int
    Debug: int

class Command:
    Output: int
    Buzzer: int
    LED: int
    Comset: int
    ComsetDone: int
    Text: int
    Keyset: int
    Status: int

class CommandLEDColor:
    Black: int
    Red: int
    Green: int
    Amber: int

class Event:
    CardRead: int
    KeyPress: int
    Status: int
    Notification: int

class EventNotification:
    Command: int
    SecureChannelStatus: int
    PeripheralDeviceStatus: int

class CompletionStatus:
    Ok: int
    Failed: int
    Flushed: int
    Aborted: int

class CardFormat:
    Unspecified: int
    Wiegand: int
    ASCII: int

class Capability:
    OutputControl: int
    CardDataFormat: int
    LEDControl: int
    AudibleControl: int
    TextOutput: int
    CommunicationSecurity: int
    ReceiveBufferSize: int
