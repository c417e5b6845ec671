"""Parsers for Compose's short syntaxes: ports, volumes, byte sizes and CPU counts.

They follow the Compose reference implementation (compose-go with docker's
go-connections and go-units): the same splitting, the same defaults.
"""

from __future__ import annotations

import ipaddress
import re

_PROTOCOLS = ("tcp", "udp", "sctp")
_PORT_RE = re.compile(r"^\d+(?:-\d+)?$")


class SyntaxProblem(ValueError):
    """A short-syntax value Compose would reject."""


def parse_port_spec(text: str) -> list[tuple[str, str, str, str]]:
    """Split `[[IP:]HOST:]CONTAINER[/PROTO]` into (host_ip, published, target, protocol).

    A container range gives one tuple per port; a host range with a single container
    port stays one tuple, as Compose does.
    """
    spec = text.strip()
    protocol = "tcp"
    if "/" in spec:
        spec, protocol = spec.rsplit("/", 1)
        protocol = protocol.lower()
        if protocol not in _PROTOCOLS:
            raise SyntaxProblem(f"invalid protocol {protocol!r} in port {text!r}")
    parts = spec.split(":")
    if len(parts) == 1:
        host_ip, published, target = "", "", parts[0]
    elif len(parts) == 2:
        host_ip, published, target = "", parts[0], parts[1]
    else:
        # More than three parts: the last two are host and container port and the
        # rest is an unbracketed IPv6 address, as in `::1:6379:6379`.
        host_ip, published, target = ":".join(parts[:-2]), parts[-2], parts[-1]
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise SyntaxProblem(f"invalid host address {host_ip!r} in port {text!r}") from None
    if not _PORT_RE.match(target):
        raise SyntaxProblem(f"invalid container port {target!r} in port {text!r}")
    if published and not _PORT_RE.match(published):
        raise SyntaxProblem(f"invalid host port {published!r} in port {text!r}")
    return _expand_ranges(host_ip, published, target, protocol, text)


def _expand_ranges(host_ip: str, published: str, target: str, protocol: str, text: str):
    target_range = _port_range(target)
    if len(target_range) == 1:
        return [(host_ip, published, str(target_range[0]), protocol)]
    if not published:
        return [(host_ip, "", str(port), protocol) for port in target_range]
    published_range = _port_range(published)
    if len(published_range) != len(target_range):
        raise SyntaxProblem(f"host and container port ranges differ in length in {text!r}")
    return [
        (host_ip, str(host), str(port), protocol)
        for host, port in zip(published_range, target_range)
    ]


def _port_range(text: str) -> list[int]:
    if "-" in text:
        start, end = (int(part) for part in text.split("-", 1))
        if end < start:
            raise SyntaxProblem(f"invalid port range {text!r}")
        return list(range(start, end + 1))
    return [int(text)]


def is_loopback(host_ip: str) -> bool:
    if host_ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(host_ip).is_loopback
    except ValueError:
        return False


def is_all_interfaces(host_ip: str) -> bool:
    return host_ip in ("", "0.0.0.0", "::")


_WINDOWS_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")


def parse_volume_spec(text: str) -> tuple[str, str | None, str | None, list[str]]:
    """Split `SOURCE:TARGET[:OPTIONS]` or `TARGET` into (type, source, target, options).

    The source classification is compose-go's: `.`, `/`, `~` or a Windows path make
    a bind mount, no source an anonymous volume, anything else a named volume.
    """
    spec = text.strip()
    if not spec:
        raise SyntaxProblem("empty volume specification")
    parts = _split_volume(spec)
    if len(parts) == 1:
        return "anonymous", None, parts[0], []
    if len(parts) > 3:
        raise SyntaxProblem(f"too many colons in volume {text!r}")
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    if not target:
        raise SyntaxProblem(f"missing container path in volume {text!r}")
    if not source:
        return "anonymous", None, target, options
    return ("bind" if is_host_path(source) else "volume"), source, target, options


def _split_volume(spec: str) -> list[str]:
    # A Windows drive letter (`C:\data`) holds a colon that is not a separator.
    if _WINDOWS_DRIVE_RE.match(spec):
        rest = _split_volume(spec[2:])
        return [spec[:2] + rest[0], *rest[1:]]
    return spec.split(":")


def is_host_path(source: str) -> bool:
    return (
        source.startswith((".", "/", "~", "\\"))
        or bool(_WINDOWS_DRIVE_RE.match(source))
    )


_BYTES_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """Parse a Compose byte value (`512m`, `1gb`, `1073741824`), 1024-based like go-units."""
    match = _BYTES_RE.match(text)
    if not match:
        raise SyntaxProblem(f"invalid byte value {text!r}")
    number = float(match.group(1))
    power = "bkmgtp".index(match.group(2).lower() or "b")
    return int(number * 1024**power)


def parse_cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SyntaxProblem(f"invalid CPU count {text!r}") from None
    if value < 0:
        raise SyntaxProblem(f"negative CPU count {text!r}")
    return value
