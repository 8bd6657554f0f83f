"""The server side of an i-PI socket, as i-PI's engine and the socket calculator both open
one: unix or inet, its name or port, how long to wait for the client."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hybridmd.config.base import MAX_SECONDS, Strict


class SocketServerConfig(Strict):
    """Where a force client connects (the subclasses name their ``type``)."""

    type: str
    socket: Literal["unix", "inet"] = Field(
        "unix", description="unix: a local socket file; inet: TCP, for a client on another "
        "machine")
    address: str | None = Field(
        None, description="unix: socket name (default: unique to the run and connection; at "
        "/tmp/ipi_<address>); inet: host to listen on (default: localhost)")
    port: int | None = Field(None, ge=1, le=65535,
                             description="inet only (default: a free port)")
    connect_timeout_s: float = Field(
        60.0, gt=0, le=MAX_SECONDS,
        description="longest wait for the force client to connect before the run fails")

    @model_validator(mode="after")
    def _port_for_inet(self) -> SocketServerConfig:
        if self.port is not None and self.socket != "inet":
            raise ValueError("`port:` needs `socket: inet`")
        if self.socket == "unix" and self.address and "/" in self.address:
            raise ValueError(
                f"`address: {self.address}` is a unix socket name, not a path (it is put at "
                "/tmp/ipi_<address>); leave out the slashes")
        return self
