"""Test certificates for the TLS tests, made fresh by each test run with
Debian's python3-cryptography (nothing private is committed): a CA, server
certificates for 127.0.0.1/localhost, client certificates (optionally
expired or signed by a CA the broker does not trust)."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn, org="Cairn tests"):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, cert, key):
    with open(path + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(path + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return path + ".pem", path + ".key"


class CA:
    def __init__(self, directory, name="Cairn test CA"):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.key = _key()
        now = datetime.datetime.utcnow()
        self.name = _name(name)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        safe = name.replace(" ", "_")
        self.pem, _ = _write(os.path.join(self.dir, safe), self.cert, self.key)

    def issue(self, file_stem, cn, server=False, expired=False, node=False, org="Cairn tests"):
        """Sign a certificate; returns (cert_path, key_path). server: for a
        listener (SAN 127.0.0.1/localhost); node: a cluster node's, used both
        to accept and to dial (server and client auth). The subject is
        O=org,CN=cn (RFC 2253: "CN=cn,O=org")."""
        server = server or node
        key = _key()
        now = datetime.datetime.utcnow()
        if expired:
            nb, na = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
        else:
            nb, na = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
        b = (x509.CertificateBuilder()
             .subject_name(_name(cn, org)).issuer_name(self.name)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(nb).not_valid_after(na))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            usages = [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
            if node:
                usages.append(x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
            b = b.add_extension(x509.ExtendedKeyUsage(usages), False)
        else:
            b = b.add_extension(x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        cert = b.sign(self.key, hashes.SHA256())
        return _write(os.path.join(self.dir, file_stem), cert, key)
