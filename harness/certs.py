"""Test certificates made with the openssl CLI: a CA, and server or client certificates it signs.

EC keys (P-256), valid for one day; a server certificate names its IP addresses in subjectAltName
(what TLS clients check), a client certificate only an O: etcd's JSON gateway refuses a client certificate with a CommonName
once authentication is on (it would not use it as the user name, and says so). Server certificates may also authenticate clients: etcd's
JSON gateway presents the server certificate to etcd's own gRPC port (with --client-cert-auth).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Pair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


class CertificateAuthority:
    def __init__(self, directory: Path, name: str) -> None:
        self.dir = directory
        self.name = name
        self.cert, self.key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                 "-subj", f"/CN={name} test CA", "-keyout", str(self.key), "-out", str(self.cert))

    def issue(self, name: str, ips: tuple[str, ...] = (), client: bool = False) -> Pair:
        """A certificate for ``name`` (server for ``ips``, or client) signed by this CA."""
        key, csr, cert = (self.dir / f"{self.name}-{name}.{ext}" for ext in ("key", "csr", "pem"))
        ext = self.dir / f"{self.name}-{name}.ext"
        # etcd's JSON gateway dials its own gRPC server with the server certificate as a client one
        usage = "clientAuth" if client else "serverAuth,clientAuth"
        lines = [f"extendedKeyUsage={usage}", "keyUsage=digitalSignature,keyEncipherment"]
        if ips:
            lines.append("subjectAltName=" + ",".join(f"IP:{ip}" for ip in ips))
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-subj", f"/O={name}" if client else f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key), "-CAcreateserial",
                 "-days", "1", "-extfile", str(ext), "-out", str(cert))
        return Pair(cert, key)
