"""TLS helpers shared by the server and the client: certificate fingerprints, a self-signed
certificate for ``qtchat-server --generate-cert``, and the server's QSslConfiguration.

Certificates and keys are made and parsed by libraries that know how (the ``cryptography``
package and Qt's TLS backend); nothing here touches X.509 or cryptography by hand.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QByteArray, QCryptographicHash
from PySide6.QtNetwork import QSsl, QSslCertificate, QSslConfiguration, QSslKey, QSslSocket

CERT_DAYS = 730  # about two years
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


class TlsSetupError(OSError):
    """TLS was asked for but cannot be used; the message is a sentence for the operator.

    An OSError, like failing to listen, so that whatever reports a server that cannot start
    reports this too."""


def certificate_fingerprint(cert: QSslCertificate) -> str:
    """The certificate's SHA-256 fingerprint (of its DER encoding), as 64 lowercase hex digits."""
    return bytes(cert.digest(QCryptographicHash.Algorithm.Sha256).toHex().data()).decode("ascii").lower()


def normalize_fingerprint(text: str) -> str:
    """64 lowercase hex digits from a fingerprint written with or without colons or spaces;
    raises ValueError for anything else."""
    digits = "".join(ch for ch in text if ch not in ": \t").lower()
    if len(digits) != 64 or any(ch not in "0123456789abcdef" for ch in digits):
        raise ValueError(f"{text!r} is not a SHA-256 fingerprint (64 hexadecimal digits).")
    return digits


def format_fingerprint(fingerprint: str) -> str:
    """``AB:CD:...``: the way people compare fingerprints."""
    digits = fingerprint.replace(":", "").upper()
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def describe_certificate(cert: QSslCertificate) -> str:
    """One plain-text line about a certificate: who it names, who issued it, until when."""
    subject = cert.subjectDisplayName() or "(no name)"
    issuer = cert.issuerDisplayName() or "(no name)"
    names = cert.subjectAlternativeNames()
    alt = sorted({str(v) for values in names.values() for v in values}) if names else []
    issued = "self-signed" if cert.isSelfSigned() else f"issued by {issuer}"
    until = cert.expiryDate().toString("yyyy-MM-dd")
    text = f"{subject}, {issued}, valid until {until}"
    if alt:
        text += f", for {', '.join(alt)}"
    return text


# ------------------------------------------------------------ generating (qtchat-server --generate-cert)


@dataclass(frozen=True)
class GeneratedCertificate:
    cert_path: Path
    key_path: Path
    fingerprint: str  # 64 lowercase hex digits
    names: tuple[str, ...]


def generate_certificate(cert_path: Path, key_path: Path, names: list[str] | tuple[str, ...] = (),
                         days: int = CERT_DAYS, overwrite: bool = False) -> GeneratedCertificate:
    """Write a self-signed certificate (EC P-256, SHA-256) for ``names`` plus localhost, 127.0.0.1 and ::1,
    and its private key (created readable by its owner only where the OS has such permissions).

    Raises FileExistsError rather than replace an existing file (unless ``overwrite``), and OSError
    when a file cannot be written.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    wanted = [n.strip() for n in names if n.strip()]
    all_names = tuple(dict.fromkeys([*wanted, *DEFAULT_NAMES]))
    if not overwrite:
        for path in (cert_path, key_path):
            if path.exists():
                raise FileExistsError(f"{path} exists already; move it away (or choose other file names) "
                                      "first: a new certificate changes the server's identity for its users.")
    alt: list[x509.GeneralName] = []
    for name in all_names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, (wanted[0] if wanted else "qtchat-server")[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qtchat-server (self-signed)"),
    ])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))  # a client whose clock is a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    for path in (cert_path, key_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(key_path, key_pem, overwrite)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    with os.fdopen(os.open(cert_path, flags, 0o644), "wb") as f:
        f.write(cert_pem)
    return GeneratedCertificate(cert_path, key_path, cert.fingerprint(hashes.SHA256()).hex(), all_names)


def _write_private(path: Path, data: bytes, overwrite: bool) -> None:
    """Create a file only its owner can read (POSIX permissions 0600; on Windows the user's profile
    folders are private to the user already, and os.open's mode only sets read-only)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # also when the file existed (overwrite), whatever the umask
        os.write(fd, data)
    finally:
        os.close(fd)


# ------------------------------------------------------------ loading (qtchat-server --tls-cert/--tls-key)


@dataclass(frozen=True)
class ServerTls:
    configuration: QSslConfiguration
    certificate: QSslCertificate
    fingerprint: str  # 64 lowercase hex digits


def load_server_tls(cert_path: Path, key_path: Path) -> ServerTls:
    """The server's TLS configuration from a PEM certificate (chain) and a PEM private key.

    Raises TlsSetupError with a sentence for the operator when TLS is unavailable here, a file
    cannot be read or parsed, or the key does not belong to the certificate.
    """
    if not QSslSocket.supportsSsl():
        raise TlsSetupError(
            "TLS was asked for, but Qt found no TLS library on this system "
            f"(backends: {', '.join(QSslSocket.availableBackends()) or 'none'}; "
            f"built for {QSslSocket.sslLibraryBuildVersionString() or 'unknown'}). "
            "Install OpenSSL 3 (for example the libssl3 package), or run without --tls-cert/--tls-key.")
    cert_data = _read(cert_path, "certificate")
    key_data = _read(key_path, "private key")
    chain = QSslCertificate.fromData(QByteArray(cert_data), QSsl.EncodingFormat.Pem)
    chain = [c for c in chain if not c.isNull()]
    if not chain:
        raise TlsSetupError(f"{cert_path} holds no PEM certificate (a file beginning with "
                            "'-----BEGIN CERTIFICATE-----' is expected).")
    if b"ENCRYPTED" in key_data:
        raise TlsSetupError(f"{key_path} is protected by a passphrase, which the server cannot ask for; "
                            "use a key without one (keep the file readable by the server's user only).")
    key = QSslKey()
    for algorithm in (QSsl.KeyAlgorithm.Ec, QSsl.KeyAlgorithm.Rsa, QSsl.KeyAlgorithm.Dsa):
        key = QSslKey(QByteArray(key_data), algorithm, QSsl.EncodingFormat.Pem, QSsl.KeyType.PrivateKey)
        if not key.isNull():
            break
    if key.isNull():
        raise TlsSetupError(f"{key_path} holds no PEM private key Qt can read (EC, RSA or DSA).")
    if not _key_matches(chain[0], key_data):
        raise TlsSetupError(f"The private key in {key_path} does not belong to the certificate in {cert_path}.")
    config = QSslConfiguration.defaultConfiguration()
    config.setLocalCertificateChain(chain)
    config.setPrivateKey(key)
    config.setPeerVerifyMode(QSslSocket.PeerVerifyMode.VerifyNone)  # clients have no certificates
    return ServerTls(config, chain[0], certificate_fingerprint(chain[0]))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsSetupError(f"Cannot read the TLS {what} {path}: {exc.strerror or exc}.") from None


def _key_matches(cert: QSslCertificate, key_pem: bytes) -> bool:
    """Does the private key belong to the certificate? (Compares their public keys, both as parsed
    by the cryptography package.)"""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        parsed_cert = x509.load_der_x509_certificate(bytes(cert.toDer().data()))
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(parsed_cert.public_key().public_bytes(*spki) == private.public_key().public_bytes(*spki))
