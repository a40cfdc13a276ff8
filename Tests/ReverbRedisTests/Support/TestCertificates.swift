import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// A CA, a server certificate for `127.0.0.1`/`localhost` and a client certificate, made with the
/// `openssl` command in a temporary directory.
struct TestCertificates {
    let directory: URL
    var caCertificate: String { path("ca.crt") }
    var serverCertificate: String { path("server.crt") }
    var serverKey: String { path("server.key") }
    var clientCertificate: String { path("client.crt") }
    var clientKey: String { path("client.key") }

    static func generate() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("reverb-redis-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        try certificates.write(
            "ca.cnf",
            """
            [req]
            distinguished_name = dn
            prompt = no
            x509_extensions = v3
            [dn]
            CN = Reverb Redis Test CA
            [v3]
            basicConstraints = critical,CA:TRUE
            keyUsage = critical,keyCertSign,cRLSign
            subjectKeyIdentifier = hash
            """
        )
        try certificates.write(
            "server.ext",
            """
            basicConstraints = CA:FALSE
            keyUsage = critical,digitalSignature,keyEncipherment
            extendedKeyUsage = serverAuth
            subjectAltName = IP:127.0.0.1,DNS:localhost
            """
        )
        try certificates.write(
            "client.ext",
            """
            basicConstraints = CA:FALSE
            keyUsage = critical,digitalSignature,keyEncipherment
            extendedKeyUsage = clientAuth
            """
        )
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await certificates.openssl(
            ["req", "-x509", "-new"] + ec + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-config", "ca.cnf"]
        )
        for name in ["server", "client"] {
            try await certificates.openssl(
                ["req", "-new"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)"]
            )
            try await certificates.openssl([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).crt", "-days", "2", "-extfile", "\(name).ext",
            ])
        }
        return certificates
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    private func write(_ name: String, _ text: String) throws {
        try (text + "\n").write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    private func openssl(_ arguments: [String]) async throws {
        let result = try await run(
            .path(FilePath(RedisServerProcess.executable("openssl").path)),
            arguments: Arguments(arguments),
            workingDirectory: FilePath(directory.path),
            output: .discarded,
            error: .string(limit: 64 * 1024)
        )
        guard result.terminationStatus == .exited(0) else {
            throw TestFailure(
                "openssl \(arguments.joined(separator: " ")) failed with \(result.terminationStatus): "
                    + result.standardError
            )
        }
    }
}
